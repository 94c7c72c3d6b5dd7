/* Box coder and direction bins; semantics in box_coder.h (spec §7.2, §7.3, §9).
 * Each line mirrors one PyTorch tensor operation of MMDetection3D so that the
 * float32 rounding happens at the same places. */
#include "trainer/box_coder.h"

#include <math.h>

float l3d_limit_period(float val, float offset, float period)
{
    float q = val / period + offset;
    return val - floorf(q) * period;
}

void l3d_box_encode(const float a[7], const float g[7], float t[7])
{
    float za = a[2] + a[5] / 2.0f;
    float zg = g[2] + g[5] / 2.0f;
    /* torch.sqrt(la**2 + wa**2) with la = dy, wa = dx */
    float diag = sqrtf(a[4] * a[4] + a[3] * a[3]);
    t[0] = (g[0] - a[0]) / diag;
    t[1] = (g[1] - a[1]) / diag;
    t[2] = (zg - za) / a[5];
    t[3] = logf(g[3] / a[3]);
    t[4] = logf(g[4] / a[4]);
    t[5] = logf(g[5] / a[5]);
    t[6] = g[6] - a[6];
}

void l3d_box_decode(const float a[7], const float t[7], float b[7])
{
    float za = a[2] + a[5] / 2.0f;
    float diag = sqrtf(a[4] * a[4] + a[3] * a[3]);
    float xt = t[0] * diag, yt = t[1] * diag, zt = t[2] * a[5];
    b[0] = xt + a[0];
    b[1] = yt + a[1];
    float zc = zt + za;
    b[3] = expf(t[3]) * a[3];
    b[4] = expf(t[4]) * a[4];
    b[5] = expf(t[5]) * a[5];
    b[6] = t[6] + a[6];
    b[2] = zc - b[5] / 2.0f;
}

int l3d_dir_target(float t6, float anchor_yaw)
{
    float rot = t6 + anchor_yaw;
    float u = l3d_limit_period(rot + L3D_DIR_OFFSET, 0.0f, L3D_2PI_F);
    float bin = floorf(u / L3D_PI_F);   /* 2*pi / num_bins with 2 bins */
    if (!(bin > 0.0f))
        return 0;   /* also NaN, as clamp of a NaN long would be arbitrary */
    return bin >= 1.0f ? 1 : 0;
}

float l3d_dir_fix(float yaw, int dir_label)
{
    float v = l3d_limit_period(yaw + L3D_DIR_OFFSET, 0.0f, L3D_PI_F);
    return (v - L3D_DIR_OFFSET) + L3D_PI_F * (float)dir_label;
}
