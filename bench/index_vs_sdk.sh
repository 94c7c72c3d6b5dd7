#!/usr/bin/env bash
# bin/lyft-index vs the official Lyft SDK on full-size (v1.01-train sized) tables.
#
#   bench/index_vs_sdk.sh            (from anywhere; `make` first)
#
# 1. Tables: bench/make_tables.py, Lyft v1.01-train's sizes (22 680 samples, 189 504
#    sample_data of LIDAR_TOP, the other LiDARs and 7 cameras, 177 789 ego poses,
#    638 179 annotations; 626 MiB of JSON). Generated once into $BENCH_OUT/tables-python
#    and reused while the generator is the same; REGEN=1 forces a new set; TABLES=DIR
#    benchmarks an existing dataset; TABLES_GEN=synth uses bin/lyft-synth --tables-only
#    instead (its sample_data are LIDAR_TOP's only: 22 680, so its tables are smaller
#    than Lyft's where the SDK spends much of its time).
# 2. Runs, one after the other, each under /usr/bin/time -v with the table files
#    already in the page cache, each lyft-index run writing a new file (the last
#    run's output is removed first, untimed):
#      a. bin/lyft-index --missing-lidar keep -o $BENCH_OUT/index.jsonl TABLES
#      a'. a with a split of one scene: all tables read and linked, one scene written
#      b. LyftDataset(data_path, json_path, verbose=True)  (bench/sdk_load.py)
#      c. the same load followed by MMDetection3D's converter computation of sweeps
#         and boxes (bench/sdk_load.py --convert), i.e. the work lyft-index does.
#         SDK_CONVERT=0 leaves it out (it takes ~1.5 min).
#    a, a' and b run RUNS times (default 3; best wall time, largest peak RSS), c once.
# 3. Prints a markdown table: wall s, peak RSS MB, SDK/ours ratios, and the machine;
#    then the parser's floor (build/bench/parse_floor, from `make bench` or `make check`).
#
# Environment: BENCH_OUT (default bench/out/index_vs_sdk), TABLES, TABLES_GEN, REGEN, SDK_CONVERT, RUNS,
# LIDAR3D_BIN (default bin/), LIDAR3D_VENV (the SDK's venv, default .venv/, created
# on first use from tests/ref/requirements.txt).
# Exit status: 0, or 2 on errors; with BENCH_STRICT=1 also 1 when a target
# (>= 20x faster, <= 1/5 of the memory, both against b) is not met.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
BIN=${LIDAR3D_BIN:-$REPO/bin}
OUT=${BENCH_OUT:-bench/out/index_vs_sdk}
SDK_CONVERT=${SDK_CONVERT:-1}
RUNS=${RUNS:-3}
TARGET_SPEED=20
TARGET_MEM=5

die() { echo "index_vs_sdk: $*" >&2; exit 2; }
[ -x "$BIN/lyft-index" ] || die "$BIN/lyft-index not found: run 'make' first"
[ -x /usr/bin/time ] || die "/usr/bin/time not found (Debian package 'time')"
mkdir -p "$OUT"

# ---- 1. tables ------------------------------------------------------------------
if [ -n "${TABLES:-}" ]; then
    gen="given: $TABLES"
else
    have_synth=0
    if [ -x "$BIN/lyft-synth" ] && "$BIN/lyft-synth" --help 2>&1 | grep -q -- --tables-only; then
        have_synth=1
    fi
    case ${TABLES_GEN:-python} in
    synth) [ $have_synth = 1 ] || die "TABLES_GEN=synth but $BIN/lyft-synth --tables-only is not there" ;;
    python) have_synth=0 ;;
    *) die "TABLES_GEN must be python or synth" ;;
    esac
    if [ $have_synth = 1 ]; then
        gen="$BIN/lyft-synth --tables-only"
        TABLES=$OUT/tables-synth
    else
        gen="python3 bench/make_tables.py (sha1 $(sha1sum bench/make_tables.py | cut -c1-12))"
        TABLES=$OUT/tables-python
    fi
    if [ "${REGEN:-0}" = 1 ] || [ ! -f "$TABLES/.generated-by" ] ||
       [ "$(cat "$TABLES/.generated-by")" != "$gen" ]; then
        rm -rf "$TABLES"
        echo "index_vs_sdk: generating tables with $gen" >&2
        case $gen in
        python3*) python3 bench/make_tables.py "$TABLES" ;;
        *) "$BIN/lyft-synth" --tables-only "$TABLES" >&2 ;;
        esac
        printf '%s\n' "$gen" > "$TABLES/.generated-by"
    fi
fi
[ -d "$TABLES" ] || die "no tables at $TABLES"
table_dir=$(dirname "$(find -L "$TABLES" -maxdepth 4 -name sample.json -print -quit)")
if [ -z "$table_dir" ] || [ "$table_dir" = . ]; then die "no sample.json under $TABLES"; fi
table_mb=$(du -cmL "$table_dir"/*.json | tail -1 | cut -f1)

PY=$(python3 tests/ref/_venv.py) || die "could not prepare the SDK's virtual environment"

warm() { cat "$table_dir"/*.json > /dev/null; }

# run NAME CMD...: $RUNS runs, each into $OUT/NAME.I.time (/usr/bin/time -v)
run() {
    local name=$1 i; shift
    for i in $(seq 1 "$RUNS"); do
        warm
        # Each run writes a new file, as a first run does: replacing the last run's
        # 250 MB index would make the kernel drop its cached pages inside our rename.
        rm -f "$OUT/$name.jsonl"
        echo "index_vs_sdk: $name ($i/$RUNS): $*" >&2
        if ! /usr/bin/time -v -o "$OUT/$name.$i.time" "$@" > "$OUT/$name.log" 2>&1; then
            cat "$OUT/$name.log" >&2
            die "$name failed (log: $OUT/$name.log)"
        fi
    done
}
# best wall seconds and largest peak RSS (MB) over the runs of NAME
wall() { cat "$OUT/$1".*.time | awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, t, ":");
         s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; if (best == "" || s < best) best = s }
         END { printf "%.2f", best }'; }
rss()  { cat "$OUT/$1".*.time | awk -F': ' '/Maximum resident set size/ { if ($2 > m) m = $2 }
         END { printf "%.0f", m / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
rm -f "$OUT"/*.time
run index "$BIN/lyft-index" --missing-lidar keep -o "$OUT/index.jsonl" "$TABLES"
# The same with a split of one scene: every table is still read and linked, but only
# that scene's lines are written, which is the work closest to the SDK's load.
python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[0]["name"])' \
    "$table_dir/scene.json" > "$OUT/one_scene.txt" || die "cannot read $table_dir/scene.json"
run index_one "$BIN/lyft-index" --split val --split-file "$OUT/one_scene.txt" \
    --missing-lidar keep -o "$OUT/index_one.jsonl" "$TABLES"
run sdk "$PY" bench/sdk_load.py "$TABLES"
[ "$SDK_CONVERT" = 1 ] && RUNS=1 run sdk_convert "$PY" bench/sdk_load.py --convert "$TABLES"

# ---- 3. report ----------------------------------------------------------------
iw=$(wall index); ir=$(rss index); sw=$(wall sdk); sr=$(rss sdk)
ow=$(wall index_one); orss=$(rss index_one)
summary=$(grep '^lyft-index:' "$OUT/index.log" | tail -1 | sed 's/^lyft-index: //')
sdkline=$(grep '^sdk_load: LyftDataset' "$OUT/sdk.log" | sed 's/^sdk_load: //; s/, table dir.*//')
model=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
fam=$(lscpu | sed -n 's/^CPU family: *//p' | head -1)
mod=$(lscpu | sed -n 's/^Model: *//p' | head -1)

echo
echo "### lyft-index vs lyft_dataset_sdk (bench/index_vs_sdk.sh)"
echo
echo "Tables: $table_dir ($table_mb MiB of JSON; $gen). lyft-index: $summary."
echo "SDK: $("$PY" -c 'import importlib.metadata as m; print("lyft-dataset-sdk", m.version("lyft-dataset-sdk"))'), $sdkline (in-process)."
echo "Machine: $model (family $fam, model $mod), $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB; load average before the runs $load_before; $(date -u +%Y-%m-%d)."
echo
echo "Wall: best of $RUNS runs$([ "$SDK_CONVERT" = 1 ] && echo ' (the converter row: one run)'); page cache warm."
echo
echo "| tool | wall s | peak RSS MB | wall SDK/ours | RSS SDK/ours |"
echo "| --- | ---: | ---: | ---: | ---: |"
echo "| bin/lyft-index (tables -> index.jsonl: sweeps, boxes) | $iw | $ir | 1.0 | 1.0 |"
echo "| bin/lyft-index, a split of one scene (all tables read and linked; 1 scene written) | $ow | $orss | $(ratio "$sw" "$ow") | $(ratio "$sr" "$orss") |"
echo "| LyftDataset(data_path, json_path, verbose=True) (load only) | $sw | $sr | $(ratio "$sw" "$iw") | $(ratio "$sr" "$ir") |"
if [ "$SDK_CONVERT" = 1 ]; then
    cw=$(wall sdk_convert); cr=$(rss sdk_convert)
    echo "| LyftDataset + MMDetection3D converter maths (same work as ours) | $cw | $cr | $(ratio "$cw" "$iw") | $(ratio "$cr" "$ir") |"
fi
echo
ok_speed=$(awk -v a="$sw" -v b="$iw" -v t=$TARGET_SPEED 'BEGIN { print (a / b >= t) ? "met" : "NOT met" }')
ok_mem=$(awk -v a="$sr" -v b="$ir" -v t=$TARGET_MEM 'BEGIN { print (a / b >= t) ? "met" : "NOT met" }')
echo "Targets against the SDK load (the full index, first row): >= ${TARGET_SPEED}x faster: $ok_speed; <= 1/${TARGET_MEM} of its memory: $ok_mem."
# The parser's own floor: simdjson walking every table once, one thread, nothing kept
# (bench/parse_floor.cc; best of 3). No change to formats/ can read the tables for less.
FLOOR=${LIDAR3D_BUILD:-$REPO/build}/bench/parse_floor
if [ -x "$FLOOR" ]; then
    floor=$(for i in 1 2 3; do "$FLOOR" "$table_dir"/*.json | sed -n 's/^all: \([0-9.]*\) s CPU$/\1/p'; done | sort -n | head -1)
    echo
    echo "Parser floor (bench/parse_floor.cc): simdjson's on-demand walk of every table, nothing kept: $floor s of CPU, $(awk -v f="$floor" -v n="$(nproc)" 'BEGIN { printf "%.2f", f / n }') s on $(nproc) cores at best."
fi
if [ "${BENCH_STRICT:-0}" = 1 ] && { [ "$ok_speed" != met ] || [ "$ok_mem" != met ]; }; then
    exit 1
fi
exit 0
