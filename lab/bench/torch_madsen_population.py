"""PyTorch timing of Madsen & Johansen's NAU -> NMU training step for S = 100 seeds as one model.

Each seed is burn-nalu's `nau-nmu` stack on Madsen & Johansen's static multiplication task with
their recipe (TrainConfig::madsen): Nau(100->2) then Nmu(2->1), their initialisation (NAU uniform
in +-min(0.5, sqrt(6 / (d_in + d_out))), NMU uniform in [0.25, 0.75]), Adam (lr 1e-3, betas 0.9
and 0.999, eps 1e-8: PyTorch's), batch 128, a fresh batch every step: x ~ U[1, 2) of shape
[128, 100] and the target a * b, a and b the sums of two contiguous subsets of 25 inputs sharing
12 (fixed per seed, at a seeded start, as src/experiments/madsen.rs draws them). The loss is the
sum over seeds of each seed's mean squared error, so no gradient mixes seeds; after each
optimizer step the NAU weights are clamped to [-1, 1] and the NMU weights to [0, 1]. The sparsity
regulariser is left out: the recipe's weight for it is 0 until step 1,000,000 (then ramped up to
lambda = 10 at step 2,000,000), and burn-nalu's training step skips it while its weight is 0.
This is the step burn-nalu's examples/timing.rs --madsen times, written the PyTorch way:

  weights stacked as [S, d_out, d_in] (nn.Linear's layout), torch.bmm on the batch drawn
  feature-major ([S, d_in, batch]: w @ x runs faster in MKL's batched GEMM than x @ w with only
  two output columns), torch.optim.Adam(foreach=True), the clamps in place;

eager and under torch.compile (targets, forward and backward compiled as one function, the
optimizer step and the clamps as another; the compile time is reported, not timed; --no-compile
skips it), each at 1 and 2 threads (torch.set_num_threads). The batch is drawn with torch.rand
inside every step, so its cost is part of the step, as burn-nalu's draw is of its step; under
torch.compile the draw stays eager, because inductor's CPU code for torch.rand runs about 3x
slower than eager's (--draw-in-graph compiles it too, to see that: the step then takes ~3x as
long).

  bench/torch_madsen_population.py [--quick] [--check] [--threads N] [--no-compile]
                                   [--draw-in-graph]

Prints one JSON line; step times are seconds per step of the whole population, madsen_draw_Nt_s
the time of its draw alone; peak_rss_bytes is the whole process's (all variants), base_rss_bytes
the process after importing torch. `--quick` runs few iterations (a smoke test); `--check` only
checks, in float64, that seed k of the population trains exactly as a single model of seed k's
weights and batches, eager and compiled (some weights started on the clamps' bounds, so that the
clamps act). `--threads N` times N threads only (and adds "threads" to the JSON, for a run
pinned with taskset, as compare.sh does); the default is 1 then 2 in one process. On a loaded
machine the 2-thread times suffer from OpenMP's spin-waiting (OMP_WAIT_POLICY=PASSIVE avoids
that); run it on a quiet one.
"""
import json
import math
import resource
import sys
import time

import torch

from blocks import median_seconds

S, BATCH, D_IN, HIDDEN = 100, 128, 100, 2
SIZE, OVERLAP = 25, 12  # Madsen & Johansen's subsets: 25% of the inputs, half of them shared


def adam(params):
    # PyTorch's defaults, which Madsen & Johansen's code and TrainConfig::madsen use.
    return torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, foreach=True)


class PopNau(torch.nn.Module):
    """S independent Nau(d_in -> d_out): z = W x on feature-major x, [S, d_in, batch]."""

    def __init__(self, s, d_in, d_out):
        super().__init__()
        r = min(0.5, math.sqrt(3.0) * math.sqrt(2.0 / (d_in + d_out)))
        self.weight = torch.nn.Parameter(torch.empty(s, d_out, d_in).uniform_(-r, r))

    def forward(self, xt):
        return torch.bmm(self.weight, xt)

    def clamp_(self):
        self.weight.clamp_(-1.0, 1.0)


class PopNmu(torch.nn.Module):
    """S independent Nmu(d_in -> d_out): z_j = prod_i (W_ji x_i + 1 - W_ji), x [S, d_in, batch]."""

    def __init__(self, s, d_in, d_out):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.empty(s, d_out, d_in).uniform_(0.25, 0.75))

    def forward(self, xt):
        w = self.weight.unsqueeze(-1)  # [S, d_out, d_in, 1]
        return (w * xt.unsqueeze(1) + (1 - w)).prod(dim=2)  # [S, d_out, batch]

    def clamp_(self):
        self.weight.clamp_(0.0, 1.0)


def subset_masks(s):
    """[s, 2, D_IN]: row 0 selects a's inputs, row 1 b's, per seed.

    As madsen::overlapping_subsets: a = x[start : start + 25], b = x[start + 13 : start + 38], the
    start uniform in [0, 62] per seed (drawn here by torch, not by burn-nalu's StdRng: which
    columns they are does not change the time).
    """
    starts = torch.randint(0, D_IN - (2 * SIZE - OVERLAP) + 1, (s,),
                           generator=torch.Generator().manual_seed(2))
    masks = torch.zeros(s, 2, D_IN)
    for k, start in enumerate(starts.tolist()):
        masks[k, 0, start:start + SIZE] = 1
        masks[k, 1, start + SIZE - OVERLAP:start + 2 * SIZE - OVERLAP] = 1
    return masks


def per_seed_loss(pred, yt):
    return ((pred - yt) ** 2).mean(dim=(1, 2))


def trainer(s, compiled=False, record=None, draw_in_graph=False):
    """(model, masks, step) of a population of s seeds; `record`, a list, collects each batch.

    Compiled, the targets, forward and backward are one compiled function and the optimizer step
    with the clamps another; the draw stays eager unless `draw_in_graph`, because inductor's CPU
    code for torch.rand (a Philox draw per element) runs about 3x slower than eager's.
    """
    torch.manual_seed(0)
    model = torch.nn.Sequential(PopNau(s, D_IN, HIDDEN), PopNmu(s, HIDDEN, 1))
    opt = adam(model.parameters())
    masks = subset_masks(s)

    def draw():
        # The fresh batch, feature-major: x ~ U[1, 2), [S, d_in, batch].
        xt = torch.rand(s, D_IN, BATCH).add_(1.0)
        if record is not None:
            record.append(xt)
        return xt

    def loss_fn(xt):
        sums = torch.bmm(masks, xt)  # [S, 2, batch]: a and b of the seed's subsets
        yt = sums[:, :1] * sums[:, 1:]
        return per_seed_loss(model(xt), yt).sum()

    def forward():
        return loss_fn(draw())

    def update():
        opt.step()
        with torch.no_grad():
            for layer in model:
                layer.clamp_()

    if compiled:
        update = torch.compile(update)
        if draw_in_graph:
            forward = torch.compile(forward)
        else:
            compiled_loss = torch.compile(loss_fn)

            def forward():
                return compiled_loss(draw())

    def step():
        opt.zero_grad(set_to_none=True)
        loss = forward()
        loss.backward()
        update()
        return loss

    return model, masks, step


def single_run(w1, w2, masks, batches):
    """Trains one seed alone, row-major as burn-nalu's Nau and Nmu (x [batch, d_in] @ W [d_in,
    d_out]): its weights and the number of weights the clamps caught."""
    w1, w2 = torch.nn.Parameter(w1.clone()), torch.nn.Parameter(w2.clone())
    opt, clamped = adam([w1, w2]), 0
    for x in batches:
        ab = x @ masks.T
        y = ab[:, :1] * ab[:, 1:]
        z = ((x @ w1).unsqueeze(-1) * w2 + (1 - w2)).prod(dim=1)
        opt.zero_grad(set_to_none=True)
        torch.mean((z - y) ** 2).backward()
        opt.step()
        with torch.no_grad():
            clamped += int((w1.abs() > 1).sum() + ((w2 < 0) | (w2 > 1)).sum())
            w1.clamp_(-1.0, 1.0)
            w2.clamp_(0.0, 1.0)
    return w1, w2, clamped


def check(steps=5, seeds=(0, 37, 99)):
    """Seed k of the population (eager, and compiled unless --no-compile) against a single model
    of seed k's weights and batches, in float64."""
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    worst, clamped = 0.0, 0
    for compiled in (False,) if "--no-compile" in sys.argv else (False, True):
        batches = []
        pop, masks, pop_step = trainer(S, compiled=compiled, record=batches)
        with torch.no_grad():
            # Weights on both bounds, so that the steps push some out and the clamps act: the
            # gradient of a NAU row has one sign (x > 0), so one of its two groups leaves [-1, 1].
            pop[0].weight[:, :, :5] = 1.0
            pop[0].weight[:, :, 5:10] = -1.0
            pop[1].weight[:, 0, :] = torch.tensor([1.0, 0.0])
        initial = [p.detach().clone() for p in pop.parameters()]
        for _ in range(steps):
            pop_step()
        for k in seeds:
            w1, w2, caught = single_run(initial[0][k].T, initial[1][k].T, masks[k],
                                        [xt[k].T for xt in batches])
            clamped += caught
            for name, single, population in (("nau", w1, pop[0].weight[k].T),
                                              ("nmu", w2, pop[1].weight[k].T)):
                diff = (single - population).abs().max().item()
                worst = max(worst, diff)
                print(f"{'compiled' if compiled else 'eager'} seed {k} {name}: "
                      f"max |population - single| = {diff:.1e}", file=sys.stderr)
    torch.set_default_dtype(torch.float32)
    ok = worst < 1e-9 and clamped > 0
    print(json.dumps({"check": "ok" if ok else "FAILED", "steps": steps, "max_abs_diff": worst,
                      "clamped_weight_steps": clamped}))
    return ok


def main(quick, threads_list):
    per_block, warmup = (2, 2) if quick else (50, 20)
    result = {"framework": f"PyTorch {torch.__version__} Madsen population", "population": S,
              "batch": BATCH}
    if threads_list != (1, 2):
        result["threads"] = threads_list[0]
    result["base_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    for threads in threads_list:
        torch.set_num_threads(threads)
        _, _, step = trainer(S)
        result[f"madsen_eager_{threads}t_step_s"] = median_seconds(step, per_block, warmup)
        # The draw alone (part of each step above): torch.rand's share of the step.
        result[f"madsen_draw_{threads}t_s"] = median_seconds(
            lambda: torch.rand(S, D_IN, BATCH).add_(1.0), per_block, warmup)
    in_graph = "--draw-in-graph" in sys.argv
    if "--no-compile" in sys.argv:
        result["compile_note"] = "skipped (--no-compile)"
    else:
        result["compile_draw"] = "torch.rand compiled too" if in_graph else "torch.rand eager"
        try:
            for threads in threads_list:
                torch.set_num_threads(threads)
                torch._dynamo.reset()  # compiled kernels bake in the thread count
                _, _, step = trainer(S, compiled=True, draw_in_graph=in_graph)
                start = time.perf_counter()
                for _ in range(3):
                    step()
                result[f"madsen_compile_{threads}t_compile_s"] = time.perf_counter() - start
                result[f"madsen_compile_{threads}t_step_s"] = median_seconds(
                    step, per_block, warmup)
        except Exception as e:  # no C++ compiler, an inductor bug, ...
            result["compile_note"] = f"torch.compile failed: {type(e).__name__}: {e}"[:300]
    result["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(result))


if __name__ == "__main__":
    if "--check" in sys.argv:
        sys.exit(0 if check() else 1)
    only = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else None
    main("--quick" in sys.argv, (only,) if only else (1, 2))
