/* BatchNorm over channels of x [n][c][hw]: see batchnorm.h.
 *
 * Channels are processed in blocks of CB with per-block double accumulators on
 * the stack: each channel's sums run over (i, k) in ascending order whatever
 * the block size, and a block walks x row by row, so the [N][C] layout (hw 1)
 * is read sequentially rather than once per channel. */
#include "kernels/cpu/batchnorm.h"

#include <math.h>
#include <stddef.h>

#define CB 256

/* Pointer to x[i][ch][0]. */
static inline const float *at(const float *x, int64_t i, int c, int ch, int64_t hw)
{
    return x + (i * c + ch) * hw;
}

/* For channels c0..c0+cb-1: out[j] = Σ_i Σ_k (x - centre[j])^power, power 1 or 2. */
static void channel_sums(const float *x, int64_t n, int c, int64_t hw, int c0, int cb,
                         const double *centre, int power, double *out)
{
    for (int j = 0; j < cb; j++)
        out[j] = 0.0;
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < cb; j++) {
            const float *p = at(x, i, c, c0 + j, hw);
            double acc = out[j], m = centre ? centre[j] : 0.0;
            if (power == 1)
                for (int64_t k = 0; k < hw; k++)
                    acc += (double)p[k] - m;
            else
                for (int64_t k = 0; k < hw; k++) {
                    double d = (double)p[k] - m;
                    acc += d * d;
                }
            out[j] = acc;
        }
}

/* y = (x - mean) · scale + beta per channel, in double, rounded once. */
static void normalise(const float *x, int64_t n, int c, int64_t hw, int c0, int cb,
                      const double *mean, const double *scale, const float *beta, float *y)
{
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < cb; j++) {
            const float *p = at(x, i, c, c0 + j, hw);
            float *q = y + (p - x);
            double m = mean[j], s = scale[j], b = beta[c0 + j];
            for (int64_t k = 0; k < hw; k++)
                q[k] = (float)(((double)p[k] - m) * s + b);
        }
}

void l3d_batchnorm_forward_train(const float *x, int64_t n, int c, int64_t hw,
                                 const float *gamma, const float *beta, double eps,
                                 double momentum, float *running_mean, float *running_var,
                                 float *y, float *save_mean, float *save_invstd)
{
    const int64_t count = n * hw;
    for (int c0 = 0; c0 < c; c0 += CB) {
        const int cb = c - c0 < CB ? c - c0 : CB;
        double mean[CB], var[CB], scale[CB];
        channel_sums(x, n, c, hw, c0, cb, NULL, 1, mean);
        for (int j = 0; j < cb; j++)
            mean[j] = count > 0 ? mean[j] / (double)count : 0.0;
        /* Two passes: Σ(x - mean)² does not cancel the way E[x²] - E[x]² does. */
        channel_sums(x, n, c, hw, c0, cb, mean, 2, var);
        for (int j = 0; j < cb; j++) {
            const int ch = c0 + j;
            double biased = count > 0 ? var[j] / (double)count : 0.0;
            double invstd = 1.0 / sqrt(biased + eps);
            scale[j] = invstd * (double)gamma[ch];
            save_mean[ch] = (float)mean[j];
            save_invstd[ch] = (float)invstd;
            if (count == 0)
                continue;
            if (running_mean)
                running_mean[ch] = (float)((1.0 - momentum) * (double)running_mean[ch] +
                                           momentum * mean[j]);
            if (running_var && count > 1) {
                double unbiased = var[j] / (double)(count - 1);
                running_var[ch] = (float)((1.0 - momentum) * (double)running_var[ch] +
                                          momentum * unbiased);
            }
        }
        normalise(x, n, c, hw, c0, cb, mean, scale, beta, y);
    }
}

void l3d_batchnorm_forward_eval(const float *x, int64_t n, int c, int64_t hw,
                                const float *gamma, const float *beta, double eps,
                                const float *running_mean, const float *running_var, float *y,
                                float *save_mean, float *save_invstd)
{
    for (int c0 = 0; c0 < c; c0 += CB) {
        const int cb = c - c0 < CB ? c - c0 : CB;
        double mean[CB], scale[CB];
        for (int j = 0; j < cb; j++) {
            const int ch = c0 + j;
            double invstd = 1.0 / sqrt((double)running_var[ch] + eps);
            mean[j] = running_mean[ch];
            scale[j] = invstd * (double)gamma[ch];
            if (save_mean)
                save_mean[ch] = running_mean[ch];
            if (save_invstd)
                save_invstd[ch] = (float)invstd;
        }
        normalise(x, n, c, hw, c0, cb, mean, scale, beta, y);
    }
}

/* The [N][C] layout (BatchNorm1d in the VFE, N = M·20 slots): channels
 * innermost so the loops vectorise across channels. Each channel's sums still
 * run over the rows in order, so the bits equal the general path's. */
__attribute__((target_clones("avx512f", "avx2", "default"), optimize("O3")))
static void backward_rows(const float *dy, const float *x, int64_t n, int c, const float *gamma,
                          const float *save_mean, const float *save_invstd, int training,
                          float *dx, float *dgamma, float *dbeta, double *work)
{
    double *sdy = work, *sdyx = work + c, *m = work + 2 * c, *s = work + 3 * c;
    for (int ch = 0; ch < c; ch++) {
        sdy[ch] = sdyx[ch] = 0.0;
        m[ch] = save_mean[ch];
        s[ch] = save_invstd[ch];
    }
    for (int64_t i = 0; i < n; i++) {
        const float *p = x + i * c, *g = dy + i * c;
        for (int ch = 0; ch < c; ch++) {
            sdy[ch] += (double)g[ch];
            sdyx[ch] += (double)g[ch] * (((double)p[ch] - m[ch]) * s[ch]);
        }
    }
    double *gs = work + 4 * c, *mdy = work + 5 * c, *mdyx = work + 6 * c;
    for (int ch = 0; ch < c; ch++) {
        dbeta[ch] = (float)((double)dbeta[ch] + sdy[ch]);
        dgamma[ch] = (float)((double)dgamma[ch] + sdyx[ch]);
        gs[ch] = (double)gamma[ch] * s[ch];
        mdy[ch] = training && n > 0 ? sdy[ch] / (double)n : 0.0;
        mdyx[ch] = training && n > 0 ? sdyx[ch] / (double)n : 0.0;
    }
    for (int64_t i = 0; i < n; i++) {
        const float *p = x + i * c, *g = dy + i * c;
        float *q = dx + i * c;
        for (int ch = 0; ch < c; ch++) {
            double xhat = ((double)p[ch] - m[ch]) * s[ch];
            q[ch] = (float)(gs[ch] * ((double)g[ch] - mdy[ch] - xhat * mdyx[ch]));
        }
    }
}

void l3d_batchnorm_backward(const float *dy, const float *x, int64_t n, int c, int64_t hw,
                            const float *gamma, const float *save_mean,
                            const float *save_invstd, int training, float *dx, float *dgamma,
                            float *dbeta)
{
    const int64_t count = n * hw;
    if (hw == 1 && c > 0 && c <= 4096) {
        double work[7 * 4096];
        backward_rows(dy, x, n, c, gamma, save_mean, save_invstd, training, dx, dgamma, dbeta,
                      work);
        return;
    }
    for (int c0 = 0; c0 < c; c0 += CB) {
        const int cb = c - c0 < CB ? c - c0 : CB;
        double sdy[CB], sdyx[CB]; /* Σ dy, Σ dy·xhat */
        for (int j = 0; j < cb; j++)
            sdy[j] = sdyx[j] = 0.0;
        for (int64_t i = 0; i < n; i++)
            for (int j = 0; j < cb; j++) {
                const int ch = c0 + j;
                const float *p = at(x, i, c, ch, hw), *g = dy + (p - x);
                double m = save_mean[ch], s = save_invstd[ch], a = sdy[j], b = sdyx[j];
                for (int64_t k = 0; k < hw; k++) {
                    a += (double)g[k];
                    b += (double)g[k] * (((double)p[k] - m) * s);
                }
                sdy[j] = a;
                sdyx[j] = b;
            }
        for (int j = 0; j < cb; j++) {
            dbeta[c0 + j] = (float)((double)dbeta[c0 + j] + sdy[j]);
            dgamma[c0 + j] = (float)((double)dgamma[c0 + j] + sdyx[j]);
        }
        /* dx written after both sums are complete, so dx may alias dy. */
        for (int64_t i = 0; i < n; i++)
            for (int j = 0; j < cb; j++) {
                const int ch = c0 + j;
                const float *p = at(x, i, c, ch, hw), *g = dy + (p - x);
                float *q = dx + (p - x);
                double m = save_mean[ch], s = save_invstd[ch];
                double gs = (double)gamma[ch] * s;
                double mdy = training && count > 0 ? sdy[j] / (double)count : 0.0;
                double mdyx = training && count > 0 ? sdyx[j] / (double)count : 0.0;
                for (int64_t k = 0; k < hw; k++) {
                    double xhat = ((double)p[k] - m) * s;
                    q[k] = (float)(gs * ((double)g[k] - mdy - xhat * mdyx));
                }
            }
    }
}
