/* One synthetic scene's world: a gently curving four-lane road, the ego vehicle
 * driving along it, annotated objects in bands beside and on it (lanes, bike
 * lanes, parking strips, sidewalk slots), and unannotated structures (buildings,
 * poles, trees). Everything is a function of time, in a local frame whose
 * origin is the road at arc length 0 on flat ground (z = 0); the global frame
 * is the local one shifted by `origin` (no rotation).
 *
 * Lateral layout (metres from the centre line, left positive; right-hand
 * traffic, the ego in lane -1.75):
 *   lanes +-1.75, +-5.25 | bike lanes +-7.8 | parking +-8.7..12.0 | poles and
 *   trees +-12.45 | sidewalk slots +-13.2, 14.4, 15.6 | buildings beyond 17.4.
 * Objects in one band share one speed, so they never run into each other. */
#ifndef LIDAR3D_SYNTH_WORLD_H
#define LIDAR3D_SYNTH_WORLD_H

#include <stdint.h>
#include "formats/error.h"

#define SYN_EGO_LAT (-1.75)

typedef struct syn_road {
    double s_lo, ds;            /* arc length of x[0], spacing */
    int n;
    double *x, *y;              /* centre line, local frame */
    double h0, a1, k1, p1;      /* heading(s) = h0 + a1 sin(k1 s + p1) */
} syn_road;

typedef struct syn_object {
    int cls, attr;              /* class (classes.h), attribute index */
    double lwh[3];              /* length, width, height */
    double lat;                 /* lateral offset of the centre */
    double s0, v;               /* arc length at t = 0; signed speed along s, m/s */
    double yaw_off;             /* heading minus road heading */
} syn_object;

enum syn_static_kind { SYN_BUILDING, SYN_POLE, SYN_TREE };
typedef struct syn_static {
    int kind;
    double x, y;                /* footprint centre */
    double yaw, l, w, h;        /* building: box l x w x h; pole, tree: h = top */
    double r, crown_r, crown_z; /* pole/trunk radius; tree crown radius, bottom */
} syn_static;

typedef struct syn_world {
    syn_road road;
    double v_mean, v_amp, v_omega, v_phase;   /* ego speed v_mean + v_amp sin(w t + phase) */
    double origin[3];           /* global position of the local origin */
    syn_object *obj;
    int n_obj;
    syn_static *st;
    int n_st;
} syn_world;

/* Builds scene `scene` of the dataset with seed `seed`: n_objects objects that
 * come within `radius` of the ego at some time in [0, duration]; with
 * all_classes the first nine are one of each class. */
int syn_world_build(syn_world *w, uint64_t seed, int scene, int n_objects, double duration,
                    double radius, int all_classes, l3d_err *err);
void syn_world_free(syn_world *w);

double syn_road_heading(const syn_road *r, double s);
/* Point at arc length s and lateral offset lat; its road heading. */
void syn_road_at(const syn_road *r, double s, double lat, double xy[2], double *heading);

double syn_ego_s(const syn_world *w, double t);
/* Ego pose at time t (s since the first sample): position on the ground (local
 * frame) and yaw. */
void syn_ego_pose(const syn_world *w, double t, double pos[3], double *yaw);
/* Object pose at time t: bottom centre (local frame) and yaw. */
void syn_object_pose(const syn_world *w, const syn_object *o, double t, double bottom[3],
                     double *yaw);

#endif
