/* kernels/cpu/conv2d and deconv2d against plain double-precision loops written here
 * (no BLAS), on random data over B 1-2, channels {1, 3, 16, 33}, H/W {1, 2, 5, 8, 13},
 * k 1 and 3, stride 1 and 2, pad 0 and 1, with and without bias, deconv s = 1, 2, 4.
 * Outputs and dx start as NaN (they must be assigned), dw and db start random (they
 * must accumulate). Tolerance: |got - ref| <= 1e-5 · (1 + Σ|terms|), Σ|terms| being the
 * sum of the magnitudes of the products the reference added (with the initial value
 * for accumulated grads): fp32 GEMMs over up to a few thousand random-sign terms stay
 * two orders of magnitude inside it. Finite differences of the kernels' own forward
 * (the ops are linear in x and in w, so central differences are exact up to rounding)
 * check dx, dw, db on tiny sizes. Then: im2col bands, thread counts, bad dims. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/deconv2d.h"
#include "kernels/cpu/threads.h"

#define TOL 1e-5

static const int SIZES_C[] = {1, 3, 16, 33};
static const int SIZES_HW[] = {1, 2, 5, 8, 13};
static char what[160];   /* the case being run, for failure messages */

static uint64_t rng = 0x9e3779b97f4a7c15u;
static float urand(void)   /* splitmix64 -> uniform in [-1, 1) */
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    z ^= z >> 31;
    return (float)((double)(z >> 40) / (double)(1u << 23) - 1.0);
}

static float *randv(size_t n)
{
    float *v = malloc((n ? n : 1) * sizeof(float));
    assert_non_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = urand();
    return v;
}

static float *nanv(size_t n)
{
    float *v = malloc(n * sizeof(float));
    assert_non_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = NAN;
    return v;
}

static double *zerod(size_t n) { double *v = calloc(n, sizeof(double)); assert_non_null(v); return v; }

static void expect_close(const char *name, const float *got, const double *ref,
                         const double *mag, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabs(got[i] - ref[i]) <= TOL * (1.0 + mag[i])))
            fail_msg("%s: %s[%zu] = %.9g, reference %.9g (Σ|terms| %.3g)", what, name, i,
                     (double)got[i], ref[i], mag[i]);
}

/* ---- conv2d ------------------------------------------------------------ */

typedef struct conv_ref {
    double *y, *ym, *dx, *dxm, *dw, *dwm, *db, *dbm;
} conv_ref;

/* Every (b, o, i, j, c, u, v) term once, spread to y, dx and dw with its magnitude. */
static void ref_conv(conv_ref *r, const l3d_conv2d_dims *d, int ho, int wo, const float *x,
                     const float *w, const float *bias, const float *dy, const float *dw0,
                     const float *db0)
{
    const int C = d->C, H = d->H, W = d->W, O = d->O, k = d->k;
    for (int i = 0; i < O * C * k * k; i++)
        r->dw[i] = dw0[i], r->dwm[i] = fabs(dw0[i]);
    for (int o = 0; o < O; o++)
        r->db[o] = db0[o], r->dbm[o] = fabs(db0[o]);
    for (int b = 0; b < d->B; b++)
        for (int o = 0; o < O; o++)
            for (int i = 0; i < ho; i++)
                for (int j = 0; j < wo; j++) {
                    size_t yi = (((size_t)b * O + o) * ho + i) * wo + j;
                    double g = dy[yi], acc = bias ? bias[o] : 0.0;
                    r->ym[yi] = fabs(acc);
                    r->db[o] += g, r->dbm[o] += fabs(g);
                    for (int c = 0; c < C; c++)
                        for (int u = 0; u < k; u++)
                            for (int v = 0; v < k; v++) {
                                int h = i * d->stride - d->pad + u, q = j * d->stride - d->pad + v;
                                if (h < 0 || h >= H || q < 0 || q >= W)
                                    continue;
                                size_t xi = (((size_t)b * C + c) * H + h) * W + q;
                                size_t wi = (((size_t)o * C + c) * k + u) * k + v;
                                double t = (double)x[xi] * w[wi];
                                acc += t, r->ym[yi] += fabs(t);
                                r->dx[xi] += g * w[wi], r->dxm[xi] += fabs(g * w[wi]);
                                r->dw[wi] += g * x[xi], r->dwm[wi] += fabs(g * x[xi]);
                            }
                    r->y[yi] = acc;
                }
}

static void run_conv(int B, int C, int H, int W, int O, int k, int s, int p, int has_bias)
{
    l3d_conv2d_dims d = {B, C, H, W, O, k, s, p};
    snprintf(what, sizeof what, "conv B%d C%d H%d W%d O%d k%d s%d p%d bias%d", B, C, H, W, O,
             k, s, p, has_bias);
    assert_int_equal(l3d_conv2d_check(&d, NULL), 0);
    const int ho = (H + 2 * p - k) / s + 1, wo = (W + 2 * p - k) / s + 1;   /* H + 2p >= k here */
    const size_t nx = (size_t)B * C * H * W, ny = (size_t)B * O * ho * wo;
    const size_t nw = (size_t)O * C * k * k;
    float *x = randv(nx), *w = randv(nw), *bias = has_bias ? randv(O) : NULL;
    float *dy = randv(ny), *dw = randv(nw), *db = randv(O), *y = nanv(ny), *dx = nanv(nx);
    float *dw0 = malloc(nw * sizeof(float)), *db0 = malloc(O * sizeof(float));
    memcpy(dw0, dw, nw * sizeof(float));
    memcpy(db0, db, O * sizeof(float));
    size_t wsb = l3d_conv2d_workspace_bytes(&d);
    void *ws = wsb ? malloc(wsb) : NULL;   /* exactly the size asked for: ASAN sees overruns */

    l3d_conv2d_forward(y, x, w, bias, &d, ws);
    l3d_conv2d_backward(dx, dw, has_bias ? db : NULL, dy, x, w, &d, ws);

    conv_ref r = {zerod(ny), zerod(ny), zerod(nx), zerod(nx), zerod(nw), zerod(nw), zerod(O),
                  zerod(O)};
    ref_conv(&r, &d, ho, wo, x, w, bias, dy, dw0, db0);
    expect_close("y", y, r.y, r.ym, ny);
    expect_close("dx", dx, r.dx, r.dxm, nx);
    expect_close("dw", dw, r.dw, r.dwm, nw);
    if (has_bias)
        expect_close("db", db, r.db, r.dbm, O);
    else
        assert_memory_equal(db, db0, O * sizeof(float));   /* untouched without bias */

    double *all[] = {r.y, r.ym, r.dx, r.dxm, r.dw, r.dwm, r.db, r.dbm};
    for (size_t i = 0; i < 8; i++)
        free(all[i]);
    void *mine[] = {x, w, bias, dy, dw, db, y, dx, dw0, db0, ws};
    for (size_t i = 0; i < 11; i++)
        free(mine[i]);
}

static void test_conv_sizes(void **state)
{
    (void)state;
    int idx = 0;
    for (int ci = 0; ci < 4; ci++)
        for (int oi = 0; oi < 4; oi++)
            for (int kk = 0; kk < 4; kk++)
                for (int rep = 0; rep < 2; rep++, idx++) {
                    int k = kk < 2 ? 1 : 3, s = 1 + kk % 2;
                    int H = SIZES_HW[idx % 5], W = SIZES_HW[(idx / 5) % 5];
                    int p = (idx / 3) % 2 ? k / 2 : 1 - k / 2;   /* k1: p 0/1; k3: p 1/0 */
                    if (H + 2 * p < k || W + 2 * p < k)
                        p = 1;
                    run_conv(1 + idx % 2, SIZES_C[ci], H, W, SIZES_C[oi], k, s, p, (idx / 2) % 2);
                }
    /* the SSN shapes, scaled down: 3x3 s2 on even and odd sizes, 1x1 heads with bias */
    run_conv(2, 16, 13, 8, 33, 3, 2, 1, 0);
    run_conv(1, 16, 8, 8, 16, 3, 1, 1, 0);
    run_conv(2, 33, 5, 13, 3, 1, 1, 0, 1);
}

/* Two and a half bands of output rows, stride 1 and 2: band offsets into y, dy and dx. */
static void test_conv_bands(void **state)
{
    (void)state;
    for (int s = 1; s <= 2; s++) {
        const int C = 3, k = 3, wo = 16, W = s * wo;   /* pad 1: Wo = W / s */
        int rows = L3D_CONV2D_BAND_FLOATS / (C * k * k * wo);
        int H = s * (2 * rows + rows / 2);
        l3d_conv2d_dims d = {1, C, H, W, 2, k, s, 1};
        int ho = l3d_conv2d_out_size(H, k, s, 1);
        assert_int_equal(l3d_conv2d_band_rows(&d), rows);
        assert_true(ho > 2 * rows && ho % rows != 0);
        run_conv(1, C, H, W, 2, k, s, 1, 1);
    }
}

/* L = Σ g·y in double; dL/dx_i, dL/dw_i, dL/db_i by central differences of the
 * kernel's forward against its backward with dy = g. */
static double conv_loss(const float *x, const float *w, const float *bias, const float *g,
                        const l3d_conv2d_dims *d, float *y, void *ws, size_t ny)
{
    l3d_conv2d_forward(y, x, w, bias, d, ws);
    double l = 0.0;
    for (size_t i = 0; i < ny; i++)
        l += (double)g[i] * y[i];
    return l;
}

static void fd_check(const char *name, float *param, size_t n, const float *grad,
                     double (*loss)(void *), void *ctx)
{
    const float h = 0.5f;
    for (size_t i = 0; i < n; i++) {
        float keep = param[i];
        param[i] = keep + h;
        double lp = loss(ctx);
        param[i] = keep - h;
        double lm = loss(ctx);
        param[i] = keep;
        double fd = (lp - lm) / (2.0 * (double)h);
        if (!(fabs(fd - grad[i]) <= 1e-4 * (1.0 + fabs(fd))))
            fail_msg("%s: d%s[%zu] = %.9g, finite difference %.9g", what, name, i,
                     (double)grad[i], fd);
    }
}

typedef struct fd_ctx {
    float *x, *w, *bias, *g, *y;
    void *ws;
    size_t ny;
    l3d_conv2d_dims d;
    int deconv;
} fd_ctx;

static double fd_loss(void *p)
{
    fd_ctx *c = p;
    if (!c->deconv)
        return conv_loss(c->x, c->w, c->bias, c->g, &c->d, c->y, c->ws, c->ny);
    l3d_deconv2d_forward(c->y, c->x, c->w, c->d.B, c->d.C, c->d.O, c->d.H, c->d.W, c->d.k,
                         c->ws);
    double l = 0.0;
    for (size_t i = 0; i < c->ny; i++)
        l += (double)c->g[i] * c->y[i];
    return l;
}

/* deconv: d.C = C_in, d.O = C_out, d.k = stride (= kernel) */
static void run_fd(l3d_conv2d_dims d, int deconv)
{
    snprintf(what, sizeof what, "%s finite differences B%d C%d H%d W%d O%d k%d s%d p%d",
             deconv ? "deconv" : "conv", d.B, d.C, d.H, d.W, d.O, d.k, d.stride, d.pad);
    int ho = deconv ? d.H * d.k : l3d_conv2d_out_size(d.H, d.k, d.stride, d.pad);
    int wo = deconv ? d.W * d.k : l3d_conv2d_out_size(d.W, d.k, d.stride, d.pad);
    size_t nx = (size_t)d.B * d.C * d.H * d.W, nw = (size_t)d.O * d.C * d.k * d.k;
    fd_ctx c = {randv(nx), randv(nw), deconv ? NULL : randv(d.O), NULL, NULL, NULL,
                (size_t)d.B * d.O * ho * wo, d, deconv};
    c.g = randv(c.ny), c.y = nanv(c.ny);
    size_t wsb = deconv ? l3d_deconv2d_workspace_bytes(d.C, d.O, d.H, d.W, d.k)
                        : l3d_conv2d_workspace_bytes(&d);
    c.ws = wsb ? malloc(wsb) : NULL;
    float *dx = nanv(nx), *dw = calloc(nw, sizeof(float)), *db = calloc(d.O, sizeof(float));
    if (deconv)
        l3d_deconv2d_backward(dx, dw, c.g, c.x, c.w, d.B, d.C, d.O, d.H, d.W, d.k, c.ws);
    else
        l3d_conv2d_backward(dx, dw, db, c.g, c.x, c.w, &d, c.ws);
    fd_check("x", c.x, nx, dx, fd_loss, &c);
    fd_check("w", c.w, nw, dw, fd_loss, &c);
    if (!deconv)
        fd_check("bias", c.bias, d.O, db, fd_loss, &c);
    void *mine[] = {c.x, c.w, c.bias, c.g, c.y, c.ws, dx, dw, db};
    for (size_t i = 0; i < 9; i++)
        free(mine[i]);
}

static void test_finite_differences(void **state)
{
    (void)state;
    run_fd((l3d_conv2d_dims){2, 2, 5, 4, 3, 3, 1, 1}, 0);
    run_fd((l3d_conv2d_dims){1, 3, 5, 6, 2, 3, 2, 1}, 0);
    run_fd((l3d_conv2d_dims){2, 3, 3, 2, 2, 1, 1, 0}, 0);
    run_fd((l3d_conv2d_dims){1, 2, 4, 3, 2, 3, 1, 0}, 0);
    for (int s = 1; s <= 4; s *= 2)
        run_fd((l3d_conv2d_dims){2, 3, 2, 3, 2, s, s, 0}, 1);
}

/* ---- deconv2d ---------------------------------------------------------- */

static void run_deconv(int B, int Cin, int Cout, int H, int W, int s)
{
    snprintf(what, sizeof what, "deconv B%d Cin%d Cout%d H%d W%d s%d", B, Cin, Cout, H, W, s);
    assert_int_equal(l3d_deconv2d_check(B, Cin, Cout, H, W, s, NULL), 0);
    const int HO = H * s, WO = W * s;
    const size_t nx = (size_t)B * Cin * H * W, ny = (size_t)B * Cout * HO * WO;
    const size_t nw = (size_t)Cin * Cout * s * s;
    float *x = randv(nx), *w = randv(nw), *dy = randv(ny), *dw = randv(nw);
    float *y = nanv(ny), *dx = nanv(nx);
    double *ry = zerod(ny), *rym = zerod(ny), *rdx = zerod(nx), *rdxm = zerod(nx);
    double *rdw = zerod(nw), *rdwm = zerod(nw);
    for (size_t i = 0; i < nw; i++)
        rdw[i] = dw[i], rdwm[i] = fabs(dw[i]);
    size_t wsb = l3d_deconv2d_workspace_bytes(Cin, Cout, H, W, s);
    void *ws = wsb ? malloc(wsb) : NULL;

    l3d_deconv2d_forward(y, x, w, B, Cin, Cout, H, W, s, ws);
    l3d_deconv2d_backward(dx, dw, dy, x, w, B, Cin, Cout, H, W, s, ws);

    /* out[b][o][i][j] = Σ_c in[b][c][i/s][j/s] · W[c][o][i%s][j%s], term by term */
    for (int b = 0; b < B; b++)
        for (int o = 0; o < Cout; o++)
            for (int i = 0; i < HO; i++)
                for (int j = 0; j < WO; j++) {
                    size_t yi = (((size_t)b * Cout + o) * HO + i) * WO + j;
                    for (int c = 0; c < Cin; c++) {
                        size_t xi = (((size_t)b * Cin + c) * H + i / s) * W + j / s;
                        size_t wi = (((size_t)c * Cout + o) * s + i % s) * s + j % s;
                        double t = (double)x[xi] * w[wi], g = dy[yi];
                        ry[yi] += t, rym[yi] += fabs(t);
                        rdx[xi] += g * w[wi], rdxm[xi] += fabs(g * w[wi]);
                        rdw[wi] += g * x[xi], rdwm[wi] += fabs(g * x[xi]);
                    }
                }
    expect_close("y", y, ry, rym, ny);
    expect_close("dx", dx, rdx, rdxm, nx);
    expect_close("dw", dw, rdw, rdwm, nw);
    void *all[] = {x, w, dy, dw, y, dx, ry, rym, rdx, rdxm, rdw, rdwm, ws};
    for (size_t i = 0; i < 13; i++)
        free(all[i]);
}

static void test_deconv_sizes(void **state)
{
    (void)state;
    int idx = 0;
    for (int ci = 0; ci < 4; ci++)
        for (int oi = 0; oi < 4; oi++)
            for (int s = 1; s <= 4; s *= 2)
                for (int rep = 0; rep < 2; rep++, idx++)
                    run_deconv(1 + idx % 2, SIZES_C[ci], SIZES_C[oi], SIZES_HW[idx % 5],
                               SIZES_HW[(idx / 5) % 5], s);
}

/* ---- determinism, threads, bad dims ------------------------------------ */

/* Same call twice: the same bits. 1 and 2 OpenBLAS threads: equal within the GEMM's
 * fp32 rounding (printed: whether the bits matched too). */
static void test_threads(void **state)
{
    (void)state;
    l3d_conv2d_dims d = {1, 64, 40, 40, 64, 3, 1, 1};
    size_t nx = 64 * 40 * 40, nw = 64 * 64 * 9;
    float *x = randv(nx), *w = randv(nw), *dy = randv(nx);
    float *y[3], *dx[3], *dw[3];
    void *ws = malloc(l3d_conv2d_workspace_bytes(&d));
    const int threads[3] = {1, 1, 2};
    for (int r = 0; r < 3; r++) {
        l3d_set_threads(threads[r]);
        y[r] = nanv(nx), dx[r] = nanv(nx), dw[r] = calloc(nw, sizeof(float));
        l3d_conv2d_forward(y[r], x, w, NULL, &d, ws);
        l3d_conv2d_backward(dx[r], dw[r], NULL, dy, x, w, &d, ws);
    }
    l3d_set_threads(0);
    assert_memory_equal(y[0], y[1], nx * sizeof(float));
    assert_memory_equal(dx[0], dx[1], nx * sizeof(float));
    assert_memory_equal(dw[0], dw[1], nw * sizeof(float));
    for (size_t i = 0; i < nx; i++) {
        assert_true(fabsf(y[0][i] - y[2][i]) <= 1e-5f * (1.0f + fabsf(y[0][i])));
        assert_true(fabsf(dx[0][i] - dx[2][i]) <= 1e-5f * (1.0f + fabsf(dx[0][i])));
    }
    for (size_t i = 0; i < nw; i++)
        assert_true(fabsf(dw[0][i] - dw[2][i]) <= 1e-5f * (1.0f + fabsf(dw[0][i])));
    int same = !memcmp(y[0], y[2], nx * 4) && !memcmp(dx[0], dx[2], nx * 4) &&
               !memcmp(dw[0], dw[2], nw * 4);
    printf("  1 vs 2 OpenBLAS threads: %s\n", same ? "bit-identical" : "within tolerance");
    for (int r = 0; r < 3; r++)
        free(y[r]), free(dx[r]), free(dw[r]);
    free(x), free(w), free(dy), free(ws);
}

static void test_dims(void **state)
{
    (void)state;
    const char *why = NULL;
    assert_int_equal(l3d_conv2d_out_size(13, 3, 2, 1), 7);   /* floor(12/2) + 1 */
    assert_int_equal(l3d_conv2d_out_size(800, 3, 2, 1), 400);
    assert_int_equal(l3d_conv2d_out_size(1, 3, 1, 0), 0);
    l3d_conv2d_dims bad[] = {{0, 1, 1, 1, 1, 1, 1, 0}, {1, 1, 1, 1, 0, 1, 1, 0},
                             {1, 1, 2, 2, 1, 3, 1, 0}, {1, 1, 5, 5, 1, 3, 0, 1},
                             {1, 1, 5, 5, 1, 3, 1, -1}, {1, 1 << 16, 1 << 8, 1 << 8, 1, 1, 1, 0}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        assert_int_equal(l3d_conv2d_check(&bad[i], &why), -1);
        assert_non_null(why);
    }
    assert_int_equal(l3d_deconv2d_check(1, 1, 1, 1, 1, 0, &why), -1);
    assert_int_equal(l3d_deconv2d_check(1, 256, 128, 100, 100, 4, &why), 0);
    assert_int_equal(l3d_deconv2d_check(1, 1, 1 << 13, 1 << 8, 1 << 8, 2, &why), -1);
    assert_int_equal(l3d_conv2d_workspace_bytes(&(l3d_conv2d_dims){2, 64, 9, 9, 36, 1, 1, 0}), 0);
    assert_int_equal(l3d_deconv2d_workspace_bytes(64, 128, 9, 9, 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_sizes),   cmocka_unit_test(test_conv_bands),
        cmocka_unit_test(test_deconv_sizes), cmocka_unit_test(test_finite_differences),
        cmocka_unit_test(test_threads),      cmocka_unit_test(test_dims),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
