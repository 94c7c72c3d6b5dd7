/* SSN training targets: per-class nearest-BEV IoU and MaxIoU assignment
 * (spec ssn-model.md §7.1), box encoding (§7.2) and direction bins (§7.3).
 *
 * Boxes are (x, y, z_bottom, dx, dy, dz, yaw), float32, LiDAR frame; ground
 * truth must be given with the BOTTOM z (our caches store the geometric
 * centre: z_bottom = z - dz / 2, done by the caller).
 *
 * Results are identical, bit for bit, to evaluating the full GT x anchor IoU
 * matrix of every class as MMDetection3D does: only anchors whose
 * nearest-BEV rectangle overlaps a GT's (a window found by binary search on
 * the anchor grid) are evaluated, and every other anchor has IoU exactly 0
 * with every GT, which the rules below turn into a negative in all cases
 * (0 < neg_thr, and 0 < min_pos so a zero never is a GT's best match). */
#ifndef LIDAR3D_TRAINER_ASSIGN_H
#define LIDAR3D_TRAINER_ASSIGN_H

#include <stdint.h>

#include "kernels/cpu/ssn_losses.h"
#include "trainer/anchors.h"

/* Nearest-BEV rectangle of a box [7] (MMDetection3D `nearest_bev`):
 * phi = |limit_period(yaw, 0.5, pi)|; if phi > pi/4 (float32, strict) the
 * extents are swapped (dy along x, dx along y). rect = (x1, y1, x2, y2) =
 * (x - wx/2, y - wy/2, x + wx/2, y + wy/2), float32. */
void l3d_nearest_bev(const float box[7], float rect[4]);

/* IoU of two axis-aligned rectangles (mmdet bbox_overlaps, mode iou), float32
 * in its order of operations: areas from the corners, overlap clamped at 0,
 * union = (area_a + area_b) - overlap, IoU = overlap / max(union, 1e-6).
 * a is the GT, b the anchor (the order only matters for the last bit). */
float l3d_rect_iou(const float a[4], const float b[4]);

/* Assigns one sample.
 *   L        the head layout; anchors [L->num_anchors][7] from
 *            l3d_anchors_generate(L) (the search relies on its grid order)
 *   gt       [G][7] ground truth, bottom z
 *   gt_label [G]    class 0..L->num_classes-1; any other value (e.g. -1) makes
 *                   the box invisible to every class
 *   out      arrays of L->num_anchors rows (one sample; for sample b of a
 *            batch pass l3d_ssn_targets_at(&t, b * N)); every row is written:
 *              positive: label k, label_w 1, bbox encode(anchor, gt), bbox_w 1,
 *                        dir bin, dir_w 1
 *              negative: label C (= num_classes), label_w 1, zeros
 *              ignored:  label C, label_w 0, zeros
 * Per class k, with the k-labelled GTs in their input order g = 0, 1, ...:
 *   none: every anchor of k is negative; otherwise best[n] = max_g IoU[g][n]
 *   (arg = first g on ties), gmax[g] = max_n IoU[g][n], and
 *   1. all anchors ignored; 2. 0 <= best < neg_thr -> negative;
 *   3. best >= pos_thr -> positive to arg; 4. for g in order, if
 *   gmax[g] >= min_pos, every anchor with IoU[g][n] == gmax[g] is positive
 *   to g (overriding 2-3 and earlier GTs). Thresholds compare in float32.
 * Returns the number of positive anchors P (the loss normaliser adds
 * max(P, 1) per sample), or -1 if out of memory (out then undefined). */
int64_t l3d_assign_targets(const l3d_head_layout *L, const float *anchors, const float *gt,
                           const int32_t *gt_label, int G, const l3d_ssn_targets *out);

/* num_total_pos of a batch: sum over b of max(P[b], 1). */
int64_t l3d_num_total_pos(const int64_t *P, int B);

#endif
