#!/usr/bin/env bash
# voxel-cache against its numpy peer: sweep cache -> voxel cache (merge, range filter,
# hard voxelization, write), points per second on one core.
#
#   bench/voxel-speed.sh        (from anywhere; `make` first: this script builds nothing)
#
# 1. A sweep cache: real data (lyft-scene, 40 samples of ~105k-point scans) through
#    bin/lyft-index + bin/sweep-pack; without it a synthetic scene from bin/lyft-synth
#    (1 scene x 40 samples, 100k points a scan).
# 2. bin/voxel-cache -j 1 --sweeps K, REPS runs, every thread pinned to one CPU
#    (taskset), page cache warm; the fastest run counts. -j 1 is one voxelizing thread
#    plus the writing main thread, both on that CPU, so wall time is one core's time.
# 3. bench/voxelize_numpy.py on the same cache and CPU, which also checks that its
#    voxels equal the cache's bit for bit.
# 3b. The same script with --voxelizer spconv (spconv's PointToVoxel on the CPU) when a
#    python with spconv and torch exists (PYTHON_SPCONV, else $PYTHON or .venv/bin/python;
#    `pip install spconv`); left out, and said so, otherwise.
# 4. A markdown table: points (merged, i.e. before the range filter), seconds, points/s
#    per core (wall, one CPU) and per CPU second (user + sys), the ratio, the machine.
#
# Environment: LYFT_SCENE (default ../shared/data/lyft-scene), SWEEPS (default 10),
# REPS (default 3), BENCH_CPU (default the last online CPU), BENCH_OUT (default
# bench/out/voxel-speed), LIDAR3D_BIN (default bin/), PYTHON (default: python3 if it
# has numpy, else .venv/bin/python).
# Exit status: 0; 2 on errors or a failed check; with BENCH_STRICT=1 also 1 when the
# target (>= 50 M points/s per core) is not met.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
BIN=${LIDAR3D_BIN:-$REPO/bin}
DATA=${LYFT_SCENE:-$REPO/../shared/data/lyft-scene}
OUT=${BENCH_OUT:-bench/out/voxel-speed}
SWEEPS=${SWEEPS:-10}
REPS=${REPS:-3}
CPU=${BENCH_CPU:-$(($(nproc) - 1))}
TARGET=50000000

die() { echo "voxel-speed: $*" >&2; exit 2; }
for t in lyft-index sweep-pack voxel-cache; do
    [ -x "$BIN/$t" ] || die "$BIN/$t not found: run 'make' first"
done
PY=${PYTHON:-}
if [ -z "$PY" ]; then
    if python3 -c 'import numpy' 2>/dev/null; then PY=python3
    elif [ -x .venv/bin/python ] && .venv/bin/python -c 'import numpy' 2>/dev/null; then
        PY=.venv/bin/python
    else die "no python with numpy (set PYTHON, or pip install numpy)"; fi
fi
command -v h5dump >/dev/null || die "h5dump not found (make deps installs hdf5-tools)"
PIN=()
if command -v taskset >/dev/null; then PIN=(taskset -c "$CPU"); fi
mkdir -p "$OUT"

# 1. the sweep cache
if [ -d "$DATA" ]; then
    DATA=$(cd "$DATA" && pwd)
    what="lyft-scene (real Lyft data, $(ls "$DATA/train_lidar" | wc -l) scans)"
else
    [ -x "$BIN/lyft-synth" ] || die "no real data at $DATA and no $BIN/lyft-synth"
    echo "voxel-speed: no real data at $DATA; using a synthetic scene" >&2
    "$BIN/lyft-synth" -q --force --scenes 1 --samples-per-scene 40 "$OUT/synth"
    DATA=$OUT/synth
    what="lyft-synth (1 scene, 40 samples, synthetic)"
fi
"$BIN/lyft-index" -q "$DATA" -o "$OUT/index.jsonl"
"$BIN/sweep-pack" -q "$OUT/index.jsonl" -o "$OUT/sweeps.h5"

# 2. voxel-cache, one core
best=""
for r in $(seq "$REPS"); do
    TIMEFORMAT='%R %U %S'
    { time "${PIN[@]}" "$BIN/voxel-cache" -j 1 --sweeps "$SWEEPS" "$OUT/sweeps.h5" \
          -o "$OUT/voxels.h5" 2>"$OUT/voxel-cache.log"; } 2>"$OUT/time.txt"
    read -r wall user sys <"$OUT/time.txt"
    echo "voxel-speed: voxel-cache run $r: ${wall}s wall, ${user}s user, ${sys}s sys" >&2
    if [ -z "$best" ] || awk "BEGIN{exit !($wall < ${best%% *})}"; then
        best="$wall $user $sys"
    fi
done
read -r wall user sys <<<"$best"
summary=$(cat "$OUT/voxel-cache.log")
points=$(sed -n 's/.*points: \([0-9]*\) merged.*/\1/p' <<<"$summary")
voxels=$(sed -n 's/.* samples, \([0-9]*\) voxels.*/\1/p' <<<"$summary")
samples=$(sed -n 's/^voxel-cache: \([0-9]*\) samples.*/\1/p' <<<"$summary")
[ -n "$points" ] || die "cannot read the point count from: $summary"
size=$(stat -c %s "$OUT/voxels.h5")

# 3. numpy, same cache, same CPU; checks its voxels against ours
np_out=$("$PY" bench/voxelize_numpy.py --sweeps "$SWEEPS" --cpu "$CPU" \
         --check "$OUT/voxels.h5" --out "$OUT/voxels-numpy.raw" "$OUT/sweeps.h5") ||
    die "numpy peer failed or disagrees with the voxel cache: $np_out"
grep -q '^CHECK ok' <<<"$np_out" || die "numpy check failed: $np_out"
np_line=$(grep '^RESULT' <<<"$np_out")
np_points=$(sed -n 's/.* points=\([0-9]*\) .*/\1/p' <<<"$np_line")
np_s=$(sed -n 's/.* seconds=\([0-9.]*\) .*/\1/p' <<<"$np_line")
[ "$np_points" = "$points" ] || die "numpy merged $np_points points, voxel-cache $points"
rm -f "$OUT/voxels-numpy.raw"

SP=${PYTHON_SPCONV:-}
if [ -z "$SP" ]; then
    for cand in "$PY" .venv/bin/python; do
        if [ -x "$(command -v "$cand")" ] && "$cand" -c 'import spconv.pytorch' 2>/dev/null; then
            SP=$cand; break
        fi
    done
fi
sp_row="| spconv \`PointToVoxel\` (CPU) | not installed (\`pip install spconv\`) | | | |"
sp_note=""
if [ -n "$SP" ]; then
    sp_out=$("$SP" bench/voxelize_numpy.py --voxelizer spconv --sweeps "$SWEEPS" --cpu "$CPU" \
             --check "$OUT/voxels.h5" --out "$OUT/voxels-spconv.raw" "$OUT/sweeps.h5") ||
        die "spconv peer failed: $sp_out"
    rm -f "$OUT/voxels-spconv.raw"
    sp_line=$(grep '^RESULT' <<<"$sp_out")
    sp_s=$(sed -n 's/.* seconds=\([0-9.]*\) .*/\1/p' <<<"$sp_line")
    sp_rate=$(awk "BEGIN{printf \"%.2f\", $points / $sp_s / 1e6}")
    sp_ratio=$(awk "BEGIN{printf \"%.1f\", $sp_s / $wall}")
    sp_row="| spconv \`PointToVoxel\` (CPU; numpy merge, filter, write) | $sp_s | $sp_rate | | 1/${sp_ratio} of ours |"
    sp_note="spconv stages (s): $(sed 's/.*points_per_s=[0-9]* //' <<<"$sp_line"); $(grep '^CHECK' <<<"$sp_out" | sed 's/CHECK spconv //')."
fi

ours=$(awk "BEGIN{printf \"%.1f\", $points / $wall / 1e6}")
ours_cpu=$(awk "BEGIN{printf \"%.1f\", $points / ($user + $sys) / 1e6}")
theirs=$(awk "BEGIN{printf \"%.2f\", $points / $np_s / 1e6}")
ratio=$(awk "BEGIN{printf \"%.1f\", ($points / $wall) / ($points / $np_s)}")
cpu_model=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)

cat <<EOF
## voxel-cache vs numpy (sweep cache -> voxel cache, $SWEEPS sweeps, one core)

Data: $what: $samples samples, $points merged points, $voxels voxels
($((size / 1000000)) MB voxel cache). Machine: ${cpu_model:-unknown CPU}, $(nproc) CPUs,
everything pinned to CPU $CPU, page cache warm; voxel-cache best of $REPS runs.

| implementation | seconds | M points/s per core | M points per CPU second | vs numpy |
| --- | ---: | ---: | ---: | ---: |
| \`voxel-cache -j 1\` (C) | $wall | $ours | $ours_cpu (user $user s + sys $sys s) | ${ratio}x |
| numpy (\`bench/voxelize_numpy.py\`) | $np_s | $theirs | | 1x |
$sp_row

voxel-cache stages, $(grep 'thread seconds' <<<"$summary" | sed 's/^voxel-cache: thread //').
numpy stages (s): $(sed 's/.*points_per_s=[0-9]* //' <<<"$np_line"). Its voxels equal the
cache's bit for bit (CHECK ok). $sp_note
Target: >= 50 M points/s per core.
Commands: \`taskset -c $CPU bin/voxel-cache -j 1 --sweeps $SWEEPS sweeps.h5 -o voxels.h5\`;
\`$PY bench/voxelize_numpy.py --sweeps $SWEEPS --cpu $CPU --check voxels.h5 sweeps.h5\`.
EOF

if [ "${BENCH_STRICT:-0}" = 1 ] && awk "BEGIN{exit !($points / $wall < $TARGET)}"; then
    echo "voxel-speed: below the target of 50 M points/s per core" >&2
    exit 1
fi
exit 0
