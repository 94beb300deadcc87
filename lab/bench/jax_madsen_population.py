"""JAX timing of Madsen & Johansen's NAU -> NMU training step for S = 100 seeds as one program.

Each seed is burn-nalu's `nau-nmu` stack on Madsen & Johansen's static multiplication task with
their recipe (TrainConfig::madsen): Nau(100->2) then Nmu(2->1), their initialisation (NAU uniform
in +-min(0.5, sqrt(6 / (d_in + d_out))), NMU uniform in [0.25, 0.75]), Adam (optax.adam: lr 1e-3,
b1 0.9, b2 0.999, eps 1e-8 outside the square root: PyTorch's), batch 128, a fresh batch every
step: x ~ U[1, 2) of shape [128, 100] and the target a * b, a and b the sums of two contiguous
subsets of 25 inputs sharing 12 (fixed per seed, at a seeded start, as src/experiments/madsen.rs
draws them), MSE; after each optimizer step the NAU weights are clamped to [-1, 1] and the NMU
weights to [0, 1]. The sparsity regulariser is left out: the recipe's weight for it is 0 until
step 1,000,000 (then ramped up to lambda = 10 at step 2,000,000), and burn-nalu's training step
skips it while its weight is 0. This is the step burn-nalu's examples/timing.rs
--madsen times, written the idiomatic JAX way: the step of one seed
(params, opt_state, key, subsets) -> (params, opt_state, key, loss), which splits its key, draws
its batch with jax.random, takes the gradient, updates with optax and clamps, jax.vmap'd over a
leading seed axis and jax.jit'd whole, so the draw is part of every compiled step. Each timed step
ends in block_until_ready.

  bench/jax_madsen_population.py --threads N [--quick] [--check] [--rng IMPL]

--threads must be given on the command line because XLA reads its thread settings when JAX loads:
1 turns off Eigen's multi-threading and pins the process to one CPU; N pins it to N CPUs (compare.sh
also runs it under taskset). --rng picks jax.random's generator (threefry2x32, the default, or
rbg / unsafe_rbg, XLA's RngBitGenerator: no faster here). Prints one JSON line: seconds per step of
the whole population, the compile time (the first step, not timed) and madsen_draw_s, the time of
the population's draw alone (jit(vmap(jax.random.uniform)): most of the step on a CPU). --check
only checks, in float64, that seed k of the population trains exactly as a single run of seed k's
weights and key (some weights started on the clamps' bounds, so that the clamps act).
"""
import json
import os
import resource
import sys
import time

THREADS = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 1
RNG = sys.argv[sys.argv.index("--rng") + 1] if "--rng" in sys.argv else "threefry2x32"
if THREADS == 1:
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:THREADS])
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402  (after the environment is set)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from blocks import median_seconds  # noqa: E402

S, BATCH, D_IN, HIDDEN = 100, 128, 100, 2
SIZE, OVERLAP = 25, 12  # Madsen & Johansen's subsets: 25% of the inputs, half of them shared
OPT = optax.adam(1e-3, b1=0.9, b2=0.999, eps=1e-8)


def init_seed(key):
    k1, k2 = jax.random.split(key)
    r = min(0.5, (3.0 * 2.0 / (D_IN + HIDDEN)) ** 0.5)
    return {"nau": jax.random.uniform(k1, (D_IN, HIDDEN), minval=-r, maxval=r),
            "nmu": jax.random.uniform(k2, (HIDDEN, 1), minval=0.25, maxval=0.75)}


def subset_masks(s):
    """[s, D_IN, 2]: column 0 selects a's inputs, column 1 b's, per seed.

    As madsen::overlapping_subsets: a = x[start : start + 25], b = x[start + 13 : start + 38], the
    start uniform in [0, 62] per seed (drawn here by numpy, not by burn-nalu's StdRng: which
    columns they are does not change the time).
    """
    starts = np.random.default_rng(2).integers(0, D_IN - (2 * SIZE - OVERLAP) + 1, s)
    masks = np.zeros((s, D_IN, 2))
    for k, start in enumerate(starts):
        masks[k, start:start + SIZE, 0] = 1
        masks[k, start + SIZE - OVERLAP:start + 2 * SIZE - OVERLAP, 1] = 1
    return jnp.asarray(masks, dtype=jnp.result_type(float))


def forward(params, x):
    h = x @ params["nau"]  # NAU: [batch, hidden]
    w = params["nmu"]  # NMU: z_j = prod_i (W_ij h_i + 1 - W_ij)
    return jnp.prod(h[:, :, None] * w + (1 - w), axis=1)


def loss_fn(params, x, y):
    return jnp.mean((forward(params, x) - y) ** 2)


def draw(key, mask):
    """A fresh batch: x ~ U[1, 2), [batch, d_in]; y = a * b, [batch, 1]."""
    x = jax.random.uniform(key, (BATCH, D_IN), minval=1.0, maxval=2.0)
    ab = x @ mask
    return x, ab[:, :1] * ab[:, 1:]


def step(params, opt_state, key, mask):
    """One seed's training step, its batch drawn inside."""
    key, sub = jax.random.split(key)
    loss, grads = jax.value_and_grad(loss_fn)(params, *draw(sub, mask))
    updates, opt_state = OPT.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    params = {"nau": jnp.clip(params["nau"], -1.0, 1.0), "nmu": jnp.clip(params["nmu"], 0.0, 1.0)}
    return params, opt_state, key, loss


def population(s):
    params = jax.vmap(init_seed)(jax.random.split(jax.random.key(0), s))
    keys = jax.random.split(jax.random.key(1, impl=RNG), s)
    return params, jax.vmap(OPT.init)(params), keys, subset_masks(s)


pop_step = jax.jit(jax.vmap(step), donate_argnums=(0, 1, 2))


def check(steps=5, seeds=(0, 37, 99)):
    params, opt_state, keys, masks = population(S)
    # Weights on both bounds, so that the steps push some out and the clamps act: the gradient
    # of a NAU column has one sign (x > 0), so one of its two groups leaves [-1, 1].
    params["nau"] = params["nau"].at[:, :5, :].set(1.0).at[:, 5:10, :].set(-1.0)
    params["nmu"] = params["nmu"].at[:, :, 0].set(jnp.array([1.0, 0.0]))
    opt_state = jax.vmap(OPT.init)(params)
    initial = jax.tree.map(lambda a: a.copy(), (params, keys))
    for _ in range(steps):
        params, opt_state, keys, _ = pop_step(params, opt_state, keys, masks)
    single_step = jax.jit(step)
    worst, clamped = 0.0, 0
    for k in seeds:
        p, key = jax.tree.map(lambda a: a[k], initial)
        state = OPT.init(p)
        for _ in range(steps):
            unclamped = optax.apply_updates(p, OPT.update(
                jax.grad(loss_fn)(p, *draw(jax.random.split(key)[1], masks[k])), state, p)[0])
            clamped += int((jnp.abs(unclamped["nau"]) > 1).sum() +
                           ((unclamped["nmu"] < 0) | (unclamped["nmu"] > 1)).sum())
            p, state, key, _ = single_step(p, state, key, masks[k])
        for name in ("nau", "nmu"):
            diff = float(jnp.abs(p[name] - params[name][k]).max())
            worst = max(worst, diff)
            print(f"seed {k} {name}: max |population - single| = {diff:.1e}", file=sys.stderr)
    ok = worst < 1e-9 and clamped > 0
    print(json.dumps({"check": "ok" if ok else "FAILED", "steps": steps, "max_abs_diff": worst,
                      "clamped_weight_steps": clamped, "dtype": str(params["nau"].dtype)}))
    return ok


def main(quick):
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    params, opt_state, keys, masks = population(S)
    state = [params, opt_state, keys]

    def run():
        state[0], state[1], state[2], loss = pop_step(*state, masks)
        loss.block_until_ready()

    start = time.perf_counter()
    run()
    compile_s = time.perf_counter() - start
    blocks = (2, 2) if quick else (50, 20)
    seconds = median_seconds(run, *blocks)
    # The draw alone (part of each step above): jax.random's share of the step.
    uniform = jax.jit(jax.vmap(
        lambda key: jax.random.uniform(key, (BATCH, D_IN), minval=1.0, maxval=2.0)))
    draw_s = median_seconds(lambda: uniform(state[2]).block_until_ready(), *blocks)
    print(json.dumps({
        "framework": f"JAX {jax.__version__} jit(vmap) + optax, Madsen population",
        "population": S,
        "batch": BATCH,
        "threads": THREADS,
        "rng": RNG,
        "madsen_population_step_s": seconds,
        "madsen_population_compile_s": compile_s,
        "madsen_draw_s": draw_s,
        "base_rss_bytes": base_rss,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }))


if __name__ == "__main__":
    if "--check" in sys.argv:
        jax.config.update("jax_enable_x64", True)
        sys.exit(0 if check() else 1)
    main("--quick" in sys.argv)
