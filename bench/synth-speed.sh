#!/bin/sh
# Times lyft-synth: the default demo dataset (4 scenes x 126 samples x ~100k
# points, all CPUs, then one thread) and the full-size --tables-only tables
# (180 scenes, ~650k annotations). Prints wall time and points/s.
#   bench/synth-speed.sh [EXTRA lyft-synth OPTIONS]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bin=${LIDAR3D_BIN:-$here/../bin}
work=$(mktemp -d "${TMPDIR:-/tmp}/synth-speed.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

now() { date +%s.%N; }

run() {   # run LABEL OPTIONS...
    label=$1
    shift
    rm -rf "$work/ds"
    t0=$(now)
    "$bin/lyft-synth" "$@" "$work/ds" 2>"$work/log"
    t1=$(now)
    size=$(du -sm "$work/ds" | cut -f1)
    summary=$(head -1 "$work/log" | sed 's/^lyft-synth: wrote [^:]*: //')
    printf '%-28s %6.1f s wall, %5d MB: %s\n' "$label" "$(echo "$t1 - $t0" | bc -l)" "$size" \
        "$summary"
}

echo "machine: $(nproc) CPUs, $(uname -m); lyft-synth $("$bin/lyft-synth" --version | cut -d' ' -f2)"
run "demo, $(nproc) threads" "$@"
run "demo, 1 thread" --threads 1 "$@"
run "tables only, full size" --tables-only "$@"
