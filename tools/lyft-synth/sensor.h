/* The rotating multi-beam LiDAR of lyft-synth: `beams` lasers at fixed
 * elevations (denser near the horizon, -25 to +15 degrees like the LIDAR_TOP of
 * the Lyft hosts) fired at `steps` evenly spaced azimuths. One scan is taken at
 * one instant (no motion during the sweep). Each return is the first surface
 * hit, its range perturbed by truncated Gaussian noise, written as
 * x, y, z, intensity (always 100, as in Lyft), ring (beam index, 0 = lowest)
 * in the sensor frame. */
#ifndef LIDAR3D_SYNTH_SENSOR_H
#define LIDAR3D_SYNTH_SENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "tools/lyft-synth/raycast.h"
#include "tools/lyft-synth/rng.h"

#define SYN_NOISE_CLIP 2.5   /* range noise is cut at this many standard deviations */
#define SYN_INTENSITY 100.0f

typedef struct syn_sensor {
    int beams, steps;
    double *el_sin, *el_cos;   /* [beams] */
    double *az_sin, *az_cos;   /* [steps] */
    double min_range, max_range, noise_sd;
} syn_sensor;

/* Elevation of beam b of n, degrees. */
double syn_beam_elevation_deg(int b, int n);

int syn_sensor_init(syn_sensor *s, int beams, int steps, double min_range, double max_range,
                    double noise_sd);
void syn_sensor_free(syn_sensor *s);

/* Casts every ray (azimuth outer, beam inner) from sc's origin; R is the
 * sensor-to-world rotation (row-major). Writes 5 floats per return to pts
 * (room for beams * steps returns) and counts returns per object owner
 * (hits[owner], owner < n_owners). Returns the number of points. */
size_t syn_sensor_scan(const syn_sensor *s, const rc_scene *sc, const double R[9], syn_rng *rng,
                       float *pts, uint32_t *hits, int n_owners);

#endif
