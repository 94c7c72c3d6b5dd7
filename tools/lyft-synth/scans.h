/* LiDAR scans for every sample of a dataset, made in parallel and written as
 * train_lidar/<file>.bin. Each sample's scan depends only on the seed and the
 * sample (its own noise stream), so the files are the same for any number of
 * threads. The scans also fill in every annotation's num_lidar_pts. */
#ifndef LIDAR3D_SYNTH_SCANS_H
#define LIDAR3D_SYNTH_SCANS_H

#include <signal.h>
#include <stdint.h>

#include "formats/error.h"
#include "tools/lyft-synth/dataset.h"
#include "tools/lyft-synth/raycast.h"
#include "tools/lyft-synth/sensor.h"

typedef struct syn_scan_opts {
    int beams, steps, threads;
    double min_range, max_range, noise_sd;
} syn_scan_opts;

/* Puts the ground, the structures and the objects of sample s into sc, ready
 * to cast from its LIDAR_TOP; *R gets the sensor-to-world rotation (local
 * frame of the scene, see world.h). */
int syn_scan_scene(const syn_dataset *d, uint32_t s, double max_range, double inset, rc_scene *sc,
                   double R[9]);

/* Scans all samples and writes root/<filename> for each (none for samples
 * with a missing-bin defect; a 12-byte tail for a corrupt-bin one). Stops early
 * when *stop becomes nonzero. *points gets the total number of returns. */
int syn_scans_run(syn_dataset *d, const syn_scan_opts *o, const char *root,
                  volatile sig_atomic_t *stop, uint64_t *points, l3d_err *err);

#endif
