/* The parameter arena: every learnable tensor of the model is a named slice
 * of ONE float array, and the gradients, both AdamW moments and (in fp16 mode)
 * the fp32 master weights are parallel arrays with the same layout, so each is
 * one allocation, one device copy and one checkpoint section (the llm.c
 * pattern). BatchNorm running statistics get their own arena with its own
 * table, because they are state but not parameters: no gradient, no moments,
 * no weight decay.
 *
 * Use: l3d_params_init, l3d_params_add / l3d_params_add_bn for every tensor
 * in model order, l3d_params_alloc once, then l3d_params_find by name. The
 * table is fixed after alloc. Each slice starts on a 64-byte boundary (the
 * gaps are zero in every array and stay zero through AdamW, so they add
 * nothing to norms); all arrays are 64-byte aligned and zero-initialised. */
#ifndef LIDAR3D_TRAINER_PARAMS_H
#define LIDAR3D_TRAINER_PARAMS_H

#include <stddef.h>
#include <stdint.h>
#include "formats/error.h"

#define L3D_TENSOR_NAME_MAX 96
#define L3D_TENSOR_MAX_DIMS 4
#define L3D_ARENA_ALIGN 16 /* floats: 64 bytes */

typedef struct l3d_tensor_info {
    char name[L3D_TENSOR_NAME_MAX];
    int ndim;
    int64_t shape[L3D_TENSOR_MAX_DIMS];
    size_t offset;                 /* in floats, from the start of the arena */
    size_t numel;
} l3d_tensor_info;

typedef struct l3d_table {
    l3d_tensor_info *t;
    int n, cap;
    size_t numel;                  /* floats in the arena, gaps included */
} l3d_table;

typedef struct l3d_params {
    l3d_table layout;              /* learnable tensors */
    float *param;                  /* working weights (fp16-rounded values in fp16 mode) */
    float *grad;
    float *m, *v;                  /* AdamW first and second moments */
    float *master;                 /* fp32 master weights, fp16 mode only, else NULL */
    l3d_table bn_layout;           /* BN running_mean / running_var tensors */
    float *bn;
    int allocated;
} l3d_params;

void l3d_params_init(l3d_params *p);
/* Appends a tensor; names must be unique within their table (params and BN
 * stats are separate tables). Fails after l3d_params_alloc. */
int l3d_params_add(l3d_params *p, const char *name, int ndim, const int64_t *shape, l3d_err *err);
int l3d_params_add_bn(l3d_params *p, const char *name, int ndim, const int64_t *shape,
                      l3d_err *err);
/* Allocates param, grad, m, v (and master when with_master) for the layout
 * and bn for the BN layout, all zeroed. */
int l3d_params_alloc(l3d_params *p, int with_master, l3d_err *err);
void l3d_params_free(l3d_params *p);

/* The table entry called name, or NULL. Slices: p->param + info->offset etc. */
const l3d_tensor_info *l3d_table_find(const l3d_table *t, const char *name);
const l3d_tensor_info *l3d_params_find(const l3d_params *p, const char *name);
float *l3d_params_get(const l3d_params *p, const char *name);      /* weights, or NULL */
float *l3d_params_grad(const l3d_params *p, const char *name);     /* gradient, or NULL */
float *l3d_params_bn(const l3d_params *p, const char *name);       /* BN stat, or NULL */

/* Sum of numel over the tensors (gaps excluded): the model's parameter count. */
size_t l3d_table_count(const l3d_table *t);
/* Two tables with the same names, shapes and offsets in the same order: 1, else 0
 * with a message naming the first difference in why[len] (may be NULL). */
int l3d_table_equal(const l3d_table *a, const l3d_table *b, char *why, size_t len);

void l3d_params_zero_grad(l3d_params *p);

/* L2 norm of g[0..n): squares summed in double, one accumulator, index order,
 * so the result is the same on every run and thread count. */
double l3d_grad_norm(const float *g, size_t n);
/* torch.nn.utils.clip_grad_norm_ (L2): returns the total norm before clipping;
 * when coef = max_norm / (norm + 1e-6) is below 1 every gradient is
 * multiplied by it. As in PyTorch the coefficient is formed in float32 from
 * the float32 norm. A non-finite norm makes the gradients non-finite too
 * (PyTorch's default, error_if_nonfinite=False). */
double l3d_clip_grad_norm(float *g, size_t n, double max_norm);
double l3d_params_clip_grad_norm(l3d_params *p, double max_norm);

#endif
