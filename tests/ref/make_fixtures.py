#!/usr/bin/env python3
"""Writes the reference fixtures that the CMocka tests compare lyft-index against:

    tests/fixtures/lyft_mini_expected.json    from ../shared/data/lyft-mini
    tests/fixtures/lyft_scene_expected.json   from ../shared/data/lyft-scene

    python3 tests/ref/make_fixtures.py [--check]

Numbers come from the official SDK + MMDetection3D's converter computation
(tests/ref/lyft_ref.py), never from our C code. The JSON structure is documented
at the top of tests/ref/README.md. --check regenerates in memory and exits 1 if
a committed fixture differs (0 when identical).
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
import tempfile  # noqa: E402

import lyft_ref  # noqa: E402

REPO = _venv.REPO
FIXTURES = os.path.join(REPO, "tests", "fixtures")
DATASETS = (("lyft-mini", "lyft_mini_expected.json"),
            ("lyft-scene", "lyft_scene_expected.json"))
MAX_SWEEPS = 10
FORMAT = "lidar3d-lyft-reference"
FORMAT_VERSION = 1


def j(v):
    """Compact JSON; floats as Python repr (shortest text that reads back exactly)."""
    return json.dumps(v, separators=(",", ":"), allow_nan=False)


def render(name, infos):
    v = lyft_ref.versions()
    head = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "dataset": name,
        "generator": "python3 tests/ref/make_fixtures.py",
        "reference": (f"lyft_dataset_sdk {v['lyft-dataset-sdk']} LyftDataset + MMDetection3D "
                      f"v1.4.0 lyft_converter/obtain_sensor2top (numpy {v['numpy']}, "
                      f"pyquaternion {v['pyquaternion']})"),
        "channel": "LIDAR_TOP",
        "max_sweeps": MAX_SWEEPS,
        "tolerance": 1e-9,
    }
    out = ["{"]
    for k, val in head.items():
        out.append(f" {j(k)}: {j(val)},")
    out.append(' "sample_order": [')
    out.append(",\n".join(f"  {j(i['token'])}" for i in infos))
    out.append(" ],")
    out.append(' "samples": {')
    samples = []
    for i in infos:
        s = [f"  {j(i['token'])}: {{"]
        boxes = i["gt_boxes"].tolist()
        if boxes:
            s.append('   "gt_boxes": [')
            s.append(",\n".join(f"    {j(b)}" for b in boxes))
            s.append("   ],")
        else:
            s.append('   "gt_boxes": [],')
        s.append(f'   "gt_names": {j(i["gt_names"])},')
        s.append(f'   "gt_tokens": {j(i["gt_tokens"])},')
        s.append(f'   "sweeps_missing": {j(i["sweeps_missing"])},')
        if i["sweeps"]:
            s.append('   "sweeps": [')
            s.append(",\n".join("    " + j({
                "sample_data_token": w["sample_data_token"],
                "sensor2lidar_rotation": w["sensor2lidar_rotation"].tolist(),
                "sensor2lidar_translation": w["sensor2lidar_translation"].tolist(),
                "time_lag": float(w["time_lag"]),
            }) for w in i["sweeps"]))
            s.append("   ]")
        else:
            s.append('   "sweeps": []')
        s.append("  }")
        samples.append("\n".join(s))
    out.append(",\n".join(samples))
    out.append(" }")
    out.append("}")
    text = "\n".join(out) + "\n"
    json.loads(text)  # well-formed
    return text


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--check", action="store_true",
                    help="compare with the committed fixtures instead of writing")
    a = ap.parse_args()
    data = lyft_ref.shared_data_dir(REPO)
    status = 0
    for name, fname in DATASETS:
        root = os.path.join(data, name)
        dst = os.path.join(FIXTURES, fname)
        if not os.path.isdir(root):
            print(f"skipped: {name}: {root} not found; {dst} left as it is")
            continue
        tmp = tempfile.mkdtemp(prefix="lyft-ref-")
        try:
            lyft, has_ann = lyft_ref.load_sdk(root, tmp)
            infos = lyft_ref.reference_infos(lyft, has_ann, max_sweeps=MAX_SWEEPS)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        text = render(name, infos)
        n_sw = sum(len(i["sweeps"]) for i in infos)
        n_bx = sum(len(i["gt_boxes"]) for i in infos)
        what = f"{len(infos)} samples, {n_sw} sweeps, {n_bx} boxes, {len(text)} bytes"
        if a.check:
            old = open(dst).read() if os.path.exists(dst) else None
            same = old == text
            print(f"{dst}: {'up to date' if same else 'DIFFERS'} ({what})")
            status |= 0 if same else 1
            continue
        os.makedirs(FIXTURES, exist_ok=True)
        part = f"{dst}.tmp.{os.getpid()}"
        with open(part, "w") as f:
            f.write(text)
        os.replace(part, dst)
        print(f"wrote {os.path.relpath(dst, REPO)}: {what}")
    return status


if __name__ == "__main__":
    sys.exit(main())
