#include "formats/lyft_index.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct order_key { uint32_t scene_pos, file_pos; double ts; } order_key;

static int cmp_order(const void *a, const void *b)
{
    const order_key *x = a, *y = b;
    if (x->scene_pos != y->scene_pos)
        return x->scene_pos < y->scene_pos ? -1 : 1;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->file_pos < y->file_pos ? -1 : x->file_pos > y->file_pos;
}

int l3d_index_order(const l3d_tables *t, const unsigned char *keep_scene, uint32_t **rows,
                    uint32_t *n_rows, l3d_err *err)
{
    order_key *k = malloc(((size_t)t->sample.n + 1) * sizeof *k);
    *rows = malloc(((size_t)t->sample.n + 1) * sizeof **rows);
    if (!k || !*rows) {
        free(k);
        free(*rows);
        *rows = NULL;
        return l3d_fail(err, L3D_EINTERNAL, "out of memory");
    }
    uint32_t n = 0;
    for (uint32_t i = 0; i < t->sample.n; i++) {
        const l3d_sample *s = &t->sample.rows[i];
        if (s->key_sd == L3D_NO_ROW || (keep_scene && !keep_scene[s->scene]))
            continue;
        k[n++] = (order_key){s->scene, i, s->timestamp};
    }
    qsort(k, n, sizeof *k, cmp_order);
    for (uint32_t i = 0; i < n; i++)
        (*rows)[i] = k[i].file_pos;
    *n_rows = n;
    free(k);
    return L3D_OK;
}

static int copy_str(char *dst, size_t n, const char *src, const char *what, l3d_err *err)
{
    if (strlen(src) >= n)
        return l3d_fail(err, L3D_EINPUT, "%s '%.60s...' is too long (%zu bytes, at most %zu)",
                        what, src, strlen(src), n - 1);
    strcpy(dst, src);
    return L3D_OK;
}

static int resolve_lidar(const l3d_tables *t, l3d_source *src, const l3d_sample_data *sd,
                         const l3d_index_opts *o, const char *key_root, l3d_lidar_file *f,
                         const char **root, l3d_err *err)
{
    const char *name = l3d_str(t, sd->filename);
    const l3d_lidar_loc **known = o->sd_locs ? &o->sd_locs[sd - t->sample_data.rows] : NULL;
    const l3d_lidar_loc *loc = known ? __atomic_load_n(known, __ATOMIC_ACQUIRE) : NULL;
    if (!loc) {
        int rc = l3d_source_find_lidar(src, name, o->verify_lidar, &loc, err);
        if (rc)
            return rc;
        if (known)   /* two threads may both store it: the same answer */
            __atomic_store_n(known, loc, __ATOMIC_RELEASE);
    }
    f->nonfinite = -1;
    f->tail_bytes = 0;
    if (!loc->found) {
        f->num_points = -1;
        return copy_str(f->path, sizeof f->path, name, "LiDAR file name", err);
    }
    if (key_root && strcmp(key_root, loc->root) != 0)
        return l3d_fail(err, L3D_EINPUT,
                        "sweep '%s' lies in '%s' but its key frame in '%s': all LiDAR files of a "
                        "sample must come from one source",
                        name, loc->root, key_root);
    *root = loc->root;
    f->num_points = loc->size / 20;
    f->tail_bytes = loc->size % 20;
    f->nonfinite = loc->nonfinite;
    return copy_str(f->path, sizeof f->path, loc->rel, "LiDAR path", err);
}

int l3d_index_build(const l3d_tables *t, l3d_source *src, uint32_t sample_row,
                    const l3d_index_opts *o, l3d_index_line *line, l3d_err *err)
{
    const l3d_sample *s = &t->sample.rows[sample_row];
    const l3d_sample_data *sd = &t->sample_data.rows[s->key_sd];
    const l3d_pose *l2e = &t->calib.rows[sd->calib].pose;
    const l3d_pose *e2g = &t->ego_pose.rows[sd->ego].pose;
    int rc;
    line->n_sweeps = 0;
    line->sweeps_missing = 0;
    line->n_boxes = 0;
    if ((rc = copy_str(line->token, sizeof line->token, l3d_str(t, s->token), "token", err)) ||
        (rc = copy_str(line->scene_token, sizeof line->scene_token,
                       l3d_str(t, t->scene.rows[s->scene].token), "scene token", err)) ||
        (rc = copy_str(line->scene_name, sizeof line->scene_name,
                       l3d_str(t, t->scene.rows[s->scene].name), "scene name", err)) ||
        (rc = copy_str(line->sample_data_token, sizeof line->sample_data_token,
                       l3d_str(t, sd->token), "token", err)))
        return rc;
    line->timestamp = s->timestamp;
    const char *root = NULL;
    if ((rc = resolve_lidar(t, src, sd, o, NULL, &line->lidar, &root, err)))
        return rc;
    memcpy(line->lidar2ego_translation, l2e->t, sizeof l2e->t);
    memcpy(line->lidar2ego_rotation, l2e->q, sizeof l2e->q);
    memcpy(line->ego2global_translation, e2g->t, sizeof e2g->t);
    memcpy(line->ego2global_rotation, e2g->q, sizeof e2g->q);

    /* Sweeps: follow prev, nearest first, stop at the scene start (spec §3.3). */
    const l3d_sample_data *cur = sd;
    while (line->n_sweeps < o->sweeps && cur->prev != L3D_NO_ROW) {
        const l3d_sample_data *p = &t->sample_data.rows[cur->prev];
        if (p->ego == L3D_NO_ROW) {   /* another sensor's record, its ego pose absent */
            line->sweeps_missing = 1;
            break;
        }
        l3d_sweep *w = &line->sweeps[line->n_sweeps];
        if ((rc = copy_str(w->sample_data_token, sizeof w->sample_data_token,
                           l3d_str(t, p->token), "token", err)))
            return rc;
        const char *sroot = NULL;
        if ((rc = resolve_lidar(t, src, p, o, root, &w->lidar, &sroot, err)))
            return rc;
        if (!root)
            root = sroot;
        w->timestamp = p->timestamp;
        l3d_sweep_to_key(l2e, e2g, &t->calib.rows[p->calib].pose, &t->ego_pose.rows[p->ego].pose,
                         w->rotation, w->translation);
        /* difference of second-valued doubles, for bit parity (spec §5) */
        w->time_lag = s->timestamp / 1e6 - p->timestamp / 1e6;
        line->n_sweeps++;
        cur = p;
    }
    if (line->n_sweeps < o->sweeps && cur->prev_dangling)
        line->sweeps_missing = 1;
    if ((rc = copy_str(line->root, sizeof line->root, root ? root : l3d_source_root(src), "root", err)))
        return rc;

    line->annotated = t->has_annotations;
    if (!t->has_annotations)
        return L3D_OK;
    uint32_t a0 = t->ann_offsets[sample_row], a1 = t->ann_offsets[sample_row + 1];
    if (!l3d_index_line_reserve(line, a1 - a0))
        return l3d_fail(err, L3D_EINTERNAL, "out of memory");
    for (uint32_t k = a0; k < a1; k++) {
        const l3d_annotation *a = &t->ann.rows[t->ann_rows[k]];
        size_t i = line->n_boxes++;
        l3d_box_global_to_lidar(a->centre, a->size_wlh, a->q, l2e, e2g, line->gt_boxes + 7 * i);
        const l3d_instance *in = &t->instance.rows[a->instance];
        /* truncating copy, as snprintf "%s" did, without printf's cost per box */
        const char *name = l3d_str(t, t->category.rows[in->category].name);
        size_t n = strnlen(name, sizeof line->gt_names[i] - 1);
        memcpy(line->gt_names[i], name, n);
        line->gt_names[i][n] = 0;
        if ((rc = copy_str(line->gt_tokens[i], sizeof line->gt_tokens[i], l3d_str(t, a->token),
                           "token", err)))
            return rc;
        line->num_lidar_pts[i] = a->num_lidar_pts;
    }
    return L3D_OK;
}
