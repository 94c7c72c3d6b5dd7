/* Hard voxelization on the CPU; semantics in voxelize.h (spec ssn-model.md §2).
 *
 * Two passes per chunk of L3D_VOXEL_CHUNK points: the first computes each
 * point's cell (or -1) with no data-dependent branches, so the compiler can
 * vectorize it; the second walks the chunk in order against the dense
 * cell -> voxel table, which is the only order-dependent part. The table is
 * reset at the end by visiting the cells of the voxels made, not the grid. */
#include "kernels/cpu/voxelize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

int l3d_voxel_grid(const l3d_voxel_config *cfg, int32_t grid[3], const char **why)
{
    const char *msg = NULL;
    int64_t cells = 1;
    for (int j = 0; j < 3 && !msg; j++) {
        float lo = cfg->range[j], hi = cfg->range[j + 3], s = cfg->size[j];
        if (!isfinite(lo) || !isfinite(hi) || !(lo < hi))
            msg = "point_cloud_range: each min must be finite and below its max";
        else if (!isfinite(s) || !(s > 0))
            msg = "voxel_size: each size must be finite and positive";
        else {
            float g = roundf((hi - lo) / s);   /* float32, as mmcv computes it */
            if (!(g >= 1))
                msg = "voxel_size: larger than twice the range (grid of 0 cells)";
            else if (g > (float)(1 << 24))
                msg = "voxel_size: more than 2^24 cells along one axis";
            else {
                grid[j] = (int32_t)g;
                cells *= grid[j];
                if (cells > L3D_VOXEL_MAX_CELLS)
                    msg = "voxel_size: grid of more than 2^28 cells";
            }
        }
    }
    if (!msg && cfg->max_points < 1)
        msg = "max_points: must be at least 1";
    if (!msg && cfg->max_voxels < 1)
        msg = "max_voxels: must be at least 1";
    if (!msg && (int64_t)cfg->max_voxels * cfg->max_points > ((int64_t)1 << 40))
        msg = "max_voxels x max_points: too large";
    if (msg) {
        if (why)
            *why = msg;
        return -1;
    }
    return 0;
}

int l3d_voxelizer_init(l3d_voxelizer *v, const l3d_voxel_config *cfg, const char **why)
{
    memset(v, 0, sizeof *v);
    if (l3d_voxel_grid(cfg, v->grid, why))
        return -1;
    v->cfg = *cfg;
    size_t cells = (size_t)v->grid[0] * (size_t)v->grid[1] * (size_t)v->grid[2];
    v->cell_voxel = malloc(cells * sizeof *v->cell_voxel);
    v->voxel_cell = malloc((size_t)cfg->max_voxels * sizeof *v->voxel_cell);
    v->voxel_count = malloc((size_t)cfg->max_voxels * sizeof *v->voxel_count);
    v->scratch = malloc(L3D_VOXEL_CHUNK * sizeof *v->scratch);
    if (!v->cell_voxel || !v->voxel_cell || !v->voxel_count || !v->scratch) {
        l3d_voxelizer_free(v);
        if (why)
            *why = "out of memory for the voxelizer's cell table";
        return -1;
    }
    memset(v->cell_voxel, 0xff, cells * sizeof *v->cell_voxel);   /* all -1 */
    return 0;
}

void l3d_voxelizer_free(l3d_voxelizer *v)
{
    free(v->cell_voxel);
    free(v->voxel_cell);
    free(v->voxel_count);
    free(v->scratch);
    memset(v, 0, sizeof *v);
}

/* Cell of each point of p[n][dim] (n <= L3D_VOXEL_CHUNK), -1 when outside the
 * grid. For q = (p - min) / size: floor(q) >= 0 <=> q >= 0, and floor(q) < g
 * <=> q < g for integer g, so the float compares decide validity exactly
 * (NaN fails both) and truncation equals floor on the valid, non-negative q.
 * Inlined with dim a constant for the common case. */
static inline __attribute__((always_inline)) int64_t cells_of(const l3d_voxelizer *v,
                                                              const float *restrict p, int n,
                                                              int dim, int filter,
                                                              int32_t *restrict out)
{
    const float x0 = v->cfg.range[0], y0 = v->cfg.range[1], z0 = v->cfg.range[2];
    const float x1 = v->cfg.range[3], y1 = v->cfg.range[4], z1 = v->cfg.range[5];
    const float sx = v->cfg.size[0], sy = v->cfg.size[1], sz = v->cfg.size[2];
    const float gx = (float)v->grid[0], gy = (float)v->grid[1], gz = (float)v->grid[2];
    const int32_t nx = v->grid[0], nxy = v->grid[0] * v->grid[1];
    int64_t in = 0;
    for (int i = 0; i < n; i++) {
        const float *q = p + (size_t)i * (size_t)dim;
        float x = q[0], y = q[1], z = q[2];
        int pass = 1;
        if (filter)
            pass = (x0 < x) & (x < x1) & (y0 < y) & (y < y1) & (z0 < z) & (z < z1);
        in += pass;
        float qx = (x - x0) / sx, qy = (y - y0) / sy, qz = (z - z0) / sz;
        int ok = pass & (qx >= 0.f) & (qx < gx) & (qy >= 0.f) & (qy < gy) & (qz >= 0.f) &
                 (qz < gz);
        /* Convert only in-range values (no undefined float -> int casts). */
        int32_t ix = (int32_t)(ok ? qx : 0.f), iy = (int32_t)(ok ? qy : 0.f),
                iz = (int32_t)(ok ? qz : 0.f);
        out[i] = ok ? iz * nxy + iy * nx + ix : -1;
    }
    return in;
}

#if defined(__SSE2__)
/* cells_of for dim 4 and n a multiple of 4, four points at a time (SSE2 is
 * x86-64's baseline, so no build flag is needed). Same compares as above; the
 * cell number is formed in float32, exact because the grid has at most 2^24
 * cells on this path (every partial sum is an integer below 2^24). */
static int64_t cells_of4_sse2(const l3d_voxelizer *v, const float *restrict p, int n,
                              int filter, int32_t *restrict out)
{
    const __m128 x0 = _mm_set1_ps(v->cfg.range[0]), y0 = _mm_set1_ps(v->cfg.range[1]),
                 z0 = _mm_set1_ps(v->cfg.range[2]);
    const __m128 x1 = _mm_set1_ps(v->cfg.range[3]), y1 = _mm_set1_ps(v->cfg.range[4]),
                 z1 = _mm_set1_ps(v->cfg.range[5]);
    const __m128 sx = _mm_set1_ps(v->cfg.size[0]), sy = _mm_set1_ps(v->cfg.size[1]),
                 sz = _mm_set1_ps(v->cfg.size[2]);
    const __m128 gx = _mm_set1_ps((float)v->grid[0]), gy = _mm_set1_ps((float)v->grid[1]),
                 gz = _mm_set1_ps((float)v->grid[2]);
    const __m128 zero = _mm_setzero_ps();
    int64_t in = 0;
    for (int i = 0; i < n; i += 4) {
        __m128 a = _mm_loadu_ps(p + 4 * i), b = _mm_loadu_ps(p + 4 * i + 4),
               c = _mm_loadu_ps(p + 4 * i + 8), d = _mm_loadu_ps(p + 4 * i + 12);
        _MM_TRANSPOSE4_PS(a, b, c, d);   /* a = x, b = y, c = z of the four points */
        __m128 pass = _mm_castsi128_ps(_mm_set1_epi32(-1));
        if (filter) {
            pass = _mm_and_ps(_mm_and_ps(_mm_cmplt_ps(x0, a), _mm_cmplt_ps(a, x1)),
                              _mm_and_ps(_mm_cmplt_ps(y0, b), _mm_cmplt_ps(b, y1)));
            pass = _mm_and_ps(pass, _mm_and_ps(_mm_cmplt_ps(z0, c), _mm_cmplt_ps(c, z1)));
            /* popcount of the 4-bit mask (no popcnt instruction in baseline x86-64) */
            in += (0x4332322132212110ull >> (4 * _mm_movemask_ps(pass))) & 15;
        }
        __m128 qx = _mm_div_ps(_mm_sub_ps(a, x0), sx);
        __m128 qy = _mm_div_ps(_mm_sub_ps(b, y0), sy);
        __m128 qz = _mm_div_ps(_mm_sub_ps(c, z0), sz);
        __m128 ok = _mm_and_ps(_mm_and_ps(_mm_cmpge_ps(qx, zero), _mm_cmplt_ps(qx, gx)),
                               _mm_and_ps(_mm_cmpge_ps(qy, zero), _mm_cmplt_ps(qy, gy)));
        ok = _mm_and_ps(ok, _mm_and_ps(_mm_cmpge_ps(qz, zero), _mm_cmplt_ps(qz, gz)));
        ok = _mm_and_ps(ok, pass);
        __m128 fx = _mm_cvtepi32_ps(_mm_cvttps_epi32(_mm_and_ps(qx, ok)));
        __m128 fy = _mm_cvtepi32_ps(_mm_cvttps_epi32(_mm_and_ps(qy, ok)));
        __m128 fz = _mm_cvtepi32_ps(_mm_cvttps_epi32(_mm_and_ps(qz, ok)));
        __m128 cf = _mm_add_ps(_mm_mul_ps(_mm_add_ps(_mm_mul_ps(fz, gy), fy), gx), fx);
        __m128i okm = _mm_castps_si128(ok);
        __m128i cell = _mm_or_si128(_mm_and_si128(okm, _mm_cvttps_epi32(cf)),
                                    _mm_andnot_si128(okm, _mm_set1_epi32(-1)));
        _mm_storeu_si128((__m128i *)(out + i), cell);
    }
    return filter ? in : n;
}
#endif

static inline __attribute__((always_inline)) void copy_point(float *dst, const float *src,
                                                             int dim)
{
    if (dim == 4)
        memcpy(dst, src, 4 * sizeof(float));
    else
        memcpy(dst, src, (size_t)dim * sizeof(float));
}

int l3d_voxelize(l3d_voxelizer *v, const float *points, int64_t n, int dim, float *voxels,
                 int32_t *coords, int32_t *num_points)
{
    const int max_points = v->cfg.max_points, max_voxels = v->cfg.max_voxels;
    const size_t slot = (size_t)dim, vstride = (size_t)max_points * slot;
    int32_t *restrict table = v->cell_voxel;
    int32_t *restrict vcell = v->voxel_cell;
    int32_t *restrict vcount = v->voxel_count;
    int32_t *restrict cell = v->scratch;
    const int filter = v->range_filter != 0;
    /* small caps (SSN: 20 points, 60 000 voxels) pack id and count in the table */
    const int packed = max_points <= 255 && max_voxels <= (1 << 23);
    int m = 0;
    int64_t kept = 0, in = 0;
#if defined(__SSE2__)
    const int simd_ok = (int64_t)v->grid[0] * v->grid[1] * v->grid[2] <= (1 << 24);
#endif
    for (int64_t i0 = 0; i0 < n; i0 += L3D_VOXEL_CHUNK) {
        int c = n - i0 < L3D_VOXEL_CHUNK ? (int)(n - i0) : L3D_VOXEL_CHUNK;
        const float *p = points + (size_t)i0 * slot;
        int done = 0;
#if defined(__SSE2__)
        if (dim == 4 && simd_ok) {
            done = c & ~3;
            in += cells_of4_sse2(v, p, done, filter, cell);
        }
#endif
        if (dim == 4)
            in += cells_of(v, p + (size_t)done * 4, c - done, 4, filter, cell + done);
        else
            in += cells_of(v, p, c, dim, filter, cell);
        if (packed)
            for (int i = 0; i < c; i++) {
                /* table entry = voxel id << 8 | points so far: one load per point */
                int32_t k = cell[i];
                if (k < 0)
                    continue;
                int32_t e = table[k];
                if (e < 0) {
                    if (m == max_voxels)
                        continue;   /* cap reached: this cell is dropped for good */
                    vcell[m] = k;
                    e = m++ << 8;
                }
                int32_t j = e & 255;
                if (j >= max_points)
                    continue;
                table[k] = e + 1;
                kept++;
                if (voxels)
                    copy_point(voxels + (size_t)(e >> 8) * vstride + (size_t)j * slot,
                               p + (size_t)i * slot, dim);
            }
        else
            for (int i = 0; i < c; i++) {
                int32_t k = cell[i];
                if (k < 0)
                    continue;
                int32_t id = table[k];
                if (id < 0) {
                    if (m == max_voxels)
                        continue;
                    id = m++;
                    table[k] = id;
                    vcell[id] = k;
                    vcount[id] = 0;
                }
                int32_t j = vcount[id];
                if (j >= max_points)
                    continue;
                vcount[id] = j + 1;
                kept++;
                if (voxels)
                    copy_point(voxels + (size_t)id * vstride + (size_t)j * slot,
                               p + (size_t)i * slot, dim);
            }
    }
    const int32_t nx = v->grid[0], ny = v->grid[1], nxy = nx * ny;
    for (int id = 0; id < m; id++) {
        int32_t k = vcell[id];
        if (packed)
            vcount[id] = table[k] & 255;
        table[k] = -1;
        if (coords) {
            coords[3 * id + 0] = k / nxy;
            coords[3 * id + 1] = k % nxy / nx;
            coords[3 * id + 2] = k % nx;
        }
        if (num_points)
            num_points[id] = vcount[id];
        if (voxels && vcount[id] < max_points)
            memset(voxels + (size_t)id * vstride + (size_t)vcount[id] * slot, 0,
                   (size_t)(max_points - vcount[id]) * slot * sizeof(float));
    }
    v->last_kept = kept;
    v->last_in_range = in;
    return m;
}

/* Branch-free compaction: every point is copied to the next output slot and
 * the slot advances only when the point is kept (so out may equal points). */
static inline __attribute__((always_inline)) int64_t
range_filter(const float *points, int64_t n, int dim, const float range[6], float *out)
{
    const float x0 = range[0], y0 = range[1], z0 = range[2];
    const float x1 = range[3], y1 = range[4], z1 = range[5];
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *p = points + (size_t)i * (size_t)dim;
        float x = p[0], y = p[1], z = p[2];
        int keep = (x0 < x) & (x < x1) & (y0 < y) & (y < y1) & (z0 < z) & (z < z1);
        float *o = out + (size_t)k * (size_t)dim;
        if (o != p)
            memmove(o, p, (size_t)dim * sizeof(float));
        k += keep;
    }
    return k;
}

int64_t l3d_points_range_filter(const float *points, int64_t n, int dim, const float range[6],
                                float *out)
{
    return dim == 4 ? range_filter(points, n, 4, range, out)
                    : range_filter(points, n, dim, range, out);
}

void l3d_voxels_flip(const l3d_voxelizer *v, int axis, int m, float *voxels, int32_t *coords,
                     const int32_t *num_points, int dim)
{
    const int c = 2 - axis;                 /* coords are (z, y, x) */
    const int32_t g = v->grid[axis];
    const size_t vstride = (size_t)v->cfg.max_points * (size_t)dim;
    for (int id = 0; id < m; id++) {
        if (coords)
            coords[3 * id + c] = g - 1 - coords[3 * id + c];
        if (voxels)
            for (int j = 0; j < num_points[id]; j++)
                voxels[(size_t)id * vstride + (size_t)j * (size_t)dim + (size_t)axis] =
                    -voxels[(size_t)id * vstride + (size_t)j * (size_t)dim + (size_t)axis];
    }
}
