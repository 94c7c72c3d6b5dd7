/* Parameter arena; see params.h. */
#include "trainer/params.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void l3d_params_init(l3d_params *p)
{
    memset(p, 0, sizeof *p);
}

static int table_add(l3d_table *t, const char *what, const char *name, int ndim,
                     const int64_t *shape, l3d_err *err)
{
    if (!name || !*name || strlen(name) >= L3D_TENSOR_NAME_MAX)
        return l3d_fail(err, L3D_EUSAGE, "%s tensor name '%s': empty or longer than %d bytes",
                        what, name ? name : "(null)", L3D_TENSOR_NAME_MAX - 1);
    if (ndim < 0 || ndim > L3D_TENSOR_MAX_DIMS)
        return l3d_fail(err, L3D_EUSAGE, "%s tensor '%s': %d dimensions (0..%d allowed)", what,
                        name, ndim, L3D_TENSOR_MAX_DIMS);
    if (l3d_table_find(t, name))
        return l3d_fail(err, L3D_EUSAGE, "%s tensor '%s' added twice", what, name);
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] <= 0 || (uint64_t)shape[d] > ((size_t)1 << 40) / numel)
            return l3d_fail(err, L3D_EUSAGE, "%s tensor '%s': bad size %lld in dimension %d",
                            what, name, (long long)shape[d], d);
        numel *= (size_t)shape[d];
    }
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 64;
        l3d_tensor_info *nt = realloc(t->t, (size_t)cap * sizeof *nt);
        if (!nt)
            return l3d_fail(err, L3D_EINTERNAL, "out of memory adding tensor '%s'", name);
        t->t = nt;
        t->cap = cap;
    }
    l3d_tensor_info *e = &t->t[t->n++];
    memset(e, 0, sizeof *e);
    strcpy(e->name, name);
    e->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        e->shape[d] = shape[d];
    e->offset = t->numel;
    e->numel = numel;
    /* Next slice on a 64-byte boundary. */
    t->numel += (numel + L3D_ARENA_ALIGN - 1) / L3D_ARENA_ALIGN * L3D_ARENA_ALIGN;
    return L3D_OK;
}

int l3d_params_add(l3d_params *p, const char *name, int ndim, const int64_t *shape, l3d_err *err)
{
    if (p->allocated)
        return l3d_fail(err, L3D_EUSAGE, "parameter '%s' added after allocation", name);
    return table_add(&p->layout, "parameter", name, ndim, shape, err);
}

int l3d_params_add_bn(l3d_params *p, const char *name, int ndim, const int64_t *shape,
                      l3d_err *err)
{
    if (p->allocated)
        return l3d_fail(err, L3D_EUSAGE, "BN statistic '%s' added after allocation", name);
    return table_add(&p->bn_layout, "BN statistic", name, ndim, shape, err);
}

static float *arena_alloc(size_t numel)
{
    size_t bytes = (numel ? numel : L3D_ARENA_ALIGN) * sizeof(float); /* multiple of 64 */
    float *a = aligned_alloc(64, bytes);
    if (a)
        memset(a, 0, bytes);
    return a;
}

int l3d_params_alloc(l3d_params *p, int with_master, l3d_err *err)
{
    if (p->allocated)
        return l3d_fail(err, L3D_EUSAGE, "parameter arena allocated twice");
    size_t n = p->layout.numel;
    p->param = arena_alloc(n);
    p->grad = arena_alloc(n);
    p->m = arena_alloc(n);
    p->v = arena_alloc(n);
    p->master = with_master ? arena_alloc(n) : NULL;
    p->bn = arena_alloc(p->bn_layout.numel);
    p->allocated = 1;
    if (!p->param || !p->grad || !p->m || !p->v || (with_master && !p->master) || !p->bn) {
        l3d_params_free(p);
        return l3d_fail(err, L3D_EINTERNAL, "out of memory for %zu parameters", n);
    }
    return L3D_OK;
}

void l3d_params_free(l3d_params *p)
{
    free(p->layout.t);
    free(p->bn_layout.t);
    free(p->param);
    free(p->grad);
    free(p->m);
    free(p->v);
    free(p->master);
    free(p->bn);
    memset(p, 0, sizeof *p);
}

/* Linear search: the model has about a hundred tensors and looks them up once
 * at start-up. */
const l3d_tensor_info *l3d_table_find(const l3d_table *t, const char *name)
{
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->t[i].name, name) == 0)
            return &t->t[i];
    return NULL;
}

const l3d_tensor_info *l3d_params_find(const l3d_params *p, const char *name)
{
    return l3d_table_find(&p->layout, name);
}

float *l3d_params_get(const l3d_params *p, const char *name)
{
    const l3d_tensor_info *e = l3d_table_find(&p->layout, name);
    return e && p->param ? p->param + e->offset : NULL;
}

float *l3d_params_grad(const l3d_params *p, const char *name)
{
    const l3d_tensor_info *e = l3d_table_find(&p->layout, name);
    return e && p->grad ? p->grad + e->offset : NULL;
}

float *l3d_params_bn(const l3d_params *p, const char *name)
{
    const l3d_tensor_info *e = l3d_table_find(&p->bn_layout, name);
    return e && p->bn ? p->bn + e->offset : NULL;
}

size_t l3d_table_count(const l3d_table *t)
{
    size_t n = 0;
    for (int i = 0; i < t->n; i++)
        n += t->t[i].numel;
    return n;
}

static void shape_str(const l3d_tensor_info *e, char *buf, size_t len)
{
    size_t k = (size_t)snprintf(buf, len, "[");
    for (int d = 0; d < e->ndim && d < L3D_TENSOR_MAX_DIMS && k < len; d++)
        k += (size_t)snprintf(buf + k, len - k, "%s%lld", d ? "," : "", (long long)e->shape[d]);
    if (k < len)
        snprintf(buf + k, len - k, "]");
}

int l3d_table_equal(const l3d_table *a, const l3d_table *b, char *why, size_t len)
{
    char sa[96], sb[96];
    for (int i = 0; i < a->n && i < b->n; i++) {
        const l3d_tensor_info *x = &a->t[i], *y = &b->t[i];
        int same = strcmp(x->name, y->name) == 0 && x->ndim == y->ndim &&
                   x->offset == y->offset && x->numel == y->numel;
        for (int d = 0; same && d < x->ndim; d++)
            same = x->shape[d] == y->shape[d];
        if (!same) {
            shape_str(x, sa, sizeof sa);
            shape_str(y, sb, sizeof sb);
            if (why)
                snprintf(why, len, "tensor %d is '%s' %s, expected '%s' %s", i, x->name, sa,
                         y->name, sb);
            return 0;
        }
    }
    if (a->n != b->n || a->numel != b->numel) {
        if (why)
            snprintf(why, len, "%d tensors (%zu floats), expected %d (%zu floats)", a->n,
                     a->numel, b->n, b->numel);
        return 0;
    }
    return 1;
}

void l3d_params_zero_grad(l3d_params *p)
{
    if (p->grad)
        memset(p->grad, 0, p->layout.numel * sizeof(float));
}

double l3d_grad_norm(const float *g, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)g[i] * (double)g[i];
    return sqrt(s);
}

double l3d_clip_grad_norm(float *g, size_t n, double max_norm)
{
    double norm = l3d_grad_norm(g, n);
    /* PyTorch: clip_coef = max_norm / (total_norm + 1e-6) on a float32 tensor,
     * clamped to at most 1 (NaN stays NaN), then grads *= clip_coef. */
    float coef = (float)max_norm / ((float)norm + 1e-6f);
    if (!(coef >= 1.0f))
        for (size_t i = 0; i < n; i++)
            g[i] *= coef;
    return norm;
}

double l3d_params_clip_grad_norm(l3d_params *p, double max_norm)
{
    return l3d_clip_grad_norm(p->grad, p->layout.numel, max_norm);
}
