#!/usr/bin/env python3
"""The SDK side of bench/index_vs_sdk.sh: load a Lyft dataset with the official
lyft_dataset_sdk, as MMDetection3D's converter does, and nothing else.

    PYTHON bench/sdk_load.py [--convert] ROOT

PYTHON must have the SDK (tests/ref/_venv.py prints such a python; run with the
system python3, this script re-executes itself in that venv). ROOT is a dataset
folder in the MMDetection3D or Kaggle layout. When the layout is not the SDK's
own (maps/ beside the tables' parent), a symlink farm is built in a temp folder
first (milliseconds). Prints the SDK's own output and one line
`sdk_load: LyftDataset() S s, table dir D` to stderr.

--convert: after loading, also run MMDetection3D's converter computation for every
sample (sweeps with sensor2lidar transforms, time lags, GT boxes; the code of
tests/ref/lyft_ref.py, cameras left out), i.e. the work lyft-index does.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "ref"))
import _venv  # noqa: E402

_venv.ensure()

import json  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import lyft_ref  # noqa: E402
from lyft_dataset_sdk.lyftdataset import LyftDataset  # noqa: E402


def sdk_paths(root, tmp):
    """(data_path, json_path) the SDK can load directly, or a staged copy."""
    tables = lyft_ref.find_table_dir(root)
    data = os.path.dirname(tables)
    with open(os.path.join(tables, "map.json")) as f:
        maps = json.load(f)
    direct = all(os.path.exists(os.path.join(data, m["filename"])) for m in maps)
    if direct:
        return data, tables
    data, tables, _ = lyft_ref.stage_for_sdk(root, tmp)
    return data, tables


def main():
    args = sys.argv[1:]
    convert = "--convert" in args
    args = [x for x in args if x != "--convert"]
    if len(args) != 1:
        sys.exit("usage: sdk_load.py [--convert] ROOT")
    tmp = tempfile.mkdtemp(prefix="sdk-load-")
    try:
        data_path, json_path = sdk_paths(args[0], tmp)
        t0 = time.perf_counter()
        lyft = LyftDataset(data_path=data_path, json_path=json_path, verbose=True)
        dt = time.perf_counter() - t0
        print(f"sdk_load: LyftDataset() {dt:.2f} s, {len(lyft.sample)} samples, "
              f"{len(lyft.sample_annotation)} annotations, table dir {json_path}", file=sys.stderr)
        if convert:
            t0 = time.perf_counter()
            has_ann = len(lyft.sample_annotation) > 0
            infos = lyft_ref.reference_infos(lyft, has_ann)
            dt = time.perf_counter() - t0
            print(f"sdk_load: converter {dt:.2f} s, {len(infos)} infos, "
                  f"{sum(len(i['sweeps']) for i in infos)} sweeps, "
                  f"{sum(len(i['gt_boxes']) for i in infos)} boxes", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
