/* Ray casting for lyft-synth's LiDAR: a flat ground plane plus items made of
 * yaw-rotated boxes and vertical cylinders; the first surface a ray meets wins.
 *
 * All rays of one scan start at the same point, so rc_prepare sorts the items
 * into azimuth bins around it (nearest first) and notes the range of ray
 * elevations that can reach each item; rc_cast then tests only the items of
 * its bin and stops once the remaining ones are farther than its best hit. */
#ifndef LIDAR3D_SYNTH_RAYCAST_H
#define LIDAR3D_SYNTH_RAYCAST_H

#include <stddef.h>
#include <stdint.h>

enum { RC_NONE = -3, RC_GROUND = -2, RC_STATIC = -1 };   /* owners >= 0 are objects */

typedef struct rc_prim {
    int cylinder;
    double c[3];       /* box: centre; cylinder: axis x, y and the middle z */
    double cs, sn;     /* box: cos and sin of its yaw */
    double half[3];    /* box: half length, width, height; cylinder: radius, -, half height */
} rc_prim;

typedef struct rc_item {
    int owner;
    uint32_t first, n;           /* its primitives */
    double x0, y0, x1, y1, z0, z1;   /* bounds */
    double dmin, szmin, szmax;   /* from rc_prepare: nearest horizontal distance, and the
                                    z components of unit rays that can reach it */
} rc_item;

typedef struct rc_scene {
    rc_prim *prims;
    size_t n_prims, cap_prims;
    rc_item *items;
    size_t n_items, cap_items;
    double ground_z;
    double origin[3], max_range;
    int n_bins;
    uint32_t *bin_start;         /* [n_bins + 1] into bin_items */
    uint32_t *bin_items;
    size_t cap_bin_items;
    void *scratch;               /* rc_prepare's sort buffer */
    size_t cap_scratch;
} rc_scene;

void rc_scene_init(rc_scene *sc);
void rc_scene_free(rc_scene *sc);
/* Forgets all items; the ground is the plane z = ground_z. */
void rc_scene_clear(rc_scene *sc, double ground_z);

/* Items: begin one, then add its primitives. Return 0, or -1 out of memory. */
int rc_item_begin(rc_scene *sc, int owner);
/* A box with bottom centre b, yaw, and full length (along yaw), width, height. */
int rc_add_box(rc_scene *sc, const double b[3], double yaw, double l, double w, double h);
/* A vertical cylinder on (x, y) from z0 to z1. */
int rc_add_cylinder(rc_scene *sc, double x, double y, double r, double z0, double z1);
/* An annotated object of class cls (classes.h): its parts, kept `inset`
 * metres inside the box sides and top, so that a return moved by at most
 * `inset` along its ray still lies in the box. b = bottom centre. */
int rc_add_object(rc_scene *sc, int owner, int cls, const double b[3], double yaw,
                  const double lwh[3], double inset);

/* Bins the items for rays from `origin` up to max_range. */
int rc_prepare(rc_scene *sc, const double origin[3], double max_range);

/* First hit along unit direction d from the origin: returns its owner (or
 * RC_NONE when nothing lies within max_range) and stores the range in *t. */
int rc_cast(const rc_scene *sc, const double d[3], double *t);

/* Single primitives (exposed for tests): entry distance along d from o, or
 * INFINITY when missed or when o is inside. */
double rc_hit_prim(const rc_prim *p, const double o[3], const double d[3]);

#endif
