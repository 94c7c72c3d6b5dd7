#!/usr/bin/env python3
"""PyTorch reference for the SSN trainer: writes tests/fixtures/torch_parity.h5, which
tests/test_torch_parity.c compares our C model, targets, losses, gradients and
optimizer against.

    python3 tests/ref/torch_parity.py [--out PATH] [--seed N]

Everything here is written from the spec (../shared/spec/ssn-model.md §2-§8, §10) and
MMDetection3D v1.4.0's code paths, in plain PyTorch, never from our C code:

  * a batch of B = 2 samples: random points inside a few boxes plus ground points,
    voxelized in numpy exactly as §2 (first come, 20 points, max_voxels per sample),
    coords (b, z, y, x); boxes (bottom z) with labels in SSN class order;
  * random weights (not MMDetection3D's initialisation: every tensor non-trivial) for
    every parameter and BatchNorm running statistic, named as OUR C model names them
    (trainer/model.c: unit X = X.conv|deconv.weight + X.bn.*), which the module tree
    below reproduces so that state_dict() keys are exactly our names;
  * the SSN forward on the shrunken test configuration (tests/test_model.c): HardVFE
    (decoration, 2 layers, BN over all slots incl. padded, max / concat), scatter,
    SECOND, SECONDFPN (ConvTranspose2d), four BaseShapeHead groups (plain BatchNorm2d
    eps 1e-5 momentum 0.1), outputs reordered to rows a*H*W + h*W + w;
  * targets (§7: nearest-BEV IoU, MaxIoU with the low-quality rule per class, box
    encoding, direction bins), losses (§8: focal loss with mmcv's CUDA kernel formulas
    as a custom autograd Function, SmoothL1 with diff_rad_by_sin, CrossEntropy x 0.2,
    all divided by num_total_pos + FLT_EPSILON), backward;
  * 10 training steps on the same batch: zero_grad, forward, loss, backward,
    clip_grad_norm_(35), torch.optim.AdamW (lr 1e-3, wd 0.01, foreach, as the CUDA
    reference run) with torch's LinearLR warm-up (= MMEngine's LinearLR: start factor
    0.001 over a 3-iteration warm-up, total_iters = end - 1 = 2).

The file holds float32 / int32 / float64 datasets (layout in write_fixture below). Runs
on the CPU with one thread in ~10 s; needs torch + h5py, which are installed on first
use into the repository's .venv/ from tests/ref/requirements-torch.txt.
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import _venv  # noqa: E402

REQUIREMENTS = os.path.join(HERE, "requirements-torch.txt")
MODULES = ("numpy", "torch", "h5py")
_GUARD = "LIDAR3D_TORCH_VENV_REEXEC"


def _have(python):
    code = "import importlib,sys\nfor m in sys.argv[1:]: importlib.import_module(m)"
    return subprocess.run([python, "-c", code, *MODULES], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def _ensure():
    """Re-executes this script inside .venv/ (created / filled on first use)."""
    try:
        import importlib
        for m in MODULES:
            importlib.import_module(m)
        return
    except ImportError:
        pass
    if os.environ.get(_GUARD):
        sys.exit(f"torch_parity: {sys.executable} still lacks one of {', '.join(MODULES)}")
    py = _venv.venv_python()
    if not os.path.exists(py):
        print(f"torch_parity: creating virtual environment {_venv.venv_dir()}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", _venv.venv_dir()], check=True)
    if not _have(py):
        print(f"torch_parity: installing {REQUIREMENTS} into {_venv.venv_dir()} "
              "(first run only)", file=sys.stderr)
        subprocess.run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "-r", REQUIREMENTS], check=True)
        if not _have(py):
            sys.exit(f"torch_parity: the packages of {REQUIREMENTS} still do not import in {py}")
    os.environ[_GUARD] = "1"
    os.execv(py, [py, os.path.abspath(sys.argv[0]), *sys.argv[1:]])


_ensure()

import argparse  # noqa: E402

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

REPO = _venv.REPO
OUT = os.path.join(REPO, "tests", "fixtures", "torch_parity.h5")
FORMAT = "lidar3d-torch-parity"
FORMAT_VERSION = 1

# ---- configuration: the "small" preset of trainer/config.c plus these overrides ------
# (the shrunken model of tests/test_model.c, and a 3-iteration warm-up). The C test
# applies the same lines with l3d_config_set.
OVERRIDES = [
    "point_cloud_range = -16 -16 -5 16 16 3", "max_voxels = 600", "vfe_channels = 4 8",
    "out_channels = 8 8 8", "neck_channels = 8", "layer_nums = 1 1 1",
    "warmup_iters = 3", "warmup_ratio = 0.001", "lr = 0.001", "weight_decay = 0.01",
    "grad_clip = 35", "beta1 = 0.9", "beta2 = 0.999", "adam_eps = 1e-8",
]
RANGE = (-16.0, -16.0, -5.0, 16.0, 16.0, 3.0)
VOXEL = (0.5, 0.5, 8.0)
MAX_POINTS, MAX_VOXELS = 20, 600
VFE_CH = (4, 8)
LAYER_NUMS, LAYER_STRIDES, OUT_CH = (1, 1, 1), (2, 2, 2), (8, 8, 8)
UPSAMPLE, NECK_CH = (1, 2, 4), 8
BN_EPS, BN_MOM = 1e-3, 0.01            # naiveSyncBN (= BatchNorm on one device)
HEAD_EPS, HEAD_MOM, HEAD_CH = 1e-5, 0.1, 64   # spec §6.2 / §12.3
B, STEPS = 2, 10
LR, WD, BETAS, ADAM_EPS = 1e-3, 0.01, (0.9, 0.999), 1e-8
WARMUP_ITERS, WARMUP_RATIO, GRAD_CLIP = 3, 0.001, 35.0
FLT_EPS = float(np.finfo(np.float32).eps)
FLT_MIN = float(np.finfo(np.float32).tiny)

# spec §6.1, SSN class order: size (dx, dy, dz), bottom z, pos / neg / min_pos
CLASSES = [
    ("bicycle", (1.76, 0.63, 1.44), -1.0709302, 0.55, 0.40, 0.40),
    ("motorcycle", (2.35, 0.96, 1.59), -1.3220503, 0.55, 0.40, 0.40),
    ("pedestrian", (0.80, 0.76, 1.76), -0.9122268, 0.55, 0.40, 0.40),
    ("animal", (0.73, 0.35, 0.50), -1.8012227, 0.55, 0.40, 0.40),
    ("car", (4.75, 1.92, 1.71), -1.0715024, 0.60, 0.45, 0.45),
    ("emergency_vehicle", (6.52, 2.42, 2.34), -0.8871424, 0.55, 0.40, 0.40),
    ("bus", (12.70, 2.92, 3.42), -0.3519405, 0.60, 0.45, 0.45),
    ("other_vehicle", (8.17, 2.75, 3.20), -0.6276341, 0.55, 0.40, 0.40),
    ("truck", (10.24, 2.84, 3.44), -0.3033737, 0.60, 0.45, 0.45),
]
NUM_CLASSES = len(CLASSES)
ROTATIONS = (0.0, 1.57)
# groups: first class, number of classes, head stride relative to the neck output F
GROUPS = [(0, 2, 1), (2, 2, 1), (4, 2, 2), (6, 3, 2)]
DIR_OFFSET, DIR_LIMIT_OFFSET = -0.7854, 0.0
SMOOTH_L1_BETA, DIR_WEIGHT, FOCAL_ALPHA, FOCAL_GAMMA = 1.0 / 9.0, 0.2, 0.25, 2.0

NX = int(round((RANGE[3] - RANGE[0]) / VOXEL[0]))
NY = int(round((RANGE[4] - RANGE[1]) / VOXEL[1]))


# ---- data: points near boxes, voxelized as spec §2 ------------------------------------

# (label, aligned) per box, samples 0 and 1. An aligned box sits near an anchor
# centre of its class with a yaw near 0, +-pi/2 or pi, so that it gets positives; the
# others have an arbitrary position and yaw (the nearest-BEV swap, low-quality matches).
BOX_PLAN = [[(4, True), (2, True), (0, False), (8, True), (4, False)],
            [(4, True), (4, True), (6, True), (3, False), (1, True)]]


def make_boxes(rng, plan):
    boxes = []
    for k, aligned in plan:
        size = np.array(CLASSES[k][1]) * rng.uniform(0.9, 1.1, 3)
        stride = next(s for first, n, s in GROUPS if first <= k < first + n)
        sp = VOXEL[0] * 2 * stride                      # anchor spacing of the class (m)
        if aligned:
            i, j = rng.integers(int(5 / sp), int(27 / sp), 2)   # centre within +-11 m
            x = RANGE[0] + (i + 0.5) * sp + rng.uniform(-0.15, 0.15) * sp
            y = RANGE[1] + (j + 0.5) * sp + rng.uniform(-0.15, 0.15) * sp
            yaw = rng.choice([0.0, np.pi / 2, -np.pi / 2, np.pi]) + rng.uniform(-0.1, 0.1)
            yaw = (yaw + np.pi) % (2 * np.pi) - np.pi
        else:
            x, y = rng.uniform(-10.5, 10.5, 2)
            yaw = rng.uniform(-np.pi, np.pi)
        z = rng.uniform(-2.0, -1.5)
        boxes.append([x, y, z, size[0], size[1], size[2], yaw])
    return np.asarray(boxes, dtype=np.float32)


def make_points(rng, boxes):
    pts = []
    for bx in boxes.astype(np.float64):
        n = 160
        u = rng.uniform(-bx[3] / 2, bx[3] / 2, n)
        v = rng.uniform(-bx[4] / 2, bx[4] / 2, n)
        c, s = np.cos(bx[6]), np.sin(bx[6])
        x = bx[0] + c * u - s * v
        y = bx[1] + s * u + c * v
        z = rng.uniform(bx[2], bx[2] + bx[5], n)
        pts.append(np.stack([x, y, z], 1))
    n = 260   # ground
    pts.append(np.stack([rng.uniform(-16, 16, n), rng.uniform(-16, 16, n),
                         -1.9 + 0.05 * rng.standard_normal(n)], 1))
    p = np.concatenate(pts, 0)
    lag = rng.integers(0, 10, len(p)) * 0.05
    p = np.concatenate([p, lag[:, None]], 1).astype(np.float32)
    return p[rng.permutation(len(p))]


def voxelize(points):
    """mmcv hard voxelization, deterministic: first come, <= MAX_POINTS per pillar,
    <= MAX_VOXELS pillars; cell index floor((p - min) / size) in float32."""
    lo = np.array(RANGE[:3], np.float32)
    size = np.array(VOXEL, np.float32)
    grid = np.round((np.array(RANGE[3:]) - np.array(RANGE[:3])) / np.array(VOXEL)).astype(int)
    idx = np.floor((points[:, :3] - lo) / size).astype(np.int64)
    cells, voxels, num = {}, [], []
    for p, (ix, iy, iz) in zip(points, idx):
        if not (0 <= ix < grid[0] and 0 <= iy < grid[1] and 0 <= iz < grid[2]):
            continue
        key = (iz, iy, ix)
        v = cells.get(key)
        if v is None:
            if len(voxels) >= MAX_VOXELS:
                cells[key] = -1
                continue
            v = cells[key] = len(voxels)
            voxels.append(np.zeros((MAX_POINTS, 4), np.float32))
            num.append(0)
        if v < 0 or num[v] >= MAX_POINTS:
            continue
        voxels[v][num[v]] = p
        num[v] += 1
    coors = [None] * len(voxels)
    for key, v in cells.items():
        if v >= 0:
            coors[v] = key
    return (np.stack(voxels), np.array(num, np.int32), np.array(coors, np.int32))


def make_batch(rng):
    vox, nums, coords, boxes, labels = [], [], [], [], []
    for b in range(B):
        lab = [k for k, _ in BOX_PLAN[b]]
        bx = make_boxes(rng, BOX_PLAN[b])
        v, n, c = voxelize(make_points(rng, bx))
        vox.append(v)
        nums.append(n)
        coords.append(np.concatenate([np.full((len(c), 1), b, np.int32), c], 1))
        boxes.append(bx)
        labels.append(np.array(lab, np.int32))
    return (np.concatenate(vox), np.concatenate(nums), np.concatenate(coords),
            np.stack(boxes), np.stack(labels))


# ---- the model; attribute paths = our parameter names ---------------------------------

class VFELayer(nn.Module):
    """mmdet3d VFELayer (max_out True; cat_max for all but the last layer)."""

    def __init__(self, cin, cout, last):
        super().__init__()
        self.linear = nn.Linear(cin, cout, bias=False)
        self.norm = nn.BatchNorm1d(cout, eps=BN_EPS, momentum=BN_MOM)
        self.last = last

    def forward(self, inputs):
        count = inputs.shape[1]
        x = self.linear(inputs)
        x = self.norm(x.permute(0, 2, 1).contiguous()).permute(0, 2, 1).contiguous()
        pointwise = F.relu(x)
        aggregated = torch.max(pointwise, dim=1, keepdim=True)[0]
        if self.last:
            return aggregated.squeeze(1)
        return torch.cat([pointwise, aggregated.repeat(1, count, 1)], dim=2)


class VoxelEncoder(nn.Module):
    """mmdet3d HardVFE: in 4, with_cluster_center, with_voxel_center, no distance."""

    def __init__(self):
        super().__init__()
        self.vfe_layers = nn.ModuleList([VFELayer(10, VFE_CH[0], False),
                                         VFELayer(2 * VFE_CH[0], VFE_CH[1], True)])
        self.vx, self.vy, self.vz = VOXEL
        self.x_offset = self.vx / 2 + RANGE[0]
        self.y_offset = self.vy / 2 + RANGE[1]
        self.z_offset = self.vz / 2 + RANGE[2]

    def forward(self, features, num_points, coors):
        points_mean = (features[:, :, :3].sum(dim=1, keepdim=True) /
                       num_points.type_as(features).view(-1, 1, 1))
        f_cluster = features[:, :, :3] - points_mean
        f_center = features.new_zeros(size=(features.size(0), features.size(1), 3))
        f_center[:, :, 0] = features[:, :, 0] - (
            coors[:, 3].type_as(features).unsqueeze(1) * self.vx + self.x_offset)
        f_center[:, :, 1] = features[:, :, 1] - (
            coors[:, 2].type_as(features).unsqueeze(1) * self.vy + self.y_offset)
        f_center[:, :, 2] = features[:, :, 2] - (
            coors[:, 1].type_as(features).unsqueeze(1) * self.vz + self.z_offset)
        voxel_feats = torch.cat([features, f_cluster, f_center], dim=-1)
        count = voxel_feats.shape[1]
        mask = torch.arange(count, dtype=torch.int32).view(1, -1) < num_points.view(-1, 1)
        voxel_feats = voxel_feats * mask.unsqueeze(-1).type_as(voxel_feats)
        for vfe in self.vfe_layers:
            voxel_feats = vfe(voxel_feats)
        return voxel_feats


class Unit(nn.Module):
    """Conv2d (no bias) or ConvTranspose2d (no bias, kernel = stride) -> BN -> ReLU."""

    def __init__(self, cin, cout, k, s, p, eps, mom, deconv=False):
        super().__init__()
        if deconv:
            self.deconv = nn.ConvTranspose2d(cin, cout, k, stride=s, bias=False)
        else:
            self.conv = nn.Conv2d(cin, cout, k, stride=s, padding=p, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=eps, momentum=mom)

    def forward(self, x):
        x = self.deconv(x) if hasattr(self, "deconv") else self.conv(x)
        return F.relu(self.bn(x))


class Backbone(nn.Module):
    """SECOND: per stage a stride-s conv and layer_nums stride-1 convs, 3x3 pad 1."""

    def __init__(self):
        super().__init__()
        cin, blocks = VFE_CH[1], []
        for i in range(3):
            units = [Unit(cin, OUT_CH[i], 3, LAYER_STRIDES[i], 1, BN_EPS, BN_MOM)]
            units += [Unit(OUT_CH[i], OUT_CH[i], 3, 1, 1, BN_EPS, BN_MOM)
                      for _ in range(LAYER_NUMS[i])]
            blocks.append(nn.ModuleList(units))
            cin = OUT_CH[i]
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x):
        outs = []
        for block in self.blocks:
            for u in block:
                x = u(x)
            outs.append(x)
        return outs


class Neck(nn.Module):
    """SECONDFPN: ConvTranspose2d (kernel = stride, also for stride 1) -> BN -> ReLU, cat."""

    def __init__(self):
        super().__init__()
        self.deblocks = nn.ModuleList([Unit(OUT_CH[i], NECK_CH, UPSAMPLE[i], UPSAMPLE[i], 0,
                                            BN_EPS, BN_MOM, deconv=True) for i in range(3)])

    def forward(self, xs):
        return torch.cat([d(x) for d, x in zip(self.deblocks, xs)], dim=1)


class ShapeHead(nn.Module):
    """mmdet3d BaseShapeHead: shared 3x3 ConvModules (BatchNorm2d eps 1e-5 momentum
    0.1), then 1x1 conv_cls / conv_reg / conv_dir_cls with bias."""

    def __init__(self, cin, strides, num_anchors):
        super().__init__()
        self.A = num_anchors
        units, c = [], cin
        for s in strides:
            units.append(Unit(c, HEAD_CH, 3, s, 1, HEAD_EPS, HEAD_MOM))
            c = HEAD_CH
        self.shared_conv = nn.ModuleList(units)
        self.conv_cls = nn.Conv2d(HEAD_CH, num_anchors * NUM_CLASSES, 1)
        self.conv_reg = nn.Conv2d(HEAD_CH, num_anchors * 7, 1)
        self.conv_dir_cls = nn.Conv2d(HEAD_CH, num_anchors * 2, 1)

    def forward(self, x):
        for u in self.shared_conv:
            x = u(x)
        cls_score, bbox_pred, dir_pred = self.conv_cls(x), self.conv_reg(x), self.conv_dir_cls(x)
        Bn, _, H, W = bbox_pred.shape

        def rows(t, k):
            return t.view(-1, self.A, k, H, W).permute(0, 1, 3, 4, 2).reshape(Bn, -1, k)
        return rows(cls_score, NUM_CLASSES), rows(bbox_pred, 7), rows(dir_pred, 2)


class BBoxHead(nn.Module):
    def __init__(self):
        super().__init__()
        heads = []
        for first, n, stride in GROUPS:
            strides = (1, 1) if stride == 1 else (2, 1, 1)
            heads.append(ShapeHead(3 * NECK_CH, strides, 2 * n))
        self.heads = nn.ModuleList(heads)

    def forward(self, x):
        outs = [h(x) for h in self.heads]
        return tuple(torch.cat([o[i] for o in outs], dim=1) for i in range(3))


class SSN(nn.Module):
    def __init__(self):
        super().__init__()
        self.voxel_encoder = VoxelEncoder()
        self.backbone = Backbone()
        self.neck = Neck()
        self.bbox_head = BBoxHead()

    def forward(self, voxels, num_points, coors):
        feats = self.voxel_encoder(voxels, num_points, coors)
        # PointPillarsScatter
        canvases = []
        for b in range(B):
            canvas = feats.new_zeros(VFE_CH[1], NX * NY)
            m = coors[:, 0] == b
            c = coors[m]
            indices = (c[:, 2] * NX + c[:, 3]).long()
            canvas[:, indices] = feats[m].t()
            canvases.append(canvas)
        x = torch.stack(canvases, 0).view(B, VFE_CH[1], NY, NX)
        return self.bbox_head(self.neck(self.backbone(x)))


def random_weights(model, rng):
    """Every parameter and running statistic random and non-trivial (float32)."""
    sd = {}
    for name, t in model.state_dict().items():
        if name.endswith("num_batches_tracked"):
            continue
        shape = tuple(t.shape)
        if name.endswith("running_mean"):
            v = 0.1 * rng.standard_normal(shape)
        elif name.endswith("running_var"):
            v = rng.uniform(0.5, 1.5, shape)
        elif name.endswith("bn.weight") or name.endswith("norm.weight"):
            v = rng.uniform(0.7, 1.3, shape)
        elif name.endswith("bn.bias") or name.endswith("norm.bias"):
            v = rng.uniform(-0.2, 0.2, shape)
        elif ".linear." in name:
            v = rng.uniform(-1, 1, shape) / np.sqrt(shape[1])
        elif "conv_cls.bias" in name:
            v = -2.0 + 0.3 * rng.standard_normal(shape)
        elif name.endswith(".bias"):
            v = 0.1 * rng.standard_normal(shape)
        elif "conv_" in name:           # head 1x1 convs
            v = 0.05 * rng.standard_normal(shape)
        elif ".deconv." in name:        # ConvTranspose2d [in, out, k, k]: fan_in = in
            v = rng.standard_normal(shape) * np.sqrt(2.0 / shape[0])
        else:                           # Conv2d [out, in, k, k]
            v = rng.standard_normal(shape) * np.sqrt(2.0 / (shape[1] * shape[2] * shape[3]))
        sd[name] = torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32))
    return sd


def load(model, sd):
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing)


# ---- anchors and targets (spec §6.4, §7) ---------------------------------------------

def anchors_single_range(feature_size, anchor_range, sizes, rotations):
    """mmdet3d AlignedAnchor3DRangeGenerator.anchors_single_range, align_corner False."""
    feature_size = [1, feature_size[0], feature_size[1]]
    anchor_range = torch.tensor(anchor_range)
    z_centers = torch.linspace(anchor_range[2], anchor_range[5], feature_size[0] + 1)
    y_centers = torch.linspace(anchor_range[1], anchor_range[4], feature_size[1] + 1)
    x_centers = torch.linspace(anchor_range[0], anchor_range[3], feature_size[2] + 1)
    sizes = torch.tensor(sizes).reshape(-1, 3)
    rotations = torch.tensor(rotations)
    z_centers += (z_centers[1] - z_centers[0]) / 2
    y_centers += (y_centers[1] - y_centers[0]) / 2
    x_centers += (x_centers[1] - x_centers[0]) / 2
    rets = list(torch.meshgrid(x_centers[:feature_size[2]], y_centers[:feature_size[1]],
                               z_centers[:feature_size[0]], rotations, indexing="ij"))
    tile_shape = [1] * 5
    tile_shape[-2] = int(sizes.shape[0])
    for i in range(len(rets)):
        rets[i] = rets[i].unsqueeze(-2).repeat(tile_shape).unsqueeze(-1)
    sizes = sizes.reshape([1, 1, 1, 1, 1, 3])
    tile_size_shape = list(rets[0].shape)
    tile_size_shape[3] = 1
    sizes = sizes.repeat(tile_size_shape)
    rets.insert(3, sizes)
    return torch.cat(rets, dim=-1).permute([2, 1, 0, 3, 4, 5])


def class_anchors():
    """AlignedAnchor3DRangeGeneratorPerCls: per class [2*H*W, 7], rows r*H*W + h*W + w."""
    out = []
    for first, n, stride in GROUPS:
        H, W = NY // 2 // stride, NX // 2 // stride
        for k in range(first, first + n):
            _, size, z, *_ = CLASSES[k]
            rng = [RANGE[0], RANGE[1], z, RANGE[3], RANGE[4], z]
            a = anchors_single_range([H, W], rng, [list(size)], list(ROTATIONS))
            a = a.reshape(H, W, -1, 7).permute(2, 0, 1, 3)
            out.append(a.reshape(-1, 7))
    return out


def limit_period(val, offset=0.5, period=np.pi):
    return val - torch.floor(val / period + offset) * period


def nearest_bev(boxes):
    """LiDARInstance3DBoxes.nearest_bev."""
    bev = boxes[:, [0, 1, 3, 4, 6]]
    normed = torch.abs(limit_period(bev[:, -1], 0.5, np.pi))
    cond = (normed > np.pi / 4)[..., None]
    xywh = torch.where(cond, bev[:, [0, 1, 3, 2]], bev[:, :4])
    centers, dims = xywh[:, :2], xywh[:, 2:]
    return torch.cat([centers - dims / 2, centers + dims / 2], dim=-1)


def bbox_overlaps(b1, b2, eps=1e-6):
    """mmdet bbox_overlaps, mode iou, not aligned."""
    area1 = (b1[:, 2] - b1[:, 0]) * (b1[:, 3] - b1[:, 1])
    area2 = (b2[:, 2] - b2[:, 0]) * (b2[:, 3] - b2[:, 1])
    lt = torch.max(b1[:, None, :2], b2[None, :, :2])
    rb = torch.min(b1[:, None, 2:], b2[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    overlap = wh[..., 0] * wh[..., 1]
    union = area1[:, None] + area2[None, :] - overlap
    union = torch.max(union, union.new_tensor([eps]))
    return overlap / union


def assign_wrt_overlaps(overlaps, pos_thr, neg_thr, min_pos):
    """mmdet MaxIoUAssigner (gt_max_assign_all, match_low_quality): -1/0/g+1."""
    num_gts, num_anchors = overlaps.shape
    assigned = overlaps.new_full((num_anchors,), -1, dtype=torch.long)
    max_ov, argmax_ov = overlaps.max(dim=0)
    gt_max, _ = overlaps.max(dim=1)
    assigned[(max_ov >= 0) & (max_ov < neg_thr)] = 0
    pos = max_ov >= pos_thr
    assigned[pos] = argmax_ov[pos] + 1
    for i in range(num_gts):
        if gt_max[i] >= min_pos:
            assigned[overlaps[i, :] == gt_max[i]] = i + 1
    return assigned


def encode(src, dst):
    """DeltaXYZWLHRBBoxCoder.encode (bottom z -> gravity centre inside)."""
    xa, ya, za, wa, la, ha, ra = torch.split(src, 1, dim=-1)
    xg, yg, zg, wg, lg, hg, rg = torch.split(dst, 1, dim=-1)
    za = za + ha / 2
    zg = zg + hg / 2
    diagonal = torch.sqrt(la ** 2 + wa ** 2)
    return torch.cat([(xg - xa) / diagonal, (yg - ya) / diagonal, (zg - za) / ha,
                      torch.log(wg / wa), torch.log(lg / la), torch.log(hg / ha), rg - ra],
                     dim=-1)


def direction_target(anchors, reg_targets):
    rot_gt = reg_targets[..., 6] + anchors[..., 6]
    offset_rot = limit_period(rot_gt - DIR_OFFSET, DIR_LIMIT_OFFSET, 2 * np.pi)
    t = torch.floor(offset_rot / (2 * np.pi / 2)).long()
    return torch.clamp(t, min=0, max=1)


def targets_one_sample(anchors_per_class, boxes, labels):
    cols = {k: [] for k in ("labels", "label_weights", "bbox_targets", "bbox_weights",
                            "dir_targets", "dir_weights")}
    npos = 0
    for k, anchors in enumerate(anchors_per_class):
        n = anchors.shape[0]
        gt = boxes[labels == k]
        if len(gt) == 0:
            assigned = torch.zeros(n, dtype=torch.long)
        else:
            _, _, _, pos, neg, min_pos = CLASSES[k]
            ov = bbox_overlaps(nearest_bev(gt), nearest_bev(anchors))
            assigned = assign_wrt_overlaps(ov, pos, neg, min_pos)
        lab = torch.full((n,), NUM_CLASSES, dtype=torch.long)
        lw = torch.zeros(n)
        bt = torch.zeros(n, 7)
        bw = torch.zeros(n)
        dt = torch.zeros(n, dtype=torch.long)
        dw = torch.zeros(n)
        p = assigned > 0
        if p.any():
            t = encode(anchors[p], gt[assigned[p] - 1])
            bt[p] = t
            bw[p] = 1
            dt[p] = direction_target(anchors[p], t)
            dw[p] = 1
            lab[p] = k
        lw[assigned >= 0] = 1
        npos += int(p.sum())
        for key, v in zip(cols, (lab, lw, bt, bw, dt, dw)):
            cols[key].append(v)
    return {k: torch.cat(v) for k, v in cols.items()}, npos


def make_targets(anchors_per_class, boxes, labels):
    per, P = [], []
    for b in range(B):
        t, n = targets_one_sample(anchors_per_class, torch.from_numpy(boxes[b]),
                                  torch.from_numpy(labels[b]).long())
        per.append(t)
        P.append(n)
    tg = {k: torch.cat([p[k] for p in per]) for k in per[0]}
    return tg, P, sum(max(p, 1) for p in P)


# ---- losses (spec §8) ----------------------------------------------------------------

class SigmoidFocalLoss(torch.autograd.Function):
    """mmcv sigmoid_focal_loss (CUDA kernel formulas), reduction 'none', no weight."""

    @staticmethod
    def forward(ctx, x, target):
        ctx.save_for_backward(x, target)
        p = torch.sigmoid(x)
        flag_p = (target[:, None] == torch.arange(x.shape[1])[None, :]).to(x.dtype)
        flag_n = 1 - flag_p
        term_p = (1 - p) ** FOCAL_GAMMA * torch.log(torch.clamp(p, min=FLT_MIN))
        term_n = p ** FOCAL_GAMMA * torch.log(torch.clamp(1 - p, min=FLT_MIN))
        return -(flag_p * FOCAL_ALPHA * term_p) - flag_n * (1 - FOCAL_ALPHA) * term_n

    @staticmethod
    def backward(ctx, grad_out):
        x, target = ctx.saved_tensors
        p = torch.sigmoid(x)
        flag_p = (target[:, None] == torch.arange(x.shape[1])[None, :]).to(x.dtype)
        flag_n = 1 - flag_p
        g = FOCAL_GAMMA
        term_p = (1 - p) ** g * (1 - p - g * p * torch.log(torch.clamp(p, min=FLT_MIN)))
        term_n = p ** g * (g * (1 - p) * torch.log(torch.clamp(1 - p, min=FLT_MIN)) - p)
        grad = -(flag_p * FOCAL_ALPHA * term_p) - flag_n * (1 - FOCAL_ALPHA) * term_n
        return grad * grad_out, None


def losses(cls, reg, dirp, tg, ntp):
    D = ntp + FLT_EPS    # mmdet weight_reduce_loss: sum / (avg_factor + eps)
    cls = cls.reshape(-1, NUM_CLASSES)
    focal = SigmoidFocalLoss.apply(cls, tg["labels"])
    loss_cls = (focal * tg["label_weights"].view(-1, 1)).sum() / D
    bp = reg.reshape(-1, 7)
    bt = tg["bbox_targets"]
    # add_sin_difference: both encodings from the prediction's angle
    rp = torch.sin(bp[:, 6:7]) * torch.cos(bt[:, 6:7])
    rt = torch.cos(bp[:, 6:7]) * torch.sin(bt[:, 6:7])
    bp = torch.cat([bp[:, :6], rp], dim=-1)
    bt = torch.cat([bt[:, :6], rt], dim=-1)
    diff = torch.abs(bp - bt)
    sl1 = torch.where(diff < SMOOTH_L1_BETA, 0.5 * diff * diff / SMOOTH_L1_BETA,
                      diff - 0.5 * SMOOTH_L1_BETA)
    loss_bbox = (sl1 * tg["bbox_weights"].view(-1, 1).expand(-1, 7)).sum() / D
    ce = F.cross_entropy(dirp.reshape(-1, 2), tg["dir_targets"], reduction="none")
    loss_dir = DIR_WEIGHT * ((ce * tg["dir_weights"]).sum() / D)
    return loss_cls, loss_bbox, loss_dir


# ---- the run -------------------------------------------------------------------------

def f32(t):
    return np.ascontiguousarray(t.detach().numpy(), dtype=np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--seed", type=int, default=20261125)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(args.seed)

    voxels, num_points, coords, boxes, labels = make_batch(rng)
    model = SSN()
    init = random_weights(model, rng)
    load(model, init)
    model.train()
    tv, tn, tc = (torch.from_numpy(voxels), torch.from_numpy(num_points),
                  torch.from_numpy(coords))

    anchors = class_anchors()
    tg, P, ntp = make_targets(anchors, boxes, labels)
    cls, reg, dirp = model(tv, tn, tc)
    lc, lb, ld = losses(cls, reg, dirp, tg, ntp)
    total = lc + lb + ld
    total.backward()
    grads = {n: f32(p.grad) for n, p in model.named_parameters()}
    bn_after = {n: f32(t) for n, t in model.state_dict().items()
                if n.endswith("running_mean") or n.endswith("running_var")}
    terms = [float(lc.detach()), float(lb.detach()), float(ld.detach()), float(total.detach())]
    print(f"pillars {len(voxels)} ({np.bincount(coords[:, 0]).tolist()}), positives {P}, "
          f"num_total_pos {ntp}")
    print(f"loss cls {terms[0]:.6f} bbox {terms[1]:.6f} dir {terms[2]:.6f} "
          f"total {terms[3]:.6f}")

    # 10 steps on the same batch from the same initial state
    model = SSN()
    load(model, init)
    model.train()
    params = list(model.parameters())
    opt = torch.optim.AdamW(params, lr=LR, betas=BETAS, eps=ADAM_EPS, weight_decay=WD,
                            foreach=True)
    sched = torch.optim.lr_scheduler.LinearLR(opt, start_factor=WARMUP_RATIO, end_factor=1.0,
                                              total_iters=WARMUP_ITERS - 1)
    train_loss, train_terms, lrs, norms = [], [], [], []
    for step in range(STEPS):
        opt.zero_grad()
        out = model(tv, tn, tc)
        lc_, lb_, ld_ = losses(*out, tg, ntp)
        loss = lc_ + lb_ + ld_
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, GRAD_CLIP)
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
        train_loss.append(float(loss.detach()))
        train_terms.append([float(lc_.detach()), float(lb_.detach()), float(ld_.detach())])
        norms.append(float(norm))
        print(f"step {step}: loss {train_loss[-1]:.6f} lr {lrs[-1]:.6g} grad_norm {norms[-1]:.4f}")

    write_fixture(args.out, args.seed, voxels, num_points, coords, boxes, labels, init,
                  (f32(cls), f32(reg), f32(dirp)), tg, P, ntp, terms, grads, bn_after,
                  train_loss, train_terms, lrs, norms)


def write_fixture(path, seed, voxels, num_points, coords, boxes, labels, init, outs, tg, P,
                  ntp, terms, grads, bn_after, train_loss, train_terms, lrs, norms):
    """Layout (all datasets; names under weights/bn_init/bn_after/grads are ours):
      root attrs   format, format_version, generator, torch, numpy, h5py (str), seed (int),
                   preset ("small"), overrides (config lines, '\\n'-separated)
      inputs/      voxels f32 [M,20,4], num_points i32 [M], coords i32 [M,4] (b,z,y,x),
                   boxes f32 [B,G,7] (bottom z), labels i32 [B,G]
      weights/NAME f32   every learnable tensor, its shape
      bn_init/NAME f32   running_mean / running_var before the forward
      outputs/     cls f32 [B,N,9], reg f32 [B,N,7], dir f32 [B,N,2] (training forward)
      targets/     labels i32 [B*N], label_weights f32, bbox_targets f32 [B*N,7],
                   bbox_weights f32 [B*N] (one per row), dir_targets i32, dir_weights f32,
                   num_pos i32 [B], num_total_pos f64 [1]
      loss/terms   f64 [4]: cls, bbox, dir, total (float32 values)
      grads/NAME   f32   d total / d parameter
      bn_after/NAME f32  running stats after the forward
      train/       loss f64 [10] (before each step), terms f64 [10,3], lr f64 [10],
                   grad_norm f64 [10] (before clipping)"""
    tmp = path + ".tmp"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with h5py.File(tmp, "w", libver="earliest") as f:
        def put(name, arr):
            arr = np.ascontiguousarray(arr)
            kw = dict(compression="gzip", compression_opts=9, shuffle=True) if arr.size > 64 else {}
            f.create_dataset(name, data=arr, track_times=False, **kw)
        f.attrs["format"] = np.bytes_(FORMAT)
        f.attrs["format_version"] = np.int64(FORMAT_VERSION)
        f.attrs["generator"] = np.bytes_("python3 tests/ref/torch_parity.py")
        f.attrs["torch"] = np.bytes_(torch.__version__)
        f.attrs["numpy"] = np.bytes_(np.__version__)
        f.attrs["h5py"] = np.bytes_(h5py.__version__)
        f.attrs["seed"] = np.int64(seed)
        f.attrs["preset"] = np.bytes_("small")
        f.attrs["overrides"] = np.bytes_("\n".join(OVERRIDES))
        put("inputs/voxels", voxels.astype(np.float32))
        put("inputs/num_points", num_points.astype(np.int32))
        put("inputs/coords", coords.astype(np.int32))
        put("inputs/boxes", boxes.astype(np.float32))
        put("inputs/labels", labels.astype(np.int32))
        for name, t in init.items():
            grp = "bn_init" if name.endswith(("running_mean", "running_var")) else "weights"
            put(f"{grp}/{name}", t.numpy())
        for name, arr in zip(("cls", "reg", "dir"), outs):
            put(f"outputs/{name}", arr)
        put("targets/labels", tg["labels"].numpy().astype(np.int32))
        put("targets/label_weights", f32(tg["label_weights"]))
        put("targets/bbox_targets", f32(tg["bbox_targets"]))
        put("targets/bbox_weights", f32(tg["bbox_weights"]))
        put("targets/dir_targets", tg["dir_targets"].numpy().astype(np.int32))
        put("targets/dir_weights", f32(tg["dir_weights"]))
        put("targets/num_pos", np.array(P, np.int32))
        put("targets/num_total_pos", np.array([ntp], np.float64))
        put("loss/terms", np.array(terms, np.float64))
        for name, g in grads.items():
            put(f"grads/{name}", g)
        for name, v in bn_after.items():
            put(f"bn_after/{name}", v)
        put("train/loss", np.array(train_loss, np.float64))
        put("train/terms", np.array(train_terms, np.float64))
        put("train/lr", np.array(lrs, np.float64))
        put("train/grad_norm", np.array(norms, np.float64))
    os.replace(tmp, path)
    print(f"wrote {path} ({os.path.getsize(path) / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
