#!/usr/bin/env python3
"""The numpy peer of bin/voxel-cache (bench/voxel-speed.sh): the same work on the
same sweep cache, one process, one core, in plain numpy.

    python3 bench/voxelize_numpy.py [--sweeps K] [--out RAW] [--check VOXEL_CACHE]
                                    [--cpu C] [--samples N] SWEEP_CACHE

Per sample, in sample order:
  merge     key frame + up to K sweeps from the sweep cache, float32 (x, y, z, time lag),
            exactly as l3d_sweep_cache_merge: int16 * scale_factor + add_offset in
            float32; sweeps rotated in float64 (x*m0 + y*m1 + z*m2, left to right),
            rounded to float32, translated in float64, rounded to float32
  filter    PointsRangeFilter: min < p < max on x, y, z (strict, float32)
  voxelize  hard voxelization, first-come (ssn-model.md §2), vectorized the usual numpy
            way: cell ids, np.unique(return_index, return_inverse) for the first-come
            voxel order, a stable argsort for each point's slot in its voxel
  write     voxel_points, voxel_num_points and voxel_coords appended to RAW (default a
            temporary file; fsync at the end), as voxel-cache writes them
The config is read from the voxel cache given with --check (its root attributes),
else the SSN defaults.

No h5py: the sweep cache's datasets are contiguous and uncompressed, so their byte
offsets (from `h5dump -H -p`) are enough to np.memmap them.

--check VOXEL_CACHE   compares every sample's voxels with the voxel cache, bit for bit
                      (exit status 1 on the first difference)
--cpu C               pins the process to CPU C
--samples N           only the first N samples
--voxelizer spconv    voxelize with spconv's PointToVoxel on the CPU (pip install spconv;
                      torch with one thread) instead of numpy: the other peer the benchmark
                      names. Its voxels are compared with the cache's per sample and the
                      mismatches counted (spconv's own arithmetic may place a boundary
                      point differently), not treated as a failure.

Prints RESULT peer=numpy|spconv sweeps=K samples=S points=P seconds=T points_per_s=X
merge_s=.. filter_s=.. voxelize_s=.. write_s=..   and   CHECK ok samples=S voxels=V
"""
import os
import sys

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
           "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

H5_TYPES = {"H5T_STD_I16LE": "<i2", "H5T_STD_I32LE": "<i4", "H5T_STD_I64LE": "<i8",
            "H5T_IEEE_F32LE": "<f4", "H5T_IEEE_F64LE": "<f8"}


def h5_layout(path):
    """name -> (dtype, shape, offset) of every contiguous numeric dataset."""
    text = subprocess.run(["h5dump", "-H", "-p", path], check=True, capture_output=True,
                          text=True).stdout
    out = {}
    for m in re.finditer(r'DATASET "(\w+)" \{\s*DATATYPE\s+(\w+)\s*DATASPACE\s+SIMPLE '
                         r'\{ \( ([\d, ]+) \)[^}]*\}\s*STORAGE_LAYOUT \{\s*CONTIGUOUS\s*'
                         r'SIZE (\d+)\s*OFFSET (\d+)', text):
        name, h5t, dims, _size, off = m.groups()
        if h5t in H5_TYPES:
            shape = tuple(int(d) for d in dims.split(","))
            out[name] = (H5_TYPES[h5t], shape, int(off))
    return out


def h5_attr(path, obj, key):
    text = subprocess.run(["h5dump", "-a", f"{obj}/{key}".replace("//", "/"), path],
                          check=True, capture_output=True, text=True).stdout
    data = text[text.index("DATA {"):]
    vals = re.findall(r"\(\d+\):\s*([^\n]+)", data)
    nums = []
    for v in vals:
        nums += [float(x) for x in v.replace(",", " ").split()]
    return nums


class Cache:
    """Datasets of an HDF5 cache as numpy arrays over one read-only memory map."""

    def __init__(self, path):
        self.path = path
        self.layout = h5_layout(path)
        self.mm = np.memmap(path, dtype=np.uint8, mode="r")

    def __getitem__(self, name):
        dt, shape, off = self.layout[name]
        n = int(np.prod(shape))
        if n == 0:
            return np.zeros(shape, dtype=dt)
        return np.ndarray(shape, dtype=dt, buffer=self.mm, offset=off)


def merge(c, s, k, scale, offset):
    scans, off = c.scans, c.offsets
    parts = []
    for j in range(11):
        scan = scans[s, j]
        if scan < 0 or j > k:
            break
        q = c.points[off[scan]:off[scan + 1]]
        p = q.astype(np.float32) * scale + offset                 # float32, as in C
        out = np.empty((len(p), 4), dtype=np.float32)
        if j == 0:
            out[:, :3] = p
        else:
            M = c.transforms[s, j]
            p64 = p.astype(np.float64)
            for a in range(3):
                r = (p64[:, 0] * M[a, 0] + p64[:, 1] * M[a, 1] + p64[:, 2] * M[a, 2])
                out[:, a] = (r.astype(np.float32).astype(np.float64) + M[a, 3]).astype(np.float32)
        out[:, 3] = c.lags[s, j]
        parts.append(out)
    return np.concatenate(parts) if parts else np.zeros((0, 4), np.float32)


def range_filter(p, rng):
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    keep = ((rng[0] < x) & (x < rng[3]) & (rng[1] < y) & (y < rng[4]) &
            (rng[2] < z) & (z < rng[5]))
    return p[keep]


def voxelize(p, rng, size, grid, max_points, max_voxels):
    """Returns voxels [M, P, 4], coords [M, 3] (z, y, x), num [M] (first-come)."""
    lo = rng[:3]
    q = (p[:, :3] - lo) / size                                    # float32 throughout
    f = np.floor(q)
    valid = np.all((f >= 0) & (f < grid), axis=1)
    p = p[valid]
    i = f[valid].astype(np.int64)
    cell = (i[:, 2] * grid[1] + i[:, 1]) * grid[0] + i[:, 0]
    uniq, first, inverse = np.unique(cell, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")                      # voxel id -> uniq index
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[order] = np.arange(len(uniq))
    vid = rank[inverse.reshape(-1)]                               # voxel id of each point
    srt = np.argsort(vid, kind="stable")                          # points grouped, in order
    sv = vid[srt]
    starts = np.flatnonzero(np.r_[True, sv[1:] != sv[:-1]])
    pos = np.arange(len(sv)) - np.repeat(starts, np.diff(np.r_[starts, len(sv)]))
    slot = np.empty_like(pos)
    slot[srt] = pos
    m = min(len(uniq), max_voxels)
    keep = (vid < m) & (slot < max_points)
    voxels = np.zeros((m, max_points, 4), dtype=np.float32)
    voxels[vid[keep], slot[keep]] = p[keep]
    num = np.minimum(np.bincount(vid[vid < m], minlength=m), max_points).astype(np.int32)
    c = uniq[order[:m]]
    coords = np.stack([c // (grid[0] * grid[1]), c // grid[0] % grid[1], c % grid[0]],
                      axis=1).astype(np.int32)
    return voxels, coords, num


def spconv_voxelizer(rng, size, max_points, max_voxels):
    """A function like voxelize() over spconv's CPU PointToVoxel (imported only here)."""
    import torch
    from spconv.pytorch.utils import PointToVoxel
    torch.set_num_threads(1)
    gen = PointToVoxel(vsize_xyz=[float(v) for v in size],
                       coors_range_xyz=[float(v) for v in rng], num_point_features=4,
                       max_num_voxels=max_voxels, max_num_points_per_voxel=max_points,
                       device=torch.device("cpu"))

    def run(p):
        v, c, n = gen(torch.from_numpy(p))
        return v.numpy(), c.numpy().astype(np.int32), n.numpy().astype(np.int32)
    return run


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cache")
    ap.add_argument("--sweeps", type=int, default=10)
    ap.add_argument("--out")
    ap.add_argument("--check")
    ap.add_argument("--cpu", type=int)
    ap.add_argument("--samples", type=int)
    ap.add_argument("--voxelizer", choices=("numpy", "spconv"), default="numpy")
    a = ap.parse_args()
    if a.cpu is not None:
        os.sched_setaffinity(0, {a.cpu})

    rng = np.array([-100, -100, -5, 100, 100, 3], dtype=np.float32)
    size = np.array([0.25, 0.25, 8], dtype=np.float32)
    max_points, max_voxels = 20, 60000
    vc = None
    if a.check:
        vc = Cache(a.check)
        rng = np.array(h5_attr(a.check, "/", "point_cloud_range"), dtype=np.float32)
        size = np.array(h5_attr(a.check, "/", "voxel_size"), dtype=np.float32)
        max_points = int(h5_attr(a.check, "/", "max_points")[0])
        max_voxels = int(h5_attr(a.check, "/", "max_voxels")[0])
        if int(h5_attr(a.check, "/", "sweeps")[0]) != a.sweeps:
            sys.exit(f"--sweeps {a.sweeps} differs from the sweeps of {a.check}")
    grid = np.round((rng[3:] - rng[:3]) / size).astype(np.int64)

    c = Cache(a.cache)
    c.points = c["scan_points"]
    c.offsets = c["scan_offsets"]
    c.scans = c["sample_scans"]
    c.transforms = c["sample_transforms"]
    c.lags = c["sample_time_lags"]
    scale = np.float32(h5_attr(a.cache, "/scan_points", "scale_factor")[0])
    offset = np.float32(h5_attr(a.cache, "/scan_points", "add_offset")[0])
    S = len(c.scans) if a.samples is None else min(a.samples, len(c.scans))

    vox_fn = lambda p: voxelize(p, rng, size, grid, max_points, max_voxels)  # noqa: E731
    if a.voxelizer == "spconv":
        vox_fn = spconv_voxelizer(rng, size, max_points, max_voxels)
        vox_fn(np.zeros((1, 4), np.float32))   # warm-up outside the timing
    mismatches = 0
    tmp = None
    if a.out:
        raw = open(a.out, "wb")
    else:
        tmp = tempfile.NamedTemporaryFile(prefix="voxels-numpy-", suffix=".raw",
                                          dir=os.path.dirname(os.path.abspath(a.check or a.cache)))
        raw = tmp.file
    t = {"merge": 0.0, "filter": 0.0, "voxelize": 0.0, "write": 0.0}
    points = voxels_total = 0
    # Outputs are appended per dataset as voxel-cache does (three regions of one file;
    # here three files' worth of bytes written in the same order to one stream).
    for s in range(S):
        t0 = time.perf_counter()
        p = merge(c, s, a.sweeps, scale, offset)
        t1 = time.perf_counter()
        f = range_filter(p, rng)
        t2 = time.perf_counter()
        vox, coords, num = vox_fn(f)
        t3 = time.perf_counter()
        raw.write(vox.tobytes())
        raw.write(num.tobytes())
        raw.write(coords.tobytes())
        t4 = time.perf_counter()
        t["merge"] += t1 - t0
        t["filter"] += t2 - t1
        t["voxelize"] += t3 - t2
        t["write"] += t4 - t3
        points += len(p)
        voxels_total += len(num)
        if vc is not None:
            v0, v1 = vc["voxel_offsets"][s], vc["voxel_offsets"][s + 1]
            ok = (v1 - v0 == len(num) and
                  np.array_equal(vc["voxel_coords"][v0:v1], coords) and
                  np.array_equal(vc["voxel_num_points"][v0:v1], num) and
                  vc["voxel_points"][v0:v1].tobytes() == vox.tobytes())
            if not ok and a.voxelizer == "spconv":
                mismatches += 1
            elif not ok:
                print(f"CHECK FAILED sample={s}: numpy {len(num)} voxels, cache {v1 - v0}",
                      flush=True)
                sys.exit(1)
    t0 = time.perf_counter()
    raw.flush()
    os.fsync(raw.fileno())
    t["write"] += time.perf_counter() - t0
    raw.close()
    total = sum(t.values())
    if vc is not None and a.voxelizer == "spconv":
        print(f"CHECK spconv samples={S} voxels={voxels_total} samples_differing={mismatches}")
    elif vc is not None:
        print(f"CHECK ok samples={S} voxels={voxels_total}")
    print(f"RESULT peer={a.voxelizer} sweeps={a.sweeps} samples={S} points={points} seconds={total:.3f} "
          f"points_per_s={points / total:.0f} " +
          " ".join(f"{k}_s={v:.3f}" for k, v in t.items()))


if __name__ == "__main__":
    main()
