/* The pillar feature net's CPU kernels (kernels/cpu/pillar_decorate, linear,
 * batchnorm, relu, vfe_max, scatter) against plain double-precision loops
 * written here from spec ssn-model.md §3-§4 and §10.3, on random data at
 * several sizes (M = 0 and 1, odd sizes, channel counts not a multiple of 4,
 * pillars of 1 and of 20 points); finite differences check the references'
 * gradients in double and the kernels' gradients in float; then the whole VFE
 * (decoration -> linear -> BN -> ReLU -> max/concat -> linear -> BN -> ReLU ->
 * max) forward and backward against the reference composition.
 *
 * Tolerances: |got - want| <= rtol * scale, where scale bounds the magnitude
 * of the terms that meet in the value (e.g. Σ|x||w| for a dot product), so a
 * correct fp32 kernel stays far inside it and a wrong formula is far outside:
 *   exact (bitwise): copies, ReLU, max, argmax, scatter, decoration ch. 0-3;
 *   1e-6: decoration offsets, BN forward and backward (sums in double, so only
 *         float rounding of inputs and outputs remains), concat backward;
 *   1e-5: linear (float32 sums inside sgemm);
 *   composed VFE: 1e-4 of each tensor's largest magnitude (rounding compounds
 *   through two BN layers); finite differences: 1e-7 (double), 2e-3 (float).
 * Errors seen: about a tenth of these (BN 1e-7, linear 2e-7, VFE 1e-5, float
 * finite differences 1e-4). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <cblas.h>

#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/pillar_decorate.h"
#include "kernels/cpu/relu.h"
#include "kernels/cpu/scatter.h"
#include "kernels/cpu/vfe_max.h"

/* ---- random data, comparisons ------------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) /* splitmix64 */
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double uni(double a, double b) { return a + (b - a) * (double)(rnd() >> 11) * 0x1p-53; }
static void fill(float *x, int64_t n, double a, double b)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)uni(a, b);
}
static float *fnew(int64_t n) /* zeroed; n may be 0 */
{
    float *p = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
    assert_non_null(p);
    return p;
}
static double *dnew(int64_t n)
{
    double *p = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
    assert_non_null(p);
    return p;
}
static double *widen(const float *x, int64_t n)
{
    double *d = dnew(n);
    for (int64_t i = 0; i < n; i++)
        d[i] = x[i];
    return d;
}
static double *absd(const double *x, int64_t n)
{
    double *d = dnew(n);
    for (int64_t i = 0; i < n; i++)
        d[i] = fabs(x[i]);
    return d;
}
static void set_nan(float *x, int64_t n) /* so that an unwritten output shows */
{
    for (int64_t i = 0; i < n; i++)
        x[i] = NAN;
}

/* Element-wise: |got - want| <= rtol * scale[i] (scale NULL: |want[i]|; a scale
 * of 0 demands equality). */
static void check(const char *what, const float *got, const double *want, const double *scale,
                  int64_t n, double rtol)
{
    for (int64_t i = 0; i < n; i++) {
        double s = scale ? scale[i] : fabs(want[i]), err = fabs((double)got[i] - want[i]);
        if (!(err <= rtol * s)) {
            print_error("%s[%lld]: got %.9g, want %.9g (error %.3g, allowed %.3g)\n", what,
                        (long long)i, (double)got[i], want[i], err, rtol * s);
            fail();
        }
    }
}
/* Norm-wise: max |got - want| <= rtol * max |want|. */
static void check_norm(const char *what, const float *got, const double *want, int64_t n,
                       double rtol)
{
    double e = 0, w = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= e)) { e = d; at = i; }
        w = fmax(w, fabs(want[i]));
    }
    if (!(e <= rtol * w)) {
        print_error("%s: max error %.3g at %lld (got %.9g want %.9g), allowed %.3g\n", what, e,
                    (long long)at, (double)got[at], want[at], rtol * w);
        fail();
    }
}

/* ---- references: the spec, in double ------------------------------------ */

/* §3.1, cell-0 centre size/2 + range_min. scale gets each value's tolerance
 * scale (0 where the value is a copy or padding). */
static void ref_decorate(const float *vox, const int32_t *num, const int32_t *co, int cdim,
                         int m, int p, const float range[6], const float size[3], double *out,
                         double *scale)
{
    double off[3];
    for (int j = 0; j < 3; j++)
        off[j] = size[j] / 2.0 + range[j];
    for (int v = 0; v < m; v++) {
        const float *r = vox + (int64_t)v * p * 4;
        const int32_t *c = co + v * cdim + cdim - 3;
        int n = num[v];
        double mean[3] = {0, 0, 0}, cell[3] = {c[2], c[1], c[0]};
        for (int s = 0; s < p; s++)
            for (int j = 0; j < 3; j++)
                mean[j] += r[s * 4 + j] / (double)n;
        for (int s = 0; s < p; s++)
            for (int j = 0; j < 10; j++) {
                int64_t o = ((int64_t)v * p + s) * 10 + j;
                int axis = j < 4 ? j : (j - 4) % 3; /* x, y, z for j >= 4 */
                double x = r[s * 4 + axis];
                double centre = j >= 7 ? cell[axis] * size[axis] + off[axis] : 0;
                out[o] = s >= n ? 0 : j < 4 ? x : j < 7 ? x - mean[axis] : x - centre;
                scale[o] = s >= n || j < 4 ? 0
                           : j < 7 ? fabs(x) + fabs(mean[axis])
                                   : fabs(x) + fabs(cell[axis] * size[axis]) + fabs(off[axis]);
            }
    }
}

/* y [n][out] = x [n][in] · wᵀ */
static void ref_linear(const double *x, const double *w, int n, int in, int out, double *y)
{
    for (int i = 0; i < n; i++)
        for (int o = 0; o < out; o++) {
            double s = 0;
            for (int k = 0; k < in; k++)
                s += x[i * in + k] * w[o * in + k];
            y[i * out + o] = s;
        }
}
/* dx = dy · w, dw = dyᵀ · x (both assigned) */
static void ref_linear_back(const double *dy, const double *x, const double *w, int n, int in,
                            int out, double *dx, double *dw)
{
    for (int i = 0; i < n; i++)
        for (int k = 0; k < in; k++) {
            double s = 0;
            for (int o = 0; o < out; o++)
                s += dy[i * out + o] * w[o * in + k];
            dx[i * in + k] = s;
        }
    for (int o = 0; o < out; o++)
        for (int k = 0; k < in; k++) {
            double s = 0;
            for (int i = 0; i < n; i++)
                s += dy[i * out + o] * x[i * in + k];
            dw[o * in + k] = s;
        }
}

/* Index of x[i][ch][k] in [n][c][hw]. */
#define NCK(i, ch, k) (((int64_t)(i) * c + (ch)) * hw + (k))

/* Training BN on [n][c][hw]: mean and biased var per channel, then normalise. */
static void ref_bn_stats(const double *x, int n, int c, int hw, double *mean, double *var)
{
    double cnt = (double)n * hw;
    for (int ch = 0; ch < c; ch++) {
        double s = 0, q = 0;
        for (int i = 0; i < n; i++)
            for (int k = 0; k < hw; k++)
                s += x[NCK(i, ch, k)];
        mean[ch] = s / cnt;
        for (int i = 0; i < n; i++)
            for (int k = 0; k < hw; k++)
                q += (x[NCK(i, ch, k)] - mean[ch]) * (x[NCK(i, ch, k)] - mean[ch]);
        var[ch] = q / cnt;
    }
}
static void ref_bn_apply(const double *x, int n, int c, int hw, const double *g,
                         const double *b, const double *mean, const double *var, double eps,
                         double *y)
{
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (int k = 0; k < hw; k++)
                y[NCK(i, ch, k)] = (x[NCK(i, ch, k)] - mean[ch]) / sqrt(var[ch] + eps) * g[ch] + b[ch];
}
/* The textbook BN gradient; training 0: mean and var are constants. */
static void ref_bn_back(const double *dy, const double *x, int n, int c, int hw,
                        const double *g, const double *mean, const double *var, double eps,
                        int training, double *dx, double *dg, double *db)
{
    double cnt = (double)n * hw;
    for (int ch = 0; ch < c; ch++) {
        double is = 1 / sqrt(var[ch] + eps), sdy = 0, sdyx = 0;
        for (int i = 0; i < n; i++)
            for (int k = 0; k < hw; k++) {
                sdy += dy[NCK(i, ch, k)];
                sdyx += dy[NCK(i, ch, k)] * (x[NCK(i, ch, k)] - mean[ch]) * is;
            }
        dg[ch] = sdyx;
        db[ch] = sdy;
        for (int i = 0; i < n; i++)
            for (int k = 0; k < hw; k++) {
                double xh = (x[NCK(i, ch, k)] - mean[ch]) * is, d = dy[NCK(i, ch, k)];
                if (training)
                    d = d - sdy / cnt - xh * sdyx / cnt;
                dx[NCK(i, ch, k)] = g[ch] * is * d;
            }
    }
}

/* max over slots, first maximal index */
static void ref_max(const double *x, int m, int p, int c, double *y, int32_t *arg)
{
    for (int v = 0; v < m; v++)
        for (int ch = 0; ch < c; ch++) {
            int best = 0;
            for (int s = 1; s < p; s++)
                if (x[((int64_t)v * p + s) * c + ch] > x[((int64_t)v * p + best) * c + ch])
                    best = s;
            arg[v * c + ch] = best;
            y[v * c + ch] = x[((int64_t)v * p + best) * c + ch];
        }
}
static void ref_max_back(const double *dy, const int32_t *arg, int m, int p, int c, double *dx)
{
    memset(dx, 0, sizeof(double) * (size_t)m * p * c);
    for (int v = 0; v < m; v++)
        for (int ch = 0; ch < c; ch++)
            dx[((int64_t)v * p + arg[v * c + ch]) * c + ch] = dy[v * c + ch];
}
/* y [m][p][2c] = [x, max], dx = pointwise half + max half summed over slots at the argmax */
static void ref_concat(const double *x, int m, int p, int c, double *y, int32_t *arg)
{
    double *mx = dnew((int64_t)m * c);
    ref_max(x, m, p, c, mx, arg);
    for (int64_t vs = 0; vs < (int64_t)m * p; vs++)
        for (int ch = 0; ch < c; ch++) {
            y[vs * 2 * c + ch] = x[vs * c + ch];
            y[vs * 2 * c + c + ch] = mx[vs / p * c + ch];
        }
    free(mx);
}
static void ref_concat_back(const double *dy, const int32_t *arg, int m, int p, int c,
                            double *dx)
{
    for (int64_t vs = 0; vs < (int64_t)m * p; vs++)
        for (int ch = 0; ch < c; ch++)
            dx[vs * c + ch] = dy[vs * 2 * c + ch];
    for (int v = 0; v < m; v++)
        for (int ch = 0; ch < c; ch++) {
            double s = 0;
            for (int t = 0; t < p; t++)
                s += dy[((int64_t)v * p + t) * 2 * c + c + ch];
            dx[((int64_t)v * p + arg[v * c + ch]) * c + ch] += s;
        }
}

/* ---- random pillars ----------------------------------------------------- */

typedef struct pillars {
    int m, p;
    float *vox;    /* [m][p][4], padding 0 */
    int32_t *num;  /* [m] */
    int32_t *co4;  /* [m][4] (b, z, y, x), (b, y, x) distinct */
    int32_t *co3;  /* [m][3] (z, y, x) */
} pillars;

static const float SSN_RANGE[6] = {-100, -100, -5, 100, 100, 3}, SSN_SIZE[3] = {0.25f, 0.25f, 8};
static const float ALT_RANGE[6] = {0, -39.68f, -3, 69.12f, 39.68f, 1}, ALT_SIZE[3] = {0.16f, 0.16f, 2};

/* Pillars of 1 point (v % 4 == 0), of p points (v % 4 == 1), random counts otherwise,
 * in distinct random cells of a [batch][nz][ny][nx] grid; points inside their cell. */
static void make_pillars(pillars *pl, int m, int p, int batch, int nz, int ny, int nx,
                         const float range[6], const float size[3])
{
    pl->m = m;
    pl->p = p;
    pl->vox = fnew((int64_t)m * p * 4);
    pl->num = calloc((size_t)m + 1, 4);
    pl->co4 = calloc((size_t)m * 4 + 1, 4);
    pl->co3 = calloc((size_t)m * 3 + 1, 4);
    char *used = calloc((size_t)batch * ny * nx, 1);
    assert_true(pl->num && pl->co4 && pl->co3 && used);
    for (int v = 0; v < m; v++) {
        int b, y, x, z = (int)(rnd() % (uint64_t)nz);
        do {
            b = (int)(rnd() % (uint64_t)batch), y = (int)(rnd() % (uint64_t)ny);
            x = (int)(rnd() % (uint64_t)nx);
        } while (used[((size_t)b * ny + y) * nx + x]);
        used[((size_t)b * ny + y) * nx + x] = 1;
        int32_t c4[4] = {b, z, y, x};
        memcpy(pl->co4 + 4 * v, c4, 16);
        memcpy(pl->co3 + 3 * v, c4 + 1, 12);
        int n = v % 4 == 0 ? 1 : v % 4 == 1 ? p : 1 + (int)(rnd() % (uint64_t)p);
        pl->num[v] = n;
        int cell[3] = {x, y, z};
        for (int s = 0; s < n; s++) {
            float *q = pl->vox + ((int64_t)v * p + s) * 4;
            for (int j = 0; j < 3; j++)
                q[j] = range[j] + size[j] * ((float)cell[j] + (float)uni(0.01, 0.99));
            q[3] = (float)uni(0, 0.5);
        }
    }
    free(used);
}
static void free_pillars(pillars *pl)
{
    free(pl->vox);
    free(pl->num);
    free(pl->co4);
    free(pl->co3);
}

/* ---- decoration --------------------------------------------------------- */

static void test_offsets(void **state)
{
    (void)state;
    float off[3];
    l3d_pillar_offsets(SSN_RANGE, SSN_SIZE, off);
    assert_true(off[0] == -99.875f && off[1] == -99.875f && off[2] == -1.0f); /* spec §3.1 */
    l3d_pillar_offsets(ALT_RANGE, ALT_SIZE, off);
    for (int j = 0; j < 3; j++) {
        double want = ALT_SIZE[j] / 2.0 + ALT_RANGE[j];
        assert_true(fabs(off[j] - want) <= 1e-6 * fabs(ALT_RANGE[j]) + 1e-7);
    }
}

static void decorate_case(int m, int p, int batch, int alt, int garbage)
{
    const float *range = alt ? ALT_RANGE : SSN_RANGE, *size = alt ? ALT_SIZE : SSN_SIZE;
    int nz = alt ? 2 : 1, ny = alt ? 496 : 800, nx = alt ? 432 : 800;
    pillars pl;
    make_pillars(&pl, m, p, batch, nz, ny, nx, range, size);
    if (garbage) /* padding that is not 0: still summed into the mean, masked on output */
        for (int v = 0; v < m; v++)
            for (int s = pl.num[v]; s < p; s++)
                fill(pl.vox + ((int64_t)v * p + s) * 4, 4, -3, 3);
    float off[3];
    l3d_pillar_offsets(range, size, off);
    int64_t n = (int64_t)m * p * 10;
    float *f4 = fnew(n), *f3 = fnew(n);
    double *want = dnew(n), *scale = dnew(n);
    set_nan(f4, n);
    set_nan(f3, n);
    l3d_pillar_decorate_forward(pl.vox, pl.num, pl.co4, 4, m, p, size, off, f4);
    l3d_pillar_decorate_forward(pl.vox, pl.num, pl.co3, 3, m, p, size, off, f3);
    ref_decorate(pl.vox, pl.num, pl.co3, 3, m, p, range, size, want, scale);
    check("decorate (b,z,y,x)", f4, want, scale, n, 1e-6);
    check("decorate (z,y,x)", f3, want, scale, n, 1e-6);
    free(f4);
    free(f3);
    free(want);
    free(scale);
    free_pillars(&pl);
}

static void test_decorate(void **state)
{
    (void)state;
    decorate_case(0, 20, 1, 0, 0);
    decorate_case(1, 20, 1, 0, 0);
    decorate_case(2, 20, 2, 0, 0);
    decorate_case(7, 20, 2, 0, 0);
    decorate_case(333, 20, 2, 0, 0);
    decorate_case(33, 20, 1, 1, 0);
    decorate_case(9, 5, 3, 1, 0);
    decorate_case(5, 1, 1, 1, 0);
    decorate_case(17, 20, 2, 0, 1);
    decorate_case(6, 3, 1, 1, 1);
}

/* Worked by hand from spec §3.1: SSN grid, cell x 400, y 401 (centre 0.125,
 * 0.375, -1), two points of three slots. Then num_points 0 (the voxelizer
 * never makes it) gives zeros, not NaN. */
static void test_decorate_by_hand(void **state)
{
    (void)state;
    float vox[3 * 4] = {0.05f, 0.3f, -1.5f, 0.1f, 0.2f, 0.4f, 0.5f, 0.2f, 0, 0, 0, 0};
    const float want[3 * 10] = {
        0.05f, 0.3f, -1.5f, 0.1f, -0.075f, -0.05f, -1.0f, -0.075f, -0.075f, -0.5f,
        0.2f, 0.4f, 0.5f, 0.2f, 0.075f, 0.05f, 1.0f, 0.075f, 0.025f, 1.5f,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    float off[3], f[3 * 10];
    int32_t num[1] = {2}, co[4] = {1, 0, 401, 400};
    l3d_pillar_offsets(SSN_RANGE, SSN_SIZE, off);
    set_nan(f, 30);
    l3d_pillar_decorate_forward(vox, num, co, 4, 1, 3, SSN_SIZE, off, f);
    for (int i = 0; i < 30; i++)
        assert_true(fabsf(f[i] - want[i]) <= 1e-6f);
    num[0] = 0;
    set_nan(f, 30);
    l3d_pillar_decorate_forward(vox, num, co, 4, 1, 3, SSN_SIZE, off, f);
    for (int i = 0; i < 30; i++)
        assert_true(f[i] == 0.0f);
}

/* ---- linear --------------------------------------------------------------- */

static void linear_case(int n, int in, int out, double xr)
{
    float *x = fnew((int64_t)n * in), *w = fnew((int64_t)out * in), *dy = fnew((int64_t)n * out);
    float *y = fnew((int64_t)n * out), *dx = fnew((int64_t)n * in), *dw = fnew((int64_t)out * in);
    fill(x, (int64_t)n * in, -xr, xr);
    fill(w, (int64_t)out * in, -0.5, 0.5);
    fill(dy, (int64_t)n * out, -1, 1);
    fill(dw, (int64_t)out * in, -1, 1); /* dw accumulates onto this */
    double *xd = widen(x, (int64_t)n * in), *wd = widen(w, (int64_t)out * in);
    double *dyd = widen(dy, (int64_t)n * out), *dw0 = widen(dw, (int64_t)out * in);
    double *xa = absd(xd, (int64_t)n * in), *wa = absd(wd, (int64_t)out * in);
    double *dya = absd(dyd, (int64_t)n * out);
    double *yw = dnew((int64_t)n * out), *ys = dnew((int64_t)n * out);
    double *dxw = dnew((int64_t)n * in), *dxs = dnew((int64_t)n * in);
    double *dww = dnew((int64_t)out * in), *dws = dnew((int64_t)out * in);
    ref_linear(xd, wd, n, in, out, yw);
    ref_linear(xa, wa, n, in, out, ys); /* Σ|x||w|: the error scale */
    ref_linear_back(dyd, xd, wd, n, in, out, dxw, dww);
    ref_linear_back(dya, xa, wa, n, in, out, dxs, dws);
    for (int i = 0; i < out * in; i++) {
        dww[i] += dw0[i];
        dws[i] += fabs(dw0[i]);
    }
    set_nan(y, (int64_t)n * out);
    set_nan(dx, (int64_t)n * in);
    l3d_linear_forward(x, w, n, in, out, y);
    check("linear y", y, yw, ys, (int64_t)n * out, 1e-5);
    l3d_linear_backward(dy, x, w, n, in, out, dx, dw);
    check("linear dx", dx, dxw, dxs, (int64_t)n * in, 1e-5);
    check("linear dw", dw, dww, dws, (int64_t)out * in, 1e-5);
    /* dx NULL: only dw, accumulated once more */
    l3d_linear_backward(dy, x, w, n, in, out, NULL, dw);
    for (int i = 0; i < out * in; i++) {
        dww[i] += dww[i] - dw0[i];
        dws[i] *= 2;
    }
    check("linear dw (twice)", dw, dww, dws, (int64_t)out * in, 1e-5);
    free(x), free(w), free(dy), free(y), free(dx), free(dw);
    free(xd), free(wd), free(dyd), free(dw0), free(xa), free(wa), free(dya);
    free(yw), free(ys), free(dxw), free(dxs), free(dww), free(dws);
}

static void test_linear(void **state)
{
    (void)state;
    linear_case(0, 10, 32, 1);
    linear_case(1, 10, 32, 100);
    linear_case(1, 1, 1, 1);
    linear_case(7, 3, 5, 1);
    linear_case(140, 10, 32, 100); /* 7 pillars x 20 slots, decoration-sized inputs */
    linear_case(333, 64, 64, 3);
    linear_case(21, 65, 33, 1);
    linear_case(5, 7, 1, 1);
    linear_case(2000, 10, 32, 100); /* large enough for OpenBLAS to use threads */
    linear_case(150, 130, 200, 1);  /* several K blocks each way; dw in tiles */
    linear_case(3, 5000, 2, 1);     /* dw tiles narrower than a row */
}

/* The same bits for 1, 2, 3 and 4 OpenBLAS threads: shapes whose reduction
 * tail falls where OpenBLAS's threaded and serial drivers block K differently
 * (n 1000, 3001), in and out above one sgemm block (100, 70), small sizes. */
static void linear_threads_case(int n, int in, int out)
{
    const int saved = openblas_get_num_threads();
    float *x = fnew((int64_t)n * in), *w = fnew(out * in), *dy = fnew((int64_t)n * out);
    fill(x, (int64_t)n * in, -1, 1);
    fill(w, out * in, -1, 1);
    fill(dy, (int64_t)n * out, -1, 1);
    float *y[4], *dx[4], *dw[4];
    for (int t = 0; t < 4; t++) {
        openblas_set_num_threads(t + 1);
        y[t] = fnew((int64_t)n * out), dx[t] = fnew((int64_t)n * in), dw[t] = fnew(out * in);
        l3d_linear_forward(x, w, n, in, out, y[t]);
        l3d_linear_backward(dy, x, w, n, in, out, dx[t], dw[t]);
    }
    openblas_set_num_threads(saved);
    for (int t = 1; t < 4; t++) {
        assert_memory_equal(y[0], y[t], sizeof(float) * n * out);
        assert_memory_equal(dx[0], dx[t], sizeof(float) * n * in);
        assert_memory_equal(dw[0], dw[t], sizeof(float) * out * in);
    }
    for (int t = 0; t < 4; t++)
        free(y[t]), free(dx[t]), free(dw[t]);
    free(x), free(w), free(dy);
}

static void test_linear_threads(void **state)
{
    (void)state;
    linear_threads_case(3001, 64, 64);
    linear_threads_case(1000, 64, 64);
    linear_threads_case(1000, 100, 70);
    linear_threads_case(20001, 10, 32);
    linear_threads_case(150, 64, 64);
}

/* ---- batchnorm ---------------------------------------------------------- */

/* x [n][c][hw] with per-channel offsets in ±off and spreads in [0.1, 3]. */
static void bn_data(float *x, int n, int c, int hw, double off)
{
    for (int ch = 0; ch < c; ch++) {
        double o = uni(-off, off), s = uni(0.1, 3);
        for (int i = 0; i < n; i++)
            for (int k = 0; k < hw; k++)
                x[NCK(i, ch, k)] = (float)(o + s * uni(-1, 1));
    }
}

static void bn_case(int n, int c, int hw, double off, int training, double dyoff)
{
    const double eps = 1e-3, mom = 0.01;
    const int64_t len = (int64_t)n * c * hw, cnt = (int64_t)n * hw;
    float *x = fnew(len), *y = fnew(len), *dy = fnew(len), *dx = fnew(len);
    float *g = fnew(c), *b = fnew(c), *rm = fnew(c), *rv = fnew(c), *sm = fnew(c), *si = fnew(c);
    float *dg = fnew(c), *db = fnew(c);
    bn_data(x, n, c, hw, off);
    fill(dy, len, dyoff - 1, dyoff + 1);
    fill(g, c, -1.5, 1.5), fill(b, c, -1, 1), fill(rm, c, -2, 2), fill(rv, c, 0.1, 3);
    fill(dg, c, -1, 1), fill(db, c, -1, 1);
    double *xd = widen(x, len), *dyd = widen(dy, len), *gd = widen(g, c), *bd = widen(b, c);
    double *rm0 = widen(rm, c), *rv0 = widen(rv, c), *dg0 = widen(dg, c), *db0 = widen(db, c);
    double *mean = dnew(c), *var = dnew(c), *yw = dnew(len), *ys = dnew(len);
    double *dxw = dnew(len), *dxs = dnew(len), *dgw = dnew(c), *dbw = dnew(c);
    double *dgs = dnew(c), *dbs = dnew(c), *w1 = dnew(c), *s1 = dnew(c), *w2 = dnew(c), *s2 = dnew(c);
    if (training) {
        ref_bn_stats(xd, n, c, hw, mean, var);
    } else {
        memcpy(mean, rm0, sizeof(double) * c);
        memcpy(var, rv0, sizeof(double) * c);
    }
    ref_bn_apply(xd, n, c, hw, gd, bd, mean, var, eps, yw);
    ref_bn_back(dyd, xd, n, c, hw, gd, mean, var, eps, training, dxw, dgw, dbw);
    /* Scales: y rounds once (|γ x̂| + |β|); the backward works from the float
     * mean and invstd, so x̂ carries an error of order u (|x| + |mean|) invstd. */
    for (int ch = 0; ch < c; ch++) {
        double is = 1 / sqrt(var[ch] + eps), sa = 0, sab = 0;
        for (int i = 0; i < n; i++)
            for (int k = 0; k < hw; k++) {
                int64_t e = NCK(i, ch, k);
                sa += fabs(dyd[e]);
                sab += fabs(dyd[e]) * (fabs(xd[e]) + fabs(mean[ch])) * is;
            }
        for (int i = 0; i < n; i++)
            for (int k = 0; k < hw; k++) {
                int64_t e = NCK(i, ch, k);
                double big = (fabs(xd[e]) + fabs(mean[ch])) * is;
                ys[e] = fabs(yw[e] - bd[ch]) + fabs(bd[ch]);
                dxs[e] = fabs(gd[ch]) * is * (fabs(dyd[e]) + (training ? (sa + big * sab) / cnt : 0));
            }
        dgw[ch] += dg0[ch], dgs[ch] = sab + fabs(dg0[ch]);
        dbw[ch] += db0[ch], dbs[ch] = sa + fabs(db0[ch]);
        w1[ch] = mean[ch], s1[ch] = fabs(mean[ch]) + sqrt(var[ch]);
        w2[ch] = is, s2[ch] = is;
    }
    set_nan(y, len), set_nan(dx, len), set_nan(sm, c), set_nan(si, c);
    if (training)
        l3d_batchnorm_forward_train(x, n, c, hw, g, b, eps, mom, rm, rv, y, sm, si);
    else
        l3d_batchnorm_forward_eval(x, n, c, hw, g, b, eps, rm, rv, y, sm, si);
    check("bn y", y, yw, ys, len, 1e-6);
    check("bn save_mean", sm, w1, s1, c, 1e-6);
    check("bn save_invstd", si, w2, s2, c, 1e-6);
    for (int ch = 0; ch < c; ch++) { /* running stats: PyTorch's update, unbiased var */
        w1[ch] = training ? (1 - mom) * rm0[ch] + mom * mean[ch] : rm0[ch];
        w2[ch] = training ? (1 - mom) * rv0[ch] + mom * var[ch] * cnt / (cnt - 1) : rv0[ch];
        s1[ch] = fabs(rm0[ch]) + fabs(mean[ch]), s2[ch] = fabs(w2[ch]);
    }
    check("bn running_mean", rm, w1, s1, c, 1e-6);
    check("bn running_var", rv, w2, s2, c, 1e-6);
    l3d_batchnorm_backward(dy, x, n, c, hw, g, sm, si, training, dx, dg, db);
    check("bn dx", dx, dxw, dxs, len, 1e-6);
    check("bn dgamma", dg, dgw, dgs, c, 1e-6);
    check("bn dbeta", db, dbw, dbs, c, 1e-6);
    /* in place (y = x, dx = dy): the same bits */
    float *y2 = fnew(len), *dx2 = fnew(len), *dg2 = fnew(c), *db2 = fnew(c);
    memcpy(y2, x, sizeof(float) * len), memcpy(dx2, dy, sizeof(float) * len);
    if (training)
        l3d_batchnorm_forward_train(y2, n, c, hw, g, b, eps, mom, NULL, NULL, y2, sm, si);
    else
        l3d_batchnorm_forward_eval(y2, n, c, hw, g, b, eps, rm, rv, y2, NULL, NULL);
    l3d_batchnorm_backward(dx2, x, n, c, hw, g, sm, si, training, dx2, dg2, db2);
    assert_memory_equal(y, y2, sizeof(float) * len);
    assert_memory_equal(dx, dx2, sizeof(float) * len);
    free(y2), free(dx2), free(dg2), free(db2);
    free(x), free(y), free(dy), free(dx), free(g), free(b), free(rm), free(rv), free(sm), free(si);
    free(dg), free(db), free(xd), free(dyd), free(gd), free(bd), free(rm0), free(rv0), free(dg0);
    free(db0), free(mean), free(var), free(yw), free(ys), free(dxw), free(dxs), free(dgw), free(dbw);
    free(dgs), free(dbs), free(w1), free(s1), free(w2), free(s2);
}

static void test_batchnorm(void **state)
{
    (void)state;
    for (int training = 1; training >= 0; training--) {
        bn_case(2, 1, 1, 1, training, 0); /* BN1d [N][C] */
        bn_case(7, 3, 1, 1, training, 0);
        bn_case(140, 32, 1, 1, training, 0);
        bn_case(333, 5, 1, 100, training, 0); /* |mean| >> spread */
        bn_case(20, 64, 1, 3, training, 0);
        bn_case(1, 3, 35, 1, training, 0); /* BN2d [B][C][H][W] */
        bn_case(2, 5, 9, 100, training, 0);
        bn_case(3, 4, 1, 1, training, 0);
        bn_case(2, 64, 16, 3, training, 0);
        bn_case(3, 300, 2, 1, training, 0); /* more channels than one block */
        /* a million values a channel and a gradient of one sign: float sums would drift */
        bn_case(1 << 20, 2, 1, 3, training, 2);
    }
}

/* count 0: nothing updated; count 1: y = beta, running_var kept. */
static void test_batchnorm_edges(void **state)
{
    (void)state;
    float g[2] = {1.5f, -0.5f}, b[2] = {0.25f, -2}, rm[2] = {0.5f, -1}, rv[2] = {2, 0.5f};
    float sm[2], si[2], y[2] = {NAN, NAN}, x[2] = {3, 7}, dg[2] = {1, 2}, db[2] = {3, 4};
    l3d_batchnorm_forward_train(x, 0, 2, 1, g, b, 1e-3, 0.01, rm, rv, y, sm, si);
    assert_true(rm[0] == 0.5f && rm[1] == -1 && rv[0] == 2 && rv[1] == 0.5f);
    assert_true(sm[0] == 0 && sm[1] == 0 && isnan(y[0]) && isnan(y[1]));
    assert_true(si[0] == (float)(1 / sqrt(1e-3)) && si[1] == si[0]);
    l3d_batchnorm_backward(x, x, 0, 2, 1, g, sm, si, 1, y, dg, db);
    assert_true(dg[0] == 1 && dg[1] == 2 && db[0] == 3 && db[1] == 4);
    l3d_batchnorm_forward_train(x, 1, 2, 1, g, b, 1e-3, 0.01, rm, rv, y, sm, si);
    assert_true(y[0] == b[0] && y[1] == b[1]);
    assert_true(rm[0] == (float)(0.99 * 0.5 + 0.01 * 3) && rm[1] == (float)(0.99 * -1 + 0.01 * 7));
    assert_true(rv[0] == 2 && rv[1] == 0.5f);
}

/* ---- relu, max, concat -------------------------------------------------- */

static void test_relu(void **state)
{
    (void)state;
    const int sizes[] = {0, 1, 7, 1001};
    for (int t = 0; t < 4; t++) {
        int n = sizes[t];
        float *x = fnew(n + 3), *y = fnew(n + 3), *dy = fnew(n + 3), *dx = fnew(n + 3);
        fill(x, n, -1, 1);
        fill(dy, n, -1, 1);
        if (n > 3)
            x[1] = 0.0f, x[2] = -0.0f, x[3] = NAN;
        set_nan(y, n), set_nan(dx, n);
        l3d_relu_forward(x, n, y);
        for (int i = 0; i < n; i++) {
            if (isnan(x[i]))
                assert_true(isnan(y[i]));
            else
                assert_true(y[i] == (x[i] > 0 ? x[i] : 0.0f) && !signbit(y[i]));
        }
        l3d_relu_backward(dy, y, n, dx);
        for (int i = 0; i < n; i++)
            assert_true(dx[i] == (y[i] > 0 ? dy[i] : 0.0f));
        l3d_relu_forward(x, n, x); /* in place */
        l3d_relu_backward(dy, x, n, dy);
        assert_memory_equal(x, y, sizeof(float) * n);
        assert_memory_equal(dy, dx, sizeof(float) * n);
        free(x), free(y), free(dy), free(dx);
    }
}

/* x [m][p][c] in [-1, 1] with ties: slot 2 copied to slot p-1 in odd pillars,
 * and all slots from num[v] on equal (as padded slots are after BN). */
static void max_data(float *x, int m, int p, int c)
{
    fill(x, (int64_t)m * p * c, -1, 1);
    for (int v = 0; v < m; v++) {
        float *xv = x + (int64_t)v * p * c;
        if (v % 2 && p > 3)
            memcpy(xv + (p - 1) * c, xv + 2 * c, sizeof(float) * c);
        int n = 1 + v % p;
        for (int s = n + 1; s < p; s++)
            memcpy(xv + s * c, xv + n * c, sizeof(float) * c);
    }
}

static void max_case(int m, int p, int c)
{
    const int64_t len = (int64_t)m * p * c, mc = (int64_t)m * c;
    float *x = fnew(len), *y = fnew(mc), *dy = fnew(mc), *dx = fnew(len);
    float *yc = fnew(2 * len), *dyc = fnew(2 * len), *dxc = fnew(len);
    int32_t *arg = calloc((size_t)mc + 1, 4), *argc = calloc((size_t)mc + 1, 4), *argw = calloc((size_t)mc + 1, 4);
    max_data(x, m, p, c);
    fill(dy, mc, -1, 1);
    fill(dyc, 2 * len, -1, 1);
    double *xd = widen(x, len), *dyd = widen(dy, mc), *dycd = widen(dyc, 2 * len);
    double *yw = dnew(mc), *dxw = dnew(len), *ycw = dnew(2 * len), *dxcw = dnew(len), *dxcs = dnew(len);
    ref_max(xd, m, p, c, yw, argw);
    ref_max_back(dyd, argw, m, p, c, dxw);
    ref_concat(xd, m, p, c, ycw, argw);
    ref_concat_back(dycd, argw, m, p, c, dxcw);
    for (int64_t i = 0; i < len; i++) /* the max half's sum rounds once, then one add */
        dxcs[i] = fabs(dycd[i / c * 2 * c + i % c]) + fabs(dxcw[i]);
    for (int v = 0; v < m; v++)
        for (int ch = 0; ch < c; ch++)
            for (int s = 0; s < p; s++)
                dxcs[((int64_t)v * p + argw[v * c + ch]) * c + ch] +=
                    fabs(dycd[((int64_t)v * p + s) * 2 * c + c + ch]);
    set_nan(y, mc), set_nan(dx, len), set_nan(yc, 2 * len), set_nan(dxc, len);
    l3d_vfe_max_forward(x, m, p, c, y, arg);
    check("max y", y, yw, NULL, mc, 0);
    assert_memory_equal(arg, argw, sizeof(int32_t) * mc);
    l3d_vfe_max_backward(dy, arg, m, p, c, dx);
    check("max dx", dx, dxw, NULL, len, 0);
    l3d_vfe_max_concat_forward(x, m, p, c, yc, argc);
    check("concat y", yc, ycw, NULL, 2 * len, 0);
    assert_memory_equal(argc, argw, sizeof(int32_t) * mc);
    l3d_vfe_max_concat_backward(dyc, argc, m, p, c, dxc);
    check("concat dx", dxc, dxcw, dxcs, len, 1e-6);
    free(x), free(y), free(dy), free(dx), free(yc), free(dyc), free(dxc), free(arg), free(argc);
    free(argw), free(xd), free(dyd), free(dycd), free(yw), free(dxw), free(ycw), free(dxcw), free(dxcs);
}

static void test_max_concat(void **state)
{
    (void)state;
    max_case(0, 20, 3);
    max_case(1, 20, 1);
    max_case(1, 1, 5);
    max_case(7, 20, 3);
    max_case(33, 20, 32);
    max_case(5, 3, 7);
    max_case(4, 20, 64);
}

/* A NaN wins the max (torch.max propagates it), the first one if several. */
static void test_max_nan(void **state)
{
    (void)state;
    float x[4 * 2] = {1, 0, 5, NAN, NAN, 2, 3, NAN}, y[2];
    int32_t arg[2];
    l3d_vfe_max_forward(x, 1, 4, 2, y, arg);
    assert_true(isnan(y[0]) && arg[0] == 2 && isnan(y[1]) && arg[1] == 1);
}

/* ---- scatter ------------------------------------------------------------ */

/* canvas[b][ch][y][x]: the pillar at (b, y, x) found by a linear search, else 0 */
static void scatter_case(int m, int c, int batch, int ny, int nx)
{
    pillars pl;
    make_pillars(&pl, m, 1, batch, 1, ny, nx, SSN_RANGE, SSN_SIZE);
    const int64_t canv = (int64_t)batch * c * ny * nx, mc = (int64_t)m * c;
    float *feat = fnew(mc), *canvas = fnew(canv), *dcanvas = fnew(canv), *dfeat = fnew(mc);
    fill(feat, mc, -1, 1);
    fill(dcanvas, canv, -1, 1);
    double *cw = dnew(canv), *dfw = dnew(mc);
    for (int b = 0; b < batch; b++)
        for (int y = 0; y < ny; y++)
            for (int x = 0; x < nx; x++)
                for (int v = 0; v < m; v++) {
                    const int32_t *q = pl.co4 + 4 * v;
                    if (q[0] != b || q[2] != y || q[3] != x)
                        continue;
                    for (int ch = 0; ch < c; ch++) {
                        int64_t e = (((int64_t)b * c + ch) * ny + y) * nx + x;
                        cw[e] = feat[v * c + ch];
                        dfw[v * c + ch] = dcanvas[e];
                    }
                }
    set_nan(canvas, canv), set_nan(dfeat, mc);
    assert_int_equal(l3d_scatter_forward(feat, pl.co4, m, c, batch, ny, nx, canvas), 0);
    check("scatter canvas", canvas, cw, NULL, canv, 0);
    assert_int_equal(l3d_scatter_backward(dcanvas, pl.co4, m, c, batch, ny, nx, dfeat), 0);
    check("scatter dpillars", dfeat, dfw, NULL, mc, 0);
    if (m > 0) { /* a coordinate off the canvas: -1, nothing written */
        const int bad[4][2] = {{0, batch}, {0, -1}, {2, ny}, {3, nx}};
        for (int t = 0; t < 4; t++) {
            int32_t keep = pl.co4[4 * (m - 1) + bad[t][0]];
            pl.co4[4 * (m - 1) + bad[t][0]] = bad[t][1];
            set_nan(canvas, canv), set_nan(dfeat, mc);
            assert_int_equal(l3d_scatter_forward(feat, pl.co4, m, c, batch, ny, nx, canvas), -1);
            assert_int_equal(l3d_scatter_backward(dcanvas, pl.co4, m, c, batch, ny, nx, dfeat), -1);
            for (int64_t i = 0; i < canv; i++)
                assert_true(isnan(canvas[i]));
            for (int64_t i = 0; i < mc; i++)
                assert_true(isnan(dfeat[i]));
            pl.co4[4 * (m - 1) + bad[t][0]] = keep;
        }
    }
    free(feat), free(canvas), free(dcanvas), free(dfeat), free(cw), free(dfw);
    free_pillars(&pl);
}

static void test_scatter(void **state)
{
    (void)state;
    scatter_case(0, 3, 1, 4, 5);
    scatter_case(1, 1, 1, 1, 1);
    scatter_case(7, 3, 2, 5, 7);
    scatter_case(33, 64, 2, 6, 9);
    scatter_case(50, 5, 3, 4, 5);
    scatter_case(20, 2, 1, 4, 5); /* every cell occupied */
}

/* ---- finite differences --------------------------------------------------- */

typedef double (*loss_fn)(void *ctx);

/* Central differences of loss in every element of p, against grad (norm-wise). */
static void fd_float(const char *what, float *p, int64_t n, const float *grad, loss_fn loss,
                     void *ctx, double h, double rtol)
{
    double *fd = dnew(n);
    for (int64_t i = 0; i < n; i++) {
        float keep = p[i], up = (float)(keep + h), dn = (float)(keep - h);
        p[i] = up;
        double lp = loss(ctx);
        p[i] = dn;
        double lm = loss(ctx);
        p[i] = keep;
        fd[i] = (lp - lm) / ((double)up - (double)dn);
    }
    check_norm(what, grad, fd, n, rtol);
    free(fd);
}
static void fd_double(const char *what, double *p, int64_t n, const double *grad, loss_fn loss,
                      void *ctx, double h, double rtol)
{
    double e = 0, w = 0;
    for (int64_t i = 0; i < n; i++) {
        double keep = p[i];
        p[i] = keep + h;
        double lp = loss(ctx);
        p[i] = keep - h;
        double lm = loss(ctx);
        p[i] = keep;
        double fd = (lp - lm) / (2 * h);
        e = fmax(e, fabs(fd - grad[i]));
        w = fmax(w, fabs(fd));
    }
    if (!(e <= rtol * w)) {
        print_error("%s: finite differences differ by %.3g (allowed %.3g)\n", what, e, rtol * w);
        fail();
    }
}

enum { K_LINEAR, K_BN_TRAIN, K_BN_EVAL, K_RELU, K_MAX, K_CONCAT };

/* One float kernel's forward, then Σ r·y in double. */
typedef struct kctx {
    int op, n, in, out, c, hw, m, p;
    int64_t len; /* outputs */
    float *x, *w, *g, *b, *rm, *rv, *y, *sm, *si, *r;
    int32_t *arg;
} kctx;

static double kloss(void *vp)
{
    kctx *k = vp;
    switch (k->op) {
    case K_LINEAR: l3d_linear_forward(k->x, k->w, k->n, k->in, k->out, k->y); break;
    case K_BN_TRAIN:
        l3d_batchnorm_forward_train(k->x, k->n, k->c, k->hw, k->g, k->b, 1e-3, 0.01, NULL, NULL,
                                    k->y, k->sm, k->si);
        break;
    case K_BN_EVAL:
        l3d_batchnorm_forward_eval(k->x, k->n, k->c, k->hw, k->g, k->b, 1e-3, k->rm, k->rv, k->y,
                                   k->sm, k->si);
        break;
    case K_RELU: l3d_relu_forward(k->x, k->len, k->y); break;
    case K_MAX: l3d_vfe_max_forward(k->x, k->m, k->p, k->c, k->y, k->arg); break;
    default: l3d_vfe_max_concat_forward(k->x, k->m, k->p, k->c, k->y, k->arg); break;
    }
    double l = 0;
    for (int64_t i = 0; i < k->len; i++)
        l += (double)k->r[i] * k->y[i];
    return l;
}

static void test_fd_kernels(void **state)
{
    (void)state;
    enum { BIG = 512 };
    float x[BIG], w[BIG], g[8], b[8], rm[8], rv[8], y[BIG], sm[8], si[8], r[BIG], dx[BIG],
        dw[BIG], dg[8], db[8];
    int32_t arg[BIG];
    kctx k = {.x = x, .w = w, .g = g, .b = b, .rm = rm, .rv = rv, .y = y, .sm = sm, .si = si,
              .r = r, .arg = arg};
    fill(r, BIG, -1, 1);
    /* linear: x [3][4], w [5][4] */
    k.op = K_LINEAR, k.n = 3, k.in = 4, k.out = 5, k.len = 15;
    fill(x, 12, -1, 1), fill(w, 20, -1, 1);
    memset(dw, 0, sizeof dw);
    l3d_linear_backward(r, x, w, 3, 4, 5, dx, dw);
    fd_float("fd linear dx", x, 12, dx, kloss, &k, 1e-2, 2e-3);
    fd_float("fd linear dw", w, 20, dw, kloss, &k, 1e-2, 2e-3);
    /* batchnorm, training and eval, 1d [6][3] and 2d [2][2][3] */
    const int shapes[2][3] = {{6, 3, 1}, {2, 2, 3}};
    for (int op = K_BN_TRAIN; op <= K_BN_EVAL; op++)
        for (int t = 0; t < 2; t++) {
            k.op = op, k.n = shapes[t][0], k.c = shapes[t][1], k.hw = shapes[t][2];
            k.len = (int64_t)k.n * k.c * k.hw;
            bn_data(x, k.n, k.c, k.hw, 2);
            fill(g, k.c, -1.5, 1.5), fill(b, k.c, -1, 1), fill(rm, k.c, -1, 1), fill(rv, k.c, 0.1, 2);
            memset(dg, 0, sizeof dg), memset(db, 0, sizeof db);
            kloss(&k);
            l3d_batchnorm_backward(r, x, k.n, k.c, k.hw, g, sm, si, op == K_BN_TRAIN, dx, dg, db);
            fd_float("fd bn dx", x, k.len, dx, kloss, &k, 1e-2, 2e-3);
            fd_float("fd bn dgamma", g, k.c, dg, kloss, &k, 1e-2, 2e-3);
            fd_float("fd bn dbeta", b, k.c, db, kloss, &k, 1e-2, 2e-3);
        }
    /* relu on values at least 0.1 from the kink */
    k.op = K_RELU, k.len = 40;
    for (int i = 0; i < 40; i++)
        x[i] = (float)((i % 2 ? 1 : -1) * uni(0.1, 1));
    kloss(&k);
    l3d_relu_backward(r, y, 40, dx);
    fd_float("fd relu", x, 40, dx, kloss, &k, 1e-2, 2e-3);
    /* max and concat on values 0.1 apart, so no perturbation changes the argmax */
    k.m = 3, k.p = 5, k.c = 3;
    for (int i = 0; i < 45; i++)
        x[i] = (float)(0.1 * ((i * 17) % 45) + uni(0, 0.02));
    k.op = K_MAX, k.len = 9;
    kloss(&k);
    l3d_vfe_max_backward(r, arg, 3, 5, 3, dx);
    fd_float("fd max", x, 45, dx, kloss, &k, 1e-2, 2e-3);
    k.op = K_CONCAT, k.len = 90;
    kloss(&k);
    l3d_vfe_max_concat_backward(r, arg, 3, 5, 3, dx);
    fd_float("fd concat", x, 45, dx, kloss, &k, 1e-2, 2e-3);
}

/* The reference BN's gradient (used by everything below) against finite differences. */
typedef struct dbn {
    int n, c, hw, training;
    double *x, *g, *b, *rm, *rv, *y, *mean, *var, *r;
} dbn;
static double dbn_loss(void *vp)
{
    dbn *d = vp;
    if (d->training)
        ref_bn_stats(d->x, d->n, d->c, d->hw, d->mean, d->var);
    ref_bn_apply(d->x, d->n, d->c, d->hw, d->g, d->b, d->training ? d->mean : d->rm,
                 d->training ? d->var : d->rv, 1e-3, d->y);
    double l = 0;
    for (int i = 0; i < d->n * d->c * d->hw; i++)
        l += d->r[i] * d->y[i];
    return l;
}
static void test_fd_reference_bn(void **state)
{
    (void)state;
    double x[30], g[2], b[2], rm[2], rv[2], y[30], mean[2], var[2], r[30], dx[30], dg[2], db[2];
    dbn d = {5, 2, 3, 1, x, g, b, rm, rv, y, mean, var, r};
    for (int training = 0; training < 2; training++) {
        d.training = training;
        for (int i = 0; i < 30; i++)
            x[i] = uni(-2, 2), r[i] = uni(-1, 1);
        for (int i = 0; i < 2; i++)
            g[i] = uni(-1.5, 1.5), b[i] = uni(-1, 1), rm[i] = uni(-1, 1), rv[i] = uni(0.1, 2);
        dbn_loss(&d);
        ref_bn_back(r, x, 5, 2, 3, g, training ? mean : rm, training ? var : rv, 1e-3, training,
                    dx, dg, db);
        fd_double("reference bn dx", x, 30, dx, dbn_loss, &d, 1e-5, 1e-7);
        fd_double("reference bn dgamma", g, 2, dg, dbn_loss, &d, 1e-5, 1e-7);
        fd_double("reference bn dbeta", b, 2, db, dbn_loss, &d, 1e-5, 1e-7);
    }
}

/* ---- the whole VFE ------------------------------------------------------ */

/* decorated f [n][10] -> linear W0 [c0][10] -> BN -> ReLU -> r0 -> concat [n][2c0]
 * -> linear W1 [c1][2c0] -> BN -> ReLU -> r1 -> max -> out [m][c1]; n = m·p. */
typedef struct rnet {
    int m, p, c0, c1, n;
    double *f, *w0, *g0, *b0, *w1, *g1, *b1;
    double *a0, *z0, *r0, *cat, *a1, *z1, *r1, *out, *mu0, *var0, *mu1, *var1, *lw;
    int32_t *arg0, *arg1;
    double *dw0, *dg0, *db0, *dw1, *dg1, *db1;
} rnet;

static void rnet_alloc(rnet *t, int m, int p, int c0, int c1)
{
    int n = m * p;
    *t = (rnet){m, p, c0, c1, n, dnew(n * 10), dnew(c0 * 10), dnew(c0), dnew(c0),
                dnew(c1 * 2 * c0), dnew(c1), dnew(c1), dnew(n * c0), dnew(n * c0), dnew(n * c0),
                dnew(n * 2 * c0), dnew(n * c1), dnew(n * c1), dnew(n * c1), dnew(m * c1),
                dnew(c0), dnew(c0), dnew(c1), dnew(c1), dnew(m * c1),
                calloc((size_t)m * c0 + 1, 4), calloc((size_t)m * c1 + 1, 4),
                dnew(c0 * 10), dnew(c0), dnew(c0), dnew(c1 * 2 * c0), dnew(c1), dnew(c1)};
}
static void rnet_free(rnet *t)
{
    double *all[] = {t->f, t->w0, t->g0, t->b0, t->w1, t->g1, t->b1, t->a0, t->z0, t->r0,
                     t->cat, t->a1, t->z1, t->r1, t->out, t->mu0, t->var0, t->mu1, t->var1,
                     t->lw, t->dw0, t->dg0, t->db0, t->dw1, t->dg1, t->db1};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
    free(t->arg0), free(t->arg1);
}
static void ref_relu(const double *x, int64_t n, double *y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] > 0 ? x[i] : 0;
}
static void rnet_forward(rnet *t)
{
    const int n = t->n, c0 = t->c0, c1 = t->c1;
    ref_linear(t->f, t->w0, n, 10, c0, t->a0);
    ref_bn_stats(t->a0, n, c0, 1, t->mu0, t->var0);
    ref_bn_apply(t->a0, n, c0, 1, t->g0, t->b0, t->mu0, t->var0, 1e-3, t->z0);
    ref_relu(t->z0, (int64_t)n * c0, t->r0);
    ref_concat(t->r0, t->m, t->p, c0, t->cat, t->arg0);
    ref_linear(t->cat, t->w1, n, 2 * c0, c1, t->a1);
    ref_bn_stats(t->a1, n, c1, 1, t->mu1, t->var1);
    ref_bn_apply(t->a1, n, c1, 1, t->g1, t->b1, t->mu1, t->var1, 1e-3, t->z1);
    ref_relu(t->z1, (int64_t)n * c1, t->r1);
    ref_max(t->r1, t->m, t->p, c1, t->out, t->arg1);
}
/* Gradients (assigned) of Σ lw·out. */
static void rnet_backward(rnet *t)
{
    const int n = t->n, c0 = t->c0, c1 = t->c1;
    double *d1 = dnew(n * c1), *d1b = dnew(n * c1), *dcat = dnew(n * 2 * c0);
    double *d0 = dnew(n * c0), *d0b = dnew(n * c0), *df = dnew(n * 10);
    ref_max_back(t->lw, t->arg1, t->m, t->p, c1, d1);
    for (int i = 0; i < n * c1; i++)
        d1[i] = t->r1[i] > 0 ? d1[i] : 0;
    ref_bn_back(d1, t->a1, n, c1, 1, t->g1, t->mu1, t->var1, 1e-3, 1, d1b, t->dg1, t->db1);
    ref_linear_back(d1b, t->cat, t->w1, n, 2 * c0, c1, dcat, t->dw1);
    ref_concat_back(dcat, t->arg0, t->m, t->p, c0, d0);
    for (int i = 0; i < n * c0; i++)
        d0[i] = t->r0[i] > 0 ? d0[i] : 0;
    ref_bn_back(d0, t->a0, n, c0, 1, t->g0, t->mu0, t->var0, 1e-3, 1, d0b, t->dg0, t->db0);
    ref_linear_back(d0b, t->f, t->w0, n, 10, c0, df, t->dw0);
    free(d1), free(d1b), free(dcat), free(d0), free(d0b), free(df);
}
static double rnet_loss(void *vp)
{
    rnet *t = vp;
    rnet_forward(t);
    double l = 0;
    for (int i = 0; i < t->m * t->c1; i++)
        l += t->lw[i] * t->out[i];
    return l;
}

/* The reference composition's gradients against finite differences. */
static void test_fd_reference_vfe(void **state)
{
    (void)state;
    pillars pl;
    make_pillars(&pl, 6, 20, 2, 1, 800, 800, SSN_RANGE, SSN_SIZE);
    rnet t;
    rnet_alloc(&t, 6, 20, 3, 5);
    double *scale = dnew(t.n * 10);
    ref_decorate(pl.vox, pl.num, pl.co4, 4, 6, 20, SSN_RANGE, SSN_SIZE, t.f, scale);
    for (int i = 0; i < 30; i++)
        t.w0[i] = uni(-0.3, 0.3);
    for (int i = 0; i < 30; i++)
        t.w1[i] = uni(-0.4, 0.4);
    for (int i = 0; i < 3; i++)
        t.g0[i] = uni(0.5, 1.5), t.b0[i] = uni(-0.5, 0.5);
    for (int i = 0; i < 5; i++)
        t.g1[i] = uni(0.5, 1.5), t.b1[i] = uni(-0.5, 0.5);
    for (int i = 0; i < 30; i++)
        t.lw[i] = uni(-1, 1);
    rnet_forward(&t);
    rnet_backward(&t);
    fd_double("reference vfe dw0", t.w0, 30, t.dw0, rnet_loss, &t, 1e-6, 1e-7);
    fd_double("reference vfe dgamma0", t.g0, 3, t.dg0, rnet_loss, &t, 1e-6, 1e-7);
    fd_double("reference vfe dbeta0", t.b0, 3, t.db0, rnet_loss, &t, 1e-6, 1e-7);
    fd_double("reference vfe dw1", t.w1, 30, t.dw1, rnet_loss, &t, 1e-6, 1e-7);
    fd_double("reference vfe dgamma1", t.g1, 5, t.dg1, rnet_loss, &t, 1e-6, 1e-7);
    fd_double("reference vfe dbeta1", t.b1, 5, t.db1, rnet_loss, &t, 1e-6, 1e-7);
    free(scale);
    rnet_free(&t);
    free_pillars(&pl);
}

/* The kernels composed as the trainer will compose them, against rnet. */
static void vfe_case(int m, int c0, int c1)
{
    const int p = 20, n = m * p;
    pillars pl;
    make_pillars(&pl, m, p, 2, 1, 800, 800, SSN_RANGE, SSN_SIZE);
    float off[3];
    l3d_pillar_offsets(SSN_RANGE, SSN_SIZE, off);
    rnet t;
    rnet_alloc(&t, m, p, c0, c1);
    double *scale = dnew(n * 10);
    ref_decorate(pl.vox, pl.num, pl.co4, 4, m, p, SSN_RANGE, SSN_SIZE, t.f, scale);
    /* parameters: PyTorch's default Linear init range; BN affine away from (1, 0) */
    float *w0 = fnew(c0 * 10), *w1 = fnew(c1 * 2 * c0), *g0 = fnew(c0), *b0 = fnew(c0);
    float *g1 = fnew(c1), *b1 = fnew(c1), *lw = fnew(m * c1);
    fill(w0, c0 * 10, -1 / sqrt(10), 1 / sqrt(10));
    fill(w1, c1 * 2 * c0, -1 / sqrt(2 * c0), 1 / sqrt(2 * c0));
    fill(g0, c0, 0.5, 1.5), fill(b0, c0, -0.5, 0.5), fill(g1, c1, 0.5, 1.5), fill(b1, c1, -0.5, 0.5);
    fill(lw, m * c1, -1, 1);
    double *pd[] = {t.w0, t.w1, t.g0, t.b0, t.g1, t.b1, t.lw};
    const float *pf[] = {w0, w1, g0, b0, g1, b1, lw};
    const int pn[] = {c0 * 10, c1 * 2 * c0, c0, c0, c1, c1, m * c1};
    for (int j = 0; j < 7; j++)
        for (int i = 0; i < pn[j]; i++)
            pd[j][i] = pf[j][i];
    rnet_forward(&t);
    rnet_backward(&t);

    float *f = fnew(n * 10), *a0 = fnew(n * c0), *z0 = fnew(n * c0), *r0 = fnew(n * c0);
    float *cat = fnew(n * 2 * c0), *a1 = fnew(n * c1), *z1 = fnew(n * c1), *r1 = fnew(n * c1);
    float *out = fnew(m * c1), *rs[4] = {fnew(c0), fnew(c0), fnew(c1), fnew(c1)};
    float *sm0 = fnew(c0), *si0 = fnew(c0), *sm1 = fnew(c1), *si1 = fnew(c1);
    int32_t *arg0 = calloc((size_t)m * c0 + 1, 4), *arg1 = calloc((size_t)m * c1 + 1, 4);
    for (int i = 0; i < c0; i++)
        rs[1][i] = 1; /* running_var starts at 1, running_mean at 0 */
    for (int i = 0; i < c1; i++)
        rs[3][i] = 1;
    l3d_pillar_decorate_forward(pl.vox, pl.num, pl.co4, 4, m, p, SSN_SIZE, off, f);
    l3d_linear_forward(f, w0, n, 10, c0, a0);
    l3d_batchnorm_forward_train(a0, n, c0, 1, g0, b0, 1e-3, 0.01, rs[0], rs[1], z0, sm0, si0);
    l3d_relu_forward(z0, (int64_t)n * c0, r0);
    l3d_vfe_max_concat_forward(r0, m, p, c0, cat, arg0);
    l3d_linear_forward(cat, w1, n, 2 * c0, c1, a1);
    l3d_batchnorm_forward_train(a1, n, c1, 1, g1, b1, 1e-3, 0.01, rs[2], rs[3], z1, sm1, si1);
    l3d_relu_forward(z1, (int64_t)n * c1, r1);
    l3d_vfe_max_forward(r1, m, p, c1, out, arg1);
    check_norm("vfe layer 0 (post-BN)", z0, t.z0, (int64_t)n * c0, 1e-4);
    check_norm("vfe layer 0 (concat)", cat, t.cat, (int64_t)n * 2 * c0, 1e-4);
    check_norm("vfe layer 1 (post-BN)", z1, t.z1, (int64_t)n * c1, 1e-4);
    check_norm("vfe out", out, t.out, (int64_t)m * c1, 1e-4);
    double rw[4][64];
    assert_true(c0 <= 64 && c1 <= 64);
    for (int i = 0; i < c0; i++)
        rw[0][i] = 0.01 * t.mu0[i], rw[1][i] = 0.99 + 0.01 * t.var0[i] * n / (n - 1);
    for (int i = 0; i < c1; i++)
        rw[2][i] = 0.01 * t.mu1[i], rw[3][i] = 0.99 + 0.01 * t.var1[i] * n / (n - 1);
    for (int j = 0; j < 4; j++)
        check_norm("vfe running stats", rs[j], rw[j], j < 2 ? c0 : c1, 1e-4);

    /* backward; activation-gradient buffers reused in place where the API allows */
    float *d1 = fnew(n * c1), *dcat = fnew(n * 2 * c0), *d0 = fnew(n * c0);
    float *dw0 = fnew(c0 * 10), *dw1 = fnew(c1 * 2 * c0), *dg0 = fnew(c0), *db0 = fnew(c0);
    float *dg1 = fnew(c1), *db1 = fnew(c1);
    l3d_vfe_max_backward(lw, arg1, m, p, c1, d1);
    l3d_relu_backward(d1, r1, (int64_t)n * c1, d1);
    l3d_batchnorm_backward(d1, a1, n, c1, 1, g1, sm1, si1, 1, d1, dg1, db1);
    l3d_linear_backward(d1, cat, w1, n, 2 * c0, c1, dcat, dw1);
    l3d_vfe_max_concat_backward(dcat, arg0, m, p, c0, d0);
    l3d_relu_backward(d0, r0, (int64_t)n * c0, d0);
    l3d_batchnorm_backward(d0, a0, n, c0, 1, g0, sm0, si0, 1, d0, dg0, db0);
    l3d_linear_backward(d0, f, w0, n, 10, c0, NULL, dw0);
    check_norm("vfe dgamma1", dg1, t.dg1, c1, 1e-4);
    check_norm("vfe dbeta1", db1, t.db1, c1, 1e-4);
    check_norm("vfe dw1", dw1, t.dw1, c1 * 2 * c0, 1e-4);
    check_norm("vfe dgamma0", dg0, t.dg0, c0, 1e-4);
    check_norm("vfe dbeta0", db0, t.db0, c0, 1e-4);
    check_norm("vfe dw0", dw0, t.dw0, c0 * 10, 1e-4);

    float *fl[] = {w0, w1, g0, b0, g1, b1, lw, f, a0, z0, r0, cat, a1, z1, r1, out, rs[0], rs[1],
                   rs[2], rs[3], sm0, si0, sm1, si1, d1, dcat, d0, dw0, dw1, dg0, db0, dg1, db1};
    for (size_t i = 0; i < sizeof fl / sizeof fl[0]; i++)
        free(fl[i]);
    free(arg0), free(arg1), free(scale);
    rnet_free(&t);
    free_pillars(&pl);
}

static void test_vfe_composed(void **state)
{
    (void)state;
    vfe_case(1, 32, 64); /* the SSN widths */
    vfe_case(2, 32, 64);
    vfe_case(37, 32, 64);
    vfe_case(250, 32, 64);
    vfe_case(9, 5, 7); /* odd widths */
    vfe_case(64, 3, 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offsets),          cmocka_unit_test(test_decorate),
        cmocka_unit_test(test_decorate_by_hand), cmocka_unit_test(test_linear),
        cmocka_unit_test(test_linear_threads),   cmocka_unit_test(test_batchnorm),
        cmocka_unit_test(test_batchnorm_edges),  cmocka_unit_test(test_relu),
        cmocka_unit_test(test_max_concat),       cmocka_unit_test(test_max_nan),
        cmocka_unit_test(test_scatter),          cmocka_unit_test(test_fd_kernels),
        cmocka_unit_test(test_fd_reference_bn),  cmocka_unit_test(test_fd_reference_vfe),
        cmocka_unit_test(test_vfe_composed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
