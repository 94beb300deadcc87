#!/bin/bash
# The Primer's single-module benchmark (lab README, "The Primer's single-module benchmark"):
# every range K and operation OP into runs/primer-OP-rangeK, resumable (`--resume`), then the
# four results of each finished range pooled into primer-rangeK.csv (header once).
#   usage, from lab/:  results/primer.sh BINARY [RANGE...]   (default: ranges 0 to 8)
# BINARY: a release build of the static_toy example (cargo build --release --example static_toy).
set -euo pipefail
cd "$(dirname "$0")"
bin=$1
shift
models() {
  case $1 in
    add | sub) echo "--model nac-single --model nalu-single --model gnalu-single --model nau-single --model inalu-single --model hill-add --model dmu-single" ;;
    mul) echo "--model nac-mul-single --model nalu-single --model gnalu-single --model nmu-single --model snmu --model npu-single --model realnpu-single --model inalu-single --model hill-mul --model dmu-single" ;;
    div) echo "--model nac-mul-single --model nalu-single --model gnalu-single --model nru --model nmru --model npu-single --model realnpu-single --model realnpu-mod --model inalu-single --model hill-mul --model dmu-single" ;;
  esac
}
ranges=("$@")
[ ${#ranges[@]} -gt 0 ] || ranges=(0 1 2 3 4 5 6 7 8)
for k in "${ranges[@]}"; do
  for op in add sub mul div; do
    start=$SECONDS
    # shellcheck disable=SC2046
    RAYON_NUM_THREADS=1 "$bin" --protocol mistry --inputs 2 --range "$k" $(models $op) --task $op \
      --seeds 25 --jobs 1 --out "runs/primer-$op-range$k" --resume --quiet > /dev/null
    echo "range $k $op: $((SECONDS - start)) s"
  done
  head -1 "runs/primer-add-range$k/results.csv" > "primer-range$k.csv"
  for op in add sub mul div; do tail -n +2 "runs/primer-$op-range$k/results.csv" >> "primer-range$k.csv"; done
done
