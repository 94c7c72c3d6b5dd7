/* BatchNorm over channels of x [n][c][hw]: see batchnorm.h.
 *
 * Channels are processed in blocks of CB with per-block double accumulators on
 * the stack: each channel's sums run over (i, k) in ascending order whatever
 * the block size, and a block walks x row by row, so the [N][C] layout (hw 1)
 * is read sequentially rather than once per channel. */
#include "kernels/cpu/batchnorm.h"

#include <math.h>
#include <stddef.h>

#include "kernels/cpu/threads.h"

/* Every kernel below works channel by channel, so channels are split among
 * threads (l3d_parallel_ranges) without changing any result. */
typedef struct bn_args {
    const float *x, *dy, *gamma, *beta, *save_mean, *save_invstd;
    const float *running_mean_in, *running_var_in;
    int64_t n, hw;
    int c, training;
    double eps, momentum;
    float *running_mean, *running_var, *y, *out_mean, *out_invstd, *dx, *dgamma, *dbeta;
} bn_args;

/* Below this many values a call runs on one thread: thread start-up would cost more. */
static int64_t min_channels_per_thread(int64_t n, int c, int64_t hw)
{
    return n * hw * c < (1 << 16) ? c : 1;
}

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

static void train_range(void *ctx, int64_t ch0, int64_t ch1)
{
    const bn_args *a = ctx;
    const float *x = a->x, *gamma = a->gamma, *beta = a->beta;
    const int64_t n = a->n, hw = a->hw, count = n * hw;
    const int c = a->c;
    const double eps = a->eps, momentum = a->momentum;
    float *running_mean = a->running_mean, *running_var = a->running_var, *y = a->y;
    float *save_mean = a->out_mean, *save_invstd = a->out_invstd;
    for (int c0 = (int)ch0; c0 < ch1; c0 += CB) {
        const int cb = ch1 - c0 < CB ? (int)(ch1 - c0) : CB;
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

void l3d_batchnorm_forward_train(const float *x, int64_t n, int c, int64_t hw,
                                 const float *gamma, const float *beta, double eps,
                                 double momentum, float *running_mean, float *running_var,
                                 float *y, float *save_mean, float *save_invstd)
{
    bn_args a = {.x = x, .gamma = gamma, .beta = beta, .n = n, .hw = hw, .c = c, .eps = eps,
                 .momentum = momentum, .running_mean = running_mean, .running_var = running_var,
                 .y = y, .out_mean = save_mean, .out_invstd = save_invstd};
    l3d_parallel_ranges(c, min_channels_per_thread(n, c, hw), train_range, &a);
}

static void eval_range(void *ctx, int64_t ch0, int64_t ch1)
{
    const bn_args *a = ctx;
    const float *x = a->x, *gamma = a->gamma, *beta = a->beta;
    const float *running_mean = a->running_mean_in, *running_var = a->running_var_in;
    const int64_t n = a->n, hw = a->hw;
    const int c = a->c;
    const double eps = a->eps;
    float *y = a->y, *save_mean = a->out_mean, *save_invstd = a->out_invstd;
    for (int c0 = (int)ch0; c0 < ch1; c0 += CB) {
        const int cb = ch1 - c0 < CB ? (int)(ch1 - c0) : CB;
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

void l3d_batchnorm_forward_eval(const float *x, int64_t n, int c, int64_t hw,
                                const float *gamma, const float *beta, double eps,
                                const float *running_mean, const float *running_var, float *y,
                                float *save_mean, float *save_invstd)
{
    bn_args a = {.x = x, .gamma = gamma, .beta = beta, .running_mean_in = running_mean,
                 .running_var_in = running_var, .n = n, .hw = hw, .c = c, .eps = eps, .y = y,
                 .out_mean = save_mean, .out_invstd = save_invstd};
    l3d_parallel_ranges(c, min_channels_per_thread(n, c, hw), eval_range, &a);
}

/* The [N][C] layout (BatchNorm1d in the VFE, N = M·20 slots): channels
 * innermost so the loops vectorise across channels. Each channel's sums still
 * run over the rows in order, so the bits equal the general path's. */
__attribute__((target_clones("avx512f", "avx2", "default"), optimize("O3")))
static void backward_rows(const float *dy, const float *x, int64_t n, int stride, int ch0,
                          int c, const float *gamma, const float *save_mean,
                          const float *save_invstd, int training, float *dx, float *dgamma,
                          float *dbeta, double *work)
{
    /* channels ch0 .. ch0+c-1 of rows of `stride` floats: shift every pointer once */
    dy += ch0; x += ch0; dx += ch0; gamma += ch0; save_mean += ch0; save_invstd += ch0;
    dgamma += ch0; dbeta += ch0;
    double *sdy = work, *sdyx = work + c, *m = work + 2 * c, *s = work + 3 * c;
    for (int ch = 0; ch < c; ch++) {
        sdy[ch] = sdyx[ch] = 0.0;
        m[ch] = save_mean[ch];
        s[ch] = save_invstd[ch];
    }
    for (int64_t i = 0; i < n; i++) {
        const float *p = x + i * stride, *g = dy + i * stride;
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
        const float *p = x + i * stride, *g = dy + i * stride;
        float *q = dx + i * stride;
        for (int ch = 0; ch < c; ch++) {
            double xhat = ((double)p[ch] - m[ch]) * s[ch];
            q[ch] = (float)(gs[ch] * ((double)g[ch] - mdy[ch] - xhat * mdyx[ch]));
        }
    }
}

static void rows_range(void *ctx, int64_t ch0, int64_t ch1)
{
    const bn_args *a = ctx;
    double work[7 * 512];
    for (int64_t c0 = ch0; c0 < ch1; c0 += 512) {
        int cb = ch1 - c0 < 512 ? (int)(ch1 - c0) : 512;
        backward_rows(a->dy, a->x, a->n, a->c, (int)c0, cb, a->gamma, a->save_mean,
                      a->save_invstd, a->training, a->dx, a->dgamma, a->dbeta, work);
    }
}

static void backward_range(void *ctx, int64_t ch0, int64_t ch1)
{
    const bn_args *a = ctx;
    const float *dy = a->dy, *x = a->x, *gamma = a->gamma, *save_mean = a->save_mean,
                *save_invstd = a->save_invstd;
    const int64_t n = a->n, hw = a->hw, count = n * hw;
    const int c = a->c, training = a->training;
    float *dx = a->dx, *dgamma = a->dgamma, *dbeta = a->dbeta;
    for (int c0 = (int)ch0; c0 < ch1; c0 += CB) {
        const int cb = ch1 - c0 < CB ? (int)(ch1 - c0) : CB;
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

void l3d_batchnorm_backward(const float *dy, const float *x, int64_t n, int c, int64_t hw,
                            const float *gamma, const float *save_mean,
                            const float *save_invstd, int training, float *dx, float *dgamma,
                            float *dbeta)
{
    bn_args a = {.x = x, .dy = dy, .gamma = gamma, .save_mean = save_mean,
                 .save_invstd = save_invstd, .n = n, .hw = hw, .c = c, .training = training,
                 .dx = dx, .dgamma = dgamma, .dbeta = dbeta};
    l3d_parallel_ranges(c, min_channels_per_thread(n, c, hw), hw == 1 ? rows_range : backward_range,
                        &a);
}
