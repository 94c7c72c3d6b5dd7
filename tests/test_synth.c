/* lyft-synth: the ray caster against hand-computed hits, then the tool end to
 * end: tables that are valid and fully linked, what lyft-index makes of them,
 * points that fall in the boxes that claim them, determinism, archives,
 * defects, split files, size statistics and the command line. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>
#include <yajl_tree.h>

#include "formats/geometry.h"
#include "formats/index_line.h"
#include "formats/lyft_tables.h"
#include "formats/strmap.h"
#include "tests/support/testutil.h"

/* The tool's private ray caster and class shapes, compiled in for unit tests. */
#include "tools/lyft-synth/classes.c"
#include "tools/lyft-synth/raycast.c"
#include "tools/lyft-synth/sensor.c"

/* ---- hand-checked ray hits --------------------------------------------- */

static int cast(rc_scene *sc, const double o[3], double dx, double dy, double dz, double *t)
{
    double n = sqrt(dx * dx + dy * dy + dz * dz), d[3] = {dx / n, dy / n, dz / n};
    assert_int_equal(rc_prepare(sc, o, 200), 0);
    return rc_cast(sc, d, t);
}

static void test_ray_box_and_ground(void **state)
{
    (void)state;
    rc_scene sc;
    rc_scene_init(&sc);
    rc_scene_clear(&sc, 0);
    /* a 4 x 2 x 1.5 box whose rear face is the plane x = 8 */
    assert_int_equal(rc_item_begin(&sc, 7), 0);
    assert_int_equal(rc_add_box(&sc, (double[3]){10, 0, 0}, 0, 4, 2, 1.5), 0);
    const double o[3] = {0, 0, 1};
    double t;
    assert_int_equal(cast(&sc, o, 1, 0, 0, &t), 7);
    assert_true(fabs(t - 8) < 1e-12);
    /* aimed at (8, 0.5, 0.5) on the rear face */
    assert_int_equal(cast(&sc, o, 8, 0.5, -0.5, &t), 7);
    assert_true(fabs(t - sqrt(64 + 0.25 + 0.25)) < 1e-12);
    /* passes 0.1 m beside the face (y = 1.1 at x = 8), then only gets farther */
    assert_int_equal(cast(&sc, o, 8, 1.1, 0, &t), RC_NONE);
    /* 0.1 m above the top edge, rising: nothing */
    assert_int_equal(cast(&sc, o, 8, 0, 0.6, &t), RC_NONE);
    /* steep enough to meet the ground at x = 5 before the box */
    assert_int_equal(cast(&sc, o, 1, 0, -0.2, &t), RC_GROUND);
    assert_true(fabs(t - sqrt(26)) < 1e-12);
    /* shallow: clears the ground until x = 20, so it meets the box first */
    assert_int_equal(cast(&sc, o, 1, 0, -0.05, &t), 7);
    assert_true(fabs(t - 8 * sqrt(1 + 0.0025)) < 1e-12);
    /* turned 90 degrees the box is 2 long in x: rear face at x = 9 */
    rc_scene_clear(&sc, 0);
    rc_item_begin(&sc, 3);
    rc_add_box(&sc, (double[3]){10, 0, 0}, M_PI / 2, 4, 2, 1.5);
    assert_int_equal(cast(&sc, o, 1, 0, 0, &t), 3);
    assert_true(fabs(t - 9) < 1e-12);
    assert_int_equal(cast(&sc, o, 9, 1.9, 0, &t), 3);   /* near the end of the long side */
    assert_int_equal(cast(&sc, o, 9, 2.1, 0, &t), RC_NONE);
    rc_scene_free(&sc);
}

static void test_ray_cylinder(void **state)
{
    (void)state;
    rc_scene sc;
    rc_scene_init(&sc);
    rc_scene_clear(&sc, 0);
    rc_item_begin(&sc, 1);
    rc_add_cylinder(&sc, 5, 0, 0.5, 0, 2);
    double t, o[3] = {0, 0, 1};
    assert_int_equal(cast(&sc, o, 1, 0, 0, &t), 1);
    assert_true(fabs(t - 4.5) < 1e-12);
    /* off-centre: the axis is h = 5 sin(a) from the ray, entry at 5 cos(a) - sqrt(r^2 - h^2) */
    double a = atan2(0.3, 5), h = 5 * sin(a);
    assert_int_equal(cast(&sc, o, 5, 0.3, 0, &t), 1);
    assert_true(fabs(t - (5 * cos(a) - sqrt(0.25 - h * h))) < 1e-12);
    /* from above, through the top cap: at x = 4.5 the ray is still 0.1 over the top */
    double above[3] = {0, 0, 3};
    assert_int_equal(cast(&sc, above, 5, 0, -1, &t), 1);
    assert_true(fabs(t - sqrt(26)) < 1e-12);
    rc_scene_free(&sc);
}

/* Classes differ in shape: a car's cabin is set back from its rear, a bus
 * is one block; parts stay `inset` inside the box. */
static void test_class_shapes(void **state)
{
    (void)state;
    const double lwh[3] = {4.75, 1.92, 1.71}, inset = 0.0375, o_hi[3] = {0, 0, 0.8 * 1.71},
                 o_lo[3] = {0, 0, 0.3 * 1.71};
    rc_scene sc;
    rc_scene_init(&sc);
    double t;
    for (int cls = 0; cls < 9; cls++) {
        rc_scene_clear(&sc, 0);
        assert_int_equal(rc_add_object(&sc, 0, cls, (double[3]){20, 0, 0}, 0, lwh, inset), 0);
        assert_true(sc.n_prims >= 1);
        for (size_t i = 0; i < sc.n_prims; i++) {   /* inside the box, off its sides and top */
            const rc_prim *p = &sc.prims[i];
            assert_true(p->c[2] + p->half[2] <= lwh[2] - inset + 1e-12);
            assert_true(fabs(p->c[0] - 20) + p->half[0] <= lwh[0] / 2 - inset + 1e-12);
            assert_true(fabs(p->c[1]) + p->half[p->cylinder ? 0 : 1] <= lwh[1] / 2 - inset + 1e-12);
        }
    }
    rc_scene_clear(&sc, 0);   /* car facing +x, seen from behind */
    rc_add_object(&sc, 0, 4, (double[3]){20, 0, 0}, 0, lwh, inset);
    assert_int_equal(cast(&sc, o_hi, 1, 0, 0, &t), 0);
    assert_true(fabs(t - (20 - 0.32 * 4.75)) < 1e-6);   /* cabin rear (parts are floats) */
    assert_int_equal(cast(&sc, o_lo, 1, 0, 0, &t), 0);
    assert_true(fabs(t - (20 - 4.75 / 2 + inset)) < 1e-9);   /* body rear */
    rc_scene_clear(&sc, 0);   /* a bus of the same size: one block */
    rc_add_object(&sc, 0, 6, (double[3]){20, 0, 0}, 0, lwh, inset);
    assert_int_equal(cast(&sc, o_hi, 1, 0, 0, &t), 0);
    assert_true(fabs(t - (20 - 4.75 / 2 + inset)) < 1e-9);
    rc_scene_clear(&sc, 0);   /* a pedestrian: a cylinder of radius 0.36 * min(l, w) */
    const double ped[3] = {0.8, 0.76, 1.76};
    rc_add_object(&sc, 0, 2, (double[3]){10, 0, 0}, 0.3, ped, inset);
    assert_int_equal(cast(&sc, (double[3]){0, 0, 1}, 1, 0, 0, &t), 0);
    assert_true(fabs(t - (10 - 0.36 * 0.76)) < 1e-6);
    rc_scene_free(&sc);
}

static double rnd(uint64_t *x)
{
    *x = *x * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*x >> 11) * 0x1.0p-53;
}

/* Binning and early exits change nothing: rc_cast equals a brute-force scan. */
static void test_cast_matches_brute_force(void **state)
{
    (void)state;
    rc_scene sc;
    rc_scene_init(&sc);
    rc_scene_clear(&sc, 0);
    uint64_t x = 12345;
#define RND() rnd(&x)
    for (int i = 0; i < 300; i++) {
        double cx = 300 * RND() - 150, cy = 300 * RND() - 150, v[4];
        for (int k = 0; k < 4; k++)
            v[k] = RND();
        if (hypot(cx, cy) < 5)
            continue;
        rc_item_begin(&sc, i);
        if (i % 3)
            rc_add_box(&sc, (double[3]){cx, cy, 0}, 6 * v[0], 1 + 10 * v[1], 1 + 3 * v[2],
                       1 + 8 * v[3]);
        else
            rc_add_cylinder(&sc, cx, cy, 0.2 + 2 * v[0], 3 * v[1], 4 + 4 * v[2]);
    }
    const double o[3] = {0.3, -0.2, 1.8};
    assert_int_equal(rc_prepare(&sc, o, 120), 0);
    int hits = 0;
    for (int r = 0; r < 20000; r++) {
        double az = 2 * M_PI * RND(), el = -0.5 + 0.8 * RND();
        double d[3] = {cos(el) * cos(az), cos(el) * sin(az), sin(el)}, t;
        int owner = rc_cast(&sc, d, &t);
        double best = 120;
        int want = RC_NONE;
        if (d[2] < 0 && (0 - o[2]) / d[2] <= best) {
            best = (0 - o[2]) / d[2];
            want = RC_GROUND;
        }
        for (size_t k = 0; k < sc.n_items; k++)
            for (uint32_t p = sc.items[k].first; p < sc.items[k].first + sc.items[k].n; p++) {
                double tp = rc_hit_prim(&sc.prims[p], o, d);
                if (tp < best) {
                    best = tp;
                    want = sc.items[k].owner;
                }
            }
        assert_int_equal(owner, want);
        assert_true(t == best);
        hits += owner >= 0;
    }
    assert_true(hits > 2000);   /* the scene is not empty */
#undef RND
    rc_scene_free(&sc);
}

/* A whole scan against a wall 10 m ahead: which rays hit it is counted by hand,
 * and every return lies on it; mounted yawed 180 degrees it appears at x = -10. */
static void test_sensor_scan_counts(void **state)
{
    (void)state;
    syn_sensor s;
    assert_int_equal(syn_sensor_init(&s, 16, 720, 1, 200, 0), 0);
    rc_scene sc;
    rc_scene_init(&sc);
    float *pts = malloc(16 * 720 * 5 * sizeof *pts);
    for (int mount = 0; mount < 2; mount++) {
        rc_scene_clear(&sc, 0);
        rc_item_begin(&sc, 0);
        rc_add_box(&sc, (double[3]){11, 0, 0}, 0, 2, 4, 4);   /* face x = 10, |y| <= 2, 0..4 m */
        double R[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1}, o[3] = {0, 0, 1.8};
        if (mount)
            R[0] = R[4] = -1;
        assert_int_equal(rc_prepare(&sc, o, 200), 0);
        uint32_t hits[1] = {0};
        syn_rng g;
        syn_rng_init(&g, 1, 2, 3);
        size_t n = syn_sensor_scan(&s, &sc, R, &g, pts, hits, 1);
        int want = 0;
        for (int k = 0; k < 720; k++)
            for (int b = 0; b < 16; b++) {
                double az = 2 * M_PI * k / 720 + (mount ? M_PI : 0);
                double el = syn_beam_elevation_deg(b, 16) * M_PI / 180;
                if (cos(az) <= 0)
                    continue;
                double tx = 10 / (cos(el) * cos(az));   /* the ray reaches x = 10 here */
                double y = tx * cos(el) * sin(az), z = 1.8 + tx * sin(el);
                want += fabs(y) <= 2 && z >= 0 && z <= 4;
            }
        assert_true(want > 20);
        assert_int_equal(hits[0], want);
        int on_wall = 0;
        for (size_t i = 0; i < n; i++) {
            float *p = pts + 5 * i;
            assert_true(p[3] == 100.0f && p[4] >= 0 && p[4] < 16 && p[4] == floorf(p[4]));
            on_wall += fabs(p[0] - (mount ? -10 : 10)) < 1e-4;
        }
        assert_int_equal(on_wall, want);
    }
    free(pts);
    rc_scene_free(&sc);
    syn_sensor_free(&s);
}

/* ---- running the tool ---------------------------------------------------- */

#define SMALL "--scenes 2 --samples-per-scene 12 --points 4000 --beams 32 --objects 25"

/* Runs lyft-synth ARGS DIR in a fresh folder; returns DIR. */
static const char *synth(const char *tag, const char *args)
{
    static char dirs[6][4200];
    static int k;
    char *dir = dirs[k++ % 6], cmd[8192];
    snprintf(dir, 4200, "%s/ds", tu_tmpdir(tag));
    snprintf(cmd, sizeof cmd, "'%s' -q %s '%s'", tu_tool("lyft-synth"), args, dir);
    char *err = NULL;
    int rc = tu_run(cmd, NULL, &err);
    if (rc != 0)
        fail_msg("lyft-synth %s: exit %d: %s", args, rc, err ? err : "");
    free(err);
    return dir;
}

/* Removes a dataset made by synth() (they are tens of MB in all). */
static void drop(const char *root)
{
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "rm -rf \"$(dirname '%s')\"", root);
    assert_int_equal(system(cmd), 0);
}

static yajl_val table(const char *root, const char *name)
{
    char path[4400], ebuf[256];
    snprintf(path, sizeof path, "%s/train_data/%s.json", root, name);
    char *text = tu_read_file(path, NULL);
    if (!text)
        fail_msg("cannot read %s", path);
    yajl_val v = yajl_tree_parse(text, ebuf, sizeof ebuf);
    free(text);
    if (!v || !YAJL_IS_ARRAY(v))
        fail_msg("%s: not a JSON array: %s", path, ebuf);
    return v;
}

static yajl_val field(yajl_val rec, const char *key)
{
    const char *path[] = {key, NULL};
    yajl_val v = yajl_tree_get(rec, path, yajl_t_any);
    if (!v)
        fail_msg("record lacks '%s'", key);
    return v;
}

static const char *str(yajl_val rec, const char *key)
{
    yajl_val v = field(rec, key);
    if (!YAJL_IS_STRING(v))
        fail_msg("'%s' is not a string", key);
    return YAJL_GET_STRING(v);
}

static double num(yajl_val rec, const char *key)
{
    yajl_val v = field(rec, key);
    if (!YAJL_IS_NUMBER(v))
        fail_msg("'%s' is not a number", key);
    return YAJL_GET_DOUBLE(v);
}

static double elem(yajl_val rec, const char *key, size_t i)
{
    yajl_val v = field(rec, key);
    if (!YAJL_IS_ARRAY(v) || i >= v->u.array.len || !YAJL_IS_NUMBER(v->u.array.values[i]))
        fail_msg("'%s'[%zu] is not a number", key, i);
    return YAJL_GET_DOUBLE(v->u.array.values[i]);
}

static size_t rows(yajl_val t) { return t->u.array.len; }
static yajl_val row(yajl_val t, size_t i) { return t->u.array.values[i]; }

/* One loaded table with a token index. */
typedef struct tab { yajl_val v; l3d_strmap idx; } tab;

static void tab_load(tab *t, const char *root, const char *name, size_t hex)
{
    t->v = table(root, name);
    l3d_strmap_init(&t->idx);
    for (size_t i = 0; i < rows(t->v); i++) {
        const char *tok = str(row(t->v, i), "token");
        if (hex && (strlen(tok) != hex || strspn(tok, "0123456789abcdef") != hex))
            fail_msg("%s: token '%s' is not %zu hex digits", name, tok, hex);
        if (l3d_strmap_get(&t->idx, tok))
            fail_msg("%s: token '%s' twice", name, tok);
        assert_true(l3d_strmap_put(&t->idx, tok, i + 1));
    }
}

static void tab_free(tab *t)
{
    l3d_strmap_free(&t->idx);
    yajl_tree_free(t->v);
}

/* The row a token names; fails when it names nothing ("" allowed with may_be_empty). */
static yajl_val link_to(const tab *t, const char *tok, int may_be_empty, const char *what)
{
    if (may_be_empty && !tok[0])
        return NULL;
    size_t r = l3d_strmap_get(&t->idx, tok);
    if (!r)
        fail_msg("%s '%s' names no record", what, tok);
    return row(t->v, r - 1);
}


/* ---- the tables ---------------------------------------------------------- */

enum { SCENE, SAMPLE, SD, EGO, CALIB, SENSOR, ANN, INST, CAT, ATTR, VIS, LOG, MAP, N_TABS };
static const char *const tab_names[N_TABS] = {
    "scene", "sample", "sample_data", "ego_pose", "calibrated_sensor", "sensor",
    "sample_annotation", "instance", "category", "attribute", "visibility", "log", "map",
};
static const size_t tab_hex[N_TABS] = {64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 0, 64, 32};

static void load_all(tab *t, const char *root)
{
    for (int i = 0; i < N_TABS; i++)
        tab_load(&t[i], root, tab_names[i], tab_hex[i]);
}

static void free_all(tab *t)
{
    for (int i = 0; i < N_TABS; i++)
        tab_free(&t[i]);
}

static double dist3(yajl_val a, yajl_val b, const char *key)
{
    double d = 0;
    for (int i = 0; i < 3; i++)
        d += pow(elem(a, key, (size_t)i) - elem(b, key, (size_t)i), 2);
    return sqrt(d);
}

static double quat_yaw_of(yajl_val rec)
{
    double q[4];
    for (int i = 0; i < 4; i++)
        q[i] = elem(rec, "rotation", (size_t)i);
    return l3d_quat_yaw(q);
}

static void check_scenes(tab *t)
{
    assert_int_equal(rows(t[SCENE].v), 2);
    assert_int_equal(rows(t[LOG].v), 2);
    for (size_t i = 0; i < rows(t[SCENE].v); i++) {
        yajl_val sc = row(t[SCENE].v, i);
        yajl_val lg = link_to(&t[LOG], str(sc, "log_token"), 0, "log_token");
        assert_string_equal(str(sc, "token"), str(sc, "log_token"));
        char prefix[64];
        snprintf(prefix, sizeof prefix, "host-%s-lidar0-", str(lg, "vehicle"));
        assert_true(!strncmp(str(sc, "name"), prefix, strlen(prefix)));
        yajl_val cur = link_to(&t[SAMPLE], str(sc, "first_sample_token"), 0, "first_sample_token");
        assert_string_equal(str(cur, "prev"), "");
        int count = 1;
        while (str(cur, "next")[0]) {
            yajl_val nx = link_to(&t[SAMPLE], str(cur, "next"), 0, "sample.next");
            assert_string_equal(str(nx, "prev"), str(cur, "token"));
            double dt = num(nx, "timestamp") - num(cur, "timestamp");
            assert_true(dt > 0.195e6 && dt < 0.205e6);   /* 5 Hz */
            assert_string_equal(str(nx, "scene_token"), str(sc, "token"));
            cur = nx;
            count++;
        }
        assert_string_equal(str(cur, "token"), str(sc, "last_sample_token"));
        assert_int_equal(count, (int)num(sc, "nbr_samples"));
        assert_int_equal(count, 12);
    }
}

static void check_sample_data(tab *t)
{
    size_t n = rows(t[SAMPLE].v), fractional = 0;
    int *uses = calloc(n, sizeof *uses);
    assert_int_equal(rows(t[SD].v), n);
    for (size_t i = 0; i < rows(t[SD].v); i++) {
        yajl_val sd = row(t[SD].v, i);
        yajl_val smp = link_to(&t[SAMPLE], str(sd, "sample_token"), 0, "sample_token");
        uses[l3d_strmap_get(&t[SAMPLE].idx, str(sd, "sample_token")) - 1]++;
        yajl_val ego = link_to(&t[EGO], str(sd, "ego_pose_token"), 0, "ego_pose_token");
        yajl_val cal = link_to(&t[CALIB], str(sd, "calibrated_sensor_token"), 0, "calib token");
        yajl_val sen = link_to(&t[SENSOR], str(cal, "sensor_token"), 0, "sensor_token");
        assert_string_equal(str(sen, "channel"), "LIDAR_TOP");
        double ts = num(sd, "timestamp");
        assert_true(ts == num(smp, "timestamp") && ts == num(ego, "timestamp"));
        fractional += ts != floor(ts);
        assert_true(YAJL_IS_TRUE(field(sd, "is_key_frame")));
        assert_string_equal(str(sd, "fileformat"), "bin");
        /* train_lidar/host-aNNN_lidar1_<T>.bin with T = (timestamp_us - 315964800e6) * 1000 */
        char host[8];
        long long T;
        int len = 0;
        assert_int_equal(sscanf(str(sd, "filename"), "train_lidar/host-a%3[0-9]_lidar1_%lld.bin%n",
                                host, &T, &len), 2);
        assert_int_equal(len, (int)strlen(str(sd, "filename")));
        assert_true(fabs((double)T / 1000 + 315964800e6 - ts) < 1);
        yajl_val sc = link_to(&t[SCENE], str(smp, "scene_token"), 0, "scene_token");
        yajl_val lg = link_to(&t[LOG], str(sc, "log_token"), 0, "log_token");
        assert_string_equal(str(lg, "vehicle") + 1, host);
        yajl_val prev = link_to(&t[SD], str(sd, "prev"), 1, "sample_data.prev");
        if (prev)
            assert_string_equal(str(prev, "next"), str(sd, "token"));
        link_to(&t[SD], str(sd, "next"), 1, "sample_data.next");
    }
    for (size_t i = 0; i < n; i++)
        assert_int_equal(uses[i], 1);   /* one LIDAR_TOP record per sample */
    assert_true(fractional > n / 2);   /* fractional microseconds, as in Lyft */
    free(uses);
    for (size_t i = 0; i < rows(t[CALIB].v); i++) {   /* mounted yawed ~180 degrees */
        yajl_val cal = row(t[CALIB].v, i);
        assert_true(fabs(quat_yaw_of(cal)) > 175 * M_PI / 180);
        assert_true(elem(cal, "translation", 2) > 1.5 && elem(cal, "translation", 2) < 2.2);
        assert_true(YAJL_IS_ARRAY(field(cal, "camera_intrinsic")));
        assert_int_equal(field(cal, "camera_intrinsic")->u.array.len, 0);
    }
    for (size_t i = 0; i < rows(t[SD].v); i++) {   /* a smoothly moving ego */
        yajl_val sd = row(t[SD].v, i), prev = link_to(&t[SD], str(sd, "prev"), 1, "prev");
        if (!prev)
            continue;
        yajl_val e1 = link_to(&t[EGO], str(sd, "ego_pose_token"), 0, "ego");
        yajl_val e0 = link_to(&t[EGO], str(prev, "ego_pose_token"), 0, "ego");
        double dt = (num(e1, "timestamp") - num(e0, "timestamp")) / 1e6;
        assert_true(dist3(e1, e0, "translation") / dt < 20);
        assert_true(fabs(remainder(quat_yaw_of(e1) - quat_yaw_of(e0), 2 * M_PI)) < 0.1);
    }
}

static double max_speed(const char *cls)
{
    return !strcmp(cls, "pedestrian") || !strcmp(cls, "animal") ? 2.5
           : !strcmp(cls, "bicycle") ? 8 : 20;
}

static void check_annotations(tab *t)
{
    for (size_t i = 0; i < rows(t[ANN].v); i++) {
        yajl_val a = row(t[ANN].v, i);
        link_to(&t[SAMPLE], str(a, "sample_token"), 0, "sample_token");
        link_to(&t[INST], str(a, "instance_token"), 0, "instance_token");
        yajl_val attrs = field(a, "attribute_tokens");
        assert_true(YAJL_IS_ARRAY(attrs) && attrs->u.array.len >= 1);
        for (size_t k = 0; k < attrs->u.array.len; k++)
            link_to(&t[ATTR], YAJL_GET_STRING(attrs->u.array.values[k]), 0, "attribute token");
        link_to(&t[VIS], str(a, "visibility_token"), 1, "visibility_token");
        for (int k = 0; k < 3; k++)
            assert_true(elem(a, "size", (size_t)k) > 0.1);
        double w = elem(a, "rotation", 0), z = elem(a, "rotation", 3);
        assert_true(elem(a, "rotation", 1) == 0 && elem(a, "rotation", 2) == 0);
        assert_true(fabs(w * w + z * z - 1) < 1e-12);
        assert_true(num(a, "num_lidar_pts") >= 0);
        yajl_val nx = link_to(&t[ANN], str(a, "next"), 1, "annotation.next");
        if (nx) {
            assert_string_equal(str(nx, "prev"), str(a, "token"));
            assert_string_equal(str(nx, "instance_token"), str(a, "instance_token"));
        }
    }
    size_t total = 0;
    int used[9] = {0};
    for (size_t i = 0; i < rows(t[INST].v); i++) {
        yajl_val in = row(t[INST].v, i);
        yajl_val cat = link_to(&t[CAT], str(in, "category_token"), 0, "category_token");
        const char *cls = str(cat, "name");
        used[l3d_lyft_class_index(cls)] = 1;
        yajl_val a = link_to(&t[ANN], str(in, "first_annotation_token"), 0, "first_annotation");
        assert_string_equal(str(a, "prev"), "");
        size_t count = 1;
        for (yajl_val nx; (nx = link_to(&t[ANN], str(a, "next"), 1, "next")); a = nx, count++) {
            assert_string_equal(str(nx, "instance_token"), str(in, "token"));
            for (int k = 0; k < 3; k++)
                assert_true(elem(nx, "size", (size_t)k) == elem(a, "size", (size_t)k));
            yajl_val s0 = link_to(&t[SAMPLE], str(a, "sample_token"), 0, "s");
            yajl_val s1 = link_to(&t[SAMPLE], str(nx, "sample_token"), 0, "s");
            double dt = (num(s1, "timestamp") - num(s0, "timestamp")) / 1e6;
            assert_true(dt > 0);
            if (dist3(nx, a, "translation") / dt > max_speed(cls))
                fail_msg("%s moves at %.1f m/s", cls, dist3(nx, a, "translation") / dt);
        }
        assert_string_equal(str(a, "token"), str(in, "last_annotation_token"));
        assert_int_equal(count, (size_t)num(in, "nbr_annotations"));
        total += count;
    }
    assert_int_equal(total, rows(t[ANN].v));
    for (int k = 0; k < 9; k++)   /* the first scene holds one of each class */
        assert_true(used[k]);
}

static void test_tables_valid_and_linked(void **state)
{
    (void)state;
    tab t[N_TABS];
    const char *root = synth("tables", SMALL);
    load_all(t, root);
    assert_int_equal(rows(t[CAT].v), 9);
    for (size_t i = 0; i < 9; i++)
        assert_true(l3d_lyft_class_index(str(row(t[CAT].v, i), "name")) >= 0);
    assert_int_equal(rows(t[VIS].v), 4);
    assert_int_equal(rows(t[SENSOR].v), 10);
    assert_int_equal(rows(t[ATTR].v), 18);
    assert_int_equal(rows(t[MAP].v), 1);
    yajl_val logs = field(row(t[MAP].v, 0), "log_tokens");
    assert_int_equal(logs->u.array.len, rows(t[LOG].v));
    for (size_t i = 0; i < logs->u.array.len; i++)
        link_to(&t[LOG], YAJL_GET_STRING(logs->u.array.values[i]), 0, "map.log_tokens");
    check_scenes(t);
    check_sample_data(t);
    check_annotations(t);
    free_all(t);
    drop(root);
}

/* ---- what lyft-index makes of it ------------------------------------------ */

typedef struct index_run {
    int rc, n;
    char *out, *err;
    l3d_index_line *lines;
} index_run;

static void run_index(index_run *r, const char *args)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s", tu_tool("lyft-index"), args);
    memset(r, 0, sizeof *r);
    r->rc = tu_run(cmd, &r->out, &r->err);
    size_t cap = 0;
    char *copy = strdup(r->out ? r->out : ""), *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if ((size_t)r->n == cap) {
            cap = cap ? 2 * cap : 64;
            r->lines = realloc(r->lines, cap * sizeof *r->lines);
        }
        l3d_err err = {0};
        l3d_index_line_init(&r->lines[r->n]);
        if (l3d_index_line_parse(line, "stdout", r->n + 1, &r->lines[r->n], &err))
            fail_msg("cannot read back index line %d: %s", r->n + 1, err.msg);
        r->n++;
    }
    free(copy);
}

static void index_done(index_run *r)
{
    for (int i = 0; i < r->n; i++)
        l3d_index_line_free(&r->lines[i]);
    free(r->lines);
    free(r->out);
    free(r->err);
}

static float *read_points(const char *root, const char *rel, size_t *n)
{
    char path[4400];
    size_t bytes;
    snprintf(path, sizeof path, "%s/%s", root, rel);
    float *p = (float *)tu_read_file(path, &bytes);
    if (!p)
        fail_msg("cannot read %s", path);
    *n = bytes / 20;
    return p;
}

/* Counts the points of a scan inside an annotation's global box: strictly
 * (above the bottom 6 cm, where ground returns may lie) and loosely (a few
 * cm of slack). The object's own returns must lie between the two. */
static void box_counts(const double *global, size_t n, yajl_val a, long *strict, long *loose)
{
    double c[3], w = elem(a, "size", 0), l = elem(a, "size", 1), h = elem(a, "size", 2);
    for (int k = 0; k < 3; k++)
        c[k] = elem(a, "translation", (size_t)k);
    double yaw = quat_yaw_of(a), cs = cos(yaw), sn = sin(yaw);
    *strict = *loose = 0;
    for (size_t i = 0; i < n; i++) {
        const double *p = global + 3 * i;
        double dx = p[0] - c[0], dy = p[1] - c[1], dz = p[2] - c[2];
        if (fabs(dx) > l || fabs(dy) > l)
            continue;
        double lx = cs * dx + sn * dy, ly = -sn * dx + cs * dy;
        *loose += fabs(lx) <= l / 2 + 0.01 && fabs(ly) <= w / 2 + 0.01 && dz >= -h / 2 - 0.05 &&
                  dz <= h / 2 + 0.01;
        *strict += fabs(lx) <= l / 2 && fabs(ly) <= w / 2 && dz >= -h / 2 + 0.06 && dz <= h / 2;
    }
}

static void test_index_counts_and_points_in_boxes(void **state)
{
    (void)state;
    const char *root = synth("index", SMALL);
    yajl_val anns = table(root, "sample_annotation");
    char args[4400];
    snprintf(args, sizeof args, "'%s'", root);
    index_run r;
    run_index(&r, args);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.n, 24);
    size_t boxes = 0;
    long sum_num = 0, sum_strict = 0, n_annotated = 0;
    for (int i = 0; i < r.n; i++) {
        const l3d_index_line *l = &r.lines[i];
        boxes += l->n_boxes;
        assert_int_equal(l->n_sweeps, i % 12 < 10 ? i % 12 : 10);   /* scene order, then time */
        assert_false(l->sweeps_missing);
        size_t n;
        float *f = read_points(root, l->lidar.path, &n);
        assert_int_equal(l->lidar.num_points, (int64_t)n);
        assert_true(n > 2000 && n < 6000);
        double Rl[9], Re[9], *g = malloc(n * 3 * sizeof *g);
        l3d_quat_to_rot(l->lidar2ego_rotation, Rl);
        l3d_quat_to_rot(l->ego2global_rotation, Re);
        for (size_t k = 0; k < n; k++) {
            const float *p = f + 5 * k;
            assert_true(isfinite(p[0]) && isfinite(p[1]) && isfinite(p[2]));
            assert_true(p[3] == 100.0f && p[4] >= 0 && p[4] < 32);
            double v[3] = {p[0], p[1], p[2]}, e[3];
            l3d_mat3_vec(Rl, v, e);
            for (int c = 0; c < 3; c++)
                e[c] += l->lidar2ego_translation[c];
            l3d_mat3_vec(Re, e, g + 3 * k);
            for (int c = 0; c < 3; c++)
                g[3 * k + c] += l->ego2global_translation[c];
        }
        for (size_t k = 0; k < rows(anns); k++) {
            yajl_val a = row(anns, k);
            if (strcmp(str(a, "sample_token"), l->token))
                continue;
            long strict, loose, nl = (long)num(a, "num_lidar_pts");
            box_counts(g, n, a, &strict, &loose);
            if (strict > nl || nl > loose)
                fail_msg("sample %s: box %s has %ld..%ld points inside, num_lidar_pts %ld",
                         l->token, str(a, "token"), strict, loose, nl);
            sum_num += nl;
            sum_strict += strict;
            n_annotated += nl > 0;
        }
        for (size_t b = 0; b < l->n_boxes; b++)
            assert_true(l3d_lyft_class_index(l->gt_names[b]) >= 0);
        free(g);
        free(f);
    }
    assert_int_equal(boxes, rows(anns));
    assert_true(n_annotated > 50 && sum_num > 5000);
    assert_true(sum_num - sum_strict < sum_num / 20);   /* few returns lie in the bottom 6 cm */
    index_done(&r);
    yajl_tree_free(anns);
    drop(root);
}

/* About --points returns per scan at the defaults (64 beams). */
static void test_default_points_per_scan(void **state)
{
    (void)state;
    const char *root = synth("points", "--scenes 1 --samples-per-scene 2 --objects 40");
    char args[4400];
    snprintf(args, sizeof args, "'%s'", root);
    index_run r;
    run_index(&r, args);
    assert_int_equal(r.n, 2);
    for (int i = 0; i < r.n; i++)
        if (r.lines[i].lidar.num_points < 80000 || r.lines[i].lidar.num_points > 120000)
            fail_msg("%lld points in a scan", (long long)r.lines[i].lidar.num_points);
    index_done(&r);
    drop(root);
}

static char *index_text(const char *sources)
{
    char cmd[9000], *out = NULL;
    snprintf(cmd, sizeof cmd, "'%s' %s | sed 's/\"root\":\"[^\"]*\",//'", tu_tool("lyft-index"),
             sources);
    assert_int_equal(tu_run(cmd, &out, NULL), 0);
    return out;
}

static void test_archives_index_like_the_folder(void **state)
{
    (void)state;
    const char *fmts[] = {"zip", "tar", "tar.gz"};
    for (int i = 0; i < 3; i++) {
        char args[256], src[9000];
        snprintf(args, sizeof args, SMALL " --archive %s --corrupt-bin 1", fmts[i]);
        const char *root = synth("archive", args);
        snprintf(src, sizeof src, "'%s'", root);
        char *folder = index_text(src);
        snprintf(src, sizeof src, "'%s/train_data.%s' '%s/train_lidar.%s'", root, fmts[i], root,
                 fmts[i]);
        char *packed = index_text(src);
        assert_true(strlen(folder) > 1000 && strstr(folder, "\"lidar_path\":\"train_lidar/host-"));
        assert_string_equal(folder, packed);
        char p[4400];
        struct stat st;
        snprintf(p, sizeof p, "%s/train_maps.%s", root, fmts[i]);
        assert_int_equal(stat(p, &st), 0);
        free(folder);
        free(packed);
        drop(root);
    }
}

static void test_deterministic(void **state)
{
    (void)state;
    const char *opts = SMALL " --archive tar.gz --corrupt-bin 1 --dangling-prev 1";
    char a1[300], a2[300], a3[300], cmd[9000];
    snprintf(a1, sizeof a1, "%s --threads 1", opts);
    snprintf(a2, sizeof a2, "%s --threads 3", opts);
    snprintf(a3, sizeof a3, "%s --seed 2", opts);
    const char *d1 = synth("det", a1), *d2 = synth("det", a2), *d3 = synth("det", a3);
    snprintf(cmd, sizeof cmd, "diff -r '%s' '%s'", d1, d2);
    assert_int_equal(tu_run(cmd, NULL, NULL), 0);
    snprintf(cmd, sizeof cmd, "diff -rq '%s' '%s'", d1, d3);   /* another seed differs */
    assert_int_equal(tu_run(cmd, NULL, NULL), 1);
    drop(d1);
    drop(d2);
    drop(d3);
}

/* ---- defects, splits, statistics, command line ---------------------------- */

static void test_defects(void **state)
{
    (void)state;
    const char *root = synth("defects", SMALL " --corrupt-bin 1 --missing-bin 2 --dangling-prev 1");
    tab sd;
    tab_load(&sd, root, "sample_data", 64);
    int missing = 0, corrupt = 0, dangling = 0;
    for (size_t i = 0; i < rows(sd.v); i++) {
        yajl_val r = row(sd.v, i);
        const char *prev = str(r, "prev");
        dangling += prev[0] && !l3d_strmap_get(&sd.idx, prev);
        char path[4400];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", root, str(r, "filename"));
        if (stat(path, &st) != 0)
            missing++;
        else if (st.st_size % 20) {
            assert_int_equal(st.st_size % 20, 12);   /* 3 stray floats, like the real one */
            corrupt++;
        }
    }
    assert_int_equal(missing, 2);
    assert_int_equal(corrupt, 1);
    assert_int_equal(dangling, 1);
    tab_free(&sd);

    char args[4400];
    index_run r;
    snprintf(args, sizeof args, "'%s'", root);
    run_index(&r, args);
    assert_int_equal(r.rc, 8);   /* a missing key frame stops lyft-index */
    index_done(&r);
    snprintf(args, sizeof args, "--missing-lidar keep '%s'", root);
    run_index(&r, args);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.err, "not a multiple of 20"));
    int lost = 0, broken = 0;
    for (int i = 0; i < r.n; i++) {
        lost += r.lines[i].lidar.num_points < 0;
        broken += r.lines[i].sweeps_missing;
    }
    assert_int_equal(r.n, 24);
    assert_int_equal(lost, 2);
    assert_true(broken >= 1);
    index_done(&r);
    drop(root);
}

static int read_names(const char *path, char names[][128], int max)
{
    char *text = tu_read_file(path, NULL), *save = NULL;
    assert_non_null(text);
    int n = 0;
    for (char *s = strtok_r(text, "\n", &save); s && n < max; s = strtok_r(NULL, "\n", &save))
        snprintf(names[n++], 128, "%s", s);
    free(text);
    return n;
}

static void test_split_files(void **state)
{
    (void)state;
    const char *split = tu_tmpdir("split");
    char args[9000], path[4400], names[16][128];
    snprintf(args, sizeof args, "--scenes 6 --samples-per-scene 3 --points 1500 --beams 16 "
             "--objects 10 --split-out '%s/lists'", split);
    const char *root = synth("split", args);
    snprintf(path, sizeof path, "%s/lists/train.txt", split);
    int n_train = read_names(path, names, 16);
    snprintf(path, sizeof path, "%s/lists/val.txt", split);
    int n_val = read_names(path, names + n_train, 16 - n_train);
    assert_int_equal(n_train, 5);
    assert_int_equal(n_val, 1);
    yajl_val scenes = table(root, "scene");
    for (size_t i = 0; i < rows(scenes); i++) {   /* every scene listed exactly once */
        int seen = 0;
        for (int k = 0; k < n_train + n_val; k++)
            seen += !strcmp(names[k], str(row(scenes, i), "name"));
        assert_int_equal(seen, 1);
    }
    yajl_tree_free(scenes);
    index_run r;
    snprintf(args, sizeof args, "--split val --split-file '%s' '%s'", path, root);
    run_index(&r, args);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.n, 3);
    assert_string_equal(r.lines[0].scene_name, names[n_train]);
    index_done(&r);
    drop(root);
}

/* Sizes average the SSN anchor sizes (ssn-model.md 6.1); cars dominate. */
static void test_tables_only_statistics(void **state)
{
    (void)state;
    static const double anchor[9][3] = {   /* dx = length, dy = width, dz = height, SSN order */
        {1.76, 0.63, 1.44}, {2.35, 0.96, 1.59}, {0.80, 0.76, 1.76}, {0.73, 0.35, 0.50},
        {4.75, 1.92, 1.71}, {6.52, 2.42, 2.34}, {12.70, 2.92, 3.42}, {8.17, 2.75, 3.20},
        {10.24, 2.84, 3.44},
    };
    const char *root = synth("stats", "--tables-only --scenes 60 --samples-per-scene 2");
    char p[4400];
    struct stat st;
    snprintf(p, sizeof p, "%s/train_lidar", root);
    assert_true(stat(p, &st) != 0);   /* no scans */
    tab t[N_TABS];
    load_all(t, root);
    double sum[9][3] = {{0}};
    int n[9] = {0};
    long per_class[9] = {0};
    for (size_t i = 0; i < rows(t[INST].v); i++) {
        yajl_val in = row(t[INST].v, i);
        yajl_val cat = link_to(&t[CAT], str(in, "category_token"), 0, "category_token");
        int k = l3d_lyft_class_index(str(cat, "name"));
        yajl_val a = link_to(&t[ANN], str(in, "first_annotation_token"), 0, "a");
        for (int d = 0; d < 3; d++)   /* size is [w, l, h] */
            sum[k][d] += elem(a, "size", (size_t)(d == 0 ? 1 : d == 1 ? 0 : 2));
        n[k]++;
        per_class[k] += (long)num(in, "nbr_annotations");
    }
    for (size_t i = 0; i < rows(t[ANN].v); i++)
        assert_int_equal((int)num(row(t[ANN].v, i), "num_lidar_pts"), -1);
    long total = 0;
    for (int k = 0; k < 9; k++) {
        total += per_class[k];
        assert_true(n[k] > 0);
        for (int d = 0; n[k] >= 30 && d < 3; d++) {
            double mean = sum[k][d] / n[k], tol = fmax(0.03, 3 * 0.2 / sqrt(n[k]));
            if (fabs(mean / anchor[k][d] - 1) > tol)
                fail_msg("%s: mean size[%d] %.3f, anchor %.3f", l3d_lyft_classes[k], d, mean,
                         anchor[k][d]);
        }
    }
    double car = (double)per_class[4] / total;
    assert_true(car > 0.75 && car < 0.92);
    assert_true(per_class[3] < total / 200 && per_class[5] < total / 200);   /* rare ones */
    free_all(t);
    index_run r;
    snprintf(p, sizeof p, "--missing-lidar keep '%s'", root);
    run_index(&r, p);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.n, 120);
    index_done(&r);
    drop(root);
}

static int synth_rc(const char *args, char **err)
{
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "'%s' %s", tu_tool("lyft-synth"), args);
    return tu_run(cmd, NULL, err);
}

static void expect_usage_error(const char *args, const char *needle)
{
    char *err = NULL;
    assert_int_equal(synth_rc(args, &err), 2);
    if (!err || !strstr(err, needle))
        fail_msg("'%s': expected '%s' in: %s", args, needle, err ? err : "");
    free(err);
}

static void test_command_line(void **state)
{
    (void)state;
    char *out = NULL, cmd[9000], args[4400], p[4400];
    snprintf(cmd, sizeof cmd, "'%s' --help", tu_tool("lyft-synth"));
    assert_int_equal(tu_run(cmd, &out, NULL), 0);
    assert_non_null(strstr(out, "usage: lyft-synth"));
    free(out);
    expect_usage_error("", "no OUTDIR");
    expect_usage_error("--archive rar x", "--archive 'rar'");
    expect_usage_error("--scenes 0 x", "--scenes '0'");
    expect_usage_error("--tables-only --missing-bin 1 x", "need scans");
    expect_usage_error("--scenes 1 --samples-per-scene 2 --corrupt-bin 3 x", "only 2 .bin");

    const char *dir = tu_tmpdir("cli");   /* a non-empty OUTDIR is kept unless --force */
    snprintf(p, sizeof p, "%s/old", dir);
    tu_write_file(p, "x");
    snprintf(args, sizeof args, "--tables-only --scenes 1 --samples-per-scene 2 '%s'", dir);
    expect_usage_error(args, "not empty");
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    snprintf(args, sizeof args, "-q --force --tables-only --scenes 1 --samples-per-scene 2 '%s'",
             dir);
    assert_int_equal(synth_rc(args, NULL), 0);
    assert_true(stat(p, &st) != 0);
    snprintf(p, sizeof p, "%s/train_data/sample.json", dir);
    assert_int_equal(stat(p, &st), 0);

    /* failures leave nothing behind: an impossible OUTDIR, and an interrupted run */
    dir = tu_tmpdir("fail");
    snprintf(p, sizeof p, "%s/file", dir);
    tu_write_file(p, "x");
    snprintf(args, sizeof args, "--scenes 1 '%s/file/ds'", dir);
    assert_int_equal(synth_rc(args, NULL), 3);
    snprintf(cmd, sizeof cmd, "'%s' -q --scenes 8 '%s/big' & pid=$!; sleep 0.5; kill -INT $pid; "
             "wait $pid; echo $?; ls '%s'", tu_tool("lyft-synth"), dir, dir);
    assert_int_equal(tu_run(cmd, &out, NULL), 0);
    assert_string_equal(out, "1\nfile\n");
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ray_box_and_ground),
        cmocka_unit_test(test_ray_cylinder),
        cmocka_unit_test(test_class_shapes),
        cmocka_unit_test(test_cast_matches_brute_force),
        cmocka_unit_test(test_sensor_scan_counts),
        cmocka_unit_test(test_tables_valid_and_linked),
        cmocka_unit_test(test_index_counts_and_points_in_boxes),
        cmocka_unit_test(test_default_points_per_scan),
        cmocka_unit_test(test_archives_index_like_the_folder),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_defects),
        cmocka_unit_test(test_split_files),
        cmocka_unit_test(test_tables_only_statistics),
        cmocka_unit_test(test_command_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
