#include "trainer/layers.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/deconv2d.h"
#include "kernels/cpu/half.h"
#include "kernels/cpu/relu.h"

int l3d_unit_add(l3d_unit *u, l3d_params *P, const char *name, int kind, int B, int C, int H,
                 int W, int O, int k, int s, int p, double eps, double momentum, l3d_err *err)
{
    memset(u, 0, sizeof *u);
    snprintf(u->name, sizeof u->name, "%s", name);
    u->kind = kind;
    u->B = B; u->C = C; u->H = H; u->W = W; u->O = O; u->k = k; u->s = s; u->p = p;
    u->eps = eps;
    u->momentum = momentum;
    if (kind == 1) {
        u->Ho = H * s;
        u->Wo = W * s;
    } else {
        u->Ho = l3d_conv2d_out_size(H, k, s, p);
        u->Wo = l3d_conv2d_out_size(W, k, s, p);
    }
    int64_t wshape[4] = {kind == 1 ? C : O, kind == 1 ? O : C, k, k}, vec[1] = {O};
    /* names as MMDetection3D's modules (see trainer/model.c) */
    const char *wsuf = kind == 0 ? "conv.weight" : kind == 1 ? "deconv.weight" : "weight";
    snprintf(u->w_name, sizeof u->w_name, "%s.%s", name, wsuf);
    int rc = l3d_params_add(P, u->w_name, 4, wshape, err);
    if (rc)
        return rc;
    if (kind == 2) {
        snprintf(u->b_name, sizeof u->b_name, "%s.bias", name);
        return l3d_params_add(P, u->b_name, 1, vec, err);
    }
    snprintf(u->g_name, sizeof u->g_name, "%s.bn.weight", name);
    snprintf(u->beta_name, sizeof u->beta_name, "%s.bn.bias", name);
    snprintf(u->rm_name, sizeof u->rm_name, "%s.bn.running_mean", name);
    snprintf(u->rv_name, sizeof u->rv_name, "%s.bn.running_var", name);
    if ((rc = l3d_params_add(P, u->g_name, 1, vec, err)) ||
        (rc = l3d_params_add(P, u->beta_name, 1, vec, err)) ||
        (rc = l3d_params_add_bn(P, u->rm_name, 1, vec, err)) ||
        (rc = l3d_params_add_bn(P, u->rv_name, 1, vec, err)))
        return rc;
    return L3D_OK;
}

static size_t act_count(const l3d_unit *u) { return (size_t)u->B * u->O * u->Ho * u->Wo; }

size_t l3d_unit_bind(l3d_unit *u, const l3d_params *P)
{
    u->w = l3d_params_get(P, u->w_name);
    u->dw = l3d_params_grad(P, u->w_name);
    if (u->kind == 2) {
        u->bias = l3d_params_get(P, u->b_name);
        u->dbias = l3d_params_grad(P, u->b_name);
    } else {
        u->gamma = l3d_params_get(P, u->g_name);
        u->dgamma = l3d_params_grad(P, u->g_name);
        u->beta = l3d_params_get(P, u->beta_name);
        u->dbeta = l3d_params_grad(P, u->beta_name);
        u->rmean = l3d_params_bn(P, u->rm_name);
        u->rvar = l3d_params_bn(P, u->rv_name);
    }
    u->pre = u->kind == 2 ? NULL : malloc(act_count(u) * sizeof(float));
    u->out = malloc(act_count(u) * sizeof(float));
    u->save_mean = malloc((size_t)u->O * sizeof(float));
    u->save_invstd = malloc((size_t)u->O * sizeof(float));
    if ((u->kind != 2 && !u->pre) || !u->out || !u->save_mean || !u->save_invstd)
        return (size_t)-1;
    if (u->kind == 1)
        return l3d_deconv2d_workspace_bytes(u->C, u->O, u->H, u->W, u->s);
    l3d_conv2d_dims d = {u->B, u->C, u->H, u->W, u->O, u->k, u->s, u->p};
    return l3d_conv2d_workspace_bytes(&d);
}

void l3d_unit_free(l3d_unit *u)
{
    free(u->pre);
    free(u->out);
    free(u->save_mean);
    free(u->save_invstd);
    u->pre = u->out = u->save_mean = u->save_invstd = NULL;
}

static void conv_fwd(const l3d_unit *u, const float *x, const float *wq, float *y, void *ws)
{
    if (u->kind == 1) {
        l3d_deconv2d_forward(y, x, wq, u->B, u->C, u->O, u->H, u->W, u->s, ws);
    } else {
        l3d_conv2d_dims d = {u->B, u->C, u->H, u->W, u->O, u->k, u->s, u->p};
        l3d_conv2d_forward(y, x, wq, u->bias, &d, ws);
    }
}

void l3d_unit_forward(l3d_unit *u, const float *x, const float *wq, int training, int precision,
                      void *ws)
{
    size_t n = act_count(u);
    int64_t hw = (int64_t)u->Ho * u->Wo;
    if (u->kind == 2) {
        conv_fwd(u, x, wq, u->out, ws);
        if (precision != L3D_FP32)
            l3d_round_fp16(u->out, n);   /* an fp16 matmul result */
        return;
    }
    conv_fwd(u, x, wq, u->pre, ws);
    if (precision != L3D_FP32)
        l3d_round_fp16(u->pre, n);
    /* BN and its statistics in fp32 */
    if (training)
        l3d_batchnorm_forward_train(u->pre, u->B, u->O, hw, u->gamma, u->beta, u->eps,
                                    u->momentum, u->rmean, u->rvar, u->out, u->save_mean,
                                    u->save_invstd);
    else
        l3d_batchnorm_forward_eval(u->pre, u->B, u->O, hw, u->gamma, u->beta, u->eps, u->rmean,
                                   u->rvar, u->out, u->save_mean, u->save_invstd);
    l3d_relu_forward(u->out, (int64_t)n, u->out);
    if (precision != L3D_FP32)
        l3d_round_fp16(u->out, n);   /* stored for the next matmul as fp16 */
}

void l3d_unit_backward(l3d_unit *u, float *dout, const float *x, const float *wq, float *dx,
                       int precision, void *ws)
{
    size_t n = act_count(u);
    int64_t hw = (int64_t)u->Ho * u->Wo;
    if (u->kind != 2) {
        l3d_relu_backward(dout, u->out, (int64_t)n, dout);
        l3d_batchnorm_backward(dout, u->pre, u->B, u->O, hw, u->gamma, u->save_mean,
                               u->save_invstd, 1, dout, u->dgamma, u->dbeta);
    }
    if (precision != L3D_FP32)
        l3d_round_fp16(dout, n);   /* the matmul's gradient input is fp16 */
    if (u->kind == 1) {
        l3d_deconv2d_backward(dx, u->dw, dout, x, wq, u->B, u->C, u->O, u->H, u->W, u->s, ws);
    } else {
        l3d_conv2d_dims d = {u->B, u->C, u->H, u->W, u->O, u->k, u->s, u->p};
        l3d_conv2d_backward(dx, u->dw, u->dbias, dout, x, wq, &d, ws);
    }
    if (dx && precision != L3D_FP32)
        l3d_round_fp16(dx, (size_t)u->B * u->C * u->H * u->W);
}

void l3d_unit_init(l3d_unit *u, double std, double bias, l3d_normal_fn normal, void *rng)
{
    size_t nw = (size_t)u->C * u->O * u->k * u->k;
    for (size_t i = 0; i < nw; i++)
        u->w[i] = (float)(std * normal(rng));
    if (u->kind == 2) {
        for (int o = 0; o < u->O; o++)
            u->bias[o] = (float)bias;
        return;
    }
    for (int o = 0; o < u->O; o++) {
        u->gamma[o] = 1;
        u->beta[o] = 0;
        u->rmean[o] = 0;
        u->rvar[o] = 1;
    }
}
