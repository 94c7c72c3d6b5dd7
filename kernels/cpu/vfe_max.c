/* Per-pillar max and max-concat: see vfe_max.h. */
#include "kernels/cpu/vfe_max.h"

#include <string.h>

/* One pillar: y [c] and argmax [c] from x [p][c], channels innermost so the
 * slots are read in memory order. */
static void pillar_max(const float *x, int p, int c, float *y, int32_t *argmax)
{
    for (int ch = 0; ch < c; ch++) {
        y[ch] = x[ch];
        argmax[ch] = 0;
    }
    for (int s = 1; s < p; s++)
        for (int ch = 0; ch < c; ch++) {
            float v = x[s * c + ch], best = y[ch];
            /* strictly greater keeps the first maximum; a NaN wins once */
            if (v > best || (v != v && best == best)) {
                y[ch] = v;
                argmax[ch] = s;
            }
        }
}

void l3d_vfe_max_forward(const float *x, int64_t m, int p, int c, float *y, int32_t *argmax)
{
    for (int64_t v = 0; v < m; v++)
        pillar_max(x + v * p * c, p, c, y + v * c, argmax + v * c);
}

void l3d_vfe_max_backward(const float *dy, const int32_t *argmax, int64_t m, int p, int c,
                          float *dx)
{
    if (m > 0)
        memset(dx, 0, (size_t)m * (size_t)p * (size_t)c * sizeof(float));
    for (int64_t v = 0; v < m; v++)
        for (int ch = 0; ch < c; ch++)
            dx[(v * p + argmax[v * c + ch]) * c + ch] = dy[v * c + ch];
}

void l3d_vfe_max_concat_forward(const float *x, int64_t m, int p, int c, float *y,
                                int32_t *argmax)
{
    for (int64_t v = 0; v < m; v++) {
        const float *xv = x + v * p * c;
        float *yv = y + v * p * 2 * c;
        /* the max goes into slot 0's second half first, then is copied */
        pillar_max(xv, p, c, yv + c, argmax + v * c);
        for (int s = 0; s < p; s++) {
            memcpy(yv + s * 2 * c, xv + s * c, (size_t)c * sizeof(float));
            if (s > 0)
                memcpy(yv + s * 2 * c + c, yv + c, (size_t)c * sizeof(float));
        }
    }
}

void l3d_vfe_max_concat_backward(const float *dy, const int32_t *argmax, int64_t m, int p, int c,
                                 float *dx)
{
    for (int64_t v = 0; v < m; v++) {
        const float *g = dy + v * p * 2 * c;
        float *d = dx + v * p * c;
        for (int s = 0; s < p; s++)
            memcpy(d + s * c, g + s * 2 * c, (size_t)c * sizeof(float));
        for (int ch = 0; ch < c; ch++) {
            double sum = 0.0;
            for (int s = 0; s < p; s++)
                sum += (double)g[s * 2 * c + c + ch];
            d[argmax[v * c + ch] * c + ch] += (float)sum;
        }
    }
}
