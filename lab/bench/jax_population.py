"""JAX timing of population training: S = 100 seeds of the static toy trained as one program.

The idiomatic JAX way to train many independent seeds: write the step for one seed
(params, opt_state, x, y) -> (params, opt_state, loss), jax.vmap it over a leading seed axis and
jax.jit the whole update, optimizer included (optax.rmsprop: lr 1e-4, decay 0.9, eps 1e-7 outside
the square root, no momentum: Keras's RMSProp, as in bench/torch_nalu.py). Each seed is the toy of
bench/torch_nalu.py (Nalu(100->2), Nalu(2->1), Xavier-uniform, batch 64, MSE) with its own weights,
optimizer state and batch: the step burn-nalu's population case (examples/timing.rs --population)
times. Data is made once, outside the timing; each timed step ends in block_until_ready.

  bench/jax_population.py --threads N [--quick] [--check]

--threads must be given on the command line because XLA reads its thread settings when JAX loads:
1 turns off Eigen's multi-threading and pins the process to one CPU; N pins it to N CPUs (compare.sh
also runs it under taskset). Prints one JSON line. --check only checks that seed k of the
population trains exactly as a single run of seed k's weights and batch.
"""
import json
import os
import resource
import sys

THREADS = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 1
if THREADS == 1:
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:THREADS])
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402  (after the environment is set)
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

from blocks import median_seconds  # noqa: E402

S, BATCH, D_IN, EPS = 100, 64, 100, 1e-7
OPT = optax.rmsprop(1e-4, decay=0.9, eps=1e-7, eps_in_sqrt=False)


def init_nalu(key, d_in, d_out):
    xavier = jax.nn.initializers.glorot_uniform()
    return dict(zip(("w_hat", "m_hat", "gate"),
                    (xavier(k, (d_in, d_out)) for k in jax.random.split(key, 3))))


def init_seed(key):
    k1, k2 = jax.random.split(key)
    return [init_nalu(k1, D_IN, 2), init_nalu(k2, 2, 1)]


def nalu(p, x):
    w = jnp.tanh(p["w_hat"]) * jax.nn.sigmoid(p["m_hat"])
    a = x @ w
    m = jnp.exp(jnp.log(jnp.abs(x) + EPS) @ w)
    g = jax.nn.sigmoid(x @ p["gate"])
    return g * a + (1 - g) * m


def loss_fn(params, x, y):
    for p in params:
        x = nalu(p, x)
    return jnp.mean((x - y) ** 2)


def step(params, opt_state, x, y):
    """One seed's training step."""
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
    updates, opt_state = OPT.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss


def population(s):
    params = jax.vmap(init_seed)(jax.random.split(jax.random.key(0), s))
    opt_state = jax.vmap(OPT.init)(params)
    x = jax.random.uniform(jax.random.key(1), (s, BATCH, D_IN))
    return params, opt_state, x, x.sum(axis=2, keepdims=True)


pop_step = jax.jit(jax.vmap(step), donate_argnums=(0, 1))


def check(steps=3, seeds=(0, 37, 99)):
    params, opt_state, x, y = population(S)
    initial = jax.tree.map(lambda a: a.copy(), params)
    for _ in range(steps):
        params, opt_state, _ = pop_step(params, opt_state, x, y)
    pop_losses = jax.vmap(loss_fn)(params, x, y)
    single_step = jax.jit(step)
    worst = 0.0
    for k in seeds:
        p = jax.tree.map(lambda a: a[k], initial)
        state = OPT.init(p)
        for _ in range(steps):
            p, state, _ = single_step(p, state, x[k], y[k])
        want, got = float(loss_fn(p, x[k], y[k])), float(pop_losses[k])
        rel = abs(got - want) / abs(want)
        worst = max(worst, rel)
        print(f"seed {k}: population {got:.7g} vs single {want:.7g} (rel {rel:.1e})", file=sys.stderr)
    print(json.dumps({"check": "ok" if worst < 1e-5 else "FAILED", "max_rel_diff": worst}))
    return worst < 1e-5


def main(quick):
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    params, opt_state, x, y = population(S)
    state = [params, opt_state]

    def run():
        state[0], state[1], loss = pop_step(state[0], state[1], x, y)
        loss.block_until_ready()

    seconds = median_seconds(run, *((2, 2) if quick else (100, 50)))
    print(json.dumps({
        "framework": f"JAX {jax.__version__} jit(vmap) + optax",
        "population": S,
        "threads": THREADS,
        "population_step_s": seconds,
        "base_rss_bytes": base_rss,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }))


if __name__ == "__main__":
    if "--check" in sys.argv:
        sys.exit(0 if check() else 1)
    main("--quick" in sys.argv)
