"""Reference computation of lyft-index's numbers with the official Lyft SDK.

Independent of our C code: it loads the tables with lyft_dataset_sdk's
LyftDataset and repeats MMDetection3D v1.4.0's converter step for step
(tools/dataset_converters/lyft_converter.py `_fill_trainval_infos` and
nuscenes_converter.py `obtain_sensor2top`), plus the time lag that
MMDetection3D's LoadPointsFromMultiSweeps computes at load time.

Import this only after _venv.ensure() (it needs numpy, pyquaternion, the SDK).
"""
import contextlib
import io
import json
import os
import struct
import zlib

import numpy as np
from pyquaternion import Quaternion
from lyft_dataset_sdk.lyftdataset import LyftDataset

# Tables the SDK (PyPI 0.0.8) treats as optional; GitHub HEAD too. We still write
# them as empty lists when absent, so any SDK version loads a test-split copy.
OPTIONAL_TABLES = ("instance", "sample_annotation")


def find_table_dir(root):
    """The folder holding sample.json under root (MMDetection3D or Kaggle layout)."""
    best = None
    for d, dirs, files in os.walk(root, followlinks=True):
        dirs.sort()
        if "sample.json" in files:
            depth = os.path.relpath(d, root).count(os.sep)
            if best is None or depth < best[0]:
                best = (depth, d)
        if os.path.relpath(d, root).count(os.sep) >= 3:
            dirs[:] = []
    if best is None:
        raise FileNotFoundError(f"no sample.json under {root}")
    return best[1]


def stub_png(path):
    """A valid 1x1 grey PNG: the SDK only checks that the map file exists."""
    def chunk(kind, data):
        c = kind + data
        return struct.pack(">I", len(data)) + c + struct.pack(">I", zlib.crc32(c) & 0xFFFFFFFF)
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)) +
           chunk(b"IDAT", zlib.compress(b"\x00\x00")) + chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(png)


def _find_file(root, name):
    for d, dirs, files in os.walk(root, followlinks=True):
        dirs.sort()
        if name in files:
            return os.path.join(d, name)
    return None


def stage_for_sdk(root, workdir):
    """Builds, under workdir, a symlink farm with the layout LyftDataset wants:
        workdir/sdk/           data_path: every entry of the dataset's data folder
                               (and of root) linked, maps/<png> linked or stubbed
        workdir/sdk/tables/    json_path: each table linked; absent optional
                               tables written as []
    Nothing under root is modified. Returns (data_path, json_path, has_annotations).
    """
    root = os.path.abspath(root)
    table_dir = find_table_dir(root)
    data_dir = os.path.dirname(table_dir)  # v1.01-train/ (MMDetection3D) or root (Kaggle)
    stage = os.path.join(workdir, "sdk")
    tables = os.path.join(stage, "tables")
    os.makedirs(tables)
    for name in sorted(os.listdir(table_dir)):
        if name.endswith(".json"):
            os.symlink(os.path.join(table_dir, name), os.path.join(tables, name))
    has_annotations = os.path.exists(os.path.join(table_dir, "sample_annotation.json"))
    for t in OPTIONAL_TABLES:
        p = os.path.join(tables, t + ".json")
        if not os.path.exists(p):
            with open(p, "w") as f:
                f.write("[]\n")
    # Data folders (lidar/, train_lidar/, ...): link the data folder's entries first,
    # then root's, so a 'lidar/...' filename resolves in either layout.
    for src_dir in (data_dir, root):
        for name in sorted(os.listdir(src_dir)):
            src = os.path.join(src_dir, name)
            dst = os.path.join(stage, name)
            if src == table_dir or name == "tables" or os.path.lexists(dst):
                continue
            if name == "maps":
                continue
            os.symlink(src, dst)
    with open(os.path.join(table_dir, "map.json")) as f:
        maps = json.load(f)
    for rec in maps:
        dst = os.path.join(stage, rec["filename"])
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if os.path.lexists(dst):
            continue
        src = os.path.join(data_dir, rec["filename"])
        if not os.path.exists(src):
            src = _find_file(root, os.path.basename(rec["filename"]))
        if src:
            os.symlink(src, dst)
        else:
            stub_png(dst)
    return stage, tables, has_annotations


def load_sdk(root, workdir, verbose=False):
    """LyftDataset over a staged copy of root; returns (lyft, has_annotations)."""
    data_path, json_path, has_ann = stage_for_sdk(root, workdir)
    quiet = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    with quiet:
        lyft = LyftDataset(data_path=data_path, json_path=json_path, verbose=verbose)
    return lyft, has_ann


def obtain_sensor2top(lyft, sensor_token, l2e_t, l2e_r_mat, e2g_t, e2g_r_mat):
    """MMDetection3D v1.4.0 nuscenes_converter.obtain_sensor2top, same operations
    in the same order (row-vector form; the stored rotation is R.T)."""
    sd_rec = lyft.get("sample_data", sensor_token)
    cs_record = lyft.get("calibrated_sensor", sd_rec["calibrated_sensor_token"])
    pose_record = lyft.get("ego_pose", sd_rec["ego_pose_token"])
    l2e_r_s = cs_record["rotation"]
    l2e_t_s = cs_record["translation"]
    e2g_r_s = pose_record["rotation"]
    e2g_t_s = pose_record["translation"]
    l2e_r_s_mat = Quaternion(l2e_r_s).rotation_matrix
    e2g_r_s_mat = Quaternion(e2g_r_s).rotation_matrix
    R = (l2e_r_s_mat.T @ e2g_r_s_mat.T) @ (
        np.linalg.inv(e2g_r_mat).T @ np.linalg.inv(l2e_r_mat).T)
    T = (l2e_t_s @ e2g_r_s_mat.T + e2g_t_s) @ (
        np.linalg.inv(e2g_r_mat).T @ np.linalg.inv(l2e_r_mat).T)
    T -= e2g_t @ (np.linalg.inv(e2g_r_mat).T @ np.linalg.inv(l2e_r_mat).T
                  ) + l2e_t @ np.linalg.inv(l2e_r_mat).T
    return {
        "sample_data_token": sd_rec["token"],
        "filename": sd_rec["filename"],
        "path": str(lyft.get_sample_data_path(sd_rec["token"])),
        "timestamp": sd_rec["timestamp"],
        "sensor2lidar_rotation": R.T,
        "sensor2lidar_translation": T,
    }


def _num_points(path):
    """MMDetection3D reads reshape(-1, 5) float32; our index records floor(bytes/20)."""
    return os.path.getsize(path) // 20 if os.path.isfile(path) else None


def reference_infos(lyft, has_annotations, max_sweeps=10, channel="LIDAR_TOP"):
    """One dict per sample, in sample.json order, with lyft-index's field names.

    Departure from MMDetection3D, on purpose: where a 'prev' token names a
    sample_data record that is absent (trimmed tables such as lyft-mini), the
    converter would raise KeyError; we stop there and set sweeps_missing, as
    spec §3.3 asks of a robust reader. Cameras are not computed (lyft-index
    does not write them; lyft-scene has no camera records).
    """
    sd_index = lyft._token2ind["sample_data"]
    infos = []
    for sample in lyft.sample:
        lidar_token = sample["data"][channel]
        sd_rec = lyft.get("sample_data", lidar_token)
        cs_record = lyft.get("calibrated_sensor", sd_rec["calibrated_sensor_token"])
        pose_record = lyft.get("ego_pose", sd_rec["ego_pose_token"])
        abs_lidar_path, boxes, _ = lyft.get_sample_data(lidar_token)
        info = {
            "token": sample["token"],
            "scene_token": sample["scene_token"],
            "scene_name": lyft.get("scene", sample["scene_token"])["name"],
            "timestamp": sample["timestamp"],
            "sample_data_token": lidar_token,
            "filename": sd_rec["filename"],
            "path": str(abs_lidar_path),
            "num_points": _num_points(str(abs_lidar_path)),
            "lidar2ego_translation": cs_record["translation"],
            "lidar2ego_rotation": cs_record["rotation"],
            "ego2global_translation": pose_record["translation"],
            "ego2global_rotation": pose_record["rotation"],
        }
        l2e_t = info["lidar2ego_translation"]
        e2g_t = info["ego2global_translation"]
        l2e_r_mat = Quaternion(info["lidar2ego_rotation"]).rotation_matrix
        e2g_r_mat = Quaternion(info["ego2global_rotation"]).rotation_matrix

        sweeps, missing = [], False
        while len(sweeps) < max_sweeps:
            prev = sd_rec["prev"]
            if prev == "":
                break
            if prev not in sd_index:
                missing = True
                break
            sw = obtain_sensor2top(lyft, prev, np.array(l2e_t), l2e_r_mat,
                                   np.array(e2g_t), e2g_r_mat)
            # LoadPointsFromMultiSweeps: key and sweep timestamps both /1e6, then subtract.
            sw["time_lag"] = sample["timestamp"] / 1e6 - sw["timestamp"] / 1e6
            sw["num_points"] = _num_points(sw["path"])
            sweeps.append(sw)
            sd_rec = lyft.get("sample_data", prev)
        info["sweeps"] = sweeps
        info["sweeps_missing"] = missing

        info["annotated"] = has_annotations
        annotations = [lyft.get("sample_annotation", t) for t in sample["anns"]]
        locs = np.array([b.center for b in boxes]).reshape(-1, 3)
        dims = np.array([b.wlh for b in boxes]).reshape(-1, 3)
        rots = np.array([b.orientation.yaw_pitch_roll[0] for b in boxes]).reshape(-1, 1)
        gt_boxes = np.concatenate([locs, dims[:, [1, 0, 2]], rots], axis=1)
        assert len(gt_boxes) == len(annotations)
        info["gt_boxes"] = gt_boxes
        info["gt_names"] = [b.name for b in boxes]  # LyftNameMapping is the identity
        info["gt_tokens"] = [b.token for b in boxes]
        info["num_lidar_pts"] = [a["num_lidar_pts"] for a in annotations]
        infos.append(info)
    return infos


def versions():
    import importlib.metadata as md
    out = {}
    for p in ("lyft-dataset-sdk", "numpy", "pyquaternion"):
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            out[p] = "?"
    return out


def shared_data_dir(repo):
    base = os.environ.get("LIDAR3D_SHARED") or os.path.join(os.path.dirname(repo), "shared")
    return os.path.join(base, "data")
