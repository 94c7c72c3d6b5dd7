/* Dynamic loss scaling for the amp and fp16 modes: DeepSpeed's
 * DynamicLossScaler (deepspeed/runtime/fp16/loss_scaler.py) with the seed's
 * settings: initial scale 2^32, factor 2, window 1000, hysteresis
 * (delayed_shift) 2, consecutive_hysteresis off, minimum 1.
 *
 * update(overflow), literally as DeepSpeed's update_scale:
 *   overflow:
 *     if delayed_shift == 1 or cur_hysteresis == 1:
 *         scale = max(scale / factor, min_scale)          (the step is skipped)
 *     else:
 *         cur_hysteresis -= 1                             (skipped, scale kept)
 *     last_overflow_iter = cur_iter
 *   no overflow:
 *     if consecutive_hysteresis: cur_hysteresis = delayed_shift
 *     if (cur_iter - last_overflow_iter) % window == 0:
 *         if not consecutive_hysteresis: cur_hysteresis = delayed_shift
 *         scale *= factor
 *   cur_iter += 1
 * So with hysteresis 2 the first overflow only spends the hysteresis; every
 * later overflow halves the scale, until a growth (window clean steps in a
 * row: the 1000th after the last overflow, or the 1000th of the run) doubles
 * it and restores the hysteresis. Clean steps between overflows do not
 * restore it. Growth is periodic: after 2000 clean steps the scale has
 * doubled twice. There is no upper bound (DeepSpeed has none either).
 *
 * One deliberate difference: DeepSpeed raises an exception when an overflow
 * arrives with the scale already at the minimum and the hysteresis spent
 * (raise_error_at_min_scale). Here the step is skipped, the scale stays at
 * the minimum and the event L3D_SCALER_AT_MIN is returned: the trainer
 * decides whether to stop.
 *
 * Unscaling: the gradients are divided by the scale the loss was multiplied
 * by (read l3d_scaler_unscale_update). DeepSpeed's FP16_Optimizer updates the
 * scale before it unscales, so on a growth step it divides by the doubled
 * scale and that step's gradient is halved; we do not copy that quirk. */
#ifndef LIDAR3D_TRAINER_LOSS_SCALER_H
#define LIDAR3D_TRAINER_LOSS_SCALER_H

#include <stddef.h>
#include <stdint.h>

typedef struct l3d_loss_scaler {
    double scale;                  /* multiply the loss by this before backward */
    double factor;                 /* 2 */
    double min_scale;              /* 1 */
    int64_t window;                /* 1000 */
    int32_t delayed_shift;         /* hysteresis: 2 */
    int32_t cur_hysteresis;
    int32_t consecutive_hysteresis;/* 0 */
    int64_t cur_iter;              /* updates so far, overflowing or not */
    int64_t last_overflow_iter;    /* -1 before the first */
    int64_t skipped;               /* overflowing updates so far (for the log) */
} l3d_loss_scaler;

enum l3d_scaler_event {
    L3D_SCALER_OK = 0,             /* no overflow, scale unchanged: step */
    L3D_SCALER_GREW = 1,           /* no overflow, scale multiplied: step */
    L3D_SCALER_HYSTERESIS = 2,     /* overflow, hysteresis spent, scale kept: skip */
    L3D_SCALER_BACKOFF = 3,        /* overflow, scale divided: skip */
    L3D_SCALER_AT_MIN = 4,         /* overflow with the scale at the minimum: skip */
};

/* The seed's settings (above). */
void l3d_scaler_init(l3d_loss_scaler *s);
void l3d_scaler_init_custom(l3d_loss_scaler *s, double init_scale, double factor, int64_t window,
                            int delayed_shift, int consecutive_hysteresis, double min_scale);

/* One update with the overflow flag of this step; returns an l3d_scaler_event.
 * When log is not NULL it receives one line for every event other than OK
 * (what happened, the iteration, old and new scale or hysteresis). */
int l3d_scaler_update(l3d_loss_scaler *s, int overflow, char *log, size_t log_len);

/* Step skipped for this event? */
static inline int l3d_scaler_skipped(int event)
{
    return event >= L3D_SCALER_HYSTERESIS;
}

/* The usual call after backward: overflow = any non-finite in grad[0..n);
 * when finite, grad *= (float)(1 / scale) with the scale the loss was
 * multiplied by (exact for the power-of-two scales used here); then
 * l3d_scaler_update. Returns the event; on overflow the gradients are left
 * as they are (the caller zeroes them). */
int l3d_scaler_unscale_update(l3d_loss_scaler *s, float *grad, size_t n, char *log,
                              size_t log_len);

/* Fixed little-endian byte image of the whole state, for checkpoints. */
#define L3D_SCALER_BYTES 80
void l3d_scaler_save(const l3d_loss_scaler *s, uint8_t out[L3D_SCALER_BYTES]);
/* 0, or -1 when the image is not a valid state (bad version, non-positive
 * scale or window, ...), in which case *s is unchanged. */
int l3d_scaler_restore(l3d_loss_scaler *s, const uint8_t in[L3D_SCALER_BYTES]);

#endif
