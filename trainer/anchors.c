/* SSN head layout and anchors; semantics in anchors.h (spec §6). */
#include "trainer/anchors.h"

#include <math.h>
#include <string.h>

/* Spec §6.1, in head class order: size (dx, dy, dz), bottom z, pos/neg/min_pos. */
static const struct {
    float size[3], z, pos, neg, min_pos;
} ssn_classes[L3D_SSN_CLASSES] = {
    {{1.76f, 0.63f, 1.44f}, -1.0709302f, 0.55f, 0.40f, 0.40f},   /* bicycle */
    {{2.35f, 0.96f, 1.59f}, -1.3220503f, 0.55f, 0.40f, 0.40f},   /* motorcycle */
    {{0.80f, 0.76f, 1.76f}, -0.9122268f, 0.55f, 0.40f, 0.40f},   /* pedestrian */
    {{0.73f, 0.35f, 0.50f}, -1.8012227f, 0.55f, 0.40f, 0.40f},   /* animal */
    {{4.75f, 1.92f, 1.71f}, -1.0715024f, 0.60f, 0.45f, 0.45f},   /* car */
    {{6.52f, 2.42f, 2.34f}, -0.8871424f, 0.55f, 0.40f, 0.40f},   /* emergency_vehicle */
    {{12.70f, 2.92f, 3.42f}, -0.3519405f, 0.60f, 0.45f, 0.45f},  /* bus */
    {{8.17f, 2.75f, 3.20f}, -0.6276341f, 0.55f, 0.40f, 0.40f},   /* other_vehicle */
    {{10.24f, 2.84f, 3.44f}, -0.3033737f, 0.60f, 0.45f, 0.45f},  /* truck */
};
/* Groups: first class, classes, map stride in BEV pixels (spec §6.2). */
static const int ssn_groups[4][3] = {{0, 2, 2}, {2, 2, 2}, {4, 2, 4}, {6, 3, 4}};

static int fail(const char **why, const char *msg)
{
    if (why)
        *why = msg;
    return -1;
}

int l3d_head_layout_finish(l3d_head_layout *L, const char **why)
{
    if (!(L->range[0] < L->range[2]) || !(L->range[1] < L->range[3]) ||
        !isfinite(L->range[0]) || !isfinite(L->range[1]) || !isfinite(L->range[2]) ||
        !isfinite(L->range[3]))
        return fail(why, "range: each min must be finite and below its max");
    if (L->num_classes < 1 || L->num_classes > L3D_MAX_CLASSES)
        return fail(why, "num_classes: must be 1..L3D_MAX_CLASSES");
    if (L->num_groups < 1 || L->num_groups > L3D_MAX_GROUPS)
        return fail(why, "num_groups: must be 1..L3D_MAX_GROUPS");
    int next = 0;
    int64_t row = 0;
    for (int g = 0; g < L->num_groups; g++) {
        l3d_anchor_group *G = &L->group[g];
        if (G->first_class != next || G->num_classes < 1 ||
            next + G->num_classes > L->num_classes)
            return fail(why, "groups: must cover the classes contiguously, in class order");
        if (G->H < 1 || G->W < 1 || G->H > (1 << 16) || G->W > (1 << 16))
            return fail(why, "groups: map H and W must be 1..65536");
        G->offset = row;
        for (int k = next; k < next + G->num_classes; k++) {
            l3d_anchor_class *c = &L->cls[k];
            if (!(c->size[0] > 0) || !(c->size[1] > 0) || !(c->size[2] > 0) ||
                !isfinite(c->size[0] + c->size[1] + c->size[2]) || !isfinite(c->z))
                return fail(why, "classes: sizes must be finite and positive, z finite");
            if (!(c->neg_thr <= c->pos_thr) || !(c->min_pos > 0) || !(c->pos_thr > 0))
                return fail(why, "classes: need 0 < min_pos, 0 < pos_thr, neg_thr <= pos_thr");
            c->group = g;
            c->H = G->H;
            c->W = G->W;
            c->offset = row;
            c->count = (int64_t)L3D_NUM_ROT * G->H * G->W;
            row += c->count;
        }
        next += G->num_classes;
    }
    if (next != L->num_classes)
        return fail(why, "groups: some classes belong to no group");
    L->num_anchors = row;
    return 0;
}

int l3d_head_layout_ssn(l3d_head_layout *L, const float range[4], float voxel, const char **why)
{
    memset(L, 0, sizeof *L);
    memcpy(L->range, range, sizeof L->range);
    L->rotations[0] = 0.0f;
    L->rotations[1] = 1.57f;
    if (!(voxel > 0) || !isfinite(voxel))
        return fail(why, "voxel: must be finite and positive");
    /* pseudo-image size as the voxelizer computes it (float32 round) */
    float bw = roundf((range[2] - range[0]) / voxel), bh = roundf((range[3] - range[1]) / voxel);
    if (!(bw >= 8 && bh >= 8 && bw <= 65536 && bh <= 65536) || fmodf(bw, 8) != 0 ||
        fmodf(bh, 8) != 0)
        return fail(why, "range/voxel: the pseudo-image must be a multiple of 8 cells a side");
    L->num_classes = L3D_SSN_CLASSES;
    L->num_groups = 4;
    for (int k = 0; k < L3D_SSN_CLASSES; k++) {
        memcpy(L->cls[k].size, ssn_classes[k].size, sizeof L->cls[k].size);
        L->cls[k].z = ssn_classes[k].z;
        L->cls[k].pos_thr = ssn_classes[k].pos;
        L->cls[k].neg_thr = ssn_classes[k].neg;
        L->cls[k].min_pos = ssn_classes[k].min_pos;
    }
    for (int g = 0; g < 4; g++) {
        L->group[g].first_class = ssn_groups[g][0];
        L->group[g].num_classes = ssn_groups[g][1];
        L->group[g].W = (int)bw / ssn_groups[g][2];
        L->group[g].H = (int)bh / ssn_groups[g][2];
    }
    return l3d_head_layout_finish(L, why);
}

void l3d_head_layout_lyft(l3d_head_layout *L)
{
    static const float range[4] = {-100.f, -100.f, 100.f, 100.f};
    l3d_head_layout_ssn(L, range, 0.25f, NULL);   /* cannot fail: constants */
}

/* Element i of torch.linspace(lo, hi, steps) in float32 (the CUDA kernel:
 * the first half counts up from lo, the second half down from hi). */
static float linspace_at(float lo, float hi, int64_t steps, int64_t i)
{
    float step = (hi - lo) / (float)(steps - 1);
    if (i < steps / 2)
        return lo + step * (float)i;
    return hi - step * (float)(steps - i - 1);
}

/* Anchor centre i of n along [lo, hi]: linspace(lo, hi, n + 1)[i] plus half
 * of linspace[1] - linspace[0] (align_corner False). */
static float centre_at(float lo, float hi, int n, int64_t i)
{
    int64_t steps = (int64_t)n + 1;
    float shift = (linspace_at(lo, hi, steps, 1) - linspace_at(lo, hi, steps, 0)) / 2.0f;
    return linspace_at(lo, hi, steps, i) + shift;
}

void l3d_anchor_centres(float lo, float hi, int n, float *c)
{
    for (int64_t i = 0; i < n; i++)
        c[i] = centre_at(lo, hi, n, i);
}

void l3d_anchors_generate(const l3d_head_layout *L, float *anchors)
{
    for (int k = 0; k < L->num_classes; k++) {
        const l3d_anchor_class *c = &L->cls[k];
        float *a = anchors + c->offset * 7;
        for (int r = 0; r < L3D_NUM_ROT; r++)
            for (int h = 0; h < c->H; h++) {
                float y = centre_at(L->range[1], L->range[3], c->H, h);
                for (int w = 0; w < c->W; w++, a += 7) {
                    a[0] = centre_at(L->range[0], L->range[2], c->W, w);
                    a[1] = y;
                    a[2] = c->z;
                    a[3] = c->size[0];
                    a[4] = c->size[1];
                    a[5] = c->size[2];
                    a[6] = L->rotations[r];
                }
            }
    }
}
