#!/usr/bin/env python3
"""Full-size synthetic Lyft Level 5 tables for benchmarks (stdlib only).

    python3 bench/make_tables.py OUTDIR [--scenes 180] [--seed 1]

Writes the MMDetection3D layout with the record counts of the real v1.01-train
split (spec lyft-data.md §1.2; at --scenes 180 every count is the real one):

    OUTDIR/v1.01-train/v1.01-train/*.json   13 tables, Kaggle text style (one key a line)
    OUTDIR/v1.01-train/lidar/*.bin          one 20-byte point per LIDAR_TOP key frame
    OUTDIR/v1.01-train/maps/map_raster_palo_alto.png   1x1 stub (the SDK wants it to exist)

    180 scenes x 126 samples = 22 680 samples; 189 504 sample_data (LIDAR_TOP + 7
    cameras per sample, plus LIDAR_FRONT_LEFT/RIGHT in the 32 a101/a102 scenes);
    177 789 ego_pose (the three LiDARs of a sample share one; CAM_FRONT_ZOOMED shares
    CAM_FRONT's in 3 651 samples); 148 calibrated_sensor; 18 421 instances;
    638 179 sample_annotation; 9 categories, 18 attributes, 4 visibilities, 10 sensors.

Tokens are 64 random hex digits (map: 32), prev/next chains are complete, poses and
boxes are plausible (ego drives ~10 m/s, boxes around it, yaw-only box rotations).
Deterministic for a given --seed. A stand-in until bin/lyft-synth --tables-only exists.
"""
import argparse
import json
import math
import os
import random
import struct
import sys
import time
import zlib

N_SAMPLES = 126
REAL = dict(scenes=180, instance=18421, sample_annotation=638179, ego_pose=177789)
HOSTS_FRONT = ("a101", "a102")  # only hosts with the two front LiDARs (spec §1.2)
HOSTS_OTHER = ("a004", "a005", "a006", "a007", "a008", "a009", "a011", "a012", "a015", "a017")
CAMERAS = ("CAM_FRONT", "CAM_FRONT_ZOOMED", "CAM_FRONT_LEFT", "CAM_FRONT_RIGHT",
           "CAM_BACK", "CAM_BACK_LEFT", "CAM_BACK_RIGHT")
CAM_INDEX = {c: i for i, c in enumerate(CAMERAS)}
CAM_YAW = {"CAM_FRONT": 0, "CAM_FRONT_ZOOMED": 0, "CAM_FRONT_LEFT": 55, "CAM_FRONT_RIGHT": -55,
           "CAM_BACK": 180, "CAM_BACK_LEFT": 110, "CAM_BACK_RIGHT": -110}
LIDARS = ("LIDAR_TOP", "LIDAR_FRONT_LEFT", "LIDAR_FRONT_RIGHT")
CATEGORIES = (  # name, share of instances, (w, l, h)
    ("car", 0.70, (2.0, 4.6, 1.7)), ("pedestrian", 0.08, (0.7, 0.8, 1.75)),
    ("animal", 0.002, (0.4, 0.8, 0.6)), ("other_vehicle", 0.06, (2.7, 8.0, 3.2)),
    ("bus", 0.01, (2.9, 12.0, 3.4)), ("motorcycle", 0.01, (0.9, 2.2, 1.5)),
    ("truck", 0.03, (2.8, 10.0, 3.4)), ("emergency_vehicle", 0.002, (2.4, 6.5, 2.4)),
    ("bicycle", 0.096, (0.6, 1.8, 1.5)))
ATTRIBUTES = (
    "object_action_lane_change_right", "object_action_running", "object_action_lane_change_left",
    "object_action_parked", "object_action_standing", "object_action_right_turn",
    "object_action_gliding_on_wheels", "object_action_loss_of_control", "object_action_u_turn",
    "object_action_sitting", "object_action_walking", "object_action_stopped",
    "object_action_left_turn", "object_action_reversing", "is_stationary",
    "object_action_driving_straight_forward", "object", "object_action_other_motion")
VISIBILITY = (("3", "v60-80", "visibility of whole object is between 60 and 80%"),
              ("1", "v0-40", "visibility of whole object is between 0 and 40%"),
              ("2", "v40-60", "visibility of whole object is between 40 and 60%"),
              ("4", "v80-100", "visibility of whole object is between 80 and 100%"))
GPS_EPOCH_US = 315964800e6


class Tokens:
    def __init__(self, rng):
        self.rng = rng

    def __call__(self, bits=256):
        return "%0*x" % (bits // 4, self.rng.getrandbits(bits))


def quat_z(yaw, pitch=0.0, roll=0.0):
    """[w, x, y, z] of R = Rz(yaw) Ry(pitch) Rx(roll)."""
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    return [cy * cp * cr + sy * sp * sr, cy * cp * sr - sy * sp * cr,
            sy * cp * sr + cy * sp * cr, sy * cp * cr - cy * sp * sr]


def q_mul(a, b):
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return [aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw]


D = json.dumps


class Table:
    """Writes a JSON array of records in the Kaggle text style ('[', '{', one key a line)."""

    def __init__(self, folder, name):
        self.path = os.path.join(folder, name + ".json")
        self.f = open(self.path + ".part", "w")
        self.f.write("[\n")
        self.n = 0

    def add(self, rec):
        body = ",\n".join(f'"{k}": {D(v)}' for k, v in rec.items())
        self.f.write(("{\n" if self.n == 0 else ",\n{\n") + body + "\n}")
        self.n += 1

    def close(self):
        self.f.write("\n]\n")
        self.f.close()
        os.replace(self.path + ".part", self.path)


def stub_png(path):
    def chunk(kind, data):
        c = kind + data
        return struct.pack(">I", len(data)) + c + struct.pack(">I", zlib.crc32(c) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(b"\x00\x00")) + chunk(b"IEND", b""))


def split_total(total, parts):
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def instance_lengths(rng, n_inst, n_ann):
    """n_inst track lengths in [1, N_SAMPLES] summing to n_ann."""
    assert n_inst <= n_ann <= n_inst * N_SAMPLES
    w = [rng.random() + 0.05 for _ in range(n_inst)]
    s = sum(w)
    lens = [max(1, min(N_SAMPLES, int(n_ann * x / s))) for x in w]
    diff = n_ann - sum(lens)
    i = 0
    while diff:
        k = i % n_inst
        if diff > 0 and lens[k] < N_SAMPLES:
            lens[k] += 1
            diff -= 1
        elif diff < 0 and lens[k] > 1:
            lens[k] -= 1
            diff += 1
        i += 1
    return lens


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("outdir")
    ap.add_argument("--scenes", type=int, default=REAL["scenes"])
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    t0 = time.time()
    rng = random.Random(a.seed)
    tok = Tokens(rng)
    n_sc = a.scenes
    scale = n_sc / REAL["scenes"]
    n_front = min(n_sc, round(32 * scale))  # a101/a102 scenes (3 LiDARs each)
    n_inst_total = round(REAL["instance"] * scale)
    n_ann_total = round(REAL["sample_annotation"] * scale)
    # CAM_FRONT_ZOOMED shares CAM_FRONT's ego pose in this many samples (real ego_pose count)
    n_shared_zoom = max(0, n_sc * N_SAMPLES * 8 - round(REAL["ego_pose"] * scale))

    data = os.path.join(a.outdir, "v1.01-train")
    tables = os.path.join(data, "v1.01-train")
    lidar_dir = os.path.join(data, "lidar")
    for d in (tables, lidar_dir, os.path.join(data, "maps")):
        os.makedirs(d, exist_ok=True)
    stub_png(os.path.join(data, "maps", "map_raster_palo_alto.png"))

    def small_table(name, recs):
        t = Table(tables, name)
        for r in recs:
            t.add(r)
        t.close()

    # ---- static tables -------------------------------------------------------------
    cat_tok = {c[0]: tok() for c in CATEGORIES}
    small_table("category", [{"description": "", "token": cat_tok[c[0]], "name": c[0]}
                             for c in CATEGORIES])
    attr_tok = [tok() for _ in ATTRIBUTES]
    small_table("attribute", [{"description": "", "token": t, "name": n}
                              for t, n in zip(attr_tok, ATTRIBUTES)])
    small_table("visibility", [{"level": lv, "description": ds, "token": t}
                               for t, lv, ds in VISIBILITY])
    sensor_tok = {ch: tok() for ch in CAMERAS + LIDARS}
    small_table("sensor", [{"modality": "lidar" if ch.startswith("LIDAR") else "camera",
                            "channel": ch, "token": sensor_tok[ch]} for ch in CAMERAS + LIDARS])

    # 18 calibration sets (a101, a102: one each with 10 sensors; 6 other hosts two sets,
    # 4 one set; 8 sensors each) = 148 calibrated_sensor records.
    calib_sets, calib_recs = {}, []
    hosts_sets = [(h, 0) for h in HOSTS_FRONT] + [(h, k) for i, h in enumerate(HOSTS_OTHER)
                                                  for k in range(2 if i < 6 else 1)]
    for host, k in hosts_sets:
        chans = CAMERAS + (LIDARS if host in HOSTS_FRONT else LIDARS[:1])
        cs = {}
        for ch in chans:
            t = tok()
            cs[ch] = t
            j = rng.uniform(-0.01, 0.01)
            if ch == "LIDAR_TOP":
                rot = quat_z(math.pi + j, 0.0226 + j, 0.0005)
                tr = [1.197 + j, 3.7e-05, 1.828 + j]
            elif ch.startswith("LIDAR"):
                side = 1 if ch == "LIDAR_FRONT_LEFT" else -1
                rot = q_mul(quat_z(side * 1.5 + j), [0.0, 1.0, 0.0, 0.0])  # upside down
                tr = [3.48 + j, side * 0.945, 0.545]
            else:
                yaw = math.radians(CAM_YAW[ch]) + j
                rot = q_mul(quat_z(yaw - math.pi / 2), quat_z(0.0, 0.0, -math.pi / 2))
                tr = [1.3 + 0.5 * math.cos(yaw), 0.3 * math.sin(yaw), 1.66 + j]
            f = 3962.24 if ch == "CAM_FRONT_ZOOMED" else 1110.0 + 3 * rng.random()
            calib_recs.append({
                "sensor_token": sensor_tok[ch], "rotation": rot,
                "camera_intrinsic": [] if ch.startswith("LIDAR") else
                [[f, 0, 957.8 + rng.random()], [0.0, f, 538.5 + rng.random()], [0.0, 0.0, 1.0]],
                "translation": tr, "token": t})
        calib_sets.setdefault(host, []).append(cs)
    small_table("calibrated_sensor", calib_recs)

    # ---- scenes --------------------------------------------------------------------
    inst_per_scene = split_total(n_inst_total, n_sc)
    ann_per_scene = split_total(n_ann_total, n_sc)
    zoom_share = set(rng.sample(range(n_sc * N_SAMPLES), min(n_shared_zoom, n_sc * N_SAMPLES)))
    T = {n: Table(tables, n) for n in ("log", "scene", "sample", "sample_data", "ego_pose",
                                       "instance", "sample_annotation")}
    cat_names = [c[0] for c in CATEGORIES]
    cat_w = [c[1] for c in CATEGORIES]
    cat_size = {c[0]: c[2] for c in CATEGORIES}
    log_tokens = []
    t_day0 = 1556675185903083.2  # 2019-05-01, like the fixture
    n_other = 0
    for sc in range(n_sc):
        if sc < n_front:
            host = HOSTS_FRONT[sc % 2]
        else:
            host = HOSTS_OTHER[n_other % len(HOSTS_OTHER)]
            n_other += 1
        cset = calib_sets[host][sc % len(calib_sets[host])]
        chans = ["LIDAR_TOP"] + list(CAMERAS) + (list(LIDARS[1:]) if host in HOSTS_FRONT else [])
        log_tok = tok()
        log_tokens.append(log_tok)
        t_start = t_day0 + sc * 86400e6 * 0.37 + rng.random() * 1e6
        T["log"].add({"date_captured": time.strftime("%Y-%m-%d", time.gmtime(t_start / 1e6)),
                      "location": "Palo Alto", "token": log_tok, "vehicle": host, "logfile": ""})
        s_tok = [tok() for _ in range(N_SAMPLES)]
        sd_tok = {ch: [tok() for _ in range(N_SAMPLES)] for ch in chans}
        ts = [t_start + k * 200000.0 + rng.uniform(-400, 400) + rng.random() for k in range(N_SAMPLES)]
        ns0 = int((t_start - GPS_EPOCH_US) * 1000)
        ns1 = int((ts[-1] - GPS_EPOCH_US) * 1000)
        T["scene"].add({"description": "", "log_token": log_tok,
                        "name": f"host-{host}-lidar0-{ns0}-{ns1}",
                        "first_sample_token": s_tok[0], "last_sample_token": s_tok[-1],
                        "nbr_samples": N_SAMPLES, "token": log_tok})
        # ego trajectory: x, y, yaw per sample
        x, y, yaw = rng.uniform(0, 3000), rng.uniform(0, 3000), rng.uniform(-math.pi, math.pi)
        speed, yaw_rate = rng.uniform(0, 12), rng.uniform(-0.15, 0.15)
        poses = []
        for k in range(N_SAMPLES):
            poses.append((x, y, -20.0 + 0.01 * k, yaw))
            x += speed * 0.2 * math.cos(yaw)
            y += speed * 0.2 * math.sin(yaw)
            yaw += yaw_rate * 0.2

        for k in range(N_SAMPLES):
            T["sample"].add({"next": s_tok[k + 1] if k + 1 < N_SAMPLES else "",
                             "prev": s_tok[k - 1] if k else "", "token": s_tok[k],
                             "scene_token": log_tok, "timestamp": ts[k]})
            px, py, pz, pyaw = poses[k]
            pose_of = {}
            for ch in chans:
                if ch.startswith("LIDAR") and "LIDAR_TOP" in pose_of:
                    pose_of[ch] = pose_of["LIDAR_TOP"]
                    continue
                if ch == "CAM_FRONT_ZOOMED" and sc * N_SAMPLES + k in zoom_share:
                    pose_of[ch] = pose_of["CAM_FRONT"]
                    continue
                dt = 0.0 if ch.startswith("LIDAR") else (-53083.2 + 7000 * CAM_INDEX[ch])
                a_ = dt / 1e6
                ptok = tok()
                pose_of[ch] = (ptok, ts[k] + dt)
                T["ego_pose"].add({
                    "rotation": quat_z(pyaw + yaw_rate * a_, rng.gauss(0, 0.01), rng.gauss(0, 0.01)),
                    "translation": [px + speed * a_ * math.cos(pyaw), py + speed * a_ * math.sin(pyaw),
                                    pz + rng.gauss(0, 0.01)],
                    "token": ptok, "timestamp": ts[k] + dt})
            for ch in chans:
                ptok, pts = pose_of[ch]
                tns = int((pts - GPS_EPOCH_US) * 1000)
                if ch.startswith("LIDAR"):
                    fn = f"lidar/host-{host}_lidar{ {'LIDAR_TOP': 1, 'LIDAR_FRONT_LEFT': 0}.get(ch, 2)}_{tns}.bin"
                    rec = {"is_key_frame": True}
                else:
                    fn = f"images/host-{host}_cam{CAM_INDEX[ch]}_{tns}.jpeg"
                    rec = {"width": 1920 if ch != "CAM_FRONT_ZOOMED" else 2048,
                           "height": 1080 if ch != "CAM_FRONT_ZOOMED" else 864, "is_key_frame": True}
                rec.update({
                    "prev": sd_tok[ch][k - 1] if k else "",
                    "fileformat": "bin" if ch.startswith("LIDAR") else "jpeg",
                    "token": sd_tok[ch][k], "timestamp": pts,
                    "next": sd_tok[ch][k + 1] if k + 1 < N_SAMPLES else "",
                    "ego_pose_token": ptok, "sample_token": s_tok[k], "filename": fn,
                    "calibrated_sensor_token": cset[ch]})
                T["sample_data"].add(rec)
                if ch == "LIDAR_TOP":
                    with open(os.path.join(data, fn), "wb") as f:
                        f.write(struct.pack("<5f", 1.0, 2.0, 0.5, 100.0, 1.0))

        # instances: contiguous tracks inside the scene; annotations sample-major
        n_inst = inst_per_scene[sc]
        lens = instance_lengths(rng, n_inst, ann_per_scene[sc])
        tracks = []
        for L in lens:
            s0 = rng.randrange(0, N_SAMPLES - L + 1)
            cat = rng.choices(cat_names, cat_w)[0]
            toks = [tok() for _ in range(L)]
            w, l, h = (v * rng.uniform(0.85, 1.15) for v in cat_size[cat])
            r, th = rng.uniform(3, 80), rng.uniform(-math.pi, math.pi)
            px, py, pz, _ = poses[s0]
            tracks.append(dict(tok=tok(), s0=s0, L=L, cat=cat, toks=toks,
                               size=[round(w, 3), round(l, 3), round(h, 3)],
                               c=[px + r * math.cos(th), py + r * math.sin(th), pz + h / 2 - 1.8],
                               yaw=rng.uniform(-math.pi, math.pi),
                               v=rng.uniform(0, 10) if cat not in ("pedestrian", "animal") else 1.2,
                               attr=rng.choice(attr_tok)))
            T["instance"].add({"last_annotation_token": toks[-1],
                               "category_token": cat_tok[cat], "token": tracks[-1]["tok"],
                               "first_annotation_token": toks[0], "nbr_annotations": L})
        for k in range(N_SAMPLES):
            for tr in tracks:
                i = k - tr["s0"]
                if not 0 <= i < tr["L"]:
                    continue
                dist = tr["v"] * 0.2 * i
                c = tr["c"]
                T["sample_annotation"].add({
                    "token": tr["toks"][i], "num_lidar_pts": -1, "size": tr["size"],
                    "sample_token": s_tok[k],
                    "rotation": quat_z(tr["yaw"]),
                    "prev": tr["toks"][i - 1] if i else "",
                    "translation": [c[0] + dist * math.cos(tr["yaw"]),
                                    c[1] + dist * math.sin(tr["yaw"]), c[2]],
                    "num_radar_pts": 0, "attribute_tokens": [tr["attr"]],
                    "next": tr["toks"][i + 1] if i + 1 < tr["L"] else "",
                    "instance_token": tr["tok"], "visibility_token": ""})
        if (sc + 1) % 20 == 0:
            print(f"make_tables: {sc + 1}/{n_sc} scenes, {time.time() - t0:.0f} s", file=sys.stderr)

    small_table("map", [{"log_tokens": log_tokens, "token": tok(128),
                         "filename": "maps/map_raster_palo_alto.png", "category": "semantic_prior"}])
    counts = {}
    for name, t in T.items():
        t.close()
        counts[name] = t.n
    size = sum(os.path.getsize(os.path.join(tables, f)) for f in os.listdir(tables))
    print("make_tables: " + ", ".join(f"{v} {k}" for k, v in counts.items()) +
          f", {len(calib_recs)} calibrated_sensor; {size / 1e6:.0f} MB of tables in "
          f"{time.time() - t0:.0f} s -> {a.outdir}", file=sys.stderr)


if __name__ == "__main__":
    main()
