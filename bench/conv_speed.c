/* conv_speed: GFLOP/s of the CPU conv2d / deconv2d kernels on SSN shapes, B = 1.
 *
 *   build/bench/conv_speed [--size N] [--repeat R] [--threads T]
 *
 * Shapes (N = output side, 200 by default, a quarter of the SSN canvas's 800):
 *   conv 64->64 3x3 s2 p1   2N x 2N -> N x N   (backbone stage 1, first conv)
 *   conv 64->64 3x3 s1 p1   N x N   -> N x N   (backbone stage 1, other convs)
 *   conv 384->64 3x3 s1 p1  N x N   -> N x N   (head groups 1-2, first shared conv)
 *   conv 64->36 1x1 + bias  N x N              (head conv_cls, the no-im2col path)
 *   deconv 128->128 s2      N/2     -> N       (neck branch 1)
 * Each is run once untimed, then R times (default 5) forward and backward (dx and dw);
 * the best time of each is printed with its GFLOP/s, FLOPs = 2 x MACs: conv forward
 * 2·O·C·k²·Ho·Wo, backward twice that (dx and dw); deconv forward 2·Cin·Cout·s²·H·W.
 * T sets the OpenBLAS threads (default: OpenBLAS's own choice); im2col, col2im and the
 * pixel shuffles are single-threaded. Exit status 2 on usage, 3 when memory runs out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/deconv2d.h"
#include "kernels/cpu/threads.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static float *filled(size_t n)
{
    float *v = malloc(n * sizeof(float));
    if (!v) {
        fprintf(stderr, "conv_speed: out of memory (%zu floats)\n", n);
        exit(3);
    }
    for (size_t i = 0; i < n; i++)   /* small values, no denormals, no overflow */
        v[i] = (float)((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
    return v;
}

typedef struct shape {
    const char *name;
    int deconv;                /* 0: conv2d; 1: deconv2d (k = stride) */
    l3d_conv2d_dims d;         /* for deconv: C = C_in, O = C_out, k = stride */
} shape;

static void report(const shape *sh, double macs, double tf, double tb)
{
    printf("%-28s fwd %8.2f ms %6.1f GFLOP/s   bwd %8.2f ms %6.1f GFLOP/s   "
           "fwd+bwd %6.1f GFLOP/s\n",
           sh->name, 1e3 * tf, 2 * macs / tf * 1e-9, 1e3 * tb, 4 * macs / tb * 1e-9,
           6 * macs / (tf + tb) * 1e-9);
}

static void run(const shape *sh, int repeat)
{
    const l3d_conv2d_dims *d = &sh->d;
    int ho, wo;
    size_t nw = (size_t)d->O * d->C * d->k * d->k, wsb;
    if (sh->deconv) {
        ho = d->H * d->k, wo = d->W * d->k;
        wsb = l3d_deconv2d_workspace_bytes(d->C, d->O, d->H, d->W, d->k);
    } else {
        ho = l3d_conv2d_out_size(d->H, d->k, d->stride, d->pad);
        wo = l3d_conv2d_out_size(d->W, d->k, d->stride, d->pad);
        wsb = l3d_conv2d_workspace_bytes(d);
    }
    size_t nx = (size_t)d->B * d->C * d->H * d->W, ny = (size_t)d->B * d->O * ho * wo;
    float *x = filled(nx), *w = filled(nw), *bias = filled(d->O), *y = filled(ny);
    float *dy = filled(ny), *dx = filled(nx), *dw = filled(nw), *db = filled(d->O);
    void *ws = wsb ? malloc(wsb) : NULL;
    if (wsb && !ws) {
        fprintf(stderr, "conv_speed: out of memory (%zu workspace bytes)\n", wsb);
        exit(3);
    }
    int with_bias = !sh->deconv && d->k == 1;
    double tf = 1e30, tb = 1e30;
    for (int r = 0; r <= repeat; r++) {   /* r = 0 is the untimed warm-up */
        double t0 = now();
        if (sh->deconv)
            l3d_deconv2d_forward(y, x, w, d->B, d->C, d->O, d->H, d->W, d->k, ws);
        else
            l3d_conv2d_forward(y, x, w, with_bias ? bias : NULL, d, ws);
        double t1 = now();
        if (sh->deconv)
            l3d_deconv2d_backward(dx, dw, dy, x, w, d->B, d->C, d->O, d->H, d->W, d->k, ws);
        else
            l3d_conv2d_backward(dx, dw, with_bias ? db : NULL, dy, x, w, d, ws);
        double t2 = now();
        if (r > 0) {
            tf = t1 - t0 < tf ? t1 - t0 : tf;
            tb = t2 - t1 < tb ? t2 - t1 : tb;
        }
    }
    double macs = (double)d->B * d->O * d->C * d->k * d->k *
                  (sh->deconv ? (double)d->H * d->W : (double)ho * wo);
    report(sh, macs, tf, tb);
    free(x), free(w), free(bias), free(y), free(dy), free(dx), free(dw), free(db), free(ws);
}

int main(int argc, char **argv)
{
    int n = 200, repeat = 5, threads = 0;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--size"))
            n = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--repeat"))
            repeat = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--threads"))
            threads = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: conv_speed [--size N] [--repeat R] [--threads T]\n");
            return 2;
        }
    }
    if (n < 2 || n % 2 || repeat < 1) {
        fprintf(stderr, "conv_speed: --size must be even and >= 2, --repeat >= 1\n");
        return 2;
    }
    l3d_set_threads(threads);
    /* The load average is printed because wall times on a shared machine mean little
     * without it. */
    double load[1] = {-1.0};
    getloadavg(load, 1);
    printf("conv_speed: B=1, output %dx%d, %d OpenBLAS thread(s), best of %d, load average %.2f\n",
           n, n, l3d_get_threads(), repeat, load[0]);
    const shape shapes[] = {
        {"conv 64->64 k3 s2 (2N->N)", 0, {1, 64, 2 * n, 2 * n, 64, 3, 2, 1}},
        {"conv 64->64 k3 s1", 0, {1, 64, n, n, 64, 3, 1, 1}},
        {"conv 384->64 k3 s1", 0, {1, 384, n, n, 64, 3, 1, 1}},
        {"conv 64->36 k1 s1 +bias", 0, {1, 64, n, n, 36, 1, 1, 0}},
        {"deconv 128->128 s2 (N/2->N)", 1, {1, 128, n / 2, n / 2, 128, 2, 2, 0}},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        run(&shapes[i], repeat);
    return 0;
}
