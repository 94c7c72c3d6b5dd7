/* Dynamic loss scaler; semantics (DeepSpeed's, and where we differ) in loss_scaler.h. */
#include "trainer/loss_scaler.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kernels/cpu/half.h"

void l3d_scaler_init_custom(l3d_loss_scaler *s, double init_scale, double factor, int64_t window,
                            int delayed_shift, int consecutive_hysteresis, double min_scale)
{
    memset(s, 0, sizeof *s);
    s->scale = init_scale;
    s->factor = factor;
    s->window = window > 0 ? window : 1;
    s->delayed_shift = delayed_shift > 0 ? delayed_shift : 1;
    s->cur_hysteresis = s->delayed_shift;
    s->consecutive_hysteresis = consecutive_hysteresis != 0;
    s->min_scale = min_scale;
    s->cur_iter = 0;
    s->last_overflow_iter = -1;
}

void l3d_scaler_init(l3d_loss_scaler *s)
{
    l3d_scaler_init_custom(s, 4294967296.0, 2.0, 1000, 2, 0, 1.0);
}

static void say(char *log, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *log, size_t len, const char *fmt, ...)
{
    if (!log || !len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(log, len, fmt, ap);
    va_end(ap);
}

int l3d_scaler_update(l3d_loss_scaler *s, int overflow, char *log, size_t log_len)
{
    int ev = L3D_SCALER_OK;
    if (log && log_len)
        log[0] = 0;
    if (overflow) {
        s->skipped++;
        if (s->delayed_shift == 1 || s->cur_hysteresis == 1) {
            double next = fmax(s->scale / s->factor, s->min_scale);
            if (s->scale == s->min_scale) {
                ev = L3D_SCALER_AT_MIN;
                say(log, log_len,
                    "loss scale: overflow at update %lld, skipping step; scale already at the "
                    "minimum %.17g (DeepSpeed would stop here)",
                    (long long)s->cur_iter, s->scale);
            } else {
                ev = L3D_SCALER_BACKOFF;
                say(log, log_len,
                    "loss scale: overflow at update %lld, skipping step; scale %.17g -> %.17g",
                    (long long)s->cur_iter, s->scale, next);
            }
            s->scale = next;
        } else {
            ev = L3D_SCALER_HYSTERESIS;
            say(log, log_len,
                "loss scale: overflow at update %lld, skipping step; scale %.17g kept, "
                "hysteresis %d -> %d",
                (long long)s->cur_iter, s->scale, s->cur_hysteresis, s->cur_hysteresis - 1);
            s->cur_hysteresis--;
        }
        s->last_overflow_iter = s->cur_iter;
    } else {
        if (s->consecutive_hysteresis)
            s->cur_hysteresis = s->delayed_shift;
        /* Python's % and C's agree here: the difference is always positive. */
        if ((s->cur_iter - s->last_overflow_iter) % s->window == 0) {
            if (!s->consecutive_hysteresis)
                s->cur_hysteresis = s->delayed_shift;
            ev = L3D_SCALER_GREW;
            say(log, log_len, "loss scale: %lld updates without overflow; scale %.17g -> %.17g",
                (long long)s->window, s->scale, s->scale * s->factor);
            s->scale *= s->factor;
        }
    }
    s->cur_iter++;
    return ev;
}

int l3d_scaler_unscale_update(l3d_loss_scaler *s, float *grad, size_t n, char *log,
                              size_t log_len)
{
    int overflow = l3d_has_nonfinite(grad, n);
    if (!overflow) {
        /* As torch.cuda.amp: inv_scale = (float)(1.0 / scale), grads multiplied. */
        const float inv = (float)(1.0 / s->scale);
        for (size_t i = 0; i < n; i++)
            grad[i] *= inv;
    }
    return l3d_scaler_update(s, overflow, log, log_len);
}

/* ---- byte image ------------------------------------------------------------ */

#define SCALER_VERSION 1u

static void put64(uint8_t *p, uint64_t x)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(x >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x |= (uint64_t)p[i] << (8 * i);
    return x;
}

static void putd(uint8_t *p, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    put64(p, u);
}

static double getd(const uint8_t *p)
{
    uint64_t u = get64(p);
    double d;
    memcpy(&d, &u, 8);
    return d;
}

/* Layout: u32 version, u32 0, f64 scale, f64 factor, f64 min_scale, i64 window,
 * i32 delayed_shift, i32 cur_hysteresis, i32 consecutive, i32 0, i64 cur_iter,
 * i64 last_overflow_iter, i64 skipped. 32-bit fields are stored in 64-bit
 * slots pairwise (low word first). */
void l3d_scaler_save(const l3d_loss_scaler *s, uint8_t out[L3D_SCALER_BYTES])
{
    memset(out, 0, L3D_SCALER_BYTES);
    put64(out + 0, SCALER_VERSION);
    putd(out + 8, s->scale);
    putd(out + 16, s->factor);
    putd(out + 24, s->min_scale);
    put64(out + 32, (uint64_t)s->window);
    put64(out + 40, (uint32_t)s->delayed_shift | (uint64_t)(uint32_t)s->cur_hysteresis << 32);
    put64(out + 48, (uint32_t)s->consecutive_hysteresis);
    put64(out + 56, (uint64_t)s->cur_iter);
    put64(out + 64, (uint64_t)s->last_overflow_iter);
    put64(out + 72, (uint64_t)s->skipped);
}

int l3d_scaler_restore(l3d_loss_scaler *s, const uint8_t in[L3D_SCALER_BYTES])
{
    l3d_loss_scaler t;
    memset(&t, 0, sizeof t);
    if (get64(in + 0) != SCALER_VERSION)
        return -1;
    t.scale = getd(in + 8);
    t.factor = getd(in + 16);
    t.min_scale = getd(in + 24);
    t.window = (int64_t)get64(in + 32);
    uint64_t w = get64(in + 40);
    t.delayed_shift = (int32_t)(uint32_t)w;
    t.cur_hysteresis = (int32_t)(uint32_t)(w >> 32);
    t.consecutive_hysteresis = (int32_t)(uint32_t)get64(in + 48);
    t.cur_iter = (int64_t)get64(in + 56);
    t.last_overflow_iter = (int64_t)get64(in + 64);
    t.skipped = (int64_t)get64(in + 72);
    if (!(t.scale > 0) || !isfinite(t.scale) || !(t.factor > 0) || !isfinite(t.factor) ||
        !(t.min_scale >= 0) || t.window <= 0 || t.delayed_shift <= 0 || t.cur_hysteresis <= 0 ||
        t.cur_hysteresis > t.delayed_shift || t.cur_iter < 0 || t.last_overflow_iter < -1 ||
        t.last_overflow_iter >= t.cur_iter || t.skipped < 0 || t.skipped > t.cur_iter)
        return -1;
    *s = t;
    return 0;
}
