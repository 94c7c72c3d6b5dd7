#!/usr/bin/env python3
"""Checks trainer/tblog's event files with the official `tensorboard` package.

Outside `make check` (it needs pip and the network on first use):

    make build/bench/tblog_demo && python3 tests/ref/tensorboard_check.py

Feeds known scalars to build/bench/tblog_demo (tab-separated on stdin), then
  1. walks the file's TFRecords, checking both masked CRC32Cs with tensorboard's
     own crc32c and parsing each record with its Event protobuf (so a record the
     loader would skip cannot go unnoticed), and
  2. loads the directory with tensorboard's EventAccumulator and asserts that
     the tags, steps and float32 values are exactly the ones given.
tensorboard is installed into the venv $LIDAR3D_TB_VENV (default
/tmp/lidar3d-tb-venv) on first use; the script then re-executes itself there.
Exit 0 and "tensorboard check: OK" on success.
"""
import math
import os
import struct
import re
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEMO = os.path.join(REPO, os.environ.get("BUILD", "build"), "bench", "tblog_demo")
VENV = os.path.abspath(os.environ.get("LIDAR3D_TB_VENV", "/tmp/lidar3d-tb-venv"))
GUARD = "LIDAR3D_TB_VENV_REEXEC"


def ensure_tensorboard():
    try:
        import tensorboard  # noqa: F401
        return
    except ImportError:
        pass
    if os.environ.get(GUARD):
        sys.exit(f"tensorboard check: tensorboard does not import in {sys.executable}")
    py = os.path.join(VENV, "bin", "python")
    if not os.path.exists(py):
        print(f"tensorboard check: creating {VENV}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    if subprocess.run([py, "-c", "import tensorboard"], stderr=subprocess.DEVNULL).returncode:
        print(f"tensorboard check: installing tensorboard into {VENV}", file=sys.stderr)
        subprocess.run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "tensorboard"], check=True)
    os.environ[GUARD] = "1"
    os.execv(py, [py, os.path.abspath(__file__), *sys.argv[1:]])


def f32(x):
    """x rounded to float32, as Python's float (what tensorboard returns)."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


# (step, tag, value): values rounded to float32 by the C side's strtof.
LONG_TAG = "train/" + "abcdefghijklmnopqrstuvwxyz" * 12          # > 127 bytes: 2-byte lengths
SCALARS = (
    [(s, "loss/total", 1.0 / (s + 1)) for s in range(20)]
    + [(s, "lr", 1e-3 * (1 + 0.5 * math.sin(s))) for s in range(0, 20, 5)]
    + [(0, "métrique/ünïcode", -0.0), (1, "métrique/ünïcode", 3.4e38),
       (2, "métrique/ünïcode", 1e-45), (3, "métrique/ünïcode", float("inf")),
       (4, "métrique/ünïcode", float("nan"))]
    + [(1 << 40, LONG_TAG, 123.456), ((1 << 62) + 1, LONG_TAG, -7.25)]
)


def same(a, b):
    return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))


def check_records(path, want_scalars):
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c
    data = open(path, "rb").read()
    events, off = [], 0
    while off < len(data):
        assert len(data) - off >= 12, f"truncated record header at byte {off}"
        (n,) = struct.unpack_from("<Q", data, off)
        (hcrc,) = struct.unpack_from("<I", data, off + 8)
        assert hcrc == masked_crc32c(data[off:off + 8]), f"length CRC at byte {off}"
        body = data[off + 12:off + 12 + n]
        (dcrc,) = struct.unpack_from("<I", data, off + 12 + n)
        assert dcrc == masked_crc32c(body), f"data CRC at byte {off}"
        ev = Event.FromString(body)
        assert ev.SerializeToString() == body, f"record at byte {off} does not re-encode identically"
        events.append(ev)
        off += 16 + n
    assert off == len(data)
    assert events[0].file_version == "brain.Event:2", events[0]
    assert len(events) == 1 + want_scalars, (len(events), want_scalars)
    return events


def main():
    ensure_tensorboard()
    import tensorboard
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    if not os.access(DEMO, os.X_OK):
        sys.exit(f"tensorboard check: {DEMO} missing: run `make build/bench/tblog_demo` first")
    with tempfile.TemporaryDirectory(prefix="tblog-") as d:
        lines = "".join(f"{s}\t{t}\t{v!r}\n" for s, t, v in SCALARS)
        p = subprocess.Popen([DEMO, d], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        out, _ = p.communicate(lines.encode())
        assert p.returncode == 0, f"{DEMO} exited with {p.returncode}"
        path = out.decode().strip()
        pattern = rf"events\.out\.tfevents\.\d{{10}}\.{re.escape(socket.gethostname())}\.{p.pid}\.0"
        assert os.path.dirname(path) == d and re.fullmatch(pattern, os.path.basename(path)), path
        events = check_records(path, len(SCALARS))

        acc = EventAccumulator(d, size_guidance={"scalars": 0})   # 0: keep every event
        acc.Reload()
        want = {}
        for s, t, v in SCALARS:
            want.setdefault(t, []).append((s, f32(v)))
        got_tags = sorted(acc.Tags()["scalars"])
        assert got_tags == sorted(want), (got_tags, sorted(want))
        for tag, pairs in want.items():
            got = [(e.step, e.value) for e in acc.Scalars(tag)]
            assert len(got) == len(pairs), (tag, got, pairs)
            for (gs, gv), (ws, wv) in zip(got, pairs):
                assert gs == ws and same(gv, wv), (tag, (gs, gv), (ws, wv))
        walls = [e.wall_time for e in events]
        assert walls == sorted(walls) and abs(walls[0] - time.time()) < 60, walls[:3]
    print(f"tensorboard check: OK (tensorboard {tensorboard.__version__}, "
          f"{len(SCALARS)} scalars in {len(want)} tags, {len(events)} records)")


if __name__ == "__main__":
    main()
