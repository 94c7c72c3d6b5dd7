#!/usr/bin/env python3
"""Cross-check bin/lyft-index against the official Lyft SDK + MMDetection3D's converter.

    python3 tests/ref/sdk_crosscheck.py [--tol 1e-9] [--keep-tmp] [DATASET...]

DATASET is a name under ../shared/data, a path, or `synthetic` (2 scenes of
bench/make_tables.py written to a temp dir: 252 samples with moving ego poses,
10 sweeps and ~28 boxes a sample, which the real data lack: lyft-mini has no
sweeps and lyft-scene has no boxes and a parked car). Default: all three.
For each one: load it with lyft_dataset_sdk.LyftDataset (staged as symlinks in a
temp dir), recompute every sample's sweeps and GT boxes the way MMDetection3D
v1.4.0 does (tests/ref/lyft_ref.py), run bin/lyft-index on the same folder and
compare every field. Prints the max abs difference per numeric field and the
mismatch count per exact field. Exit 0 when all numbers agree within --tol and
all exact fields match, 1 otherwise, 2 on usage/setup errors.

Not part of `make check` (needs PyPI once, for the venv; see tests/ref/README.md).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import _venv  # noqa: E402

_venv.ensure()

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402

import numpy as np  # noqa: E402

import lyft_ref  # noqa: E402

REPO = _venv.REPO
# lyft-mini's key-frame .bin is absent (spec §8): keep the sample, flagged.
INDEX_ARGS = {"lyft-mini": ["--missing-lidar", "keep"]}

# Anchor for the reference itself: gt_boxes of the lyft-mini sample exactly as
# MMDetection3D's own converter stored them in its test fixture
# (open-mmlab/mmdetection3d fe25f7a, tests/data/lyft/lyft_infos_val.pkl, infos[0]).
MMDET3D_MINI_TOKEN = "199e3146d98e6a2047bafbc222b92f5b67c4640a69b0d1d35b710242de816679"
MMDET3D_MINI_GT_BOXES = [
    [37.41390026924163, -8.358401062775384, -0.3649601788624405, 4.495, 2.046, 1.849,
     2.7090671268900284],
    [64.80453071563161, -27.929612302631604, -1.0434521495086884, 4.495, 2.232, 1.491,
     2.3076413989313425],
    [-55.61714008208406, -7.906917257777366, -2.561129462820702, 4.502, 2.086, 1.862,
     -2.9864736751278573],
    [48.880071835428154, -14.782149265540466, -0.5117990097334368, 4.495, 2.046, 1.787,
     2.6113286887783573],
]


class Compare:
    """Max abs difference per numeric field; mismatch count per exact field."""

    def __init__(self):
        self.num = {}    # field -> [values compared, max diff, where, ref, got]
        self.exact = {}  # field -> [compared, mismatches, first mismatch]

    def numbers(self, field, ref, got, where):
        ref = np.asarray(ref, dtype=np.float64)
        try:
            got = np.asarray(got, dtype=np.float64)
        except (TypeError, ValueError):
            got = None
        if got is None or got.shape != ref.shape:
            self.same(field + " (shape)", ref.shape, None if got is None else got.shape, where)
            return
        e = self.num.setdefault(field, [0, 0.0, None, None, None])
        e[0] += ref.size
        if ref.size == 0:
            return
        d = np.abs(ref - got)
        if not np.all(np.isfinite(d)):
            d = np.where(np.isfinite(d), d, np.inf)
        i = int(np.argmax(d))
        if d.flat[i] > e[1] or e[2] is None:
            idx = ",".join(str(int(j)) for j in np.unravel_index(i, ref.shape))
            e[1], e[2] = float(d.flat[i]), f"{where} [{idx}]" if ref.ndim else where
            e[3], e[4] = float(ref.flat[i]), float(got.flat[i])

    def same(self, field, ref, got, where):
        e = self.exact.setdefault(field, [0, 0, None])
        e[0] += 1
        if ref != got:
            e[1] += 1
            if e[2] is None:
                e[2] = f"{where}: reference {ref!r}, lyft-index {got!r}"

    def failed(self, tol):
        return any(e[1] > tol for e in self.num.values()) or \
            any(e[1] for e in self.exact.values())

    def print(self, tol):
        print("| field | values | max abs diff | where (sample token prefix, index) |")
        print("| --- | ---: | ---: | --- |")
        for f, (n, d, where, r, g) in self.num.items():
            flag = "" if d <= tol else f" **> {tol:g}** (ref {r!r}, ours {g!r})"
            print(f"| {f} | {n} | {d:.3g}{flag} | {where or '-'} |")
        print()
        print("| exact field | compared | mismatches | first mismatch |")
        print("| --- | ---: | ---: | --- |")
        for f, (n, m, first) in self.exact.items():
            print(f"| {f} | {n} | {m} | {first or '-'} |")


def lidar_file(cmp, field, ref_path, ref_filename, ref_points, got, root, where):
    """Our line names the same file as the SDK path (or, when absent, flags it)."""
    if ref_points is None:
        cmp.same(field + " missing", True, bool(got.get("lidar_missing")), where)
        cmp.same(field, ref_filename, got.get("lidar_path"), where)
        return
    ours = os.path.join(root, got.get("lidar_path", ""))
    same = os.path.exists(ours) and os.path.samefile(ref_path, ours)
    cmp.same(field, True, same, where + f" ({ref_filename} vs {ours})")
    cmp.same(field.replace("lidar_path", "num_points"), ref_points, got.get("num_points"), where)


def check_dataset(root, name, lyft_index, tol, keep_tmp, extra=()):
    tmp = tempfile.mkdtemp(prefix="lyft-ref-")
    try:
        return _check_dataset(root, name, lyft_index, tol, tmp, list(extra))
    finally:
        if keep_tmp:
            print(f"(SDK staging folder kept: {tmp})\n")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def _check_dataset(root, name, lyft_index, tol, tmp, extra):
    lyft, has_ann = lyft_ref.load_sdk(root, tmp)
    ref = lyft_ref.reference_infos(lyft, has_ann)
    args = INDEX_ARGS.get(name, []) + [x for x in extra if x not in INDEX_ARGS.get(name, [])]
    cmd = [lyft_index, "-q", *args, root]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        print(f"lyft-index failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr}", file=sys.stderr)
        return None
    ours = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    cmp = Compare()
    cmp.same("sample order (sample.json)", [i["token"] for i in ref],
             [o.get("token") for o in ours], "all samples")
    by_token = {o.get("token"): o for o in ours}
    n_sweeps = n_boxes = 0
    for info in ref:
        tok = info["token"]
        w = tok[:12]
        got = by_token.get(tok)
        if got is None:
            cmp.same("sample present", True, False, w)
            continue
        for f in ("scene_token", "scene_name", "sample_data_token"):
            cmp.same(f, info[f], got.get(f), w)
        lidar_file(cmp, "lidar_path", info["path"], info["filename"], info["num_points"], got,
                   got.get("root", ""), w)
        cmp.numbers("timestamp", info["timestamp"], got.get("timestamp"), w)
        for f in ("lidar2ego_translation", "lidar2ego_rotation",
                  "ego2global_translation", "ego2global_rotation"):
            cmp.numbers(f, info[f], got.get(f), w)

        gs = got.get("sweeps", [])
        cmp.same("sweeps (count)", len(info["sweeps"]), len(gs), w)
        cmp.same("sweeps_missing", info["sweeps_missing"], bool(got.get("sweeps_missing")), w)
        for k, (rs, os_) in enumerate(zip(info["sweeps"], gs)):
            ws = f"{w} sweep {k}"
            n_sweeps += 1
            cmp.same("sweeps.sample_data_token", rs["sample_data_token"],
                     os_.get("sample_data_token"), ws)
            lidar_file(cmp, "sweeps.lidar_path", rs["path"], rs["filename"], rs["num_points"],
                       os_, got.get("root", ""), ws)
            cmp.numbers("sweeps.timestamp", rs["timestamp"], os_.get("timestamp"), ws)
            cmp.numbers("sweeps.sensor2lidar_rotation", rs["sensor2lidar_rotation"],
                        os_.get("sensor2lidar_rotation"), ws)
            cmp.numbers("sweeps.sensor2lidar_translation", rs["sensor2lidar_translation"],
                        os_.get("sensor2lidar_translation"), ws)
            cmp.numbers("sweeps.time_lag", rs["time_lag"], os_.get("time_lag"), ws)

        cmp.same("annotated", info["annotated"], got.get("annotated"), w)
        gb = np.asarray(got.get("gt_boxes", []), dtype=np.float64).reshape(-1, 7) \
            if got.get("gt_boxes") is not None else None
        rb = info["gt_boxes"]
        n_boxes += len(rb)
        cmp.numbers("gt_boxes (all 7)", rb, gb, w)
        if gb is not None and gb.shape == rb.shape:
            cmp.numbers("gt_boxes x,y,z", rb[:, 0:3], gb[:, 0:3], w)
            cmp.numbers("gt_boxes l,w,h", rb[:, 3:6], gb[:, 3:6], w)
            cmp.numbers("gt_boxes yaw", rb[:, 6], gb[:, 6], w)
        cmp.same("gt_names", info["gt_names"], got.get("gt_names"), w)
        cmp.same("gt_tokens", info["gt_tokens"], got.get("gt_tokens"), w)
        cmp.same("num_lidar_pts", info["num_lidar_pts"], got.get("num_lidar_pts"), w)
        if tok == MMDET3D_MINI_TOKEN:
            cmp.numbers("reference gt_boxes vs MMDetection3D's lyft_infos_val.pkl", rb,
                        MMDET3D_MINI_GT_BOXES, w)
    extra = set(by_token) - {i["token"] for i in ref}
    cmp.same("samples only in lyft-index", 0, len(extra), ",".join(sorted(extra))[:80])

    print(f"## {name}: {len(ref)} samples, {n_sweeps} sweeps, {n_boxes} boxes "
          f"({root}; lyft-index {' '.join(args) or '(defaults)'})\n")
    cmp.print(tol)
    ok = not cmp.failed(tol)
    print(f"\n{name}: {'OK' if ok else 'FAILED'} (tolerance {tol:g})\n")
    return ok


def check_synthetic(a):
    tmp = tempfile.mkdtemp(prefix="lyft-synth-")
    try:
        root = os.path.join(tmp, "synthetic")
        subprocess.run([sys.executable, os.path.join(REPO, "bench", "make_tables.py"), root,
                        "--scenes", str(a.synthetic_scenes), "--seed", "7"],
                       check=True, stderr=subprocess.DEVNULL)
        return check_dataset(root, "synthetic", a.lyft_index, a.tol, a.keep_tmp,
                             a.index_args.split())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("datasets", nargs="*", default=["lyft-mini", "lyft-scene", "synthetic"])
    ap.add_argument("--synthetic-scenes", type=int, default=2)
    ap.add_argument("--tol", type=float, default=1e-9)
    ap.add_argument("--lyft-index", default=os.path.join(
        os.environ.get("LIDAR3D_BIN") or os.path.join(REPO, "bin"), "lyft-index"))
    ap.add_argument("--keep-tmp", action="store_true", help="keep the SDK staging folder")
    ap.add_argument("--index-args", default="",
                    help="extra lyft-index options for every dataset, e.g. '--missing-lidar keep'")
    a = ap.parse_args()
    if not os.access(a.lyft_index, os.X_OK):
        print(f"sdk_crosscheck: {a.lyft_index} not found; run 'make' first", file=sys.stderr)
        return 2
    data = lyft_ref.shared_data_dir(REPO)
    v = lyft_ref.versions()
    print(f"# lyft-index vs lyft_dataset_sdk {v['lyft-dataset-sdk']} + MMDetection3D v1.4.0 "
          f"converter (numpy {v['numpy']}, pyquaternion {v['pyquaternion']})\n")
    results = []
    for d in a.datasets:
        if d == "synthetic":
            results.append(check_synthetic(a))
            continue
        root = d if os.sep in d else os.path.join(data, d)
        name = os.path.basename(os.path.normpath(root))
        if not os.path.isdir(root):
            print(f"skipped: {name}: {root} not found\n")
            continue
        results.append(check_dataset(root, name, a.lyft_index, a.tol, a.keep_tmp,
                                     a.index_args.split()))
    if not results:
        print("skipped: no dataset found")
        return 0
    if any(r is None for r in results):
        return 2
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
