#!/usr/bin/env bash
# burn-nalu against PyTorch (eager) and Keras 3 on TensorFlow, on this machine, in one run;
# burn-nalu's population training (100 seeds as one model) against PyTorch (bmm, vmap) and JAX;
# and Madsen & Johansen's NAU -> NMU step for 100 seeds against PyTorch (eager, torch.compile)
# and JAX.
#
#   bench/compare.sh [--quick]
#
# Creates bench/.venv and installs torch, tensorflow-cpu, keras, jax and optax from the package index
# (several GB and some minutes the first time; not part of CI), builds this crate's timing
# binary (examples/timing.rs) with both CPU backends, runs every implementation and prints a
# table. The toy training step runs on 1 thread everywhere, the large case on 2; each number is
# the median over ten blocks of iterations (bench/blocks.py). Population steps run on 1 thread
# (burn-nalu, PyTorch, JAX) and on 2 (PyTorch, JAX); bench/peak_rss.py adds burn-nalu's peak RSS.
# The Madsen step runs on 1 thread and on 2 everywhere, one process per thread count (the
# peers pinned with taskset), into NAME-1t.json and NAME-2t.json, which table.py tells apart.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=${1:-}
venv=bench/.venv

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check torch tensorflow-cpu 'keras>=3' numpy \
  'jax[cpu]' optax

cargo build --release --quiet --features ndarray --example timing
timing=target/release/examples/timing
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

for backend in flex ndarray; do
  BURN_DEVICE=$backend RAYON_NUM_THREADS=1 "$timing" --toy $quick >"$out/burn-$backend-toy.json"
  BURN_DEVICE=$backend RAYON_NUM_THREADS=2 "$timing" --large $quick >"$out/burn-$backend-large.json"
done
BURN_DEVICE=flex RAYON_NUM_THREADS=1 "$venv/bin/python" bench/peak_rss.py "$timing" --population $quick \
  >"$out/burn-flex-population.json"
"$venv/bin/python" bench/torch_nalu.py $quick >"$out/torch.json"
BENCH_THREADS=1 "$venv/bin/python" bench/keras_nalu.py --toy $quick >"$out/keras-toy.json"
BENCH_THREADS=2 "$venv/bin/python" bench/keras_nalu.py --large $quick >"$out/keras-large.json"
"$venv/bin/python" bench/torch_population.py $quick >"$out/torch-population.json"
taskset -c 0 "$venv/bin/python" bench/jax_population.py --threads 1 $quick >"$out/jax-population-1t.json"
taskset -c 0,1 "$venv/bin/python" bench/jax_population.py --threads 2 $quick >"$out/jax-population-2t.json"
BURN_DEVICE=flex RAYON_NUM_THREADS=1 "$timing" --madsen $quick >"$out/burn-flex-madsen-1t.json"
BURN_DEVICE=flex RAYON_NUM_THREADS=2 "$timing" --madsen $quick >"$out/burn-flex-madsen-2t.json"
taskset -c 0 "$venv/bin/python" bench/torch_madsen_population.py --threads 1 $quick \
  >"$out/torch-madsen-1t.json"
taskset -c 0,1 "$venv/bin/python" bench/torch_madsen_population.py --threads 2 $quick \
  >"$out/torch-madsen-2t.json"
taskset -c 0 "$venv/bin/python" bench/jax_madsen_population.py --threads 1 $quick \
  >"$out/jax-madsen-1t.json"
taskset -c 0,1 "$venv/bin/python" bench/jax_madsen_population.py --threads 2 $quick \
  >"$out/jax-madsen-2t.json"

"$venv/bin/python" bench/table.py "$out"
