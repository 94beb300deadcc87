#!/bin/bash
# Mistry et al.'s own NMRU (nalm-division at 61fa973, `SignNMRU`) on range 4 of their division
# task, with `lfs_batch_jobs/single_layer_task/neurips_2021/sltr-in10.sh`'s arguments, one run per
# seed given. NALM_DIVISION: a checkout at 61fa973 whose `experiments/single_layer.py` prints
# its per-1000-step errors with `%.6e` (its own `%.5f` cannot show the 1e-5 threshold); PYTHON: a
# torch 1.13.1 environment with numpy < 2, pandas and tqdm (and stub modules for torchvision and
# tensorflow, which only its MNIST and TensorBoard-reading code import). Logs into OUT.
#   usage: NALM_DIVISION=… PYTHON=… OUT=… run-nmru-range4.sh SEED...
set -euo pipefail
cd "$NALM_DIVISION"
for seed in "$@"; do
  OMP_NUM_THREADS=1 PYTHONPATH=./ "$PYTHON" experiments/single_layer.py \
    --operation div --layer-type SignNMRU \
    --regualizer-scaling-start 50000 --regualizer-scaling-end 75000 \
    --interpolation-range '[-2,2]' --extrapolation-range '[[-6,-2],[2,6]]' \
    --seed "$seed" --max-iterations 100000 \
    --name-prefix sltr-in10/sign-nmru --remove-existing-data --no-cuda --no-save \
    --input-size 10 --subset-ratio 0.1 --overlap-ratio 0 --clip-grad-norm 1 --learning-rate 1e-2 \
    > "$OUT/range4-seed$seed.log" 2>&1
done
