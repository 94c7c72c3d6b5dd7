/* AdamW, LR schedule, gradient accumulation; semantics in optim.h. */
#include "trainer/optim.h"

#include <math.h>
#include <string.h>

#include "kernels/cpu/half.h"

void l3d_adamw_init(l3d_adamw *o)
{
    o->beta1 = 0.9;
    o->beta2 = 0.999;
    o->eps = 1e-8;
    o->weight_decay = 0.01;
    o->step = 0;
}

/* Clones with hardware FMA: fmaf is correctly rounded either way, so the bits
 * are the same; without them GCC calls libm's fmaf three times per element. */
__attribute__((target_clones("arch=x86-64-v3", "default")))
void l3d_adamw_update(const l3d_adamw *o, double lr, int64_t t, float *w, const float *g,
                      float *m, float *v, size_t n)
{
    /* Python-side scalars, in double, exactly as torch/optim/adamw.py forms them. */
    double bc1 = 1.0 - pow(o->beta1, (double)t);
    double bc2 = 1.0 - pow(o->beta2, (double)t);
    const float decay = (float)(1.0 - lr * o->weight_decay);
    const float w1 = (float)(1.0 - o->beta1);
    const float b2 = (float)o->beta2;
    const float w2 = (float)(1.0 - o->beta2);
    const float bc2_sqrt = (float)sqrt(bc2);
    const float eps = (float)o->eps;
    const float neg_step = (float)((lr / bc1) * -1.0);
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float wi = w[i] * decay;
        float mi = fmaf(w1, gi - m[i], m[i]);
        float vi = fmaf(w2, gi * gi, v[i] * b2);
        float d = sqrtf(vi) / bc2_sqrt + eps;
        w[i] = fmaf(neg_step, mi / d, wi);
        m[i] = mi;
        v[i] = vi;
    }
}

void l3d_adamw_step(l3d_adamw *o, double lr, l3d_params *p)
{
    o->step++;
    size_t n = p->layout.numel;
    if (p->master) {
        l3d_adamw_update(o, lr, o->step, p->master, p->grad, p->m, p->v, n);
        for (size_t i = 0; i < n; i++)
            p->param[i] = l3d_fp16_round(p->master[i]);
    } else {
        l3d_adamw_update(o, lr, o->step, p->param, p->grad, p->m, p->v, n);
    }
}

void l3d_lr_schedule_ssn(l3d_lr_schedule *s, int64_t iters_per_epoch)
{
    memset(s, 0, sizeof *s);
    s->base_lr = 1e-3;
    s->warmup_start = 1.0 / 1000;
    s->warmup_end = 1000;
    s->iters_per_epoch = iters_per_epoch;
    s->n_milestones = 2;
    s->milestones[0] = 20;
    s->milestones[1] = 23;
    s->gamma = 0.1;
}

/* MultiStepLR's step at iteration it: gamma ** (how often it is a milestone). */
static double multistep(const l3d_lr_schedule *s, int64_t it, double lr)
{
    int count = 0;
    for (int k = 0; k < s->n_milestones && k < L3D_LR_MAX_MILESTONES; k++)
        count += s->milestones[k] * s->iters_per_epoch == it;
    return count ? lr * pow(s->gamma, count) : lr;
}

double l3d_lr_at(const l3d_lr_schedule *s, int64_t iter)
{
    /* MMEngine steps [LinearLR, MultiStepLR] in config order once at construction
     * (iteration 0) and once after every iteration; each multiplies the current lr. */
    double lr = s->base_lr;
    const double sf = s->warmup_start, ef = 1.0;
    const double total = (double)(s->warmup_end - 1);
    int64_t linear_last = s->warmup_end > 0 ? s->warmup_end - 1 : -1;
    int64_t upto = iter < linear_last ? iter : linear_last;
    for (int64_t it = 0; it <= upto; it++) {
        if (it == 0)
            lr = lr * sf;
        else
            lr = lr * (1. + (ef - sf) / (total * sf + (double)(it - 1) * (ef - sf)));
        lr = multistep(s, it, lr);
    }
    /* After the warm-up only milestones change lr: visit them in iteration order. */
    int64_t prev = upto;
    for (;;) {
        int64_t next = INT64_MAX;
        for (int k = 0; k < s->n_milestones && k < L3D_LR_MAX_MILESTONES; k++) {
            int64_t at = s->milestones[k] * s->iters_per_epoch;
            if (at > prev && at <= iter && at < next)
                next = at;
        }
        if (next == INT64_MAX)
            break;
        lr = multistep(s, next, lr);
        prev = next;
    }
    return lr;
}

void l3d_accum_init(l3d_accum *a, int n)
{
    a->n = n > 0 ? n : 1;
    a->done = 0;
}

float l3d_accum_loss_grad(const l3d_accum *a)
{
    return 1.0f / (float)a->n;
}

int l3d_accum_tick(l3d_accum *a)
{
    if (++a->done < a->n)
        return 0;
    a->done = 0;
    return 1;
}

void l3d_grad_average(float *g, size_t n, int n_micro)
{
    if (n_micro <= 1)
        return;
    const float d = (float)n_micro;
    for (size_t i = 0; i < n; i++)
        g[i] /= d;
}
