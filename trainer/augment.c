#include "trainer/augment.h"

#include <math.h>
#include <string.h>

void l3d_augment_apply(const l3d_aug_draw *d, float *p, int64_t n, int dim, float *b, int64_t nb)
{
    /* rotation as MMDetection3D: row vector times [[c, s, 0], [-s, c, 0], [0, 0, 1]],
     * i.e. x' = c·x - s·y, y' = s·x + c·y, in float32 */
    float c = cosf(d->rotation), s = sinf(d->rotation), k = d->scale;
    for (int64_t i = 0; i < n; i++) {
        float *q = p + i * dim;
        float x = q[0], y = q[1];
        q[0] = (c * x - s * y) * k;
        q[1] = (s * x + c * y) * k;
        q[2] = q[2] * k;
    }
    for (int64_t i = 0; i < nb; i++) {
        float *q = b + 7 * i;
        float x = q[0], y = q[1];
        q[0] = (c * x - s * y) * k;
        q[1] = (s * x + c * y) * k;
        q[2] *= k;
        q[3] *= k;
        q[4] *= k;
        q[5] *= k;
        q[6] += d->rotation;
    }
    if (d->flip_h) {
        for (int64_t i = 0; i < n; i++)
            p[i * dim + 1] = -p[i * dim + 1];
        for (int64_t i = 0; i < nb; i++) {
            b[7 * i + 1] = -b[7 * i + 1];
            b[7 * i + 6] = -b[7 * i + 6];
        }
    }
    if (d->flip_v) {
        for (int64_t i = 0; i < n; i++)
            p[i * dim] = -p[i * dim];
        for (int64_t i = 0; i < nb; i++) {
            b[7 * i] = -b[7 * i];
            b[7 * i + 6] = (float)M_PI - b[7 * i + 6];
        }
    }
}

int64_t l3d_boxes_range_filter(float *b, int32_t *labels, int64_t nb, const float r[6])
{
    int64_t w = 0;
    for (int64_t i = 0; i < nb; i++) {
        const float *q = b + 7 * i;
        if (!(q[0] > r[0] && q[0] < r[3] && q[1] > r[1] && q[1] < r[4]))
            continue;
        if (w != i) {
            memmove(b + 7 * w, q, 7 * sizeof *b);
            if (labels)
                labels[w] = labels[i];
        }
        w++;
    }
    for (int64_t i = 0; i < w; i++) {
        /* limit_period(yaw, offset 0.5, period 2π) */
        float yaw = b[7 * i + 6];
        const float two_pi = (float)(2 * M_PI);
        b[7 * i + 6] = yaw - floorf(yaw / two_pi + 0.5f) * two_pi;
    }
    return w;
}

void l3d_boxes_to_bottom(float *b, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++)
        b[7 * i + 2] -= b[7 * i + 5] / 2;
}

void l3d_points_permute(const float *p, const int64_t *perm, int64_t n, int dim, float *out)
{
    for (int64_t i = 0; i < n; i++)
        memcpy(out + i * dim, p + perm[i] * dim, (size_t)dim * sizeof *p);
}
