#!/usr/bin/env python3
"""Quantisation error of the sweep cache and the pillar changes it causes.

Packs the same index twice (int16 at 1/128 m, and float32), merges every sample's
10-sweep cloud from both (h5py + numpy, as docs/formats.md shows), and reports the largest coordinate
error and the fraction of in-range points whose 0.25 m pillar changes.
Usage: bench/quantisation_error.py INDEX.jsonl  (needs numpy and h5py)
"""
import subprocess, sys, tempfile, os
import h5py
import numpy as np

def merged(f, s, k=10):
    sc, M, lag = f["sample_scans"][s], f["sample_transforms"][s], f["sample_time_lags"][s]
    off, P = f["scan_offsets"], f["scan_points"]
    q, o = P.attrs.get("scale_factor", 1.0), P.attrs.get("add_offset", 0.0)
    parts = [np.c_[(P[off[i]:off[i + 1]] * q + o) @ M[j, :3, :3].T + M[j, :3, 3],
                   np.full(off[i + 1] - off[i], lag[j])]
             for j, i in enumerate(sc[:k + 1]) if i >= 0]
    return np.concatenate(parts).astype(np.float32)

def pillar(p):
    keep = (np.abs(p[:, 0]) < 100) & (np.abs(p[:, 1]) < 100) & (p[:, 2] > -5) & (p[:, 2] < 3)
    ij = np.floor((p[:, :2] + 100) / 0.25).astype(np.int64)
    return keep, ij[:, 0] * 800 + ij[:, 1]

def main():
    index = sys.argv[1]
    with tempfile.TemporaryDirectory() as d:
        q, f = os.path.join(d, "q.h5"), os.path.join(d, "f.h5")
        subprocess.run(["bin/sweep-pack", "-q", index, "-o", q], check=True)
        subprocess.run(["bin/sweep-pack", "-q", "--no-quantize", index, "-o", f], check=True)
        n = sum(1 for _ in open(index))
        worst, moved, total = 0.0, 0, 0
        fq, ff = h5py.File(q, "r"), h5py.File(f, "r")
        for s in range(n):
            a, b = merged(fq, s), merged(ff, s)
            worst = max(worst, np.abs(a[:, :3] - b[:, :3]).max())
            ka, pa = pillar(a)
            kb, pb = pillar(b)
            both = ka & kb
            moved += int((pa[both] != pb[both]).sum() + (ka != kb).sum())
            total += int(kb.sum())
        print(f"samples {n}, points in range {total}, max |error| {worst * 1000:.2f} mm, "
              f"points changing pillar or range {moved} ({100 * moved / max(total, 1):.3f}%)")

if __name__ == "__main__":
    main()
