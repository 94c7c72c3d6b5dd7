#include "formats/sweep_cache.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/lyft_tables.h"

/* ---- reading ---------------------------------------------------------- */

#define VIEW(name, type, rank, verify, dst)                                       \
    do {                                                                          \
        l3d_h5view v_;                                                            \
        if ((rc = l3d_h5r_view(&c->h5, name, type, rank, verify, &v_, err)))      \
            goto fail;                                                            \
        dst = v_.data;                                                            \
        memcpy(dims, v_.dims, sizeof dims);                                       \
    } while (0)

static int bad(l3d_sweep_cache *c, l3d_err *err, const char *what)
{
    return l3d_fail(err, L3D_EINPUT, "%s: %s", c->h5.path, what);
}

int l3d_sweep_cache_open(l3d_sweep_cache *c, const char *path, int flags, l3d_err *err)
{
    memset(c, 0, sizeof *c);
    int rc = l3d_h5r_open(&c->h5, path, L3D_SWEEP_CACHE_FORMAT, L3D_SWEEP_CACHE_SCHEMA, err);
    if (rc)
        return rc;
    hsize_t dims[4];
    int all = flags & L3D_CACHE_VERIFY_ALL;
    hid_t tok = l3d_h5_str_type(L3D_CACHE_TOKEN), name = l3d_h5_str_type(L3D_CACHE_NAME);
    VIEW("scan_offsets", H5T_NATIVE_INT64, 1, 1, c->scan_offsets);
    c->n_scans = (int64_t)dims[0] - 1;
    VIEW("sample_scans", H5T_NATIVE_INT32, 2, 1, c->sample_scans);
    c->n_samples = (int64_t)dims[0];
    if (c->n_scans < 0 || dims[1] != L3D_SLOTS) {
        rc = bad(c, err, "scan_offsets or sample_scans have the wrong shape");
        goto fail;
    }
    c->quantised = l3d_h5r_has(&c->h5, "scan_points") &&
                   H5Aexists_by_name(c->h5.file, "scan_points", "scale_factor", H5P_DEFAULT) > 0;
    if (c->quantised) {
        VIEW("scan_points", H5T_NATIVE_INT16, 2, all, c->points_q);
        if ((rc = l3d_h5r_attr_f64(&c->h5, "scan_points", "scale_factor", &c->scale_factor, err)) ||
            (rc = l3d_h5r_attr_f64(&c->h5, "scan_points", "add_offset", &c->add_offset, err)))
            goto fail;
    } else {
        VIEW("scan_points", H5T_NATIVE_FLOAT, 2, all, c->points_f);
    }
    c->n_points = (int64_t)dims[0];
    if (dims[1] != 3) {
        rc = bad(c, err, "scan_points is not [P,3]");
        goto fail;
    }
    if (l3d_h5r_has(&c->h5, "scan_intensity")) {
        VIEW("scan_intensity", H5T_NATIVE_FLOAT, 1, all, c->intensity);
        if ((int64_t)dims[0] != c->n_points) {
            rc = bad(c, err, "scan_intensity and scan_points differ in length");
            goto fail;
        }
    }
    VIEW("sample_transforms", H5T_NATIVE_DOUBLE, 4, 1, c->sample_transforms);
    if ((int64_t)dims[0] != c->n_samples || dims[1] != L3D_SLOTS || dims[2] != 4 || dims[3] != 4) {
        rc = bad(c, err, "sample_transforms is not [S,11,4,4]");
        goto fail;
    }
    VIEW("sample_time_lags", H5T_NATIVE_FLOAT, 2, 1, c->sample_time_lags);
    if ((int64_t)dims[0] != c->n_samples || dims[1] != L3D_SLOTS) {
        rc = bad(c, err, "sample_time_lags is not [S,11]");
        goto fail;
    }
    VIEW("sample_timestamps", H5T_NATIVE_DOUBLE, 1, 1, c->sample_timestamps);
    VIEW("sample_lidar2ego", H5T_NATIVE_DOUBLE, 2, 1, c->sample_lidar2ego);
    VIEW("sample_ego2global", H5T_NATIVE_DOUBLE, 2, 1, c->sample_ego2global);
    VIEW("sample_scene", H5T_NATIVE_INT32, 1, 1, c->sample_scene);
    VIEW("sample_tokens", tok, 1, 1, c->sample_tokens);
    VIEW("scene_names", name, 1, 1, c->scene_names);
    c->n_scenes = (int64_t)dims[0];
    VIEW("box_offsets", H5T_NATIVE_INT64, 1, 1, c->box_offsets);
    if ((int64_t)dims[0] != c->n_samples + 1) {
        rc = bad(c, err, "box_offsets is not [S+1]");
        goto fail;
    }
    VIEW("boxes", H5T_NATIVE_FLOAT, 2, 1, c->boxes);
    c->n_boxes = (int64_t)dims[0];
    VIEW("box_labels", H5T_NATIVE_INT32, 1, 1, c->box_labels);
    /* offsets and indices: monotone and in range, so readers need no checks */
    if (c->scan_offsets[0] != 0 || c->scan_offsets[c->n_scans] != c->n_points) {
        rc = bad(c, err, "scan_offsets do not span scan_points");
        goto fail;
    }
    for (int64_t k = 0; k < c->n_scans; k++)
        if (c->scan_offsets[k + 1] < c->scan_offsets[k]) {
            rc = bad(c, err, "scan_offsets decrease");
            goto fail;
        }
    if (c->box_offsets[0] != 0 || c->box_offsets[c->n_samples] != c->n_boxes) {
        rc = bad(c, err, "box_offsets do not span boxes");
        goto fail;
    }
    for (int64_t s = 0; s < c->n_samples; s++) {
        if (c->box_offsets[s + 1] < c->box_offsets[s] || c->sample_scans[s * L3D_SLOTS] < 0 ||
            c->sample_scene[s] < 0 || c->sample_scene[s] >= c->n_scenes) {
            rc = bad(c, err, "box_offsets, sample_scans or sample_scene out of range");
            goto fail;
        }
        for (int j = 0; j < L3D_SLOTS; j++) {
            int32_t k = c->sample_scans[s * L3D_SLOTS + j];
            if (k < -1 || k >= c->n_scans) {
                rc = bad(c, err, "sample_scans names a scan that does not exist");
                goto fail;
            }
        }
    }
    for (int64_t b = 0; b < c->n_boxes; b++)
        if (c->box_labels[b] < 0 || c->box_labels[b] >= 9) {
            rc = bad(c, err, "box_labels outside 0..8");
            goto fail;
        }
    H5Tclose(tok);
    H5Tclose(name);
    return L3D_OK;
fail:
    H5Tclose(tok);
    H5Tclose(name);
    l3d_sweep_cache_close(c);
    return rc;
}

void l3d_sweep_cache_close(l3d_sweep_cache *c)
{
    l3d_h5r_close(&c->h5);
    memset(c, 0, sizeof *c);
}

int l3d_sweep_cache_slots(const l3d_sweep_cache *c, int64_t s, int k)
{
    int n = 1;
    while (n <= k && n < L3D_SLOTS && c->sample_scans[s * L3D_SLOTS + n] >= 0)
        n++;
    return n;
}

int64_t l3d_sweep_cache_merged_count(const l3d_sweep_cache *c, int64_t s, int k)
{
    int64_t total = 0;
    int n = l3d_sweep_cache_slots(c, s, k);
    for (int j = 0; j < n; j++) {
        int32_t scan = c->sample_scans[s * L3D_SLOTS + j];
        total += c->scan_offsets[scan + 1] - c->scan_offsets[scan];
    }
    return total;
}

/* One scan into the merged cloud. Split by storage type, with the type test
 * and the slot-0 identity out of the inner loop so the compiler vectorises it
 * (AVX2 clone where the CPU has it; the results are the same IEEE operations,
 * and -std=c11 keeps multiply-adds unfused, so every clone gives the same bits). */
#define MERGE_ATTR __attribute__((target_clones("avx2", "default"), optimize("O3")))

MERGE_ATTR static void merge_q(const int16_t *q, int64_t n, float scale, float offset,
                               const double *M, int key, float lag, float *o, int stride)
{
    for (int64_t i = 0; i < n; i++) {
        float p0 = (float)q[3 * i] * scale + offset, p1 = (float)q[3 * i + 1] * scale + offset,
              p2 = (float)q[3 * i + 2] * scale + offset;
        float *w = o + i * stride;
        if (key) {
            w[0] = p0; w[1] = p1; w[2] = p2;
        } else {
            /* as MMDetection3D: rotate in float64, store float32, add the translation */
            for (int a = 0; a < 3; a++) {
                float r = (float)(M[4 * a] * p0 + M[4 * a + 1] * p1 + M[4 * a + 2] * p2);
                w[a] = (float)((double)r + M[4 * a + 3]);
            }
        }
        w[3] = lag;
    }
}

MERGE_ATTR static void merge_f(const float *f, int64_t n, const double *M, int key, float lag,
                               float *o, int stride)
{
    for (int64_t i = 0; i < n; i++) {
        float p0 = f[3 * i], p1 = f[3 * i + 1], p2 = f[3 * i + 2];
        float *w = o + i * stride;
        if (key) {
            w[0] = p0; w[1] = p1; w[2] = p2;
        } else {
            for (int a = 0; a < 3; a++) {
                float r = (float)(M[4 * a] * p0 + M[4 * a + 1] * p1 + M[4 * a + 2] * p2);
                w[a] = (float)((double)r + M[4 * a + 3]);
            }
        }
        w[3] = lag;
    }
}

int64_t l3d_sweep_cache_merge(const l3d_sweep_cache *c, int64_t s, int k, int with_intensity,
                              float *out)
{
    int stride = with_intensity && c->intensity ? 5 : 4;
    int n = l3d_sweep_cache_slots(c, s, k);
    int64_t w = 0;
    float scale = (float)c->scale_factor, offset = (float)c->add_offset;
    for (int j = 0; j < n; j++) {
        int32_t scan = c->sample_scans[s * L3D_SLOTS + j];
        const double *M = c->sample_transforms + (s * L3D_SLOTS + j) * 16;
        float lag = c->sample_time_lags[s * L3D_SLOTS + j];
        int64_t i0 = c->scan_offsets[scan], cnt = c->scan_offsets[scan + 1] - i0;
        if (c->quantised)
            merge_q(c->points_q + 3 * i0, cnt, scale, offset, M, j == 0, lag, out + w * stride, stride);
        else
            merge_f(c->points_f + 3 * i0, cnt, M, j == 0, lag, out + w * stride, stride);
        if (stride == 5)
            for (int64_t i = 0; i < cnt; i++)
                out[(w + i) * 5 + 4] = c->intensity[i0 + i];
        w += cnt;
    }
    return w;
}

/* ---- writing ---------------------------------------------------------- */

#define TRY(x) do { if ((rc = (x))) goto fail; } while (0)

static int write_points(l3d_h5w *w, const l3d_sweep_cache_meta *m, l3d_points_fn fn, void *ctx,
                        l3d_err *err)
{
    const int64_t rows = 1 << 20;
    hid_t xyz_type = m->quantised ? H5T_NATIVE_INT16 : H5T_NATIVE_FLOAT;
    size_t xyz_size = m->quantised ? 6 : 12;
    void *xyz = malloc((size_t)rows * xyz_size);
    float *inten = m->with_intensity ? malloc((size_t)rows * sizeof *inten) : NULL;
    int rc = L3D_OK;
    if (!xyz || (m->with_intensity && !inten)) {
        rc = l3d_fail(err, L3D_EINTERNAL, "out of memory");
        goto out;
    }
    uint64_t sum = L3D_CHECKSUM_INIT, isum = L3D_CHECKSUM_INIT;
    /* the checksum runs over the bytes in order, chunk by chunk: chunks are
     * multiples of 8 bytes except the last, so it equals a one-shot sum */
    for (int64_t r0 = 0; r0 < m->n_points; r0 += rows) {
        int64_t n = m->n_points - r0 < rows ? m->n_points - r0 : rows;
        if ((rc = fn(ctx, r0, n, xyz, inten, err)))
            goto out;
        if ((rc = l3d_h5w_write_rows(w, "scan_points", xyz_type, (hsize_t)r0, (hsize_t)n, xyz, err)))
            goto out;
        sum = l3d_checksum(xyz, (size_t)n * xyz_size, sum);
        if (inten) {
            if ((rc = l3d_h5w_write_rows(w, "scan_intensity", H5T_NATIVE_FLOAT, (hsize_t)r0,
                                         (hsize_t)n, inten, err)))
                goto out;
            isum = l3d_checksum(inten, (size_t)n * 4, isum);
        }
    }
    if ((rc = l3d_h5w_set_checksum(w, "scan_points", sum, err)))
        goto out;
    if (inten)
        rc = l3d_h5w_set_checksum(w, "scan_intensity", isum, err);
out:
    free(xyz);
    free(inten);
    return rc;
}

int l3d_sweep_cache_write(const char *path, const l3d_sweep_cache_meta *m, l3d_points_fn points,
                          void *ctx, l3d_err *err)
{
    l3d_h5w w;
    int rc = l3d_h5w_create(&w, path, err);
    if (rc)
        return rc;
    hid_t tok = l3d_h5_str_type(L3D_CACHE_TOKEN), name = l3d_h5_str_type(L3D_CACHE_NAME);
    hsize_t S = (hsize_t)m->n_samples, K = (hsize_t)m->n_scans, P = (hsize_t)m->n_points,
            B = (hsize_t)m->n_boxes;
    hsize_t d_pts[2] = {P, 3}, d_k1[1] = {K + 1}, d_k[1] = {K}, d_ss[2] = {S, L3D_SLOTS},
            d_tr[4] = {S, L3D_SLOTS, 4, 4}, d_s[1] = {S}, d_s7[2] = {S, 7},
            d_sc[1] = {(hsize_t)m->n_scenes}, d_b7[2] = {B, 7}, d_b[1] = {B}, d_s1[1] = {S + 1};
    /* the big dataset first, so it sits right after the superblock */
    TRY(l3d_h5w_dataset(&w, "scan_points", m->quantised ? H5T_STD_I16LE : H5T_IEEE_F32LE, 2,
                        d_pts, NULL, err));
    if (m->with_intensity)
        TRY(l3d_h5w_dataset(&w, "scan_intensity", H5T_IEEE_F32LE, 1, d_pts, NULL, err));
    TRY(write_points(&w, m, points, ctx, err));
    TRY(l3d_h5w_dataset(&w, "scan_offsets", H5T_NATIVE_INT64, 1, d_k1, m->scan_offsets, err));
    TRY(l3d_h5w_dataset(&w, "scan_tokens", tok, 1, d_k, m->scan_tokens, err));
    TRY(l3d_h5w_dataset(&w, "sample_scans", H5T_NATIVE_INT32, 2, d_ss, m->sample_scans, err));
    TRY(l3d_h5w_dataset(&w, "sample_transforms", H5T_NATIVE_DOUBLE, 4, d_tr, m->sample_transforms, err));
    TRY(l3d_h5w_dataset(&w, "sample_time_lags", H5T_NATIVE_FLOAT, 2, d_ss, m->sample_time_lags, err));
    TRY(l3d_h5w_dataset(&w, "sample_timestamps", H5T_NATIVE_DOUBLE, 1, d_s, m->sample_timestamps, err));
    TRY(l3d_h5w_dataset(&w, "sample_scene", H5T_NATIVE_INT32, 1, d_s, m->sample_scene, err));
    TRY(l3d_h5w_dataset(&w, "sample_lidar2ego", H5T_NATIVE_DOUBLE, 2, d_s7, m->sample_lidar2ego, err));
    TRY(l3d_h5w_dataset(&w, "sample_ego2global", H5T_NATIVE_DOUBLE, 2, d_s7, m->sample_ego2global, err));
    TRY(l3d_h5w_dataset(&w, "sample_tokens", tok, 1, d_s, m->sample_tokens, err));
    TRY(l3d_h5w_dataset(&w, "scene_names", name, 1, d_sc, m->scene_names, err));
    TRY(l3d_h5w_dataset(&w, "boxes", H5T_NATIVE_FLOAT, 2, d_b7, m->boxes, err));
    TRY(l3d_h5w_dataset(&w, "box_labels", H5T_NATIVE_INT32, 1, d_b, m->box_labels, err));
    TRY(l3d_h5w_dataset(&w, "box_offsets", H5T_NATIVE_INT64, 1, d_s1, m->box_offsets, err));

    if (m->quantised) {
        TRY(l3d_h5w_attr_f64(&w, "scan_points", "scale_factor", L3D_POINT_SCALE, err));
        TRY(l3d_h5w_attr_f64(&w, "scan_points", "add_offset", L3D_POINT_OFFSET, err));
    }
    TRY(l3d_h5w_attr_str(&w, "scan_points", "units", "m", err));
    TRY(l3d_h5w_attr_str(&w, "scan_points", "frame", "the scan's own LiDAR sensor frame", err));
    TRY(l3d_h5w_attr_str(&w, "sample_transforms", "frame", "scan frame -> key-frame LiDAR frame, p' = M[:3,:3] p + M[:3,3]", err));
    TRY(l3d_h5w_attr_str(&w, "sample_time_lags", "units", "s", err));
    TRY(l3d_h5w_attr_str(&w, "sample_timestamps", "units", "microseconds since the Unix epoch", err));
    TRY(l3d_h5w_attr_str(&w, "boxes", "layout", "x y z l w h yaw; key-frame LiDAR frame; geometric centre; m, rad", err));
    TRY(l3d_h5w_attr_str(&w, "box_labels", "classes", "bicycle motorcycle pedestrian animal car emergency_vehicle bus other_vehicle truck", err));
    TRY(l3d_h5w_attr_str(&w, "sample_lidar2ego", "layout", "tx ty tz qw qx qy qz (calibrated_sensor)", err));
    TRY(l3d_h5w_attr_str(&w, "sample_ego2global", "layout", "tx ty tz qw qx qy qz (ego_pose)", err));
    TRY(l3d_h5w_attr_str(&w, "/", "format", L3D_SWEEP_CACHE_FORMAT, err));
    TRY(l3d_h5w_attr_i64(&w, "/", "schema_version", L3D_SWEEP_CACHE_SCHEMA, err));
    TRY(l3d_h5w_attr_str(&w, "/", "tool_version", m->tool_version ? m->tool_version : "", err));
    TRY(l3d_h5w_attr_str(&w, "/", "command", m->command ? m->command : "", err));
    TRY(l3d_h5w_attr_str(&w, "/", "index_checksum", m->index_checksum ? m->index_checksum : "", err));
    TRY(l3d_h5w_attr_str(&w, "/", "sweep_transform", m->sweep_transform ? m->sweep_transform : "correct", err));
    TRY(l3d_h5w_attr_str(&w, "/", "corrupt_file_policy", m->corrupt_policy ? m->corrupt_policy : "", err));
    TRY(l3d_h5w_attr_i64(&w, "/", "points_dropped_nonfinite", m->points_dropped_nonfinite, err));
    TRY(l3d_h5w_attr_i64(&w, "/", "points_dropped_out_of_range", m->points_dropped_range, err));
    TRY(l3d_h5w_attr_i64(&w, "/", "corrupt_files", m->corrupt_files, err));
    H5Tclose(tok);
    H5Tclose(name);
    return l3d_h5w_commit(&w, err);
fail:
    H5Tclose(tok);
    H5Tclose(name);
    l3d_h5w_abort(&w);
    return rc;
}
