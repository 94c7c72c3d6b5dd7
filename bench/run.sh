#!/usr/bin/env bash
# Runs every benchmark this file knows about, one after the other, and prints
# their markdown tables (`make bench` calls it after building). Progress goes to
# stderr, tables to stdout. Bench scripts not present yet are skipped.
#
#   bench/run.sh            all of them
#   bench/run.sh NAME...    only these (e.g. index_vs_sdk)
#
# Exit status: 0 when every bench that ran succeeded, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

# name: what it compares
# (data-flow order: tables -> index -> sweep cache -> voxel cache)
BENCHES=(
    "synth-speed: lyft-synth, demo dataset and full-size --tables-only"
    "index_vs_sdk: bin/lyft-index vs the official Lyft SDK's LyftDataset load, full-size tables"
    "cache-speed: sweep-pack and sweep merging vs numpy / the SDK, real data"
    "voxel-speed: voxel-cache vs its numpy peer"
    "train-speed: ssn-train step time and memory vs the same SSN in PyTorch"
)

for f in bench/*.sh; do
    n=$(basename "$f" .sh)
    [ "$n" = run ] && continue
    [[ " ${BENCHES[*]%%:*} " == *" $n "* ]] ||
        echo "bench: note: $f is not listed in bench/run.sh, not run" >&2
done

want=("$@")
fail=0; ran=0
for entry in "${BENCHES[@]}"; do
    name=${entry%%:*}
    if [ ${#want[@]} -gt 0 ] && [[ " ${want[*]} " != *" $name "* ]]; then
        continue
    fi
    script=bench/$name.sh
    if [ ! -x "$script" ]; then
        echo "bench: skipped: $script not found" >&2
        continue
    fi
    echo "bench: $name -${entry#*:}" >&2
    ran=$((ran + 1))
    if ! "$script"; then
        echo "bench: $name FAILED" >&2
        fail=1
    fi
    echo
done
[ $ran -gt 0 ] || echo "bench: no benchmark ran" >&2
exit $fail
