"""PyTorch timing of population training: S = 100 seeds of the static toy trained as one model.

Each seed is the toy of bench/torch_nalu.py (Nalu(100->2), Nalu(2->1), batch 64, MSE, RMSProp
lr 1e-4, rho 0.9, eps 1e-7, no momentum) with its own weights, optimizer state and batch. The
loss is the sum over seeds of each seed's mean squared error, so no gradient mixes seeds. This is
what burn-nalu's population step (examples/timing.rs --population) does, written the two ways
PyTorch offers for it:

  bmm:  weights stacked as [S, d_out, d_in], torch.bmm, torch.optim.RMSprop(foreach=True);
  vmap: torch.func.vmap(torch.func.grad(loss of functional_call)) over the stacked parameters,
        then the same torch.optim.RMSprop over them.

Each is timed at 1 and 2 threads (torch.set_num_threads), and the bmm step also under
torch.compile (forward+backward and optimizer step compiled; compile time is reported, not timed;
--no-compile skips it). Data is made once, outside the timing. Prints one JSON line; step times
are seconds per step of the whole population; peak_rss_bytes is the whole process's (all variants),
base_rss_bytes the process after importing torch. `--quick` runs few iterations (a smoke test);
`--check` only checks that seed k of the population trains exactly as a single model of seed k's
weights and batch. On a loaded machine the 2-thread times suffer from OpenMP's spin-waiting
(OMP_WAIT_POLICY=PASSIVE avoids that); run it on a quiet one.
"""
import json
import math
import resource
import sys
import time

import torch

from blocks import median_seconds
from torch_nalu import Nalu

S, BATCH, D_IN = 100, 64, 100
EPS = 1e-7


def rmsprop(params):
    # Keras's RMSProp: rho 0.9, epsilon 1e-7, no momentum; the lr of burn-nalu's benchmark.
    return torch.optim.RMSprop(params, lr=1e-4, alpha=0.9, eps=1e-7, momentum=0.0, foreach=True)


class PopNalu(torch.nn.Module):
    """S independent Nalu(d_in -> d_out) layers, feature-major: x is [S, d_in, batch].

    Weights are stored [S, d_out, d_in] (nn.Linear's layout) and the batch travels as its
    transpose (a view): w @ x^T runs ~3x faster in MKL's batched GEMM than x @ w with only
    d_out = 2 output columns, the layout torch.func.vmap gives (see the vmap variant).
    """

    def __init__(self, s, d_in, d_out):
        super().__init__()
        bound = math.sqrt(6.0 / (d_in + d_out))  # Xavier-uniform of each [d_out, d_in] slice
        self.w_hat, self.m_hat, self.gate = (
            torch.nn.Parameter(torch.empty(s, d_out, d_in).uniform_(-bound, bound)) for _ in range(3)
        )

    def forward(self, xt):
        w = torch.tanh(self.w_hat) * torch.sigmoid(self.m_hat)
        a = torch.bmm(w, xt)
        m = torch.exp(torch.bmm(w, torch.log(torch.abs(xt) + EPS)))
        g = torch.sigmoid(torch.bmm(self.gate, xt))
        return g * a + (1 - g) * m


def data(s):
    torch.manual_seed(1)
    x = torch.rand(s, BATCH, D_IN)
    return x, x.sum(dim=2, keepdim=True)


def per_seed_loss(pred, y):
    return ((pred - y) ** 2).mean(dim=(1, 2))


def bmm_trainer(s, compiled=False):
    torch.manual_seed(0)
    model = torch.nn.Sequential(PopNalu(s, D_IN, 2), PopNalu(s, 2, 1))
    opt = rmsprop(model.parameters())
    x, y = data(s)
    xt, yt = x.transpose(1, 2), y.transpose(1, 2)  # views, no copy

    def loss_fn():
        return per_seed_loss(model(xt), yt).sum()

    opt_step = opt.step
    if compiled:
        loss_fn, opt_step = torch.compile(loss_fn), torch.compile(opt.step)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        opt_step()
        return loss

    return model, step, (x, y)


def vmap_trainer(s):
    torch.manual_seed(0)
    pop = torch.nn.Sequential(PopNalu(s, D_IN, 2), PopNalu(s, 2, 1))  # the bmm trainer's init
    # Stacked [S, d_in, d_out] parameters under the single model's names ("0.w_hat", ...).
    params = {name: p.detach().transpose(1, 2).contiguous() for name, p in pop.named_parameters()}
    single = torch.nn.Sequential(Nalu(D_IN, 2), Nalu(2, 1)).to("meta")
    opt = rmsprop(params.values())
    x, y = data(s)

    def loss(p, xs, ys):
        return torch.mean((torch.func.functional_call(single, p, (xs,)) - ys) ** 2)

    grads_and_losses = torch.func.vmap(torch.func.grad_and_value(loss))

    def step():
        grads, losses = grads_and_losses(params, x, y)
        for name, p in params.items():
            p.grad = grads[name]
        opt.step()
        return losses

    return step, lambda: torch.func.vmap(loss)(params, x, y)


def check(steps=3, seeds=(0, 37, 99)):
    """Seed k of each population variant against a single model of seed k's weights and batch."""
    torch.set_num_threads(1)
    pop, pop_step, (x, y) = bmm_trainer(S)
    initial = [p.detach().clone() for p in pop.parameters()]
    v_step, v_losses = vmap_trainer(S)
    for _ in range(steps):
        pop_step()
        v_step()
    with torch.no_grad():
        got = {"bmm": per_seed_loss(pop(x.transpose(1, 2)), y.transpose(1, 2)), "vmap": v_losses()}
    worst = 0.0
    for k in seeds:
        single = torch.nn.Sequential(Nalu(D_IN, 2), Nalu(2, 1))
        with torch.no_grad():
            for p, q in zip(single.parameters(), initial):
                p.copy_(q[k].T)
        opt = rmsprop(single.parameters())
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            torch.mean((single(x[k]) - y[k]) ** 2).backward()
            opt.step()
        with torch.no_grad():
            want = torch.mean((single(x[k]) - y[k]) ** 2).item()
        for variant, losses in got.items():
            rel = abs(losses[k].item() - want) / abs(want)
            worst = max(worst, rel)
            print(f"seed {k} {variant}: {losses[k].item():.7g} vs single {want:.7g} (rel {rel:.1e})",
                  file=sys.stderr)
    ok = worst < 1e-5
    print(json.dumps({"check": "ok" if ok else "FAILED", "max_rel_diff": worst}))
    return ok


def main(quick):
    per_block, warmup = (2, 2) if quick else (100, 50)
    result = {"framework": f"PyTorch {torch.__version__} population", "population": S}
    result["base_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    for threads in (1, 2):
        torch.set_num_threads(threads)
        _, step, _ = bmm_trainer(S)
        result[f"bmm_{threads}t_step_s"] = median_seconds(step, per_block, warmup)
        step, _ = vmap_trainer(S)
        result[f"vmap_{threads}t_step_s"] = median_seconds(step, per_block, warmup)
    if "--no-compile" in sys.argv:
        result["compile_note"] = "skipped (--no-compile)"
    else:
        try:
            for threads in (1, 2):
                torch.set_num_threads(threads)
                torch._dynamo.reset()  # compiled kernels bake in the thread count
                _, step, _ = bmm_trainer(S, compiled=True)
                start = time.perf_counter()
                for _ in range(3):
                    step()
                result[f"bmm_compile_{threads}t_compile_s"] = time.perf_counter() - start
                result[f"bmm_compile_{threads}t_step_s"] = median_seconds(step, per_block, warmup)
        except Exception as e:  # no C++ compiler, an inductor bug, ...
            result["compile_note"] = f"torch.compile failed: {type(e).__name__}: {e}"[:300]
    result["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(result))


if __name__ == "__main__":
    if "--check" in sys.argv:
        sys.exit(0 if check() else 1)
    main("--quick" in sys.argv)
