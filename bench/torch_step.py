#!/usr/bin/env python3
"""torch_step: the PyTorch peer of build/bench/train_step: the same SSN training step
(forward, targets, losses, backward, clip_grad_norm_, AdamW) on the same batch and the
same initial weights, timed per step on the CPU.

    build/bench/train_step --config small --batch 2 --pillars 10000 --dump-inputs in.h5
    .venv/bin/python bench/torch_step.py in.h5 [--steps 10] [--warmup 2] [--threads T]
                                         [--autocast none|bf16|fp16]

The model, anchors, targets and losses are tests/ref/torch_parity.py's (imported, not
copied: the module that tests/test_torch_parity.c checks our C against), with its
module-level configuration replaced by the config stored in the input file (every key
as l3d_config_print writes it), so both sides build the same network: HardVFE, scatter,
SECOND, SECONDFPN, four shape-aware head groups. The weights and BatchNorm statistics
are loaded from the file (our initialisation, by our parameter names = the module
paths), so the first step's loss and gradient norm must equal ours (printed as
loss0 / grad_norm0 for bench/train-speed.sh to compare).

One step, as MMEngine's OptimWrapper runs it: zero_grad (set_to_none), forward, targets
(per-class nearest-BEV IoU, MaxIoU, box encoding; recomputed every step as
MMDetection3D does), the three losses, backward, clip_grad_norm_(grad_clip = 35),
torch.optim.AdamW (foreach, lr/betas/eps/wd from the config), LinearLR warm-up step.
Anchors are generated once (our side does the same). --autocast runs the forward under
torch.autocast("cpu", dtype) and the losses in float32 on the upcast outputs (as
MMDetection3D's fp16 heads do); CPU autocast is bfloat16 by default in PyTorch, and
its fp16 variant is reported separately: neither is our amp/fp16, which emulates the
GPU's fp16 storage in fp32 arithmetic.

Prints one line per step and then
  RESULT tool=torch precision=fp32|autocast-bf16|autocast-fp16 threads=T batch=B
         pillars=M steps=K wall_ms_median=.. wall_ms_min=.. cpu_ms_median=..
         cpu_ms_min=.. peak_rss_mb=.. base_rss_mb=.. loss0=.. grad_norm0=..
         skipped=0 fwd_ms=.. tgt_ms=.. loss_ms=.. bwd_ms=.. opt_ms=..
CPU ms is time.process_time() (all threads of the process); peak_rss_mb is
resource.getrusage's ru_maxrss at the end, base_rss_mb the same after importing torch
and before building the model.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "ref"))
import torch_parity as tp  # noqa: E402  (re-executes this script in .venv/ if needed)

import argparse  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

FORMAT = "lidar3d-train-step-inputs"


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def parse_config(text):
    cfg = {}
    for line in text.splitlines():
        if "=" not in line:
            continue
        k, v = line.split("=", 1)
        cfg[k.strip()] = [float(x) for x in v.split()]
    return cfg


def configure(cfg, batch):
    """Points torch_parity's module-level configuration at our config."""
    ints = lambda k: tuple(int(x) for x in cfg[k])  # noqa: E731
    one = lambda k: cfg[k][0]  # noqa: E731
    tp.RANGE = tuple(cfg["point_cloud_range"])
    tp.VOXEL = tuple(cfg["voxel_size"])
    tp.MAX_POINTS, tp.MAX_VOXELS = int(one("max_points")), int(one("max_voxels"))
    tp.VFE_CH = ints("vfe_channels")
    tp.LAYER_NUMS, tp.LAYER_STRIDES, tp.OUT_CH = ints("layer_nums"), ints("layer_strides"), \
        ints("out_channels")
    tp.UPSAMPLE, tp.NECK_CH = ints("upsample_strides"), int(one("neck_channels"))
    tp.BN_EPS, tp.BN_MOM = one("bn_eps"), one("bn_momentum")
    tp.HEAD_EPS, tp.HEAD_MOM = one("head_bn_eps"), one("head_bn_momentum")
    tp.B = batch
    tp.LR, tp.WD = one("lr"), one("weight_decay")
    tp.BETAS, tp.ADAM_EPS = (one("beta1"), one("beta2")), one("adam_eps")
    tp.WARMUP_ITERS, tp.WARMUP_RATIO = int(one("warmup_iters")), one("warmup_ratio")
    tp.GRAD_CLIP = one("grad_clip")
    tp.SMOOTH_L1_BETA, tp.DIR_WEIGHT = one("smooth_l1_beta"), one("dir_weight")
    tp.FOCAL_ALPHA, tp.FOCAL_GAMMA = one("focal_alpha"), one("focal_gamma")
    tp.NX = int(round((tp.RANGE[3] - tp.RANGE[0]) / tp.VOXEL[0]))
    tp.NY = int(round((tp.RANGE[4] - tp.RANGE[1]) / tp.VOXEL[1]))
    # torch_parity's anchor maps assume SSN's strides (first stage 2, heads 1 and 2)
    if tp.LAYER_STRIDES[0] != 2 or tp.UPSAMPLE[0] != 1:
        sys.exit("torch_step: torch_parity's head layout needs layer_strides[0] = 2 and "
                 "upsample_strides[0] = 1")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("inputs", help="HDF5 from build/bench/train_step --dump-inputs")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: default)")
    ap.add_argument("--autocast", choices=("none", "bf16", "fp16"), default="none")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    base_rss = rss_mb()

    with h5py.File(args.inputs, "r") as f:
        fmt = f.attrs["format"]
        fmt = fmt.decode() if isinstance(fmt, bytes) else str(fmt)
        if fmt != FORMAT:
            sys.exit(f"torch_step: {args.inputs} is not a {FORMAT} file")
        cfgtext = f.attrs["config"]
        cfgtext = cfgtext.decode() if isinstance(cfgtext, bytes) else str(cfgtext)
        batch = int(f.attrs["batch"])
        voxels = f["voxels"][...]
        num_points = f["num_points"][...]
        coords = f["coords"][...]
        boxes = f["boxes"][...]
        labels = f["labels"][...]
        sd = {f"{name}": torch.from_numpy(np.ascontiguousarray(f["weights"][name][...]))
              for name in f["weights"]}
        sd.update({name: torch.from_numpy(np.ascontiguousarray(f["bn"][name][...]))
                   for name in f["bn"]})
    configure(parse_config(cfgtext), batch)

    model = tp.SSN()
    tp.load(model, sd)
    del sd
    model.train()
    params = list(model.parameters())
    opt = torch.optim.AdamW(params, lr=tp.LR, betas=tp.BETAS, eps=tp.ADAM_EPS,
                            weight_decay=tp.WD, foreach=True)
    sched = torch.optim.lr_scheduler.LinearLR(opt, start_factor=tp.WARMUP_RATIO,
                                              end_factor=1.0,
                                              total_iters=max(tp.WARMUP_ITERS - 1, 1))
    tv, tn, tc = (torch.from_numpy(voxels), torch.from_numpy(num_points),
                  torch.from_numpy(coords))
    anchors = tp.class_anchors()
    n_params = sum(p.numel() for p in params)
    amp_dtype = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args.autocast]
    precision = "fp32" if amp_dtype is None else f"autocast-{args.autocast}"
    print(f"torch_step: torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"batch {batch}, {len(voxels)} pillars, canvas {tp.NX}x{tp.NY}, {n_params} "
          f"parameters, {precision}", flush=True)

    wall, cpu, phases = [], [], []
    loss0 = norm0 = None
    for i in range(args.warmup + args.steps):
        w0, c0 = time.perf_counter(), time.process_time()
        t = [w0]
        opt.zero_grad(set_to_none=True)
        if amp_dtype is None:
            cls, reg, dirp = model(tv, tn, tc)
        else:
            with torch.autocast(device_type="cpu", dtype=amp_dtype):
                cls, reg, dirp = model(tv, tn, tc)
            cls, reg, dirp = cls.float(), reg.float(), dirp.float()
        t.append(time.perf_counter())
        tg, P, ntp = tp.make_targets(anchors, boxes, labels)
        t.append(time.perf_counter())
        lc, lb, ld = tp.losses(cls, reg, dirp, tg, ntp)
        loss = lc + lb + ld
        t.append(time.perf_counter())
        loss.backward()
        t.append(time.perf_counter())
        norm = torch.nn.utils.clip_grad_norm_(params, tp.GRAD_CLIP)
        opt.step()
        sched.step()
        t.append(time.perf_counter())
        w, c = t[-1] - w0, time.process_time() - c0
        lv, nv = float(loss.detach()), float(norm)
        ph = [1e3 * (t[j + 1] - t[j]) for j in range(5)]
        if i == 0:
            loss0, norm0 = lv, nv
        k = i - args.warmup
        if k >= 0:
            wall.append(1e3 * w)
            cpu.append(1e3 * c)
            phases.append(ph)
        print(f"step {i:2d}{' (warm-up)' if k < 0 else ''}: wall {1e3 * w:8.1f} ms  "
              f"cpu {1e3 * c:8.1f} ms  [fwd {ph[0]:.1f} tgt {ph[1]:.1f} loss {ph[2]:.1f} "
              f"bwd {ph[3]:.1f} opt {ph[4]:.1f}]  loss {lv:.6f}  grad_norm {nv:.4f}  "
              f"positives {sum(P)}", flush=True)
    med = [statistics.median(p[j] for p in phases) for j in range(5)]
    print(f"RESULT tool=torch precision={precision} threads={torch.get_num_threads()} "
          f"batch={batch} pillars={len(voxels)} steps={args.steps} "
          f"wall_ms_median={statistics.median(wall):.2f} wall_ms_min={min(wall):.2f} "
          f"cpu_ms_median={statistics.median(cpu):.2f} cpu_ms_min={min(cpu):.2f} "
          f"peak_rss_mb={rss_mb():.1f} base_rss_mb={base_rss:.1f} loss0={loss0:.6f} "
          f"grad_norm0={norm0:.6f} skipped=0 fwd_ms={med[0]:.2f} tgt_ms={med[1]:.2f} "
          f"loss_ms={med[2]:.2f} bwd_ms={med[3]:.2f} opt_ms={med[4]:.2f}", flush=True)


if __name__ == "__main__":
    main()
