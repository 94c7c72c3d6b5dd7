#!/usr/bin/env bash
# Prints a training run's loss curve (every 10th step) as a markdown table and
# checks that it fell: mean loss of the last 10 logged steps <= FACTOR x the
# first 10's. Usage: bench/learn-curve.sh RUN/metrics.jsonl [FACTOR]
set -euo pipefail
metrics=$1 factor=${2:-0.6}
awk -v factor="$factor" '
  { match($0, /"step":[0-9]+/); step = substr($0, RSTART + 7, RLENGTH - 7) + 0
    match($0, /"loss":[-0-9.e+]+/); loss = substr($0, RSTART + 7, RLENGTH - 7) + 0
    match($0, /"loss_cls":[-0-9.e+]+/); cls = substr($0, RSTART + 11, RLENGTH - 11) + 0
    match($0, /"loss_bbox":[-0-9.e+]+/); box = substr($0, RSTART + 12, RLENGTH - 12) + 0
    n++; L[n] = loss; S[n] = step; C[n] = cls; B[n] = box }
  END {
    if (n < 20) { print "learn-curve: need at least 20 logged steps, got " n > "/dev/stderr"; exit 2 }
    print "| step | loss | cls | bbox |"; print "| ---: | ---: | ---: | ---: |"
    for (i = 1; i <= n; i++) if (i == 1 || S[i] % 10 == 0) printf "| %d | %.4f | %.4f | %.4f |\n", S[i], L[i], C[i], B[i]
    for (i = 1; i <= 10; i++) { a += L[i]; b += L[n - 10 + i] }
    a /= 10; b /= 10
    printf "\nmean loss, first 10 steps %.4f, last 10 steps %.4f: fell %.2fx\n", a, b, a / b
    if (b > factor * a) { printf "learn-check: FAILED (needs last <= %.2f x first)\n", factor; exit 1 }
    print "learn-check: passed"
  }' "$metrics"
