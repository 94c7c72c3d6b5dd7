/* Parity with PyTorch: tests/fixtures/torch_parity.h5, written by
 * `python3 tests/ref/torch_parity.py` (an independent PyTorch implementation
 * of the SSN of spec ssn-model.md on the shrunken test configuration, with
 * random weights named as ours), holds the inputs, every initial weight and
 * BN statistic, the outputs, targets, loss terms, every gradient, the BN
 * running statistics after the forward and the losses of 10 AdamW steps.
 * This test loads the weights into OUR model by name and compares, in order:
 *
 *   outputs cls/reg/dir   max|ours - torch| <= 1e-4 * max|torch| per tensor
 *   targets               labels, label/bbox/dir weights, dir bins exact;
 *                         encoded boxes |diff| <= 1e-5; positives per sample exact
 *   loss terms            |ours - torch| <= 1e-4 * |torch| each (cls, bbox, dir, total)
 *   gradients             per tensor max|diff| <= 1e-4 * max|torch grad|
 *   BN running stats      per tensor max|diff| <= 1e-4 * max|torch|
 *   10 training steps     lr exact (1e-12); loss <= 1e-4 relative at every step;
 *                         pre-clip grad norm <= 1e-4 at step 0, <= 1e-3 after
 *                         (see test_training_steps)
 *
 * The fixture's path is relative to the repository root (the cwd of make
 * check); without it the test prints "skipped: ..." and passes. Set
 * TORCH_PARITY_VERBOSE=1 to print the difference of every tensor. */
#include <hdf5.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "kernels/cpu/ssn_losses.h"
#include "trainer/assign.h"
#include "trainer/model.h"
#include "trainer/optim.h"

#define FIXTURE "tests/fixtures/torch_parity.h5"
#define FORMAT "lidar3d-torch-parity"

/* Tolerances (see the comment at the top). fp32 on both sides; only the order of
 * summation differs (BLAS / oneDNN blocking, double vs float accumulators), which
 * measures <= 4e-6 relative for every tensor but one, and any real defect (a wrong
 * formula, index or constant) moves things by >= 1e-3. The one: the gradient of
 * voxel_encoder.vfe_layers.1.linear.weight, 3.4e-5 from torch. It is a sum over
 * all M x 20 VFE slots of BN-backward terms that cancel; torch's fp32 GEMM is
 * itself 3.3e-5 off the same PyTorch run in float64 there, ours 7.5e-7, so the
 * difference is torch's rounding and the common 1e-4 still holds (3x margin). */
#define TOL_OUT 1e-4
#define TOL_BBOX_T 1e-5
#define TOL_LOSS 1e-4
#define TOL_GRAD 1e-4
#define TOL_BN 1e-4
#define TOL_TRAIN 1e-4
#define TOL_TRAIN_NORM 1e-3

typedef struct state {
    hid_t file;
    l3d_config cfg;
    l3d_model m;
    char torch_version[64];
    int64_t M;
    float *voxels;
    int32_t *num_points, *coords;
    int G;                 /* boxes per sample */
    float *boxes;          /* [B][G][7] */
    int32_t *labels;       /* [B][G] */
    float *anchors;
    l3d_ssn_targets t;
    float *dcls, *dreg, *ddir;
} state;

static int verbose(void)
{
    const char *v = getenv("TORCH_PARITY_VERBOSE");
    return v && *v && strcmp(v, "0");
}

/* ---- HDF5 -------------------------------------------------------------------- */

static int has(hid_t f, const char *path)
{
    /* every component must exist for H5Lexists on the full path */
    char buf[512];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *s = buf + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            if (H5Lexists(f, buf, H5P_DEFAULT) <= 0)
                return 0;
            *s = '/';
        }
    return H5Lexists(f, buf, H5P_DEFAULT) > 0;
}

/* Reads dataset `path` as memtype (elements of `elem` bytes); dims/rank out.
 * Fails the test if it is missing. */
static void *read_ds(hid_t f, const char *path, hid_t memtype, size_t elem, int *rank,
                     hsize_t dims[4], size_t *count)
{
    if (!has(f, path))
        fail_msg("%s: no dataset %s", FIXTURE, path);
    hid_t d = H5Dopen2(f, path, H5P_DEFAULT);
    assert_true(d >= 0);
    hid_t sp = H5Dget_space(d);
    int r = H5Sget_simple_extent_ndims(sp);
    assert_true(r >= 0 && r <= 4);
    hsize_t dd[4] = {1, 1, 1, 1};
    H5Sget_simple_extent_dims(sp, dd, NULL);
    size_t n = 1;
    for (int i = 0; i < r; i++)
        n *= (size_t)dd[i];
    void *buf = malloc(n * elem + 1);
    assert_non_null(buf);
    if (H5Dread(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        fail_msg("%s: cannot read %s", FIXTURE, path);
    H5Sclose(sp);
    H5Dclose(d);
    if (rank)
        *rank = r;
    if (dims)
        memcpy(dims, dd, sizeof dd);
    if (count)
        *count = n;
    return buf;
}

static float *read_f32(hid_t f, const char *path, size_t *n)
{
    return read_ds(f, path, H5T_NATIVE_FLOAT, 4, NULL, NULL, n);
}

static int32_t *read_i32(hid_t f, const char *path, size_t *n)
{
    return read_ds(f, path, H5T_NATIVE_INT32, 4, NULL, NULL, n);
}

static double *read_f64(hid_t f, const char *path, size_t *n)
{
    return read_ds(f, path, H5T_NATIVE_DOUBLE, 8, NULL, NULL, n);
}

/* A string attribute of the root group (fixed or variable length), malloc'ed. */
static char *root_attr_str(hid_t f, const char *key)
{
    if (H5Aexists(f, key) <= 0)
        fail_msg("%s: no attribute %s", FIXTURE, key);
    hid_t a = H5Aopen(f, key, H5P_DEFAULT);
    hid_t ft = H5Aget_type(a);
    char *out;
    if (H5Tis_variable_str(ft) > 0) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        char *p = NULL;
        assert_true(H5Aread(a, mt, &p) >= 0);
        out = strdup(p ? p : "");
        H5free_memory(p);
        H5Tclose(mt);
    } else {
        size_t n = H5Tget_size(ft);
        out = calloc(n + 1, 1);
        assert_true(H5Aread(a, ft, out) >= 0);
    }
    H5Tclose(ft);
    H5Aclose(a);
    return out;
}

/* Loads the fixture's tensor group/NAME for every entry of table t into arena,
 * requiring the same shape; also requires the group to hold nothing else. */
static void load_table(hid_t f, const char *group, const l3d_table *t, float *arena)
{
    for (int i = 0; i < t->n; i++) {
        const l3d_tensor_info *ti = &t->t[i];
        char path[256];
        snprintf(path, sizeof path, "%s/%s", group, ti->name);
        int rank;
        hsize_t dims[4];
        size_t n;
        float *v = read_ds(f, path, H5T_NATIVE_FLOAT, 4, &rank, dims, &n);
        int same = rank == ti->ndim;
        for (int d = 0; same && d < rank; d++)
            same = (int64_t)dims[d] == ti->shape[d];
        if (!same)
            fail_msg("%s: %s has another shape than our tensor", FIXTURE, path);
        memcpy(arena + ti->offset, v, n * sizeof(float));
        free(v);
    }
    hid_t g = H5Gopen2(f, group, H5P_DEFAULT);
    H5G_info_t info;
    assert_true(H5Gget_info(g, &info) >= 0);
    H5Gclose(g);
    if ((int)info.nlinks != t->n)
        fail_msg("%s: %s/ holds %d tensors, our model has %d", FIXTURE, group,
                 (int)info.nlinks, t->n);
}

/* ---- comparison ---------------------------------------------------------------- */

typedef struct worst {
    double rel;            /* max over tensors of max|diff| / max|ref| */
    char name[128];
    int tensors, failed;
} worst;

/* max|a - r| / max|r| of one tensor (0/0 -> 0, x/0 -> inf); records it in w and
 * prints it on failure (or always when verbose). */
static double compare(worst *w, const char *name, const float *a, const float *r, size_t n,
                      double tol)
{
    double md = 0, mr = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)r[i]);
        if (!(d <= md))       /* also NaN */
            md = isnan(d) ? INFINITY : d;
        if (fabs((double)r[i]) > mr)
            mr = fabs((double)r[i]);
    }
    double rel = md == 0 ? 0 : mr > 0 ? md / mr : INFINITY;
    int bad = !(rel <= tol);
    if (bad || verbose())
        printf("  %-52s max|diff| %.3g  max|torch| %.3g  rel %.3g%s\n", name, md, mr, rel,
               bad ? "  FAIL" : "");
    w->tensors++;
    w->failed += bad;
    if (rel >= w->rel || w->tensors == 1) {
        w->rel = rel;
        snprintf(w->name, sizeof w->name, "%s", name);
    }
    return rel;
}

static void report(const char *what, const worst *w, double tol)
{
    printf("  %-16s %3d tensor%s, worst %.3g (%s), tolerance %.0e\n", what, w->tensors,
           w->tensors == 1 ? " " : "s", w->rel, w->name, tol);
    if (w->failed)
        fail_msg("%s: %d of %d tensors beyond %.0e", what, w->failed, w->tensors, tol);
}

/* ---- setup --------------------------------------------------------------------- */

static int setup(void **pstate)
{
    state *s = calloc(1, sizeof *s);
    assert_non_null(s);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    s->file = H5Fopen(FIXTURE, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (s->file < 0)
        fail_msg("%s: cannot open as HDF5", FIXTURE);
    char *fmt = root_attr_str(s->file, "format");
    if (strcmp(fmt, FORMAT))
        fail_msg("%s: format '%s', expected '%s'", FIXTURE, fmt, FORMAT);
    free(fmt);
    char *tv = root_attr_str(s->file, "torch");
    snprintf(s->torch_version, sizeof s->torch_version, "%s", tv);
    free(tv);

    /* config: preset + the override lines the reference used */
    l3d_err err = {0};
    char *preset = root_attr_str(s->file, "preset");
    if (l3d_config_preset(&s->cfg, preset, &err))
        fail_msg("%s", err.msg);
    free(preset);
    char *ov = root_attr_str(s->file, "overrides");
    for (char *line = strtok(ov, "\n"); line; line = strtok(NULL, "\n"))
        if (l3d_config_set(&s->cfg, line, FIXTURE, &err))
            fail_msg("%s", err.msg);
    free(ov);
    int B = 2;
    if (l3d_model_build(&s->m, &s->cfg, B, L3D_FP32, &err))
        fail_msg("%s", err.msg);

    /* inputs */
    int rank;
    hsize_t dims[4];
    size_t n;
    s->voxels = read_ds(s->file, "inputs/voxels", H5T_NATIVE_FLOAT, 4, &rank, dims, &n);
    assert_int_equal(rank, 3);
    assert_int_equal(dims[1], s->cfg.max_points);
    assert_int_equal(dims[2], 4);
    s->M = (int64_t)dims[0];
    s->num_points = read_i32(s->file, "inputs/num_points", &n);
    assert_int_equal(n, s->M);
    s->coords = read_i32(s->file, "inputs/coords", &n);
    assert_int_equal(n, 4 * s->M);
    s->boxes = read_ds(s->file, "inputs/boxes", H5T_NATIVE_FLOAT, 4, &rank, dims, &n);
    assert_int_equal(rank, 3);
    assert_int_equal(dims[0], B);
    assert_int_equal(dims[2], 7);
    s->G = (int)dims[1];
    s->labels = read_i32(s->file, "inputs/labels", &n);
    assert_int_equal(n, (size_t)B * s->G);

    int64_t N = s->m.N, R = B * N;
    s->anchors = malloc((size_t)N * 7 * sizeof(float));
    l3d_anchors_generate(&s->m.layout, s->anchors);
    assert_int_equal(l3d_ssn_targets_alloc(&s->t, R), 0);
    s->dcls = malloc((size_t)R * 9 * 4);
    s->dreg = malloc((size_t)R * 7 * 4);
    s->ddir = malloc((size_t)R * 2 * 4);
    printf("  fixture: %s, torch %s, %lld pillars, %d boxes per sample, N = %lld\n", FIXTURE,
           s->torch_version, (long long)s->M, s->G, (long long)N);
    *pstate = s;
    return 0;
}

static int teardown(void **pstate)
{
    state *s = *pstate;
    if (!s)
        return 0;
    l3d_model_free(&s->m);
    H5Fclose(s->file);
    free(s->voxels); free(s->num_points); free(s->coords); free(s->boxes); free(s->labels);
    free(s->anchors);
    l3d_ssn_targets_free(&s->t);
    free(s->dcls); free(s->dreg); free(s->ddir);
    free(s);
    return 0;
}

/* Initial weights and BN statistics by name, gradients zeroed. */
static void reset(state *s)
{
    load_table(s->file, "weights", &s->m.P.layout, s->m.P.param);
    load_table(s->file, "bn_init", &s->m.P.bn_layout, s->m.P.bn);
    l3d_params_zero_grad(&s->m.P);
    l3d_model_refresh_weights(&s->m);
}

static void forward(state *s)
{
    l3d_pillars in = {s->M, s->voxels, s->num_points, s->coords};
    assert_int_equal(l3d_model_forward(&s->m, &in, 1), 0);
}

/* Our targets for the batch; P[b] positives; returns num_total_pos. */
static double targets(state *s, int64_t P[2])
{
    for (int b = 0; b < 2; b++) {
        l3d_ssn_targets tb = l3d_ssn_targets_at(&s->t, b * s->m.N);
        P[b] = l3d_assign_targets(&s->m.layout, s->anchors, s->boxes + (size_t)b * s->G * 7,
                                  s->labels + (size_t)b * s->G, s->G, &tb);
        assert_true(P[b] >= 0);
    }
    return (double)l3d_num_total_pos(P, 2);
}

static l3d_ssn_loss loss_and_backward(state *s, double ntp)
{
    int64_t R = 2 * s->m.N;
    l3d_ssn_loss L = l3d_ssn_loss_forward(s->m.cls, s->m.reg, s->m.dir, R, 9, &s->t, ntp);
    l3d_ssn_loss_backward(s->m.cls, s->m.reg, s->m.dir, R, 9, &s->t, ntp, s->dcls, s->dreg,
                          s->ddir);
    l3d_model_backward(&s->m, s->dcls, s->dreg, s->ddir);
    return L;
}

/* ---- tests --------------------------------------------------------------------- */

static void test_weights_by_name(void **pstate)
{
    state *s = *pstate;
    reset(s);   /* fails on a missing, extra or differently shaped tensor */
    printf("  weights: %d tensors (%zu values) and %d BN statistics loaded by name\n",
           s->m.P.layout.n, l3d_table_count(&s->m.P.layout), s->m.P.bn_layout.n);
}

static void test_forward_outputs(void **pstate)
{
    state *s = *pstate;
    reset(s);
    forward(s);
    const char *names[3] = {"outputs/cls", "outputs/reg", "outputs/dir"};
    const float *ours[3] = {s->m.cls, s->m.reg, s->m.dir};
    size_t width[3] = {9, 7, 2};
    worst w = {0};
    for (int i = 0; i < 3; i++) {
        size_t n;
        float *ref = read_f32(s->file, names[i], &n);
        assert_int_equal(n, 2 * (size_t)s->m.N * width[i]);
        compare(&w, names[i], ours[i], ref, n, TOL_OUT);
        free(ref);
    }
    report("outputs", &w, TOL_OUT);
}

static void test_targets(void **pstate)
{
    state *s = *pstate;
    int64_t P[2];
    double ntp = targets(s, P);
    size_t R = 2 * (size_t)s->m.N, n;
    int32_t *num_pos = read_i32(s->file, "targets/num_pos", &n);
    assert_int_equal(n, 2);
    double *ref_ntp = read_f64(s->file, "targets/num_total_pos", &n);
    printf("  positives: ours %lld + %lld, torch %d + %d; num_total_pos %g / %g\n",
           (long long)P[0], (long long)P[1], num_pos[0], num_pos[1], ntp, ref_ntp[0]);
    assert_int_equal(P[0], num_pos[0]);
    assert_int_equal(P[1], num_pos[1]);
    assert_true(ntp == ref_ntp[0]);
    assert_true(P[0] > 0 && P[1] > 0);
    free(num_pos);
    free(ref_ntp);

    int32_t *lab = read_i32(s->file, "targets/labels", &n);
    assert_int_equal(n, R);
    int32_t *dir = read_i32(s->file, "targets/dir_targets", &n);
    float *lw = read_f32(s->file, "targets/label_weights", &n);
    float *bw = read_f32(s->file, "targets/bbox_weights", &n);
    float *dw = read_f32(s->file, "targets/dir_weights", &n);
    float *bt = read_f32(s->file, "targets/bbox_targets", &n);
    assert_int_equal(n, 7 * R);
    size_t bad = 0, ignored = 0;
    double max_bt = 0;
    for (size_t i = 0; i < R; i++) {
        int ok = s->t.labels[i] == lab[i] && s->t.label_weights[i] == lw[i] &&
                 s->t.bbox_weights[i] == bw[i] && s->t.dir_weights[i] == dw[i] &&
                 s->t.dir_targets[i] == dir[i];
        for (int j = 0; j < 7; j++) {
            double d = fabs((double)s->t.bbox_targets[7 * i + j] - (double)bt[7 * i + j]);
            if (!(d <= TOL_BBOX_T))
                ok = 0;
            if (d > max_bt)
                max_bt = d;
        }
        ignored += lw[i] == 0;
        if (!ok && bad++ < 10)
            printf("  row %zu: ours label %d w %g bbox_w %g dir %d/%g, torch label %d w %g "
                   "bbox_w %g dir %d/%g\n", i, s->t.labels[i], s->t.label_weights[i],
                   s->t.bbox_weights[i], s->t.dir_targets[i], s->t.dir_weights[i], lab[i],
                   lw[i], bw[i], dir[i], dw[i]);
    }
    printf("  targets: %zu rows (%zu ignored), %zu differ; encoded boxes max|diff| %.3g "
           "(tolerance %.0e)\n", R, ignored, bad, max_bt, TOL_BBOX_T);
    assert_int_equal(bad, 0);
    free(lab); free(dir); free(lw); free(bw); free(dw); free(bt);
}

static void test_losses_and_gradients(void **pstate)
{
    state *s = *pstate;
    reset(s);
    forward(s);
    int64_t P[2];
    double ntp = targets(s, P);
    l3d_ssn_loss L = loss_and_backward(s, ntp);
    size_t n;
    double *ref = read_f64(s->file, "loss/terms", &n);
    assert_int_equal(n, 4);
    double ours[4] = {L.cls, L.bbox, L.dir, L.total};
    const char *names[4] = {"cls", "bbox", "dir", "total"};
    int bad = 0;
    for (int i = 0; i < 4; i++) {
        double rel = fabs(ours[i] - ref[i]) / fabs(ref[i]);
        printf("  loss %-5s ours %.9g torch %.9g rel %.3g\n", names[i], ours[i], ref[i], rel);
        bad += !(rel <= TOL_LOSS);
    }
    free(ref);
    if (bad)
        fail_msg("%d loss terms beyond %.0e", bad, TOL_LOSS);

    /* every gradient, by name */
    worst w = {0};
    worst parts[4] = {{0}};
    const char *prefix[4] = {"voxel_encoder.", "backbone.", "neck.", "bbox_head."};
    for (int i = 0; i < s->m.P.layout.n; i++) {
        const l3d_tensor_info *ti = &s->m.P.layout.t[i];
        char path[256];
        snprintf(path, sizeof path, "grads/%s", ti->name);
        float *g = read_f32(s->file, path, &n);
        assert_int_equal(n, ti->numel);
        double rel = compare(&w, ti->name, s->m.P.grad + ti->offset, g, n, TOL_GRAD);
        for (int p = 0; p < 4; p++)
            if (!strncmp(ti->name, prefix[p], strlen(prefix[p]))) {
                worst *q = &parts[p];
                q->tensors++;
                if (rel >= q->rel || q->tensors == 1) {
                    q->rel = rel;
                    snprintf(q->name, sizeof q->name, "%s", ti->name);
                }
            }
        free(g);
    }
    for (int p = 0; p < 4; p++)
        printf("  grads %-14s %2d tensors, worst %.3g (%s)\n", prefix[p], parts[p].tensors,
               parts[p].rel, parts[p].name);
    report("gradients", &w, TOL_GRAD);
}

static void test_bn_running_stats(void **pstate)
{
    state *s = *pstate;
    reset(s);
    forward(s);
    worst w = {0};
    const l3d_table *t = &s->m.P.bn_layout;
    for (int i = 0; i < t->n; i++) {
        char path[256];
        snprintf(path, sizeof path, "bn_after/%s", t->t[i].name);
        size_t n;
        float *ref = read_f32(s->file, path, &n);
        assert_int_equal(n, t->t[i].numel);
        compare(&w, t->t[i].name, s->m.P.bn + t->t[i].offset, ref, n, TOL_BN);
        free(ref);
    }
    report("BN statistics", &w, TOL_BN);
}

/* 10 steps of the trainer's optimizer path (trainer/trainer.c l3d_trainer_step):
 * zero grad, forward, targets, loss, backward, clip, AdamW at l3d_lr_at.
 *
 * Tolerances. The loss before step k: 1e-4 relative at every step (measured
 * <= 6e-6 against torch fp32; both sides are within 1.4e-6 (ours) and 6.2e-6
 * (torch fp32) of the same PyTorch run in float64). The pre-clip gradient norm
 * is a diagnostic and drifts more: AdamW's first steps move every weight by
 * about +-lr whatever the size of its gradient, so fp32 rounding of a
 * gradient near zero flips the sign of some updates; the loss is stationary
 * in those directions (first order) but the gradient is not. Torch fp32
 * itself is 1.6e-4 off its float64 twin by step 9 (ours: 7e-5), and we
 * measured up to 2e-4 between the two fp32 runs, so the norm gets 1e-4 at
 * step 0 (nothing has drifted yet: the gradient check's tolerance) and 1e-3
 * after. A wrong bias correction, weight decay, lr or clipping changes the
 * step-1 loss by > 1e-3 and the step-2 norm by far more. */
static void test_training_steps(void **pstate)
{
    state *s = *pstate;
    reset(s);
    size_t n;
    double *ref_loss = read_f64(s->file, "train/loss", &n);
    int steps = (int)n;
    assert_true(steps >= 2);
    double *ref_lr = read_f64(s->file, "train/lr", &n);
    assert_int_equal(n, steps);
    double *ref_norm = read_f64(s->file, "train/grad_norm", &n);
    assert_int_equal(n, steps);

    const l3d_config *c = &s->cfg;
    l3d_adamw opt;
    l3d_adamw_init(&opt);
    opt.beta1 = c->beta1;
    opt.beta2 = c->beta2;
    opt.eps = c->adam_eps;
    opt.weight_decay = c->weight_decay;
    l3d_lr_schedule sched;
    l3d_lr_schedule_ssn(&sched, 1000);   /* milestones far beyond the steps run */
    sched.base_lr = c->lr;
    sched.warmup_start = c->warmup_ratio;
    sched.warmup_end = c->warmup_iters;
    sched.milestones[0] = c->milestones[0];
    sched.milestones[1] = c->milestones[1];
    sched.gamma = c->lr_gamma;

    double worst_loss = 0, worst_norm = 0;
    int bad = 0;
    for (int k = 0; k < steps; k++) {
        l3d_params_zero_grad(&s->m.P);
        forward(s);
        int64_t P[2];
        double ntp = targets(s, P);
        l3d_ssn_loss L = loss_and_backward(s, ntp);
        double norm = l3d_params_clip_grad_norm(&s->m.P, c->grad_clip);
        double lr = l3d_lr_at(&sched, k);
        l3d_adamw_step(&opt, lr, &s->m.P);
        l3d_model_refresh_weights(&s->m);
        double rl = fabs(L.total - ref_loss[k]) / fabs(ref_loss[k]);
        double rn = fabs(norm - ref_norm[k]) / fabs(ref_norm[k]);
        double rlr = fabs(lr - ref_lr[k]) / ref_lr[k];
        int b = !(rl <= TOL_TRAIN) || !(rn <= (k ? TOL_TRAIN_NORM : TOL_TRAIN)) || !(rlr <= 1e-12);
        printf("  step %2d: loss ours %.9g torch %.9g rel %.2g | grad norm %.9g / %.9g rel "
               "%.2g | lr %.6g%s\n", k, L.total, ref_loss[k], rl, norm, ref_norm[k], rn, lr,
               b ? "  FAIL" : "");
        bad += b;
        worst_loss = rl > worst_loss ? rl : worst_loss;
        worst_norm = rn > worst_norm ? rn : worst_norm;
    }
    printf("  training: worst loss rel %.3g (tolerance %.0e), worst grad-norm rel %.3g "
           "(tolerance %.0e, step 0 %.0e)\n", worst_loss, TOL_TRAIN, worst_norm, TOL_TRAIN_NORM,
           TOL_TRAIN);
    free(ref_loss);
    free(ref_lr);
    free(ref_norm);
    if (bad)
        fail_msg("%d of %d training steps beyond tolerance", bad, steps);
}

int main(void)
{
    if (access(FIXTURE, R_OK) != 0) {
        printf("skipped: %s not found\n", FIXTURE);
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weights_by_name),
        cmocka_unit_test(test_forward_outputs),
        cmocka_unit_test(test_targets),
        cmocka_unit_test(test_losses_and_gradients),
        cmocka_unit_test(test_bn_running_stats),
        cmocka_unit_test(test_training_steps),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
