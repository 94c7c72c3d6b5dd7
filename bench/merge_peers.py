#!/usr/bin/env python3
"""The peers of build/bench/merge_speed (bench/cache-speed.sh): merged multi-sweep
LiDAR clouds per second from the raw .bin files, one process, one core.

    python3 bench/merge_peers.py [--peer numpy|sdk|both] [--sweeps K] [--repeat N]
                                 [--sdk-repeat N] [--cpu C] [--pickle N]
                                 [--compare SAMPLE DUMP] INDEX.jsonl

INDEX.jsonl is bin/lyft-index output; every line is one sample, merged in file order.

numpy  MMDetection3D's LoadPointsFromFile + LoadPointsFromMultiSweeps, in numpy:
       np.fromfile(.bin).reshape(-1, 5); key frame column 4 = 0; for each sweep
       points[:, :3] = points[:, :3] @ R.T; points[:, :3] += T; points[:, 4] = lag;
       concatenate; keep columns [0, 1, 2, 4]. R, T, lag are the index line's
       sweeps[].sensor2lidar_rotation / sensor2lidar_translation / time_lag (converted
       to numpy arrays before timing, as an info .pkl holds them); files are root +
       lidar_path.
sdk    the official SDK (PyPI lyft-dataset-sdk): LyftDataset over a staged symlink
       farm of the dataset (tests/ref/lyft_ref.py: absent tables such as
       sample_annotation.json written as [], nothing under the dataset touched), loaded
       before timing; then per sample LidarPointCloud.from_file_multisweep(lyftd,
       sample_rec, chan='LIDAR_TOP', ref_chan='LIDAR_TOP', num_sweeps=K + 1).
       The SDK also drops points closer than 1 m (its min_distance default).

One core: OMP/OPENBLAS/MKL/NUMEXPR thread counts are set to 1 before numpy is
imported, and --cpu C pins the process to CPU C. Each peer does one untimed warm-up
sample, then --repeat (numpy, default 3) or --sdk-repeat (default 1) timed passes.

--pickle N   also pickles (default protocol, pickle.dumps of a list of per-sample
             float32 [n, 4] arrays, as the seed paper stored merged clouds) the numpy
             merged clouds of N samples with the most sweeps and prints bytes per point.
--compare SAMPLE DUMP   compares the numpy merged cloud of sample SAMPLE (0-based) with
             DUMP, the text of `sweep-pack --dump SAMPLE --sweeps K CACHE`, and prints
             the largest coordinate difference (the cache stores 1/128 m steps).

Prints human lines and machine-readable ones:
  RESULT peer=P sweeps=K samples=S repeat=N points_per_pass=P seconds=T samples_per_s=X
         points_per_s=Y best_samples_per_s=Z cpu_s=C cpu_samples_per_s=V
  PICKLE samples=N points=P bytes=B bytes_per_point=b protocol=p
  COMPARE sample=S points=P max_abs_diff=d lag_max_abs_diff=l
Run with the system python3: it re-executes itself in the SDK's venv (tests/ref/_venv.py).
"""
import os
import sys

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
           "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ[_v] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "ref"))
import _venv  # noqa: E402

_venv.ensure()

import argparse  # noqa: E402
import json  # noqa: E402
import pickle  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402


def load_index(path, k):
    """Index lines with the sweep arrays as numpy (what an info .pkl holds)."""
    samples = []
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            d = json.loads(line)
            root = d["root"]
            sweeps = [dict(path=os.path.join(root, s["lidar_path"]),
                           R=np.array(s["sensor2lidar_rotation"], dtype=np.float64),
                           T=np.array(s["sensor2lidar_translation"], dtype=np.float64),
                           lag=float(s["time_lag"]))
                      for s in d["sweeps"][:k]]
            samples.append(dict(token=d["token"], root=root,
                                path=os.path.join(root, d["lidar_path"]), sweeps=sweeps))
    return samples


def numpy_merge(sample):
    """MMDetection3D style (LoadPointsFromFile, LoadPointsFromMultiSweeps), numpy."""
    points = np.fromfile(sample["path"], dtype=np.float32).reshape(-1, 5)
    points[:, 4] = 0
    parts = [points]
    for sw in sample["sweeps"]:
        p = np.fromfile(sw["path"], dtype=np.float32).reshape(-1, 5)
        p[:, :3] = p[:, :3] @ sw["R"].T
        p[:, :3] += sw["T"]
        p[:, 4] = sw["lag"]
        parts.append(p)
    return np.concatenate(parts)[:, [0, 1, 2, 4]]


def timed(label, fn, samples, repeat):
    """One warm-up call, then `repeat` passes over every sample; prints a RESULT line."""
    fn(samples[0])
    points, dt, best = 0, 0.0, float("inf")
    cpu0 = time.process_time()
    for _ in range(repeat):
        points = 0
        t0 = time.perf_counter()
        for s in samples:
            points += fn(s)
        t = time.perf_counter() - t0
        dt += t
        best = min(best, t)
    cpu = time.process_time() - cpu0
    n = len(samples) * repeat
    print(f"merge_peers: {label}: {len(samples)} samples x {repeat} passes, "
          f"{points / 1e6:.2f} M points per pass: {n / dt:.2f} samples/s, "
          f"{points * repeat / dt / 1e6:.2f} M points/s (best pass {len(samples) / best:.2f} samples/s); "
          f"{n / cpu:.2f} samples per CPU second")
    return points, dt, n, len(samples) / best, cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("index")
    ap.add_argument("--peer", choices=("numpy", "sdk", "both"), default="both")
    ap.add_argument("--sweeps", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sdk-repeat", type=int, default=1)
    ap.add_argument("--cpu", type=int, default=None)
    ap.add_argument("--pickle", type=int, default=0, metavar="N")
    ap.add_argument("--compare", nargs=2, metavar=("SAMPLE", "DUMP"))
    a = ap.parse_args()
    if a.cpu is not None:
        os.sched_setaffinity(0, {a.cpu})
    samples = load_index(a.index, a.sweeps)
    if not samples:
        sys.exit("merge_peers: the index has no samples")
    print(f"merge_peers: python {sys.version.split()[0]}, numpy {np.__version__}, "
          f"CPUs allowed {sorted(os.sched_getaffinity(0))}")

    if a.peer in ("numpy", "both"):
        points, dt, n, best, cpu = timed("numpy (MMDetection3D style)",
                                         lambda s: len(numpy_merge(s)), samples, a.repeat)
        print(f"RESULT peer=numpy sweeps={a.sweeps} samples={len(samples)} repeat={a.repeat} "
              f"points_per_pass={points} seconds={dt:.6f} samples_per_s={n / dt:.3f} "
              f"points_per_s={points * a.repeat / dt:.1f} best_samples_per_s={best:.3f} "
              f"cpu_s={cpu:.6f} cpu_samples_per_s={n / cpu:.3f}")

    if a.pickle > 0:
        most = sorted(range(len(samples)), key=lambda i: (-len(samples[i]["sweeps"]), i))
        chosen = sorted(most[:a.pickle])
        clouds = [np.ascontiguousarray(numpy_merge(samples[i])) for i in chosen]
        blob = pickle.dumps(clouds)
        pts = sum(len(c) for c in clouds)
        print(f"merge_peers: pickle of samples {chosen} ({pts} points, float32 [n, 4]): "
              f"{len(blob)} bytes, {len(blob) / pts:.4f} bytes per point")
        print(f"PICKLE samples={len(chosen)} points={pts} bytes={len(blob)} "
              f"bytes_per_point={len(blob) / pts:.6f} protocol={pickle.DEFAULT_PROTOCOL}")
        del clouds, blob

    if a.compare:
        i = int(a.compare[0])
        ours = np.loadtxt(a.compare[1], dtype=np.float64, ndmin=2)
        theirs = numpy_merge(samples[i]).astype(np.float64)
        if ours.shape[0] != theirs.shape[0] or ours.shape[1] < 4:
            print(f"COMPARE sample={i} MISMATCH cache {ours.shape} numpy {theirs.shape}")
            sys.exit(1)
        d = float(np.abs(ours[:, :3] - theirs[:, :3]).max())
        dl = float(np.abs(ours[:, 3] - theirs[:, 3]).max())
        print(f"merge_peers: sample {i}: cache vs numpy merge: {len(ours)} points each, "
              f"largest coordinate difference {d:.6f} m, time_lag {dl:.2e} s")
        print(f"COMPARE sample={i} points={len(ours)} max_abs_diff={d:.6f} lag_max_abs_diff={dl:.3e}")

    if a.peer in ("sdk", "both"):
        import lyft_ref
        from lyft_dataset_sdk.utils.data_classes import LidarPointCloud
        tmp = tempfile.mkdtemp(prefix="merge-peers-")
        try:
            t0 = time.perf_counter()
            lyft, _ = lyft_ref.load_sdk(samples[0]["root"], tmp)
            print(f"merge_peers: LyftDataset loaded in {time.perf_counter() - t0:.2f} s "
                  f"(not timed below); lyft-dataset-sdk {lyft_ref.versions()['lyft-dataset-sdk']}")
            recs = {s["token"]: lyft.get("sample", s["token"]) for s in samples}

            def sdk_merge(s):
                pc, _times = LidarPointCloud.from_file_multisweep(
                    lyft, recs[s["token"]], chan="LIDAR_TOP", ref_chan="LIDAR_TOP",
                    num_sweeps=a.sweeps + 1)
                return pc.nbr_points()

            points, dt, n, best, cpu = timed("SDK LidarPointCloud.from_file_multisweep",
                                             sdk_merge, samples, a.sdk_repeat)
            print(f"RESULT peer=sdk sweeps={a.sweeps} samples={len(samples)} "
                  f"repeat={a.sdk_repeat} points_per_pass={points} seconds={dt:.6f} "
                  f"samples_per_s={n / dt:.3f} points_per_s={points * a.sdk_repeat / dt:.1f} "
                  f"best_samples_per_s={best:.3f} cpu_s={cpu:.6f} "
                  f"cpu_samples_per_s={n / cpu:.3f}")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
