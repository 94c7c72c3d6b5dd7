#include "tools/lyft-synth/raycast.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tools/lyft-synth/classes.h"

#define N_BINS 2048

void rc_scene_init(rc_scene *sc) { memset(sc, 0, sizeof *sc); }

void rc_scene_free(rc_scene *sc)
{
    free(sc->prims);
    free(sc->items);
    free(sc->bin_start);
    free(sc->bin_items);
    free(sc->scratch);
    memset(sc, 0, sizeof *sc);
}

void rc_scene_clear(rc_scene *sc, double ground_z)
{
    sc->n_prims = sc->n_items = 0;
    sc->ground_z = ground_z;
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 256;
    while (nc < need)
        nc *= 2;
    void *q = realloc(*p, nc * size);
    if (!q)
        return -1;
    *p = q;
    *cap = nc;
    return 0;
}

int rc_item_begin(rc_scene *sc, int owner)
{
    if (grow((void **)&sc->items, &sc->cap_items, sc->n_items + 1, sizeof *sc->items))
        return -1;
    sc->items[sc->n_items++] = (rc_item){.owner = owner, .first = (uint32_t)sc->n_prims,
                                         .x0 = INFINITY, .y0 = INFINITY, .z0 = INFINITY,
                                         .x1 = -INFINITY, .y1 = -INFINITY, .z1 = -INFINITY};
    return 0;
}

/* Appends a primitive to the open item and widens the item's bounds. */
static int push_prim(rc_scene *sc, const rc_prim *p, double ex, double ey)
{
    if (!sc->n_items || grow((void **)&sc->prims, &sc->cap_prims, sc->n_prims + 1, sizeof *p))
        return -1;
    sc->prims[sc->n_prims++] = *p;
    rc_item *it = &sc->items[sc->n_items - 1];
    it->n++;
    it->x0 = fmin(it->x0, p->c[0] - ex);
    it->x1 = fmax(it->x1, p->c[0] + ex);
    it->y0 = fmin(it->y0, p->c[1] - ey);
    it->y1 = fmax(it->y1, p->c[1] + ey);
    it->z0 = fmin(it->z0, p->c[2] - p->half[2]);
    it->z1 = fmax(it->z1, p->c[2] + p->half[2]);
    return 0;
}

int rc_add_box(rc_scene *sc, const double b[3], double yaw, double l, double w, double h)
{
    rc_prim p = {.cylinder = 0, .c = {b[0], b[1], b[2] + h / 2}, .cs = cos(yaw), .sn = sin(yaw),
                 .half = {l / 2, w / 2, h / 2}};
    double ex = fabs(p.cs) * p.half[0] + fabs(p.sn) * p.half[1];
    double ey = fabs(p.sn) * p.half[0] + fabs(p.cs) * p.half[1];
    return push_prim(sc, &p, ex, ey);
}

int rc_add_cylinder(rc_scene *sc, double x, double y, double r, double z0, double z1)
{
    rc_prim p = {.cylinder = 1, .c = {x, y, (z0 + z1) / 2}, .half = {r, r, (z1 - z0) / 2}};
    return push_prim(sc, &p, r, r);
}

int rc_add_object(rc_scene *sc, int owner, int cls, const double b[3], double yaw,
                  const double lwh[3], double inset)
{
    if (rc_item_begin(sc, owner))
        return -1;
    const syn_class *c = &syn_classes[cls];
    double l = lwh[0], w = lwh[1], h = lwh[2], cs = cos(yaw), sn = sin(yaw);
    for (int i = 0; i < c->n_parts; i++) {
        const syn_part *q = &c->parts[i];
        double x0 = fmax(q->x0 * l, -l / 2 + inset), x1 = fmin(q->x1 * l, l / 2 - inset);
        double y0 = fmax(q->y0 * w, -w / 2 + inset), y1 = fmin(q->y1 * w, w / 2 - inset);
        double z0 = q->z0 * h, z1 = fmin(q->z1 * h, h - inset);
        if (x1 <= x0 || y1 <= y0 || z1 <= z0)
            continue;
        double xm = (x0 + x1) / 2, ym = (y0 + y1) / 2;
        double at[3] = {b[0] + cs * xm - sn * ym, b[1] + sn * xm + cs * ym, b[2] + z0};
        double r = fmin(x1 - x0, y1 - y0) / 2;
        int rc = q->cylinder ? rc_add_cylinder(sc, at[0], at[1], r, at[2], b[2] + z1)
                             : rc_add_box(sc, at, yaw, x1 - x0, y1 - y0, z1 - z0);
        if (rc)
            return -1;
    }
    return 0;
}

/* ---- binning ----------------------------------------------------------- */

typedef struct near_item { double dmin; uint32_t idx; } near_item;

static int by_distance(const void *pa, const void *pb)
{
    const near_item *a = pa, *b = pb;
    if (a->dmin != b->dmin)
        return a->dmin < b->dmin ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

/* A cheap stand-in for the azimuth: increases with it from 0 (+x) to 4 (one
 * turn), so bins over it need no atan2 per ray. */
static double pseudo_angle(double dx, double dy)
{
    if (dy >= 0)
        return dx >= 0 ? (dx + dy > 0 ? dy / (dx + dy) : 0) : 1 - dx / (dy - dx);
    return dx < 0 ? 2 - dy / (-dx - dy) : 3 + dx / (dx - dy);
}

static int bin_of(double dx, double dy)
{
    int b = (int)(pseudo_angle(dx, dy) * (N_BINS / 4.0));
    return b < 0 ? 0 : b >= N_BINS ? N_BINS - 1 : b;
}

/* Bins [lo, hi] of an item (hi - lo + 1 may exceed N_BINS: then all). */
static void bin_span(const rc_scene *sc, const rc_item *it, int *lo, int *hi)
{
    double cx = (it->x0 + it->x1) / 2 - sc->origin[0], cy = (it->y0 + it->y1) / 2 - sc->origin[1];
    double r = hypot(it->x1 - it->x0, it->y1 - it->y0) / 2, d = hypot(cx, cy);
    if (d <= r * 1.0001 + 1e-9) {
        *lo = 0;
        *hi = N_BINS;
        return;
    }
    double az = atan2(cy, cx), half = asin(r / d) + 1e-9;
    *lo = bin_of(cos(az - half), sin(az - half));
    *hi = bin_of(cos(az + half), sin(az + half));
    if (*hi < *lo)
        *hi += N_BINS;   /* wraps through +x */
}

int rc_prepare(rc_scene *sc, const double origin[3], double max_range)
{
    memcpy(sc->origin, origin, sizeof sc->origin);
    sc->max_range = max_range;
    sc->n_bins = N_BINS;
    if (!sc->bin_start && !(sc->bin_start = malloc((N_BINS + 1) * sizeof *sc->bin_start)))
        return -1;
    if (grow(&sc->scratch, &sc->cap_scratch, sc->n_items + 1, sizeof(near_item)))
        return -1;
    near_item *near = sc->scratch;
    size_t n = 0;
    for (size_t i = 0; i < sc->n_items; i++) {
        rc_item *it = &sc->items[i];
        double cx = (it->x0 + it->x1) / 2 - origin[0], cy = (it->y0 + it->y1) / 2 - origin[1];
        double r = hypot(it->x1 - it->x0, it->y1 - it->y0) / 2, d = hypot(cx, cy);
        if (!it->n || d - r > max_range)
            continue;
        double dn = fmax(d - r, 0), df = d + r;
        double zlo = it->z0 - origin[2], zhi = it->z1 - origin[2];
        double el0 = zlo >= 0 ? atan2(zlo, df) : atan2(zlo, dn);
        double el1 = zhi >= 0 ? atan2(zhi, dn) : atan2(zhi, df);
        it->dmin = dn;
        it->szmin = sin(el0) - 1e-9;
        it->szmax = sin(el1) + 1e-9;
        near[n++] = (near_item){dn, (uint32_t)i};
    }
    qsort(near, n, sizeof *near, by_distance);
    memset(sc->bin_start, 0, (N_BINS + 1) * sizeof *sc->bin_start);
    size_t total = 0;
    for (size_t k = 0; k < n; k++) {
        int lo, hi;
        bin_span(sc, &sc->items[near[k].idx], &lo, &hi);
        if (hi - lo + 1 >= N_BINS) {
            lo = 0;
            hi = N_BINS - 1;
        }
        for (int b = lo; b <= hi; b++)
            sc->bin_start[((b % N_BINS) + N_BINS) % N_BINS + 1]++;
        total += (size_t)(hi - lo + 1);
    }
    for (int b = 0; b < N_BINS; b++)
        sc->bin_start[b + 1] += sc->bin_start[b];
    if (grow((void **)&sc->bin_items, &sc->cap_bin_items, total + 1, sizeof *sc->bin_items))
        return -1;
    uint32_t fill[N_BINS];
    memcpy(fill, sc->bin_start, sizeof fill);
    for (size_t k = 0; k < n; k++) {   /* nearest first within every bin */
        int lo, hi;
        bin_span(sc, &sc->items[near[k].idx], &lo, &hi);
        if (hi - lo + 1 >= N_BINS) {
            lo = 0;
            hi = N_BINS - 1;
        }
        for (int b = lo; b <= hi; b++)
            sc->bin_items[fill[((b % N_BINS) + N_BINS) % N_BINS]++] = near[k].idx;
    }
    return 0;
}

/* ---- intersection ------------------------------------------------------ */

static double hit_box(const rc_prim *p, const double o[3], const double d[3])
{
    double px = o[0] - p->c[0], py = o[1] - p->c[1];
    double lo[3] = {p->cs * px + p->sn * py, -p->sn * px + p->cs * py, o[2] - p->c[2]};
    double ld[3] = {p->cs * d[0] + p->sn * d[1], -p->sn * d[0] + p->cs * d[1], d[2]};
    double tmin = -INFINITY, tmax = INFINITY;
    for (int a = 0; a < 3; a++) {
        if (fabs(ld[a]) < 1e-15) {
            if (fabs(lo[a]) > p->half[a])
                return INFINITY;
            continue;
        }
        double t1 = (-p->half[a] - lo[a]) / ld[a], t2 = (p->half[a] - lo[a]) / ld[a];
        if (t1 > t2) {
            double s = t1;
            t1 = t2;
            t2 = s;
        }
        tmin = t1 > tmin ? t1 : tmin;
        tmax = t2 < tmax ? t2 : tmax;
    }
    return tmax < tmin || tmin <= 0 ? INFINITY : tmin;
}

static double hit_cylinder(const rc_prim *p, const double o[3], const double d[3])
{
    double px = o[0] - p->c[0], py = o[1] - p->c[1], r = p->half[0];
    double z0 = p->c[2] - p->half[2], z1 = p->c[2] + p->half[2];
    double best = INFINITY;
    double a = d[0] * d[0] + d[1] * d[1], b = px * d[0] + py * d[1], c = px * px + py * py - r * r;
    if (a > 1e-18 && c > 0) {
        double disc = b * b - a * c;
        if (disc >= 0) {
            double t = (-b - sqrt(disc)) / a, z = o[2] + t * d[2];
            if (t > 0 && z >= z0 && z <= z1)
                best = t;
        }
    }
    if (d[2] != 0) {   /* the caps */
        for (int k = 0; k < 2; k++) {
            double t = ((k ? z1 : z0) - o[2]) / d[2];
            double x = px + t * d[0], y = py + t * d[1];
            if (t > 0 && t < best && x * x + y * y <= r * r)
                best = t;
        }
    }
    return best;
}

double rc_hit_prim(const rc_prim *p, const double o[3], const double d[3])
{
    return p->cylinder ? hit_cylinder(p, o, d) : hit_box(p, o, d);
}

int rc_cast(const rc_scene *sc, const double d[3], double *t)
{
    const double *o = sc->origin;
    double best = sc->max_range;
    int owner = RC_NONE;
    if (d[2] < 0) {
        double tg = (sc->ground_z - o[2]) / d[2];
        if (tg >= 0 && tg <= best) {
            best = tg;
            owner = RC_GROUND;
        }
    }
    double hl = sqrt(d[0] * d[0] + d[1] * d[1]);
    int b = bin_of(d[0], d[1]);
    for (uint32_t k = sc->bin_start[b]; k < sc->bin_start[b + 1]; k++) {
        const rc_item *it = &sc->items[sc->bin_items[k]];
        if (it->dmin > best * hl)
            break;
        if (d[2] < it->szmin || d[2] > it->szmax)
            continue;
        for (uint32_t i = it->first; i < it->first + it->n; i++) {
            double tp = rc_hit_prim(&sc->prims[i], o, d);
            if (tp < best) {
                best = tp;
                owner = it->owner;
            }
        }
    }
    *t = best;
    return owner;
}
