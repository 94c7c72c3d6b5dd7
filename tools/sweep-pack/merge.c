#include "tools/sweep-pack/merge.h"

#include <stdlib.h>
#include <string.h>

#include "formats/strmap.h"
#include "formats/sweep_cache.h"

/* memcpy of n bytes where an empty source may be NULL (empty datasets map to NULL) */
static void copy(void *dst, const void *src, size_t n)
{
    if (n)
        memcpy(dst, src, n);
}

typedef struct merge_src {
    l3d_sweep_cache *c;
    int n;
    int part;            /* cache being copied */
    int64_t row;         /* next row within it */
} merge_src;

/* Copies scan_points rows shard after shard (the merged order). */
static int merged_points(void *ctx, int64_t row0, int64_t n, void *xyz, float *intensity,
                         l3d_err *err)
{
    (void)row0;
    (void)err;
    merge_src *m = ctx;
    int64_t w = 0;
    while (w < n) {
        const l3d_sweep_cache *c = &m->c[m->part];
        int64_t take = c->n_points - m->row;
        if (take > n - w)
            take = n - w;
        if (c->quantised)
            memcpy((int16_t *)xyz + 3 * w, c->points_q + 3 * m->row, (size_t)take * 6);
        else
            memcpy((float *)xyz + 3 * w, c->points_f + 3 * m->row, (size_t)take * 12);
        if (intensity)
            memcpy(intensity + w, c->intensity + m->row, (size_t)take * 4);
        w += take;
        m->row += take;
        if (m->row == c->n_points) {
            m->part++;
            m->row = 0;
        }
    }
    return L3D_OK;
}

static int read_attr(l3d_sweep_cache *c, const char *key, char *out, size_t n, l3d_err *err)
{
    return l3d_h5r_attr_str(&c->h5, "/", key, out, n, err);
}

int merge_caches(char **inputs, int n, const char *output, const char *command, l3d_err *err)
{
    l3d_sweep_cache *c = calloc((size_t)n, sizeof *c);
    if (!c)
        return l3d_fail(err, L3D_EINTERNAL, "out of memory");
    int rc = L3D_OK, opened = 0;
    int64_t S = 0, K = 0, P = 0, B = 0, N = 0, drop_nf = 0, drop_r = 0, corrupt = 0;
    char transform[64] = "", t2[64], checksums[4096] = "";
    for (; opened < n; opened++) {
        if ((rc = l3d_sweep_cache_open(&c[opened], inputs[opened], 0, err)))
            goto out;
        l3d_sweep_cache *x = &c[opened];
        if ((rc = read_attr(x, "sweep_transform", t2, sizeof t2, err)))
            goto out;
        if (opened && (strcmp(t2, transform) || x->quantised != c[0].quantised ||
                       !x->intensity != !c[0].intensity)) {
            rc = l3d_fail(err, L3D_EINPUT, "%s: packed with other options than %s "
                          "(quantisation, intensity or sweep transform)", inputs[opened], inputs[0]);
            goto out;
        }
        strcpy(transform, t2);
        char sum[64];
        if (!read_attr(x, "index_checksum", sum, sizeof sum, err) &&
            strlen(checksums) + strlen(sum) + 2 < sizeof checksums) {
            strcat(checksums, opened ? " " : "");
            strcat(checksums, sum);
        }
        int64_t v;
        if (!l3d_h5r_attr_i64(&x->h5, "/", "points_dropped_nonfinite", &v, err)) drop_nf += v;
        if (!l3d_h5r_attr_i64(&x->h5, "/", "points_dropped_out_of_range", &v, err)) drop_r += v;
        if (!l3d_h5r_attr_i64(&x->h5, "/", "corrupt_files", &v, err)) corrupt += v;
        S += x->n_samples; K += x->n_scans; P += x->n_points; B += x->n_boxes; N += x->n_scenes;
    }
    int64_t *scan_off = malloc((size_t)(K + 1) * sizeof *scan_off);
    char *scan_tok = calloc((size_t)(K ? K : 1), L3D_CACHE_TOKEN);
    int32_t *ss = malloc((size_t)(S ? S : 1) * L3D_SLOTS * sizeof *ss);
    double *tr = malloc((size_t)(S ? S : 1) * L3D_SLOTS * 16 * sizeof *tr);
    float *lags = malloc((size_t)(S ? S : 1) * L3D_SLOTS * sizeof *lags);
    double *ts = malloc((size_t)(S ? S : 1) * sizeof *ts);
    int32_t *scene = malloc((size_t)(S ? S : 1) * sizeof *scene);
    double *l2e = malloc((size_t)(S ? S : 1) * 7 * sizeof *l2e), *e2g = malloc((size_t)(S ? S : 1) * 7 * sizeof *e2g);
    char *tok = calloc((size_t)(S ? S : 1), L3D_CACHE_TOKEN), *names = calloc((size_t)(N ? N : 1), L3D_CACHE_NAME);
    float *boxes = malloc((size_t)(B ? B : 1) * 7 * sizeof *boxes);
    int32_t *labels = malloc((size_t)(B ? B : 1) * sizeof *labels);
    int64_t *box_off = malloc((size_t)(S + 1) * sizeof *box_off);
    l3d_strmap seen;
    l3d_strmap_init(&seen);
    if (!scan_off || !scan_tok || !ss || !tr || !lags || !ts || !scene || !l2e || !e2g || !tok ||
        !names || !boxes || !labels || !box_off) {
        rc = l3d_fail(err, L3D_EINTERNAL, "out of memory");
        goto free_all;
    }
    int64_t s0 = 0, k0 = 0, p0 = 0, b0 = 0, n0 = 0;
    scan_off[0] = 0;
    box_off[0] = 0;
    for (int i = 0; i < n; i++) {
        const l3d_sweep_cache *x = &c[i];
        for (int64_t k = 0; k < x->n_scans; k++)
            scan_off[k0 + k + 1] = p0 + x->scan_offsets[k + 1];
        /* scan tokens are not mapped by the reader: read them here */
        l3d_h5view v;
        hid_t st = l3d_h5_str_type(L3D_CACHE_TOKEN);
        rc = l3d_h5r_view(&c[i].h5, "scan_tokens", st, 1, 1, &v, err);
        H5Tclose(st);
        if (rc)
            goto free_all;
        copy(scan_tok + k0 * L3D_CACHE_TOKEN, v.data, (size_t)x->n_scans * L3D_CACHE_TOKEN);
        for (int64_t s = 0; s < x->n_samples; s++) {
            for (int j = 0; j < L3D_SLOTS; j++) {
                int32_t v2 = x->sample_scans[s * L3D_SLOTS + j];
                ss[(s0 + s) * L3D_SLOTS + j] = v2 < 0 ? -1 : (int32_t)(v2 + k0);
            }
            scene[s0 + s] = (int32_t)(x->sample_scene[s] + n0);
            box_off[s0 + s + 1] = b0 + x->box_offsets[s + 1];
        }
        copy(tr + s0 * L3D_SLOTS * 16, x->sample_transforms, (size_t)x->n_samples * L3D_SLOTS * 16 * sizeof *tr);
        copy(lags + s0 * L3D_SLOTS, x->sample_time_lags, (size_t)x->n_samples * L3D_SLOTS * sizeof *lags);
        copy(ts + s0, x->sample_timestamps, (size_t)x->n_samples * sizeof *ts);
        copy(l2e + s0 * 7, x->sample_lidar2ego, (size_t)x->n_samples * 7 * sizeof *l2e);
        copy(e2g + s0 * 7, x->sample_ego2global, (size_t)x->n_samples * 7 * sizeof *e2g);
        copy(tok + s0 * L3D_CACHE_TOKEN, x->sample_tokens, (size_t)x->n_samples * L3D_CACHE_TOKEN);
        copy(names + n0 * L3D_CACHE_NAME, x->scene_names, (size_t)x->n_scenes * L3D_CACHE_NAME);
        copy(boxes + b0 * 7, x->boxes, (size_t)x->n_boxes * 7 * sizeof *boxes);
        copy(labels + b0, x->box_labels, (size_t)x->n_boxes * sizeof *labels);
        s0 += x->n_samples; k0 += x->n_scans; p0 += x->n_points; b0 += x->n_boxes; n0 += x->n_scenes;
    }
    /* a scan in two shards means overlapping inputs: refuse rather than duplicate */
    char (*keys)[L3D_CACHE_TOKEN + 1] = calloc((size_t)(K ? K : 1), sizeof *keys);
    if (!keys) {
        rc = l3d_fail(err, L3D_EINTERNAL, "out of memory");
        goto free_all;
    }
    for (int64_t k = 0; k < K && !rc; k++) {
        memcpy(keys[k], scan_tok + k * L3D_CACHE_TOKEN, L3D_CACHE_TOKEN);
        if (l3d_strmap_get(&seen, keys[k]))
            rc = l3d_fail(err, L3D_EINPUT, "scan '%s' is in more than one input: the shards "
                          "overlap", keys[k]);
        else if (!l3d_strmap_put(&seen, keys[k], 1))
            rc = l3d_fail(err, L3D_EINTERNAL, "out of memory");
    }
    if (!rc) {
        l3d_sweep_cache_meta m = {
            .n_samples = S, .n_scans = K, .n_points = P, .n_boxes = B, .n_scenes = N,
            .quantised = c[0].quantised, .with_intensity = c[0].intensity != NULL,
            .scan_offsets = scan_off, .scan_tokens = scan_tok, .sample_scans = ss,
            .sample_transforms = tr, .sample_time_lags = lags, .sample_timestamps = ts,
            .sample_scene = scene, .sample_lidar2ego = l2e, .sample_ego2global = e2g,
            .sample_tokens = tok, .scene_names = names, .boxes = boxes, .box_labels = labels,
            .box_offsets = box_off, .tool_version = "sweep-pack " LIDAR3D_VERSION,
            .command = command, .index_checksum = checksums, .sweep_transform = transform,
            .corrupt_policy = "merged shards; see each shard's policy",
            .points_dropped_nonfinite = drop_nf, .points_dropped_range = drop_r,
            .corrupt_files = corrupt,
        };
        merge_src src = {.c = c, .n = n};
        rc = l3d_sweep_cache_write(output, &m, merged_points, &src, err);
    }
    free(keys);
free_all:
    l3d_strmap_free(&seen);
    free(scan_off); free(scan_tok); free(ss); free(tr); free(lags); free(ts); free(scene);
    free(l2e); free(e2g); free(tok); free(names); free(boxes); free(labels); free(box_off);
out:
    for (int i = 0; i < opened; i++)
        l3d_sweep_cache_close(&c[i]);
    free(c);
    return rc;
}
