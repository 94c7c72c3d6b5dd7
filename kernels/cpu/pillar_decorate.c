/* HardVFE decoration: see pillar_decorate.h. */
#include "kernels/cpu/pillar_decorate.h"

#include <string.h>

void l3d_pillar_offsets(const float range[6], const float size[3], float offset[3])
{
    for (int j = 0; j < 3; j++)
        offset[j] = (float)((double)size[j] / 2.0 + (double)range[j]);
}

void l3d_pillar_decorate_forward(const float *voxels, const int32_t *num_points,
                                 const int32_t *coords, int coord_dim, int64_t m, int p,
                                 const float size[3], const float offset[3], float *features)
{
    const int zyx = coord_dim - 3; /* index of z in a coords row */
    for (int64_t v = 0; v < m; v++) {
        const float *r = voxels + v * p * L3D_DECORATE_IN;
        float *f = features + v * p * L3D_DECORATE_OUT;
        int n = num_points[v] < 0 ? 0 : num_points[v] > p ? p : num_points[v];
        if (n == 0) {
            memset(f, 0, (size_t)p * L3D_DECORATE_OUT * sizeof(float));
            continue;
        }
        /* All p slots, as PyTorch sums them; in double, so the order is moot. */
        double sum[3] = {0, 0, 0};
        for (int s = 0; s < p; s++)
            for (int j = 0; j < 3; j++)
                sum[j] += r[s * L3D_DECORATE_IN + j];
        const int32_t *c = coords + v * coord_dim + zyx;
        int32_t cell[3] = {c[2], c[1], c[0]}; /* x, y, z */
        float mean[3], centre[3];
        for (int j = 0; j < 3; j++) {
            mean[j] = (float)(sum[j] / n);
            float scaled = (float)cell[j] * size[j];
            centre[j] = scaled + offset[j];
        }
        for (int s = 0; s < n; s++) {
            const float *q = r + s * L3D_DECORATE_IN;
            float *o = f + s * L3D_DECORATE_OUT;
            for (int j = 0; j < 4; j++)
                o[j] = q[j];
            for (int j = 0; j < 3; j++) {
                o[4 + j] = q[j] - mean[j];
                o[7 + j] = q[j] - centre[j];
            }
        }
        memset(f + n * L3D_DECORATE_OUT, 0, (size_t)(p - n) * L3D_DECORATE_OUT * sizeof(float));
    }
}
