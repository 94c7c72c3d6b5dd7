#include "tools/lyft-synth/world.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tools/lyft-synth/classes.h"
#include "tools/lyft-synth/rng.h"

#define PI 3.14159265358979323846
#define MAX_CURVATURE (1.0 / 200)   /* keeps straight boxes inside their bands on curves */
#define LANE_VMAX 14.0

/* ---- road and ego ------------------------------------------------------ */

double syn_road_heading(const syn_road *r, double s)
{
    return r->h0 + r->a1 * sin(r->k1 * s + r->p1);
}

void syn_road_at(const syn_road *r, double s, double lat, double xy[2], double *heading)
{
    double f = (s - r->s_lo) / r->ds;
    int i = (int)floor(f);
    if (i < 0)
        i = 0;
    if (i > r->n - 2)
        i = r->n - 2;
    f -= i;   /* outside the table this extrapolates along the end segment */
    double h = syn_road_heading(r, s);
    xy[0] = r->x[i] + f * (r->x[i + 1] - r->x[i]) - lat * sin(h);
    xy[1] = r->y[i] + f * (r->y[i + 1] - r->y[i]) + lat * cos(h);
    *heading = h;
}

double syn_ego_s(const syn_world *w, double t)
{
    if (w->v_omega == 0)
        return w->v_mean * t;
    return w->v_mean * t -
           w->v_amp / w->v_omega * (cos(w->v_omega * t + w->v_phase) - cos(w->v_phase));
}

void syn_ego_pose(const syn_world *w, double t, double pos[3], double *yaw)
{
    syn_road_at(&w->road, syn_ego_s(w, t), SYN_EGO_LAT, pos, yaw);
    pos[2] = 0;
}

void syn_object_pose(const syn_world *w, const syn_object *o, double t, double bottom[3],
                     double *yaw)
{
    double h;
    syn_road_at(&w->road, o->s0 + o->v * t, o->lat, bottom, &h);
    bottom[2] = 0;
    *yaw = remainder(h + o->yaw_off, 2 * PI);
}

/* Integrates the heading into a centre line, shifted so that s = 0 is the origin. */
static int build_road(syn_road *r, syn_rng *g, double s_lo, double s_hi)
{
    r->h0 = syn_range(g, -PI, PI);
    r->p1 = syn_range(g, 0, 2 * PI);
    r->k1 = 2 * PI / syn_range(g, 400, 1200);
    r->a1 = syn_chance(g, 0.3) ? 0 : syn_range(g, 0.3, 1.0) * MAX_CURVATURE / r->k1;
    r->ds = 0.5;
    r->s_lo = s_lo;
    r->n = (int)ceil((s_hi - s_lo) / r->ds) + 2;
    r->x = malloc((size_t)r->n * sizeof *r->x);
    r->y = malloc((size_t)r->n * sizeof *r->y);
    if (!r->x || !r->y)
        return L3D_EINTERNAL;
    r->x[0] = r->y[0] = 0;
    for (int i = 1; i < r->n; i++) {
        double h = syn_road_heading(r, s_lo + (i - 0.5) * r->ds);
        r->x[i] = r->x[i - 1] + r->ds * cos(h);
        r->y[i] = r->y[i - 1] + r->ds * sin(h);
    }
    double o[2], h;
    syn_road_at(r, 0, 0, o, &h);
    for (int i = 0; i < r->n; i++) {
        r->x[i] -= o[0];
        r->y[i] -= o[1];
    }
    return L3D_OK;
}

/* ---- object bands ------------------------------------------------------ */

enum band_kind { BAND_LANE, BAND_BIKE, BAND_PARK, BAND_WALK };
typedef struct band {
    int kind;
    double lat;      /* parking: the side's sign; the centre depends on the width */
    double v;        /* signed speed along s */
    int dir;         /* +1: heading along s */
    double gap_lo, gap_hi;
} band;

enum { N_LANES = 3, N_BIKE = 2, N_PARK = 2, N_WALK = 6, N_BANDS = 13 };
enum { FIRST_LANE = 0, FIRST_BIKE = 3, FIRST_PARK = 5, FIRST_WALK = 7 };

static void make_bands(band *b, syn_rng *g)
{
    static const double lane_lat[N_LANES] = {-5.25, 1.75, 5.25};
    for (int i = 0; i < N_LANES; i++) {
        int dir = lane_lat[i] < 0 ? 1 : -1;
        double v = syn_chance(g, 0.15) ? 0 : syn_range(g, 4, LANE_VMAX);
        b[FIRST_LANE + i] = (band){BAND_LANE, lane_lat[i], dir * v, dir, 4, 25};
    }
    for (int i = 0; i < N_BIKE; i++) {
        int dir = i == 0 ? 1 : -1;
        b[FIRST_BIKE + i] = (band){BAND_BIKE, -7.8 * dir, dir * syn_range(g, 2.5, 6.5), dir, 3, 15};
    }
    b[FIRST_PARK + 0] = (band){BAND_PARK, -1, 0, 1, 0.5, 4};
    b[FIRST_PARK + 1] = (band){BAND_PARK, 1, 0, -1, 0.5, 4};
    static const double walk_lat[3] = {13.2, 14.4, 15.6};
    for (int i = 0; i < N_WALK; i++) {
        int dir = syn_chance(g, 0.5) ? 1 : -1;
        double v = syn_chance(g, 0.3) ? 0 : syn_range(g, 0.7, 1.7);
        double side = i < 3 ? -1 : 1;
        b[FIRST_WALK + i] = (band){BAND_WALK, side * walk_lat[i % 3], dir * v, dir, 0.4, 3};
    }
}

static int choose_band(syn_rng *g, const syn_class *c)
{
    switch (c->habitat) {
    case SYN_SIDEWALK: return FIRST_WALK + syn_below(g, N_WALK);
    case SYN_BIKE:
        if (syn_chance(g, c->p_parked))
            return FIRST_PARK + syn_below(g, N_PARK);
        return FIRST_BIKE + syn_below(g, N_BIKE);
    default:
        if (syn_chance(g, c->p_parked))
            return FIRST_PARK + syn_below(g, N_PARK);
        return FIRST_LANE + syn_below(g, N_LANES);
    }
}

static int attribute_of(const band *b)
{
    switch (b->kind) {
    case BAND_PARK: return SYN_ATTR_PARKED;
    case BAND_WALK: return b->v == 0 ? SYN_ATTR_STANDING : SYN_ATTR_WALKING;
    default: return b->v == 0 ? SYN_ATTR_STOPPED : SYN_ATTR_DRIVING;
    }
}

typedef struct slot { double s0; int obj, band; } slot;

static int by_band_then_s(const void *pa, const void *pb)
{
    const slot *a = pa, *b = pb;
    if (a->band != b->band)
        return a->band < b->band ? -1 : 1;
    if (a->s0 != b->s0)
        return a->s0 < b->s0 ? -1 : 1;
    return (a->obj > b->obj) - (a->obj < b->obj);
}

/* Objects are put where the ego passes them at a random time, then pushed
 * forward within their band until none overlaps its predecessor. */
static int place_objects(syn_world *w, syn_rng *g, int n, double duration, double radius,
                         int all_classes)
{
    band bands[N_BANDS];
    make_bands(bands, g);
    w->obj = calloc((size_t)(n ? n : 1), sizeof *w->obj);
    slot *slots = malloc((size_t)(n ? n : 1) * sizeof *slots);
    if (!w->obj || !slots) {
        free(slots);
        return L3D_EINTERNAL;
    }
    double freq[SYN_NCLASS];
    for (int k = 0; k < SYN_NCLASS; k++)
        freq[k] = syn_classes[k].freq;
    for (int j = 0; j < n; j++) {
        syn_object *o = &w->obj[j];
        o->cls = all_classes && j < SYN_NCLASS ? j : syn_pick(g, freq, SYN_NCLASS);
        const syn_class *c = &syn_classes[o->cls];
        for (int i = 0; i < 3; i++)
            o->lwh[i] = c->mean_lwh[i] * (1 + c->sd_frac[i] * syn_normal_trunc(g, 2.0));
        int bi = choose_band(g, c);
        const band *b = &bands[bi];
        o->v = b->v;
        o->attr = attribute_of(b);
        o->lat = b->kind == BAND_PARK ? b->lat * (8.7 + o->lwh[1] / 2) : b->lat;
        o->yaw_off = b->dir < 0 ? PI : 0;
        if (b->kind == BAND_PARK)
            o->yaw_off += (syn_chance(g, 0.1) ? PI : 0) +
                         syn_range(g, -1, 1) * fmin(0.04, 0.2 / o->lwh[0]);
        else if (b->kind == BAND_WALK)
            o->yaw_off += syn_range(g, -0.25, 0.25);
        double t_meet = syn_range(g, 0, duration);
        double s_meet = syn_ego_s(w, t_meet) + syn_range(g, -0.9, 0.9) * radius;
        slots[j] = (slot){s_meet - o->v * t_meet, j, bi};
    }
    qsort(slots, (size_t)n, sizeof *slots, by_band_then_s);
    for (int j = 0, first = 0; j < n; j++) {
        syn_object *o = &w->obj[slots[j].obj];
        o->s0 = slots[j].s0;
        if (j > 0 && slots[j - 1].band == slots[j].band) {
            const syn_object *p = &w->obj[slots[j - 1].obj];
            const band *b = &bands[slots[j].band];
            double min_s = p->s0 + (p->lwh[0] + o->lwh[0]) / 2 + syn_range(g, b->gap_lo, b->gap_hi);
            if (o->s0 < min_s)
                o->s0 = min_s;
        }
        if (j == n - 1 || slots[j + 1].band != slots[j].band) {
            /* move the band back by its mean push, so it stays centred on the ego's path */
            double push = 0;
            for (int i = first; i <= j; i++)
                push += w->obj[slots[i].obj].s0 - slots[i].s0;
            for (int i = first; i <= j; i++)
                w->obj[slots[i].obj].s0 -= push / (j - first + 1);
            first = j + 1;
        }
    }
    free(slots);
    w->n_obj = n;
    return L3D_OK;
}

/* ---- structures -------------------------------------------------------- */

static int push_static(syn_world *w, int *cap, syn_static s)
{
    if (w->n_st == *cap) {
        int nc = *cap ? 2 * *cap : 256;
        syn_static *p = realloc(w->st, (size_t)nc * sizeof *p);
        if (!p)
            return L3D_EINTERNAL;
        w->st = p;
        *cap = nc;
    }
    w->st[w->n_st++] = s;
    return L3D_OK;
}

static int place_structures(syn_world *w, syn_rng *g, double s_lo, double s_hi)
{
    int cap = 0;
    const syn_road *r = &w->road;
    for (int side = -1; side <= 1; side += 2) {
        for (double s = s_lo + syn_range(g, 0, 10); s < s_hi;) {
            double len = syn_range(g, 8, 24), depth = syn_range(g, 8, 20);
            double set = 17.4 + syn_range(g, 0, 5), height = syn_range(g, 4, 18);
            if (!syn_chance(g, 0.2)) {   /* else an open lot */
                syn_static b = {.kind = SYN_BUILDING, .l = len, .w = depth, .h = height};
                double xy[2];
                syn_road_at(r, s + len / 2, side * (set + depth / 2), xy, &b.yaw);
                b.x = xy[0];
                b.y = xy[1];
                if (push_static(w, &cap, b))
                    return L3D_EINTERNAL;
            }
            s += len + syn_range(g, 1, 14);
        }
        for (double s = s_lo + syn_range(g, 0, 20); s < s_hi; s += syn_range(g, 18, 40)) {
            syn_static p = {.kind = SYN_POLE};
            double xy[2];
            syn_road_at(r, s, side * 12.45, xy, &p.yaw);
            p.x = xy[0];
            p.y = xy[1];
            if (syn_chance(g, 0.3)) {
                p.kind = SYN_TREE;
                p.r = syn_range(g, 0.1, 0.15);
                p.crown_r = syn_range(g, 1.5, 2.5);
                p.crown_z = 4.8;
                p.h = syn_range(g, 6.5, 9);
            } else {
                p.r = syn_range(g, 0.08, 0.15);
                p.h = syn_range(g, 5, 9);
            }
            if (push_static(w, &cap, p))
                return L3D_EINTERNAL;
        }
    }
    return L3D_OK;
}

/* ---- the scene --------------------------------------------------------- */

int syn_world_build(syn_world *w, uint64_t seed, int scene, int n_objects, double duration,
                    double radius, int all_classes, l3d_err *err)
{
    memset(w, 0, sizeof *w);
    syn_rng g;
    syn_rng_init(&g, seed, SYN_TAG_WORLD, (uint64_t)scene);
    if (!syn_chance(&g, 0.15)) {   /* else parked all scene long, as some real scenes are */
        w->v_mean = syn_range(&g, 4, 13);
        w->v_amp = syn_range(&g, 0, fmin(3, w->v_mean));
        w->v_omega = 2 * PI / syn_range(&g, 8, 30);
        w->v_phase = syn_range(&g, 0, 2 * PI);
    }
    w->origin[0] = syn_range(&g, 300, 2800);
    w->origin[1] = syn_range(&g, 300, 2800);
    w->origin[2] = syn_range(&g, -30, -10);
    double margin = radius + 2 * LANE_VMAX * duration + 250;
    double s_lo = -margin, s_hi = syn_ego_s(w, duration) + margin;
    int rc = build_road(&w->road, &g, s_lo, s_hi);
    if (!rc)
        rc = place_objects(w, &g, n_objects, duration, radius, all_classes);
    if (!rc)
        rc = place_structures(w, &g, s_lo, s_hi);
    if (rc) {
        syn_world_free(w);
        return l3d_fail(err, L3D_EINTERNAL, "scene %d: out of memory", scene);
    }
    return L3D_OK;
}

void syn_world_free(syn_world *w)
{
    free(w->road.x);
    free(w->road.y);
    free(w->obj);
    free(w->st);
    memset(w, 0, sizeof *w);
}
