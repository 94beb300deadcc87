#!/bin/bash
# The DMU under its authors' benchmark protocol (operands frozen to the target's pattern, only the
# gate learned; lab README, "The Primer's single-module benchmark"): every range K into
# runs/primer-dmu-frozen-OP-rangeK (resumable), pooled into primer-dmu-frozen-rangeK.csv.
#   usage, from lab/:  results/primer-dmu-frozen.sh BINARY [RANGE...]   (default: ranges 0 to 8)
set -euo pipefail
cd "$(dirname "$0")"
bin=$1
shift
ranges=("$@")
[ ${#ranges[@]} -gt 0 ] || ranges=(0 1 2 3 4 5 6 7 8)
for k in "${ranges[@]}"; do
  for cell in "add dmu-frozen-sum" "mul dmu-frozen-sum" "sub dmu-frozen-diff" "div dmu-frozen-diff"; do
    read -r op model <<< "$cell"
    start=$SECONDS
    RAYON_NUM_THREADS=1 "$bin" --protocol mistry --inputs 2 --range "$k" --model "$model" --task "$op" \
      --seeds 25 --jobs 1 --out "runs/primer-dmu-frozen-$op-range$k" --resume --quiet > /dev/null
    echo "range $k $op: $((SECONDS - start)) s"
  done
  head -1 "runs/primer-dmu-frozen-add-range$k/results.csv" > "primer-dmu-frozen-range$k.csv"
  for op in add mul sub div; do
    tail -n +2 "runs/primer-dmu-frozen-$op-range$k/results.csv" >> "primer-dmu-frozen-range$k.csv"
  done
done
