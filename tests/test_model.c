/* The assembled SSN model: output shapes and layout, and every part of the
 * backward pass checked by finite differences of the full training loss
 * (pillars -> VFE -> scatter -> backbone -> neck -> heads -> targets ->
 * losses), on a shrunken configuration so it runs in seconds. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kernels/cpu/ssn_losses.h"
#include "kernels/cpu/voxelize.h"
#include "trainer/assign.h"
#include "trainer/model.h"

typedef struct fixture {
    l3d_config cfg;
    l3d_model m;
    float *anchors, *voxels;
    int32_t *coords, *num_points;
    int64_t M;
    float boxes[2][3][7];
    int32_t labels[2][3];
    l3d_ssn_targets t;
    float *dcls, *dreg, *ddir;
} fixture;

static void small_config(l3d_config *c)
{
    l3d_err err = {0};
    l3d_config_preset(c, "small", &err);
    const char *sets[] = {"point_cloud_range = -16 -16 -5 16 16 3", "max_voxels = 600",
                          "vfe_channels = 4 8", "out_channels = 8 8 8", "neck_channels = 8",
                          "layer_nums = 1 1 1"};
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++)
        assert_int_equal(l3d_config_set(c, sets[i], "test", &err), 0);
}

static void make_fixture(fixture *f, int precision)
{
    memset(f, 0, sizeof *f);
    small_config(&f->cfg);
    l3d_err err = {0};
    if (l3d_model_build(&f->m, &f->cfg, 2, precision, &err))
        fail_msg("%s", err.msg);
    l3d_rng rng;
    l3d_rng_seed(&rng, 11);
    l3d_model_init(&f->m, &rng);
    /* random points around two cars per sample, voxelized as the loader does */
    l3d_voxel_config vc = {{-16, -16, -5, 16, 16, 3}, {0.5f, 0.5f, 8}, 20, 600};
    l3d_voxelizer vox;
    const char *why;
    assert_int_equal(l3d_voxelizer_init(&vox, &vc, &why), 0);
    int P = 20, V = 600;
    f->voxels = calloc((size_t)2 * V * P * 4, sizeof(float));
    f->coords = calloc((size_t)2 * V * 4, sizeof(int32_t));
    f->num_points = calloc((size_t)2 * V, sizeof(int32_t));
    float pts[3000][4];
    for (int b = 0; b < 2; b++) {
        float cx[2] = {b ? -5.f : 6.f, b ? 7.f : -3.f}, cy[2] = {b ? 4.f : 2.f, b ? -6.f : 5.f};
        for (int i = 0; i < 3000; i++) {
            int k = i % 3;
            float x = k < 2 ? cx[k] + 3 * ((float)l3d_rng_uniform(&rng) - 0.5f)
                            : 30 * ((float)l3d_rng_uniform(&rng) - 0.5f);
            float y = k < 2 ? cy[k] + 1.5f * ((float)l3d_rng_uniform(&rng) - 0.5f)
                            : 30 * ((float)l3d_rng_uniform(&rng) - 0.5f);
            pts[i][0] = x; pts[i][1] = y;
            pts[i][2] = k < 2 ? -1.5f + 1.5f * (float)l3d_rng_uniform(&rng) : -1.9f;
            pts[i][3] = 0.2f * (float)(i % 4);
        }
        int64_t base = f->M;
        int mv = l3d_voxelize(&vox, &pts[0][0], 3000, 4, f->voxels + base * P * 4,
                              f->coords + base * 4, f->num_points + base);
        int32_t *c3 = f->coords + base * 4;
        for (int i = mv - 1; i >= 0; i--) {
            int32_t z = c3[3 * i], y = c3[3 * i + 1], x = c3[3 * i + 2];
            c3[4 * i] = b; c3[4 * i + 1] = z; c3[4 * i + 2] = y; c3[4 * i + 3] = x;
        }
        f->M += mv;
        for (int k = 0; k < 2; k++) {
            float box[7] = {cx[k], cy[k], -1.6f, 4.6f, 1.9f, 1.7f, k ? 1.3f : 0.2f};
            memcpy(f->boxes[b][k], box, sizeof box);
            f->labels[b][k] = 4;   /* car */
        }
        float ped[7] = {b ? 1.f : -2.f, b ? 1.f : -8.f, -1.8f, 0.8f, 0.7f, 1.7f, 0.f};
        memcpy(f->boxes[b][2], ped, sizeof ped);
        f->labels[b][2] = 2;   /* pedestrian */
    }
    l3d_voxelizer_free(&vox);
    int64_t N = f->m.N, R = 2 * N;
    f->anchors = malloc((size_t)N * 7 * sizeof(float));
    l3d_anchors_generate(&f->m.layout, f->anchors);
    assert_int_equal(l3d_ssn_targets_alloc(&f->t, R), 0);
    f->dcls = malloc((size_t)R * 9 * 4);
    f->dreg = malloc((size_t)R * 7 * 4);
    f->ddir = malloc((size_t)R * 2 * 4);
}

static void free_fixture(fixture *f)
{
    l3d_model_free(&f->m);
    free(f->anchors); free(f->voxels); free(f->coords); free(f->num_points);
    l3d_ssn_targets_free(&f->t);
    free(f->dcls); free(f->dreg); free(f->ddir);
}

/* Forward + targets + loss; with grads, also the backward. */
static double loss_of(fixture *f, int grads)
{
    l3d_pillars in = {f->M, f->voxels, f->num_points, f->coords};
    assert_int_equal(l3d_model_forward(&f->m, &in, 1), 0);
    int64_t N = f->m.N, P[2];
    for (int b = 0; b < 2; b++) {
        l3d_ssn_targets tb = l3d_ssn_targets_at(&f->t, b * N);
        P[b] = l3d_assign_targets(&f->m.layout, f->anchors, &f->boxes[b][0][0], f->labels[b], 3, &tb);
        assert_true(P[b] > 0);
    }
    double ntp = (double)l3d_num_total_pos(P, 2);
    l3d_ssn_loss L = l3d_ssn_loss_forward(f->m.cls, f->m.reg, f->m.dir, 2 * N, 9, &f->t, ntp);
    if (grads) {
        l3d_params_zero_grad(&f->m.P);
        l3d_ssn_loss_backward(f->m.cls, f->m.reg, f->m.dir, 2 * N, 9, &f->t, ntp, f->dcls,
                              f->dreg, f->ddir);
        l3d_model_backward(&f->m, f->dcls, f->dreg, f->ddir);
    }
    return L.total;
}

static void test_layout_and_outputs(void **state)
{
    (void)state;
    fixture f;
    make_fixture(&f, L3D_FP32);
    assert_int_equal(f.m.nx, 64);
    /* groups on 32x32 (stride 2) and 16x16 (stride 4) maps: 2·(32²·4 + 16²·5) rows */
    assert_int_equal(f.m.N, 2 * (32 * 32 * 4 + 16 * 16 * 5));
    double L = loss_of(&f, 0);
    assert_true(isfinite(L) && L > 0);
    /* initial cls logits are the prior bias (-4.595) plus small terms */
    double mean = 0;
    for (int64_t i = 0; i < 2 * f.m.N * 9; i++)
        mean += f.m.cls[i];
    mean /= 2.0 * f.m.N * 9;
    assert_true(fabs(mean + 4.595) < 0.1);
    free_fixture(&f);
}

/* Central differences of the loss for a few weights of every part. Each
 * forward in training mode uses batch statistics only, so the loss is a
 * function of the weights alone. */
static void test_backward_matches_finite_differences(void **state)
{
    (void)state;
    fixture f;
    make_fixture(&f, L3D_FP32);
    loss_of(&f, 1);
    const char *names[] = {
        "voxel_encoder.vfe_layers.0.linear.weight", "voxel_encoder.vfe_layers.1.norm.weight",
        "backbone.blocks.0.0.conv.weight", "backbone.blocks.2.1.bn.bias",
        "neck.deblocks.0.deconv.weight", "neck.deblocks.2.deconv.weight",
        "bbox_head.heads.0.shared_conv.0.conv.weight", "bbox_head.heads.3.shared_conv.2.bn.weight",
        "bbox_head.heads.1.conv_cls.bias", "bbox_head.heads.2.conv_reg.weight",
        "bbox_head.heads.2.conv_dir_cls.bias",
    };
    int checked = 0;
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        const l3d_tensor_info *ti = l3d_params_find(&f.m.P, names[k]);
        if (!ti)
            fail_msg("no parameter %s", names[k]);
        float *w = f.m.P.param + ti->offset;
        const float *g = f.m.P.grad + ti->offset;
        /* the element with the largest gradient, and one more */
        size_t best = 0;
        for (size_t i = 1; i < ti->numel; i++)
            if (fabsf(g[i]) > fabsf(g[best]))
                best = i;
        size_t picks[2] = {best, ti->numel / 2};
        for (int p = 0; p < 2; p++) {
            size_t i = picks[p];
            /* max, ReLU and the assigner are piecewise: a kink may sit within a
             * step, so take the best of three step sizes */
            float w0 = w[i], scale = fabsf(w0) > 1 ? fabsf(w0) : 1;
            double an = g[i], best_err = INFINITY, fd = 0;
            for (float h = 4e-3f * scale; h > 2e-4f * scale; h /= 4) {
                w[i] = w0 + h;
                double lp = loss_of(&f, 0);
                w[i] = w0 - h;
                double lm = loss_of(&f, 0);
                w[i] = w0;
                double d = (lp - lm) / (2.0 * (double)h);
                if (fabs(d - an) < best_err) {
                    best_err = fabs(d - an);
                    fd = d;
                }
            }
            if (fabs(an) < 1e-4 && fabs(fd) < 1e-4)
                continue;   /* both negligible: nothing to compare at fp32 */
            if (best_err > 0.05 * fabs(an) + 5e-4)
                fail_msg("%s[%zu]: backward %.6g, finite difference %.6g", names[k], i, an, fd);
            checked++;
        }
    }
    assert_true(checked >= 8);
    free_fixture(&f);
}

static void test_amp_rounds_but_agrees(void **state)
{
    (void)state;
    fixture a, b;
    make_fixture(&a, L3D_FP32);
    make_fixture(&b, L3D_AMP);
    double la = loss_of(&a, 0), lb = loss_of(&b, 0);
    assert_true(la != lb);                       /* fp16 rounding happened */
    assert_true(fabs(la - lb) < 1e-2 * la);      /* and stayed small */
    free_fixture(&a);
    free_fixture(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_and_outputs),
        cmocka_unit_test(test_backward_matches_finite_differences),
        cmocka_unit_test(test_amp_rounds_but_agrees),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
