/* PointPillarsScatter, CPU: spec ssn-model.md §4.
 *
 * Pillar features go to their cell of a zeroed BEV canvas (row = y index,
 * column = x index); cells without a pillar stay 0. The z coordinate is not
 * used (the SSN grid has one z cell), as in MMDetection3D. The backward
 * gathers the canvas gradient at the same cells.
 *
 * Cells must be distinct within a sample (the voxelizer makes one pillar per
 * cell). Were two pillars given the same cell, the forward keeps the later one,
 * as PyTorch's CPU index assignment does, and the backward gives both the
 * cell's gradient. */
#ifndef LIDAR3D_KERNELS_CPU_SCATTER_H
#define LIDAR3D_KERNELS_CPU_SCATTER_H

#include <stdint.h>

/* pillars [m][c]; coords [m][4] int32 (b, z, y, x) -> canvas [batch][c][ny][nx],
 * every element written. Returns 0, or -1 with the canvas untouched when a
 * pillar's b, y or x lies outside [0, batch) x [0, ny) x [0, nx). */
int l3d_scatter_forward(const float *pillars, const int32_t *coords, int64_t m, int c, int batch,
                        int ny, int nx, float *canvas);

/* dcanvas [batch][c][ny][nx]; coords [m][4] -> dpillars [m][c] assigned.
 * Returns 0, or -1 with dpillars untouched on a coordinate outside the canvas. */
int l3d_scatter_backward(const float *dcanvas, const int32_t *coords, int64_t m, int c,
                         int batch, int ny, int nx, float *dpillars);

#endif
