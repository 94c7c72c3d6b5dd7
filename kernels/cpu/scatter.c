/* Pillars to BEV canvas and back: see scatter.h. */
#include "kernels/cpu/scatter.h"

#include <string.h>

/* All coordinates checked before anything is written, so a bad pillar cannot
 * leave a half-written canvas (or write outside it). */
static int coords_ok(const int32_t *coords, int64_t m, int batch, int ny, int nx)
{
    for (int64_t v = 0; v < m; v++) {
        const int32_t *q = coords + 4 * v;
        if (q[0] < 0 || q[0] >= batch || q[2] < 0 || q[2] >= ny || q[3] < 0 || q[3] >= nx)
            return 0;
    }
    return 1;
}

/* Offset of canvas[b][0][y][x]; channel ch adds ch·ny·nx. */
static int64_t cell(const int32_t *q, int c, int ny, int nx)
{
    return (((int64_t)q[0] * c) * ny + q[2]) * nx + q[3];
}

int l3d_scatter_forward(const float *pillars, const int32_t *coords, int64_t m, int c, int batch,
                        int ny, int nx, float *canvas)
{
    if (!coords_ok(coords, m, batch, ny, nx))
        return -1;
    const int64_t plane = (int64_t)ny * nx;
    memset(canvas, 0, (size_t)batch * (size_t)c * (size_t)plane * sizeof(float));
    for (int64_t v = 0; v < m; v++) {
        float *dst = canvas + cell(coords + 4 * v, c, ny, nx);
        const float *src = pillars + v * c;
        for (int ch = 0; ch < c; ch++)
            dst[ch * plane] = src[ch];
    }
    return 0;
}

int l3d_scatter_backward(const float *dcanvas, const int32_t *coords, int64_t m, int c,
                         int batch, int ny, int nx, float *dpillars)
{
    if (!coords_ok(coords, m, batch, ny, nx))
        return -1;
    const int64_t plane = (int64_t)ny * nx;
    for (int64_t v = 0; v < m; v++) {
        const float *src = dcanvas + cell(coords + 4 * v, c, ny, nx);
        float *dst = dpillars + v * c;
        for (int ch = 0; ch < c; ch++)
            dst[ch] = src[ch * plane];
    }
    return 0;
}
