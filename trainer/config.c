#include "trainer/config.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef enum { T_INT, T_LONG, T_DOUBLE } ktype;
typedef struct key {
    const char *name;
    ktype type;
    int count;
    size_t offset;
} key;

#define K(name, type, n) {#name, type, n, offsetof(l3d_config, name)}
static const key keys[] = {
    K(sweeps, T_INT, 1), K(point_cloud_range, T_DOUBLE, 6), K(voxel_size, T_DOUBLE, 3),
    K(max_points, T_INT, 1), K(max_voxels, T_INT, 1),
    K(rot_range, T_DOUBLE, 1), K(scale_min, T_DOUBLE, 1), K(scale_max, T_DOUBLE, 1),
    K(flip_h, T_DOUBLE, 1), K(flip_v, T_DOUBLE, 1), K(shuffle_points, T_INT, 1),
    K(vfe_channels, T_INT, 2), K(layer_nums, T_INT, 3), K(layer_strides, T_INT, 3),
    K(out_channels, T_INT, 3), K(upsample_strides, T_INT, 3), K(neck_channels, T_INT, 1),
    K(bn_eps, T_DOUBLE, 1), K(bn_momentum, T_DOUBLE, 1), K(head_bn_eps, T_DOUBLE, 1),
    K(head_bn_momentum, T_DOUBLE, 1),
    K(focal_gamma, T_DOUBLE, 1), K(focal_alpha, T_DOUBLE, 1), K(smooth_l1_beta, T_DOUBLE, 1),
    K(dir_weight, T_DOUBLE, 1), K(dir_offset, T_DOUBLE, 1),
    K(lr, T_DOUBLE, 1), K(weight_decay, T_DOUBLE, 1), K(beta1, T_DOUBLE, 1), K(beta2, T_DOUBLE, 1),
    K(adam_eps, T_DOUBLE, 1), K(warmup_iters, T_INT, 1), K(warmup_ratio, T_DOUBLE, 1),
    K(milestones, T_INT, 2), K(lr_gamma, T_DOUBLE, 1), K(epochs, T_INT, 1), K(batch, T_INT, 1),
    K(accum, T_INT, 1), K(grad_clip, T_DOUBLE, 1), K(seed, T_LONG, 1),
    K(init_scale, T_DOUBLE, 1), K(scale_window, T_INT, 1), K(hysteresis, T_INT, 1),
    K(min_scale, T_DOUBLE, 1),
};
#undef K
#define N_KEYS (sizeof keys / sizeof *keys)

static void lyft(l3d_config *c)
{
    *c = (l3d_config){
        .sweeps = 10, .point_cloud_range = {-100, -100, -5, 100, 100, 3},
        .voxel_size = {0.25, 0.25, 8}, .max_points = 20, .max_voxels = 60000,
        .rot_range = 0.3925, .scale_min = 0.95, .scale_max = 1.05, .flip_h = 0.5, .flip_v = 0.5,
        .shuffle_points = 1, .vfe_channels = {32, 64}, .layer_nums = {3, 5, 5},
        .layer_strides = {2, 2, 2}, .out_channels = {64, 128, 256}, .upsample_strides = {1, 2, 4},
        .neck_channels = 128, .bn_eps = 1e-3, .bn_momentum = 0.01, .head_bn_eps = 1e-5,
        .head_bn_momentum = 0.1, .focal_gamma = 2, .focal_alpha = 0.25,
        .smooth_l1_beta = 1.0 / 9.0, .dir_weight = 0.2, .dir_offset = 0.7854, .lr = 1e-3,
        .weight_decay = 0.01, .beta1 = 0.9, .beta2 = 0.999, .adam_eps = 1e-8,
        .warmup_iters = 1000, .warmup_ratio = 0.001, .milestones = {20, 23}, .lr_gamma = 0.1,
        .epochs = 24, .batch = 2, .accum = 1, .grad_clip = 35, .seed = 0,
        .init_scale = 4294967296.0, .scale_window = 1000, .hysteresis = 2, .min_scale = 1,
    };
}

int l3d_config_preset(l3d_config *c, const char *name, l3d_err *err)
{
    lyft(c);
    if (!strcmp(name, "lyft"))
        return L3D_OK;
    if (!strcmp(name, "small")) {
        /* same architecture on a 64 m square at 0.5 m pillars (128 x 128 canvas): a step
         * costs ~1/40 of the full config, so 100 steps run in minutes on 2 cores */
        double r[6] = {-32, -32, -5, 32, 32, 3}, v[3] = {0.5, 0.5, 8};
        memcpy(c->point_cloud_range, r, sizeof r);
        memcpy(c->voxel_size, v, sizeof v);
        c->max_voxels = 12000;
        c->warmup_iters = 20;
        c->batch = 2;
        return L3D_OK;
    }
    return l3d_fail(err, L3D_EUSAGE, "unknown config preset '%s' (expected lyft or small)", name);
}

static const key *find(const char *name, size_t len)
{
    for (size_t i = 0; i < N_KEYS; i++)
        if (strlen(keys[i].name) == len && !strncmp(keys[i].name, name, len))
            return &keys[i];
    return NULL;
}

int l3d_config_set(l3d_config *c, const char *a, const char *where, l3d_err *err)
{
    const char *eq = strchr(a, '=');
    if (!eq)
        return l3d_fail(err, L3D_EUSAGE, "%s: '%s': expected key = value", where, a);
    const char *k0 = a, *k1 = eq;
    while (*k0 == ' ' || *k0 == '\t') k0++;
    while (k1 > k0 && (k1[-1] == ' ' || k1[-1] == '\t')) k1--;
    const key *k = find(k0, (size_t)(k1 - k0));
    if (!k)
        return l3d_fail(err, L3D_EUSAGE, "%s: unknown config key '%.*s' (ssn-train --print-config "
                        "lists them)", where, (int)(k1 - k0), k0);
    const char *p = eq + 1;
    for (int i = 0; i < k->count; i++) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        char *end;
        double v = strtod(p, &end);
        if (end == p || !isfinite(v))
            return l3d_fail(err, L3D_EUSAGE, "%s: '%s' needs %d number%s", where, k->name,
                            k->count, k->count > 1 ? "s" : "");
        if (k->type != T_DOUBLE && v != floor(v))
            return l3d_fail(err, L3D_EUSAGE, "%s: '%s' takes integers", where, k->name);
        char *dst = (char *)c + k->offset;
        if (k->type == T_INT) ((int *)dst)[i] = (int)v;
        else if (k->type == T_LONG) ((long *)dst)[i] = (long)v;
        else ((double *)dst)[i] = v;
        p = end;
    }
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    if (*p && *p != '#')
        return l3d_fail(err, L3D_EUSAGE, "%s: '%s' takes %d value%s, found more", where, k->name,
                        k->count, k->count > 1 ? "s" : "");
    return L3D_OK;
}

int l3d_config_load(l3d_config *c, const char *path, l3d_err *err)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return l3d_fail(err, L3D_EIO, "config '%s': cannot open", path);
    char line[1024], where[1200];
    int n = 0, rc = L3D_OK;
    while (!rc && fgets(line, sizeof line, fp)) {
        n++;
        char *s = line;
        while (*s == ' ' || *s == '\t') s++;
        if (!*s || *s == '#' || *s == '\n' || *s == '\r')
            continue;
        snprintf(where, sizeof where, "%s:%d", path, n);
        if (!strncmp(s, "preset", 6) && strchr(s, '=')) {
            char name[64] = "";
            sscanf(strchr(s, '=') + 1, " %63s", name);
            rc = l3d_config_preset(c, name, err);
        } else {
            rc = l3d_config_set(c, s, where, err);
        }
    }
    fclose(fp);
    return rc;
}

void l3d_config_print(const l3d_config *c, FILE *fp)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        const char *src = (const char *)c + keys[i].offset;
        fprintf(fp, "%s =", keys[i].name);
        for (int j = 0; j < keys[i].count; j++) {
            if (keys[i].type == T_INT) fprintf(fp, " %d", ((const int *)src)[j]);
            else if (keys[i].type == T_LONG) fprintf(fp, " %ld", ((const long *)src)[j]);
            else fprintf(fp, " %.17g", ((const double *)src)[j]);
        }
        fputc('\n', fp);
    }
}

void l3d_config_grid(const l3d_config *c, int *nx, int *ny)
{
    *nx = (int)lround((c->point_cloud_range[3] - c->point_cloud_range[0]) / c->voxel_size[0]);
    *ny = (int)lround((c->point_cloud_range[4] - c->point_cloud_range[1]) / c->voxel_size[1]);
}

int l3d_config_validate(const l3d_config *c, l3d_err *err)
{
    int nx, ny;
    l3d_config_grid(c, &nx, &ny);
    if (c->sweeps != 0 && c->sweeps != 5 && c->sweeps != 10)
        return l3d_fail(err, L3D_EUSAGE, "config: sweeps = %d, expected 0, 5 or 10", c->sweeps);
    for (int a = 0; a < 3; a++)
        if (!(c->voxel_size[a] > 0) || !(c->point_cloud_range[a + 3] > c->point_cloud_range[a]))
            return l3d_fail(err, L3D_EUSAGE, "config: empty point_cloud_range or voxel_size");
    int down = c->layer_strides[0] * c->layer_strides[1] * c->layer_strides[2] * 2;
    if (nx % down || ny % down)
        return l3d_fail(err, L3D_EUSAGE, "config: grid %dx%d is not divisible by %d (the "
                        "backbone strides times the stride-2 heads)", nx, ny, down);
    if (c->max_points < 1 || c->max_voxels < 1 || c->batch < 1 || c->accum < 1 || c->epochs < 1)
        return l3d_fail(err, L3D_EUSAGE, "config: max_points, max_voxels, batch, accum and "
                        "epochs must be positive");
    if (c->upsample_strides[0] != 1 || c->upsample_strides[1] != c->layer_strides[1] ||
        c->upsample_strides[2] != c->layer_strides[1] * c->layer_strides[2])
        return l3d_fail(err, L3D_EUSAGE, "config: upsample_strides must bring every stage back "
                        "to the first stage's resolution");
    if (!(c->lr > 0) || c->warmup_iters < 0 || !(c->grad_clip >= 0))
        return l3d_fail(err, L3D_EUSAGE, "config: lr must be positive, warmup_iters and "
                        "grad_clip non-negative");
    return L3D_OK;
}
