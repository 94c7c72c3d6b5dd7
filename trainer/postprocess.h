/* SSN inference post-processing on the CPU: spec ssn-model.md §9 (mmdet3d
 * ShapeAwareHead._predict_by_feat_single, box3d_multiclass_nms, mmcv
 * nms_rotated), for one sample.
 *
 * Boxes are (x, y, z_bottom, dx, dy, dz, yaw), float32, LiDAR frame; BEV boxes
 * for the rotated IoU are (x, y, dx, dy, yaw) with corners
 * (x, y) + R(yaw) (+-dx/2, +-dy/2), yaw counter-clockwise.
 *
 * Where PyTorch leaves the order of equal values unspecified (topk and sort
 * on CUDA) we break ties by the lower index, so the result is a function of
 * the inputs alone. */
#ifndef LIDAR3D_TRAINER_POSTPROCESS_H
#define LIDAR3D_TRAINER_POSTPROCESS_H

#include <stdint.h>

typedef struct l3d_nms_config {
    int nms_pre;       /* rows kept by the class-agnostic top-k (<= 0: all) */
    float nms_thr;     /* IoU > nms_thr suppresses (strict) */
    float score_thr;   /* a class's candidates have score > score_thr (strict) */
    int max_num;       /* boxes kept at most */
} l3d_nms_config;

/* test_cfg of the config (nuScenes base): nms_pre 1000, nms_thr 0.2,
 * score_thr 0.05, max_num 500. */
#define L3D_NMS_CONFIG_SSN {1000, 0.2f, 0.05f, 500}

/* IoU of two rotated BEV rectangles a, b [5] = (x, y, dx, dy, yaw): the exact
 * area of their convex intersection polygon over the union, evaluated in
 * double about the midpoint of the two centres (as mmcv shifts them) and
 * rounded to float32. 0 if either area dx * dy is below 1e-14 (mmcv). */
float l3d_rotated_iou(const float a[5], const float b[5]);

/* Greedy NMS over n BEV boxes [n][5] already in processing order (descending
 * score): keep the first remaining box, suppress every later one whose IoU
 * with it is > thr. keep [n] receives the kept positions in order; returns
 * their number, or -1 if out of memory. */
int l3d_nms_rotated(const float *boxes, int n, float thr, int32_t *keep);

/* Indices of the k largest v[0..n) (k <= n), in descending order of value,
 * equal values by ascending index (NaN counts as the largest, as in torch).
 * idx [k]. Returns k, or -1 if out of memory. */
int l3d_topk(const float *v, int64_t n, int k, int64_t *idx);

/* One sample:
 *   cls [N][C] logits, reg [N][7] deltas, dir [N][2] logits, anchors [N][7]
 *   boxes [max_num][7], scores [max_num], labels [max_num] (0..C-1) outputs
 * Steps (spec §9): dir label = argmax (first on ties); s = sigmoid(cls);
 * if N > nms_pre, keep the nms_pre rows of largest max_c s (l3d_topk order),
 * else all rows in index order; decode; BEV boxes through MMDetection3D's
 * float32 corner round trip; per class c = 0..C-1: rows with s[c] >
 * score_thr, sorted by s[c] descending (stable), l3d_nms_rotated; survivors
 * concatenated class by class; if more than max_num, stably sorted by score
 * descending and cut; then the direction fix (l3d_dir_fix with the row's dir
 * label). Returns the number of boxes, or -1 if out of memory (or if more
 * than 2^30 rows are kept for NMS). */
int l3d_postprocess(const l3d_nms_config *cfg, const float *cls, const float *reg,
                    const float *dir, const float *anchors, int64_t N, int C, float *boxes,
                    float *scores, int32_t *labels);

#endif
