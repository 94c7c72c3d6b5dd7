#!/usr/bin/env bash
# The sweep cache against its peers on real data (lyft-scene: 40 real samples).
#
#   bench/cache-speed.sh            (from anywhere; `make` and `make check` first:
#                                    this script builds nothing)
#
# 1. bin/lyft-index lyft-scene > $OUT/index.jsonl
# 2. sweep-pack -j 1 and -j 2, REPS runs each (median), page cache warm:
#    input GB/s = bytes of the distinct .bin files the index names / wall time.
# 3. build/bench/merge_speed --mode mmap|pread|h5dread: every sample's merged
#    10-sweep cloud, single-threaded, pinned to one CPU.
# 4. bench/merge_peers.py on the same index and CPU: MMDetection3D-style numpy merge
#    and the official SDK's LidarPointCloud.from_file_multisweep; also the pickle size
#    of merged clouds (measured on 3 samples, extrapolated per sample) and a check
#    that the numpy merge and the cache agree (sweep-pack --dump).
# 5. A markdown table: samples/s, points/s, ratios, sizes, the machine, the commands.
#
# Environment: LYFT_SCENE (default ../shared/data/lyft-scene beside the repository;
# absent: the bench is skipped, exit 0), BENCH_OUT (default bench/out/cache-speed),
# BENCH_CPU (the CPU every merge runs on; default the last online one), REPEAT (timed
# passes of ours and numpy, default 5), SDK_REPEAT (default 2), REPS (sweep-pack runs,
# default 5), LIDAR3D_BIN (default bin/), BUILD (default build), LIDAR3D_VENV (the
# SDK's venv, default .venv/, made on first use from tests/ref/requirements.txt).
# Exit status: 0; 2 on errors or when a check fails; with BENCH_STRICT=1 also 1 when a
# target (>= 20x the SDK and >= 8x numpy, merged clouds per CPU second through mmap)
# is not met.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
BIN=${LIDAR3D_BIN:-$REPO/bin}
BUILD=${BUILD:-build}
DATA=${LYFT_SCENE:-$REPO/../shared/data/lyft-scene}
OUT=${BENCH_OUT:-bench/out/cache-speed}
REPEAT=${REPEAT:-5}
SDK_REPEAT=${SDK_REPEAT:-2}
REPS=${REPS:-5}
SWEEPS=10
TARGET_SDK=20
TARGET_NUMPY=8

die() { echo "cache-speed: $*" >&2; exit 2; }
if [ ! -d "$DATA" ]; then
    echo "cache-speed: skipped: no real data at $DATA (set LYFT_SCENE)" >&2
    exit 0
fi
DATA=$(cd "$DATA" && pwd)
MERGE=$BUILD/bench/merge_speed
for t in "$BIN/lyft-index" "$BIN/sweep-pack" "$MERGE"; do
    [ -x "$t" ] || die "$t not found: run 'make' and 'make check' (or make $MERGE) first"
done
mkdir -p "$OUT"
NCPU=$(nproc --all)   # before OMP_NUM_THREADS=1, which plain nproc obeys
CPU=${BENCH_CPU:-$(( $(nproc) - 1 ))}
if command -v taskset > /dev/null; then
    PIN=(taskset -c "$CPU")
else
    PIN=()
    echo "cache-speed: taskset not found: merge_speed runs unpinned (single-threaded)" >&2
fi
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 NUMEXPR_NUM_THREADS=1
CMDS=()
note() { CMDS+=("$*"); echo "cache-speed: $*" >&2; }
load0=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- 1. index ------------------------------------------------------------------
note "$BIN/lyft-index $DATA > $OUT/index.jsonl"
"$BIN/lyft-index" "$DATA" > "$OUT/index.jsonl" 2> "$OUT/index.log" ||
    { cat "$OUT/index.log" >&2; die "lyft-index failed"; }

# samples, distinct .bin files and their bytes, first sample with SWEEPS sweeps
read -r S NBIN INBYTES FULL < <(python3 - "$OUT/index.jsonl" "$SWEEPS" <<'EOF'
import json, os, sys
paths, full, n = set(), -1, 0
for i, line in enumerate(open(sys.argv[1])):
    d = json.loads(line)
    n += 1
    paths.add(os.path.join(d["root"], d["lidar_path"]))
    for s in d["sweeps"]:
        paths.add(os.path.join(d["root"], s["lidar_path"]))
    if full < 0 and len(d["sweeps"]) >= int(sys.argv[2]):
        full = i
print(n, len(paths), sum(os.path.getsize(p) for p in paths), full)
EOF
)
[ "$S" -gt 0 ] || die "the index has no samples"
[ "$FULL" -ge 0 ] || FULL=0
# page cache warm for every reader
python3 - "$OUT/index.jsonl" <<'EOF'
import json, os, sys
seen = set()
for line in open(sys.argv[1]):
    d = json.loads(line)
    for p in [d["lidar_path"]] + [s["lidar_path"] for s in d["sweeps"]]:
        p = os.path.join(d["root"], p)
        if p not in seen:
            seen.add(p)
            with open(p, "rb") as f:
                while f.read(1 << 20):
                    pass
EOF

# ---- 2. sweep-pack ---------------------------------------------------------------
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2];
                            else printf "%.6f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
pack_wall() {  # threads -> median wall seconds over REPS runs
    local j=$1 r t0 t1
    for r in $(seq "$REPS"); do
        t0=$(date +%s.%N)
        "$BIN/sweep-pack" -j "$j" "$OUT/index.jsonl" -o "$OUT/sweeps.h5" 2> "$OUT/pack$j.log" ||
            { cat "$OUT/pack$j.log" >&2; die "sweep-pack -j $j failed"; }
        t1=$(date +%s.%N)
        awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f\n", b - a }'
    done | median
}
for j in 1 2; do note "$BIN/sweep-pack -j $j $OUT/index.jsonl -o $OUT/sweeps.h5   (x $REPS, median)"; done
pack1=$(pack_wall 1)
pack2=$(pack_wall 2)
CACHE_BYTES=$(stat -c %s "$OUT/sweeps.h5")

# ---- 3. ours ---------------------------------------------------------------------
result() {  # FILE KEY -> value from the RESULT/PICKLE/COMPARE line
    sed -n 's/^\(RESULT\|PICKLE\|COMPARE\) .*/&/p' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1
}
for mode in mmap pread h5dread; do
    note "${PIN[*]} $MERGE $OUT/sweeps.h5 --sweeps $SWEEPS --repeat $REPEAT --mode $mode"
    "${PIN[@]}" "$MERGE" "$OUT/sweeps.h5" --sweeps "$SWEEPS" --repeat "$REPEAT" --mode "$mode" \
        > "$OUT/merge_$mode.log" 2>&1 || { cat "$OUT/merge_$mode.log" >&2; die "merge_speed --mode $mode failed"; }
done
grep -h '^merge_speed: check' "$OUT/merge_mmap.log" "$OUT/merge_pread.log" >&2

# ---- 4. peers --------------------------------------------------------------------
note "$BIN/sweep-pack --dump $FULL --sweeps $SWEEPS $OUT/sweeps.h5 > $OUT/dump.txt"
"$BIN/sweep-pack" --dump "$FULL" --sweeps "$SWEEPS" "$OUT/sweeps.h5" > "$OUT/dump.txt"
PY=$(python3 tests/ref/_venv.py) || die "could not prepare the SDK's virtual environment"
note "$PY bench/merge_peers.py $OUT/index.jsonl --sweeps $SWEEPS --cpu $CPU --repeat $REPEAT --sdk-repeat $SDK_REPEAT --pickle 3 --compare $FULL $OUT/dump.txt"
"$PY" bench/merge_peers.py "$OUT/index.jsonl" --sweeps "$SWEEPS" --cpu "$CPU" --repeat "$REPEAT" \
    --sdk-repeat "$SDK_REPEAT" --pickle 3 --compare "$FULL" "$OUT/dump.txt" > "$OUT/peers.log" 2>&1 ||
    { cat "$OUT/peers.log" >&2; die "merge_peers.py failed"; }
rm -f "$OUT/dump.txt"
grep -v '^\(RESULT\|PICKLE\|COMPARE\) ' "$OUT/peers.log" >&2
grep '^RESULT peer=numpy' "$OUT/peers.log" > "$OUT/numpy.res"
grep '^RESULT peer=sdk' "$OUT/peers.log" > "$OUT/sdk.res"
grep '^PICKLE' "$OUT/peers.log" > "$OUT/pickle.res"
grep '^COMPARE' "$OUT/peers.log" > "$OUT/compare.res"

# ---- 5. report -------------------------------------------------------------------
f() { awk -v x="$1" -v d="${2:-1}" 'BEGIN { printf "%.*f", d, x }'; }
calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }
P=$(result "$OUT/merge_mmap.log" points_per_pass)
PN=$(result "$OUT/numpy.res" points_per_pass)
[ "$P" = "$PN" ] || die "ours merged $P points per pass, numpy $PN: not the same clouds"
DIFF=$(result "$OUT/compare.res" max_abs_diff)
awk -v d="$DIFF" 'BEGIN { exit !(d <= 1.0 / 256 + 1e-4) }' ||
    die "cache and numpy merge of sample $FULL differ by $DIFF m (> 1/256 m)"
ours=$(result "$OUT/merge_mmap.log" samples_per_s)
ours_cpu=$(result "$OUT/merge_mmap.log" cpu_samples_per_s)
row() {  # LABEL RESULTFILE
    local sps pps best cps
    sps=$(result "$2" samples_per_s); pps=$(result "$2" points_per_s)
    best=$(result "$2" best_samples_per_s); cps=$(result "$2" cpu_samples_per_s)
    echo "| $1 | $(f "$sps") | $(f "$best") | $(f "$cps") | $(calc "$pps / 1e6") |" \
         "$(calc "$ours / $sps" 2) | $(calc "$ours_cpu / $cps" 2) |"
}
# target KEY PEERFILE TARGET -> "R.Rx, met" (ours mmap over the peer, by KEY)
target() {
    awk -v a="$(result "$OUT/merge_mmap.log" "$1")" -v b="$(result "$2" "$1")" -v t="$3" \
        'BEGIN { r = a / b; printf "%.1fx, %s", r, (r >= t) ? "met" : "NOT met" }'
}
model=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
fam=$(lscpu | sed -n 's/^CPU family: *//p' | head -1)
mod=$(lscpu | sed -n 's/^Model: *//p' | head -1)
BPP=$(result "$OUT/pickle.res" bytes_per_point)
cache_ps=$(calc "$CACHE_BYTES / $S" 0)
f32_ps=$(calc "$P * 16 / $S" 0)
pkl_ps=$(calc "$BPP * $P / $S" 0)
own() { sed -n 's/^sweep-pack: .* -> [^ ]* \(in [^;]*\);.*/\1/p' "$OUT/pack$1.log" | tail -1; }
mb() { calc "$1 / 1e6" 2; }
pver=$("$PY" -c 'import importlib.metadata as m, numpy, sys; print("lyft-dataset-sdk", m.version("lyft-dataset-sdk") + ", numpy", numpy.__version__ + ", Python", sys.version.split()[0])')

echo "### Sweep cache: merged clouds, packing, size (bench/cache-speed.sh)"
echo
echo "Data: $DATA: $S samples, $NBIN LiDAR scans ($(calc "$INBYTES / 1e6") MB of .bin); merged $SWEEPS-sweep clouds (fewer sweeps for the first samples of the scene), $(calc "$P / 1e6" 2) M points in all, $(calc "$P / $S / 1e6" 3) M per sample."
echo "Machine: $model (family $fam, model $mod), $NCPU cores, $(free -g | awk '/^Mem:/ {print $2}') GiB; load average at start $load0; $(date -u '+%Y-%m-%d %H:%M UTC')."
echo "Every merge row: one process, one thread, pinned to CPU $CPU (${PIN[*]:-unpinned}; OMP/OPENBLAS/MKL_NUM_THREADS=1), page cache warm, one untimed warm-up; ours and numpy $REPEAT passes, SDK $SDK_REPEAT; $pver."
echo
echo "| merged $SWEEPS-sweep clouds (x, y, z, time_lag) | samples/s | best pass | samples per CPU s | M points/s | ours (mmap) / this, wall | ours / this, CPU |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
row "ours: l3d_sweep_cache_merge, mmap (the trainer's path)" "$OUT/merge_mmap.log"
row "ours: same, LIDAR3D_NO_MMAP=1 (pread at open, $(f "$(result "$OUT/merge_pread.log" open_s)" 3) s)" "$OUT/merge_pread.log"
row "ours: H5Dread hyperslabs of scan_points per scan" "$OUT/merge_h5dread.log"
row "numpy, MMDetection3D style (.bin files)" "$OUT/numpy.res"
row "SDK LidarPointCloud.from_file_multisweep (.bin files; drops points < 1 m)" "$OUT/sdk.res"
echo
echo "samples/s: per wall second over all timed passes; best pass: the fastest single pass; samples per CPU s: per second of the process's own CPU time (user + sys), which other processes time-slicing the same core do not inflate (on an idle core it equals samples/s)."
t_sdk_w=$(target samples_per_s "$OUT/sdk.res" $TARGET_SDK); t_np_w=$(target samples_per_s "$OUT/numpy.res" $TARGET_NUMPY)
t_sdk_b=$(target best_samples_per_s "$OUT/sdk.res" $TARGET_SDK); t_np_b=$(target best_samples_per_s "$OUT/numpy.res" $TARGET_NUMPY)
t_sdk_c=$(target cpu_samples_per_s "$OUT/sdk.res" $TARGET_SDK); t_np_c=$(target cpu_samples_per_s "$OUT/numpy.res" $TARGET_NUMPY)
echo "Targets, ours through mmap: >= ${TARGET_SDK}x the SDK: $t_sdk_w (wall), $t_sdk_b (best passes), $t_sdk_c (CPU time); >= ${TARGET_NUMPY}x numpy: $t_np_w (wall), $t_np_b (best passes), $t_np_c (CPU time)."
echo "Reader: mmap $(f "$ours") vs H5Dread $(f "$(result "$OUT/merge_h5dread.log" samples_per_s)") samples/s (wall); $(f "$ours_cpu") vs $(f "$(result "$OUT/merge_h5dread.log" cpu_samples_per_s)") per CPU second."
echo "Checks: $(grep -h '^merge_speed: check' "$OUT/merge_mmap.log" | sed 's/^merge_speed: check: //' | paste -sd';' - | sed 's/;/; /g'); numpy and ours merge the same $P points; sample $FULL: largest coordinate difference cache vs numpy $DIFF m (int16 at 1/128 m rounds by <= 1/256 m)."
echo
echo "| sweep-pack ($NBIN scans, $(calc "$INBYTES / 1e9" 3) GB of .bin, page cache warm) | wall s (median of $REPS) | input GB/s | sweep-pack's own summary (last run) |"
echo "| --- | ---: | ---: | --- |"
echo "| -j 1 | $(f "$pack1" 3) | $(calc "$INBYTES / $pack1 / 1e9" 2) | $(own 1) |"
echo "| -j 2 | $(f "$pack2" 3) | $(calc "$INBYTES / $pack2 / 1e9" 2) | $(own 2) |"
echo
echo "| storage per sample | bytes | MB | / cache |"
echo "| --- | ---: | ---: | ---: |"
echo "| sweep cache (file $CACHE_BYTES B / $S samples; int16 xyz, each scan once) | $cache_ps | $(mb "$cache_ps") | 1.0 |"
echo "| merged float32 x, y, z, time_lag ($P points x 16 B / $S) | $f32_ps | $(mb "$f32_ps") | $(calc "$f32_ps / $cache_ps") |"
echo "| pickle of per-sample arrays ($(f "$BPP" 4) B/point measured on $(result "$OUT/pickle.res" samples) samples, protocol $(result "$OUT/pickle.res" protocol)) | $pkl_ps | $(mb "$pkl_ps") | $(calc "$pkl_ps / $cache_ps") |"
echo
echo "Commands (from $REPO; logs in $OUT):"
echo
for c in "${CMDS[@]}"; do echo "    $c"; done
if [ "${BENCH_STRICT:-0}" = 1 ] && [[ "$t_sdk_c $t_np_c" == *NOT* ]]; then
    exit 1
fi
exit 0
