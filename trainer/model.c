#include "trainer/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/half.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/pillar_decorate.h"
#include "kernels/cpu/relu.h"
#include "kernels/cpu/scatter.h"
#include "kernels/cpu/vfe_max.h"

/* Parameter names: MMDetection3D module paths. A unit "X" holds X.conv.weight
 * (or X.deconv.weight) and X.bn.*; SECOND's blocks.i is a flat Sequential
 * (conv 3j, bn 3j+1), which we name backbone.blocks.i.j; SECONDFPN's
 * deblocks.i (deconv 0, bn 1) is neck.deblocks.i. */

static int vfe_register(l3d_model *m, l3d_err *err)
{
    int in[2] = {10, 2 * m->cfg.vfe_channels[0]};
    for (int l = 0; l < 2; l++) {
        int64_t w[2] = {m->cfg.vfe_channels[l], in[l]}, c[1] = {m->cfg.vfe_channels[l]};
        snprintf(m->vfe_w[l], 96, "voxel_encoder.vfe_layers.%d.linear.weight", l);
        snprintf(m->vfe_g[l], 96, "voxel_encoder.vfe_layers.%d.norm.weight", l);
        snprintf(m->vfe_b[l], 96, "voxel_encoder.vfe_layers.%d.norm.bias", l);
        snprintf(m->vfe_rm[l], 96, "voxel_encoder.vfe_layers.%d.norm.running_mean", l);
        snprintf(m->vfe_rv[l], 96, "voxel_encoder.vfe_layers.%d.norm.running_var", l);
        int rc;
        if ((rc = l3d_params_add(&m->P, m->vfe_w[l], 2, w, err)) ||
            (rc = l3d_params_add(&m->P, m->vfe_g[l], 1, c, err)) ||
            (rc = l3d_params_add(&m->P, m->vfe_b[l], 1, c, err)) ||
            (rc = l3d_params_add_bn(&m->P, m->vfe_rm[l], 1, c, err)) ||
            (rc = l3d_params_add_bn(&m->P, m->vfe_rv[l], 1, c, err)))
            return rc;
    }
    return L3D_OK;
}

#define TRY(x) do { int rc_ = (x); if (rc_) return rc_; } while (0)

static int units_register(l3d_model *m, l3d_err *err)
{
    const l3d_config *c = &m->cfg;
    char name[80];
    int C = c->vfe_channels[1], H = m->ny, W = m->nx, B = m->B, u = 0;
    for (int i = 0; i < 3; i++) {
        m->n_blocks[i] = 1 + c->layer_nums[i];
        for (int j = 0; j < m->n_blocks[i]; j++, u++) {
            if (u >= L3D_MAX_BACKBONE)
                return l3d_fail(err, L3D_EUSAGE, "config: more than %d backbone convs", L3D_MAX_BACKBONE);
            snprintf(name, sizeof name, "backbone.blocks.%d.%d", i, j);
            int s = j == 0 ? c->layer_strides[i] : 1;
            TRY(l3d_unit_add(&m->backbone[u], &m->P, name, 0, B, C, H, W, c->out_channels[i], 3,
                             s, 1, c->bn_eps, c->bn_momentum, err));
            C = c->out_channels[i];
            H = m->backbone[u].Ho;
            W = m->backbone[u].Wo;
        }
    }
    /* neck: every stage back to the first stage's resolution */
    u = 0;
    for (int i = 0; i < 3; i++) {
        u += m->n_blocks[i];
        const l3d_unit *last = &m->backbone[u - 1];
        snprintf(name, sizeof name, "neck.deblocks.%d", i);
        TRY(l3d_unit_add(&m->neck[i], &m->P, name, 1, B, last->O, last->Ho, last->Wo,
                         c->neck_channels, c->upsample_strides[i], c->upsample_strides[i], 0,
                         c->bn_eps, c->bn_momentum, err));
    }
    int H1 = m->neck[0].Ho, W1 = m->neck[0].Wo, CF = 3 * c->neck_channels;
    /* heads: one BaseShapeHead per group (spec §6.2) */
    m->n_groups = m->layout.num_groups;
    for (int g = 0; g < m->n_groups; g++) {
        l3d_head_group *h = &m->head[g];
        const l3d_anchor_group *ag = &m->layout.group[g];
        int stride = H1 / ag->H;
        h->n_shared = stride == 1 ? 2 : 3;
        h->A = L3D_NUM_ROT * ag->num_classes;
        int Ci = CF, Hi = H1, Wi = W1;
        for (int j = 0; j < h->n_shared; j++) {
            snprintf(name, sizeof name, "bbox_head.heads.%d.shared_conv.%d", g, j);
            TRY(l3d_unit_add(&h->shared[j], &m->P, name, 0, B, Ci, Hi, Wi, 64, 3,
                             j == 0 ? stride : 1, 1, c->head_bn_eps, c->head_bn_momentum, err));
            Ci = 64;
            Hi = h->shared[j].Ho;
            Wi = h->shared[j].Wo;
        }
        int nc = m->layout.num_classes;
        snprintf(name, sizeof name, "bbox_head.heads.%d.conv_cls", g);
        TRY(l3d_unit_add(&h->cls, &m->P, name, 2, B, 64, Hi, Wi, h->A * nc, 1, 1, 0, 0, 0, err));
        snprintf(name, sizeof name, "bbox_head.heads.%d.conv_reg", g);
        TRY(l3d_unit_add(&h->reg, &m->P, name, 2, B, 64, Hi, Wi, h->A * 7, 1, 1, 0, 0, 0, err));
        snprintf(name, sizeof name, "bbox_head.heads.%d.conv_dir_cls", g);
        TRY(l3d_unit_add(&h->dir, &m->P, name, 2, B, 64, Hi, Wi, h->A * 2, 1, 1, 0, 0, 0, err));
        if (Hi != ag->H || Wi != ag->W)
            return l3d_fail(err, L3D_EINTERNAL, "head group %d: map %dx%d, anchors %dx%d", g, Hi,
                            Wi, ag->H, ag->W);
    }
    return L3D_OK;
}

/* Every unit, in forward order (for binding, freeing, initialising). */
static int all_units(l3d_model *m, l3d_unit **out)
{
    int n = 0, nb = m->n_blocks[0] + m->n_blocks[1] + m->n_blocks[2];
    for (int i = 0; i < nb; i++)
        out[n++] = &m->backbone[i];
    for (int i = 0; i < 3; i++)
        out[n++] = &m->neck[i];
    for (int g = 0; g < m->n_groups; g++) {
        for (int j = 0; j < m->head[g].n_shared; j++)
            out[n++] = &m->head[g].shared[j];
        out[n++] = &m->head[g].cls;
        out[n++] = &m->head[g].reg;
        out[n++] = &m->head[g].dir;
    }
    return n;
}

#define MAX_UNITS (L3D_MAX_BACKBONE + 3 + 4 * (L3D_HEAD_UNITS + 3))

static size_t unit_in(const l3d_unit *u) { return (size_t)u->B * u->C * u->H * u->W; }
static size_t unit_out(const l3d_unit *u) { return (size_t)u->B * u->O * u->Ho * u->Wo; }

int l3d_model_build(l3d_model *m, const l3d_config *cfg, int batch, int precision, l3d_err *err)
{
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    m->B = batch;
    m->precision = precision;
    TRY(l3d_config_validate(cfg, err));
    l3d_config_grid(cfg, &m->nx, &m->ny);
    float range[4] = {(float)cfg->point_cloud_range[0], (float)cfg->point_cloud_range[1],
                      (float)cfg->point_cloud_range[3], (float)cfg->point_cloud_range[4]};
    const char *why = NULL;
    if (l3d_head_layout_ssn(&m->layout, range, (float)cfg->voxel_size[0], &why))
        return l3d_fail(err, L3D_EUSAGE, "config: head layout: %s", why ? why : "invalid");
    m->N = m->layout.num_anchors;
    l3d_params_init(&m->P);
    TRY(vfe_register(m, err));
    TRY(units_register(m, err));
    TRY(l3d_params_alloc(&m->P, precision == L3D_FP16, err));
    l3d_unit *units[MAX_UNITS];
    int n = all_units(m, units);
    size_t biggest = (size_t)m->B * cfg->vfe_channels[1] * m->nx * m->ny;
    for (int i = 0; i < n; i++) {
        size_t ws = l3d_unit_bind(units[i], &m->P);
        if (ws == (size_t)-1)
            return l3d_fail(err, L3D_EINTERNAL, "out of memory for activations");
        if (ws > m->ws_bytes)
            m->ws_bytes = ws;
        if (unit_in(units[i]) > biggest) biggest = unit_in(units[i]);
        if (unit_out(units[i]) > biggest) biggest = unit_out(units[i]);
    }
    int64_t H1 = m->neck[0].Ho, W1 = m->neck[0].Wo;
    size_t nF = (size_t)m->B * 3 * cfg->neck_channels * H1 * W1;
    m->grad_floats = biggest > nF ? biggest : nF;
    m->max_pillars = (int64_t)m->B * cfg->max_voxels;
    size_t MP = (size_t)m->max_pillars * cfg->max_points;
    int c0 = cfg->vfe_channels[0], c1 = cfg->vfe_channels[1];
    /* the VFE's per-slot gradients use the same two buffers */
    size_t vfe_grad = MP * (size_t)(c1 > 2 * c0 ? c1 : 2 * c0);
    if (vfe_grad > m->grad_floats)
        m->grad_floats = vfe_grad;
    m->vfe_in = malloc(MP * 10 * sizeof(float));
    m->vfe_pre[0] = malloc(MP * c0 * sizeof(float));
    m->vfe_act[0] = malloc(MP * c0 * sizeof(float));
    m->vfe_cat = malloc(MP * 2 * c0 * sizeof(float));
    m->vfe_pre[1] = malloc(MP * c1 * sizeof(float));
    m->vfe_act[1] = malloc(MP * c1 * sizeof(float));
    m->vfe_out = malloc((size_t)m->max_pillars * c1 * sizeof(float));
    m->vfe_arg[0] = malloc((size_t)m->max_pillars * c0 * sizeof(int32_t));
    m->vfe_arg[1] = malloc((size_t)m->max_pillars * c1 * sizeof(int32_t));
    for (int l = 0; l < 2; l++) {
        m->vfe_mean[l] = malloc((size_t)cfg->vfe_channels[l] * sizeof(float));
        m->vfe_invstd[l] = malloc((size_t)cfg->vfe_channels[l] * sizeof(float));
    }
    m->canvas = malloc((size_t)m->B * c1 * m->nx * m->ny * sizeof(float));
    m->F = malloc(nF * sizeof(float));
    m->cls = malloc((size_t)m->B * m->N * m->layout.num_classes * sizeof(float));
    m->reg = malloc((size_t)m->B * m->N * 7 * sizeof(float));
    m->dir = malloc((size_t)m->B * m->N * 2 * sizeof(float));
    m->ws = m->ws_bytes ? malloc(m->ws_bytes) : NULL;
    m->wq = precision != L3D_FP32 ? malloc(m->P.layout.numel * sizeof(float)) : NULL;
    m->grad_a = malloc(m->grad_floats * sizeof(float));
    m->grad_b = malloc(m->grad_floats * sizeof(float));
    m->grad_c = malloc(m->grad_floats * sizeof(float));
    m->dF = malloc(nF * sizeof(float));
    m->dpillars = malloc((size_t)m->max_pillars * c1 * sizeof(float));
    for (int i = 0; i < 3; i++)
        m->dstage[i] = malloc(unit_in(&m->neck[i]) * sizeof(float));
    if (!m->vfe_in || !m->vfe_pre[0] || !m->vfe_act[0] || !m->vfe_cat || !m->vfe_pre[1] ||
        !m->vfe_act[1] || !m->vfe_out || !m->vfe_arg[0] || !m->vfe_arg[1] || !m->canvas ||
        !m->F || !m->cls || !m->reg || !m->dir || (m->ws_bytes && !m->ws) ||
        (precision != L3D_FP32 && !m->wq) || !m->grad_a || !m->grad_b || !m->grad_c ||
        !m->dF || !m->dpillars || !m->dstage[0] || !m->dstage[1] || !m->dstage[2])
        return l3d_fail(err, L3D_EINTERNAL, "out of memory for the model's activations");
    return L3D_OK;
}

void l3d_model_free(l3d_model *m)
{
    l3d_unit *units[MAX_UNITS];
    int n = all_units(m, units);
    for (int i = 0; i < n; i++)
        l3d_unit_free(units[i]);
    free(m->vfe_in); free(m->vfe_pre[0]); free(m->vfe_act[0]); free(m->vfe_cat);
    free(m->vfe_pre[1]); free(m->vfe_act[1]); free(m->vfe_out); free(m->vfe_arg[0]);
    free(m->vfe_arg[1]);
    for (int l = 0; l < 2; l++) {
        free(m->vfe_mean[l]);
        free(m->vfe_invstd[l]);
    }
    free(m->canvas); free(m->F); free(m->cls); free(m->reg); free(m->dir); free(m->ws);
    free(m->wq); free(m->grad_a); free(m->grad_b); free(m->grad_c);
    free(m->dF); free(m->dpillars);
    for (int i = 0; i < 3; i++)
        free(m->dstage[i]);
    l3d_params_free(&m->P);
    memset(m, 0, sizeof *m);
}

static double normal(void *rng) { return l3d_rng_normal(rng); }

void l3d_model_init(l3d_model *m, l3d_rng *rng)
{
    const l3d_config *c = &m->cfg;
    int in[2] = {10, 2 * c->vfe_channels[0]};
    for (int l = 0; l < 2; l++) {
        /* nn.Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
        float *w = l3d_params_get(&m->P, m->vfe_w[l]);
        double bound = 1.0 / sqrt((double)in[l]);
        for (int i = 0; i < c->vfe_channels[l] * in[l]; i++)
            w[i] = (float)((2 * l3d_rng_uniform(rng) - 1) * bound);
        float *g = l3d_params_get(&m->P, m->vfe_g[l]), *b = l3d_params_get(&m->P, m->vfe_b[l]);
        float *rv = l3d_params_bn(&m->P, m->vfe_rv[l]);
        for (int i = 0; i < c->vfe_channels[l]; i++) {
            g[i] = 1;
            b[i] = 0;
            rv[i] = 1;
        }
    }
    l3d_unit *units[MAX_UNITS];
    int n = all_units(m, units);
    const double prior = -log((1 - 0.01) / 0.01);   /* -4.59512 */
    for (int i = 0; i < n; i++) {
        l3d_unit *u = units[i];
        if (u->kind == 0)        /* Kaiming normal, fan_out, ReLU gain */
            l3d_unit_init(u, sqrt(2.0 / ((double)u->O * u->k * u->k)), 0, normal, rng);
        else if (u->kind == 1)   /* ConvTranspose2d: PyTorch's fan_out is in·k·k */
            l3d_unit_init(u, sqrt(2.0 / ((double)u->C * u->k * u->k)), 0, normal, rng);
        else
            l3d_unit_init(u, 0.01, strstr(u->name, "conv_reg") ? 0 : prior, normal, rng);
    }
    l3d_model_refresh_weights(m);
}

void l3d_model_refresh_weights(l3d_model *m)
{
    if (!m->wq)
        return;
    memcpy(m->wq, m->P.param, m->P.layout.numel * sizeof(float));
    l3d_round_fp16(m->wq, m->P.layout.numel);
}

/* The weights a matmul uses: the fp16-rounded copy in amp/fp16 modes. */
static const float *wq(const l3d_model *m, const float *w)
{
    return m->wq ? m->wq + (w - m->P.param) : w;
}

static void round_if(const l3d_model *m, float *x, size_t n)
{
    if (m->precision != L3D_FP32)
        l3d_round_fp16(x, n);
}

/* conv output [B][A·K][H][W] (channel a·K + k) <-> rows [B][N][K] at `off`
 * (row off + a·H·W + h·W + w), spec §6.3 */
static void rows_from_map(const float *map, int B, int A, int K, int H, int W, int64_t N,
                          int64_t off, float *rows, int to_rows)
{
    int64_t hw = (int64_t)H * W;
    for (int b = 0; b < B; b++)
        for (int a = 0; a < A; a++)
            for (int k = 0; k < K; k++) {
                const int64_t src = ((int64_t)b * A * K + (int64_t)a * K + k) * hw;
                float *r = rows + ((int64_t)b * N + off + a * hw) * K + k;
                if (to_rows)
                    for (int64_t p = 0; p < hw; p++)
                        r[p * K] = map[src + p];
                else
                    for (int64_t p = 0; p < hw; p++)
                        ((float *)map)[src + p] = r[p * K];
            }
}

static void vfe_forward(l3d_model *m, const l3d_pillars *in, int training)
{
    const l3d_config *c = &m->cfg;
    int P = c->max_points, c0 = c->vfe_channels[0], c1 = c->vfe_channels[1];
    int64_t n = in->m * P;
    float range[6], size[3], off[3];
    for (int a = 0; a < 6; a++) range[a] = (float)c->point_cloud_range[a];
    for (int a = 0; a < 3; a++) size[a] = (float)c->voxel_size[a];
    l3d_pillar_offsets(range, size, off);
    l3d_pillar_decorate_forward(in->voxels, in->num_points, in->coords, 4, in->m, P, size, off,
                                m->vfe_in);
    round_if(m, m->vfe_in, (size_t)n * 10);
    const float *x = m->vfe_in;
    int cin[2] = {10, 2 * c0}, cout[2] = {c0, c1};
    for (int l = 0; l < 2; l++) {
        const float *w = l3d_params_get(&m->P, m->vfe_w[l]);
        l3d_linear_forward(x, wq(m, w), n, cin[l], cout[l], m->vfe_pre[l]);
        round_if(m, m->vfe_pre[l], (size_t)n * cout[l]);
        const float *g = l3d_params_get(&m->P, m->vfe_g[l]), *b = l3d_params_get(&m->P, m->vfe_b[l]);
        float *rm = l3d_params_bn(&m->P, m->vfe_rm[l]), *rv = l3d_params_bn(&m->P, m->vfe_rv[l]);
        if (training)
            l3d_batchnorm_forward_train(m->vfe_pre[l], n, cout[l], 1, g, b, c->bn_eps,
                                        c->bn_momentum, rm, rv, m->vfe_act[l], m->vfe_mean[l],
                                        m->vfe_invstd[l]);
        else
            l3d_batchnorm_forward_eval(m->vfe_pre[l], n, cout[l], 1, g, b, c->bn_eps, rm, rv,
                                       m->vfe_act[l], m->vfe_mean[l], m->vfe_invstd[l]);
        l3d_relu_forward(m->vfe_act[l], n * cout[l], m->vfe_act[l]);
        round_if(m, m->vfe_act[l], (size_t)n * cout[l]);
        if (l == 0) {
            l3d_vfe_max_concat_forward(m->vfe_act[0], in->m, P, c0, m->vfe_cat, m->vfe_arg[0]);
            x = m->vfe_cat;
        } else {
            l3d_vfe_max_forward(m->vfe_act[1], in->m, P, c1, m->vfe_out, m->vfe_arg[1]);
        }
    }
}

int l3d_model_forward(l3d_model *m, const l3d_pillars *in, int training)
{
    if (in->m > m->max_pillars)
        return -1;
    m->m = in->m;
    m->coords = in->coords;
    vfe_forward(m, in, training);
    int c1 = m->cfg.vfe_channels[1];
    if (l3d_scatter_forward(m->vfe_out, in->coords, in->m, c1, m->B, m->ny, m->nx, m->canvas))
        return -1;
    const float *x = m->canvas;
    int u = 0;
    const float *stage_out[3];
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < m->n_blocks[i]; j++, u++) {
            l3d_unit_forward(&m->backbone[u], x, wq(m, m->backbone[u].w), training, m->precision, m->ws);
            x = m->backbone[u].out;
        }
        stage_out[i] = x;
    }
    /* neck branches into the channel slices of F */
    int64_t hw1 = (int64_t)m->neck[0].Ho * m->neck[0].Wo;
    int nc = m->cfg.neck_channels;
    for (int i = 0; i < 3; i++) {
        l3d_unit *n = &m->neck[i];
        l3d_unit_forward(n, stage_out[i], wq(m, n->w), training, m->precision, m->ws);
        for (int b = 0; b < m->B; b++)
            memcpy(m->F + ((int64_t)b * 3 * nc + (int64_t)i * nc) * hw1,
                   n->out + (int64_t)b * nc * hw1, (size_t)nc * hw1 * sizeof(float));
    }
    int K = m->layout.num_classes;
    for (int g = 0; g < m->n_groups; g++) {
        l3d_head_group *h = &m->head[g];
        const float *s = m->F;
        for (int j = 0; j < h->n_shared; j++) {
            l3d_unit_forward(&h->shared[j], s, wq(m, h->shared[j].w), training, m->precision, m->ws);
            s = h->shared[j].out;
        }
        l3d_unit *outs[3] = {&h->cls, &h->reg, &h->dir};
        float *rows[3] = {m->cls, m->reg, m->dir};
        int width[3] = {K, 7, 2};
        int64_t off = m->layout.group[g].offset;
        for (int o = 0; o < 3; o++) {
            l3d_unit_forward(outs[o], s, wq(m, outs[o]->w), training, m->precision, m->ws);
            rows_from_map(outs[o]->out, m->B, h->A, width[o], outs[o]->Ho, outs[o]->Wo, m->N, off,
                          rows[o], 1);
        }
    }
    return 0;
}

static void add_into(float *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] += src[i];
}

static void vfe_backward(l3d_model *m, const float *dpillars)
{
    const l3d_config *c = &m->cfg;
    int P = c->max_points, c0 = c->vfe_channels[0], c1 = c->vfe_channels[1];
    int64_t n = m->m * P;
    /* reuse the pre-activation buffers for gradients once they are consumed */
    float *d1 = m->grad_a, *d0 = m->grad_b;
    l3d_vfe_max_backward(dpillars, m->vfe_arg[1], m->m, P, c1, d1);
    l3d_relu_backward(d1, m->vfe_act[1], n * c1, d1);
    l3d_batchnorm_backward(d1, m->vfe_pre[1], n, c1, 1, l3d_params_get(&m->P, m->vfe_g[1]),
                           m->vfe_mean[1], m->vfe_invstd[1], 1, d1,
                           l3d_params_grad(&m->P, m->vfe_g[1]), l3d_params_grad(&m->P, m->vfe_b[1]));
    round_if(m, d1, (size_t)n * c1);
    float *dcat = m->vfe_pre[1];   /* [n][64]: the same size, no longer needed */
    l3d_linear_backward(d1, m->vfe_cat, wq(m, l3d_params_get(&m->P, m->vfe_w[1])), n, 2 * c0, c1,
                        dcat, l3d_params_grad(&m->P, m->vfe_w[1]));
    round_if(m, dcat, (size_t)n * 2 * c0);
    l3d_vfe_max_concat_backward(dcat, m->vfe_arg[0], m->m, P, c0, d0);
    l3d_relu_backward(d0, m->vfe_act[0], n * c0, d0);
    l3d_batchnorm_backward(d0, m->vfe_pre[0], n, c0, 1, l3d_params_get(&m->P, m->vfe_g[0]),
                           m->vfe_mean[0], m->vfe_invstd[0], 1, d0,
                           l3d_params_grad(&m->P, m->vfe_g[0]), l3d_params_grad(&m->P, m->vfe_b[0]));
    round_if(m, d0, (size_t)n * c0);
    l3d_linear_backward(d0, m->vfe_in, wq(m, l3d_params_get(&m->P, m->vfe_w[0])), n, 10, c0, NULL,
                        l3d_params_grad(&m->P, m->vfe_w[0]));
}

void l3d_model_backward(l3d_model *m, float *dcls, float *dreg, float *ddir)
{
    int K = m->layout.num_classes, nc = m->cfg.neck_channels;
    int64_t hw1 = (int64_t)m->neck[0].Ho * m->neck[0].Wo;
    size_t nF = (size_t)m->B * 3 * nc * hw1;
    float *dF = m->dF, *ga = m->grad_a, *gb = m->grad_b, *gc = m->grad_c;
    memset(dF, 0, nF * sizeof *dF);
    /* heads */
    for (int g = 0; g < m->n_groups; g++) {
        l3d_head_group *h = &m->head[g];
        l3d_unit *outs[3] = {&h->cls, &h->reg, &h->dir};
        float *rows[3] = {dcls, dreg, ddir};
        int width[3] = {K, 7, 2};
        int64_t off = m->layout.group[g].offset;
        const l3d_unit *last = &h->shared[h->n_shared - 1];
        size_t ns = unit_out(last);
        for (int o = 0; o < 3; o++) {
            rows_from_map(gb, m->B, h->A, width[o], outs[o]->Ho, outs[o]->Wo, m->N, off, rows[o], 0);
            l3d_unit_backward(outs[o], gb, last->out, wq(m, outs[o]->w), o ? gc : ga, m->precision, m->ws);
            if (o)
                add_into(ga, gc, ns);
        }
        for (int j = h->n_shared - 1; j >= 0; j--) {
            l3d_unit *u = &h->shared[j];
            const float *x = j ? h->shared[j - 1].out : m->F;
            l3d_unit_backward(u, ga, x, wq(m, u->w), j ? gb : gc, m->precision, m->ws);
            if (j) {
                float *t = ga; ga = gb; gb = t;
            } else {
                add_into(dF, gc, nF);
            }
        }
    }
    /* neck: each branch's slice of dF back to its stage output */
    int nb = m->n_blocks[0] + m->n_blocks[1] + m->n_blocks[2];
    int last_of[3] = {m->n_blocks[0] - 1, m->n_blocks[0] + m->n_blocks[1] - 1, nb - 1};
    float **dstage = m->dstage;
    for (int i = 0; i < 3; i++) {
        l3d_unit *n = &m->neck[i];
        for (int b = 0; b < m->B; b++)
            memcpy(ga + (int64_t)b * nc * hw1, dF + ((int64_t)b * 3 * nc + (int64_t)i * nc) * hw1,
                   (size_t)nc * hw1 * sizeof(float));
        l3d_unit_backward(n, ga, m->backbone[last_of[i]].out, wq(m, n->w), dstage[i], m->precision, m->ws);
    }
    /* backbone, last stage first; a stage's input gradient adds to the previous stage's */
    float *dcanvas = m->grad_b;
    for (int i = 2; i >= 0; i--) {
        float *d = dstage[i];
        for (int u = last_of[i]; u > last_of[i] - m->n_blocks[i]; u--) {
            l3d_unit *U = &m->backbone[u];
            const float *x = u ? m->backbone[u - 1].out : m->canvas;
            float *dx = u == 0 ? dcanvas : gc;
            l3d_unit_backward(U, d, x, wq(m, U->w), dx, m->precision, m->ws);
            if (u == 0)
                break;
            if (u == last_of[i] - m->n_blocks[i] + 1)   /* first unit of stage i > 0 */
                add_into(dstage[i - 1], gc, unit_in(U));
            else
                memcpy(d, gc, unit_in(U) * sizeof(float));
        }
    }
    /* scatter and VFE */
    l3d_scatter_backward(dcanvas, m->coords, m->m, m->cfg.vfe_channels[1], m->B, m->ny, m->nx,
                         m->dpillars);
    vfe_backward(m, m->dpillars);
}
