"""Reference vectors of the arithmetic units, from their authors' own layer code.

Runs each unit's layer class as its authors' repository defines it (PyTorch, imported from a
checkout of that repository, never copied) on fixed weights and inputs, in float64, and writes
per unit a JSON file: the weights (in this crate's layout, `[d_input, d_output]`), the inputs,
the outputs, the gradient of every weight of `sum(cotangent * output)`, and the regulariser's
value and gradients where the unit has one. `tests/reference_units.rs` compares every unit of
the crate with them.

    python tests/reference/units.py --out tests/reference/vectors \\
        --repo stable-nalu=DIR@COMMIT [--repo nalm-benchmark=DIR@COMMIT ...]

NAME is one of stable-nalu, nalm-benchmark, nalm-division, nalm-robust-nmu, hillspace (its
`hillspace/` package) and dmu (marict/nalm-benchmark, the DMU's). DIR holds the repository's
`stable_nalu/` package at COMMIT (for instance extracted with
`git archive COMMIT stable_nalu | tar x -C DIR`). Needs torch, numpy, scipy and tensorboardX
(the packages those layer modules import). The vectors were written with torch 1.13.1, the
nearest to the authors' (nalm-benchmark's environment pins 1.5.1) that installs here: torch 2
passes no gradient at the bounds of `torch.clamp`, torch 1 passes it, as the crate does.
"""

import argparse
import importlib
import json
import math
import sys
import types
from pathlib import Path

import torch

torch.set_default_dtype(torch.float64)

# Inputs: negatives, an exact zero, values at and near the units' guards (the ε of
# `log(|x| + ε)`: 1e-7 in stable-nalu, f32's epsilon in the NPU), small, unit and large.
X = [
    [1.5, -2.0, 0.0, 3.25],
    [-0.5, 1e-7, 2.0, -1.0],
    [4.0, 0.75, -3.5, 1e-8],
    [1.0, -1.0, 0.25, 10.0],
    [-6.0, 0.1, 1.2e-7, -0.3],
    [2.5, 5.0, -0.125, 0.6],
]
D_INPUT, D_OUTPUT = 4, 3


def rows(seed, shape, lo, hi):
    """A fixed uniform tensor in [lo, hi) of `shape` (torch's generator, seeded)."""
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(shape, generator=g)


def package(name, directory, stubs=("stable_nalu", "stable_nalu.network")):
    """A loader of `stable_nalu`'s modules from the checkout in `directory`, without the
    package's `__init__` (which imports the datasets' dependencies), as a fresh module tree."""
    for key in [k for k in sys.modules if k == "stable_nalu" or k.startswith("stable_nalu.")]:
        del sys.modules[key]
    # `network`'s `__init__` imports every network, torchvision's among them: stubbed too.
    for stub in stubs:
        module = types.ModuleType(stub)
        module.__path__ = [str(Path(directory, *stub.split(".")))]
        sys.modules[stub] = module
    return lambda module: importlib.import_module(f"stable_nalu.{module}")


def crate_layout(t):
    """A torch `[out, in]` weight as the crate's `[d_input, d_output]`."""
    return t.detach().t().tolist()


def record(unit, source, layer, params, forward, regularizer=None, x=X):
    """Runs `forward(x)` and the regulariser of `layer`, with gradients of `params`
    (name -> (parameter, to crate layout))."""
    x = torch.tensor(x)
    # A copy: the sNMU multiplies its input by the noise in place (`x *= noise`).
    y = forward(x.clone())
    cotangent = rows(7, tuple(y.shape), -1.0, 1.0)
    # A weight with no path to the output (the DMU's gate evaluated hard) has gradient 0.
    leaves = [p for p, _ in params.values()]
    grads = torch.autograd.grad((y * cotangent).sum(), leaves, allow_unused=True)
    grads = [g if g is not None else torch.zeros_like(p) for p, g in zip(leaves, grads)]
    out = {
        "unit": unit,
        "source": source,
        "torch": torch.__version__,
        "params": {n: to(p) for n, (p, to) in params.items()},
        "x": x.tolist(),
        "y": y.detach().tolist(),
        "cotangent": cotangent.tolist(),
        "grads": {n: to(g) for (n, (_, to)), g in zip(params.items(), grads)},
    }
    if regularizer is not None:
        r = regularizer()
        rg = torch.autograd.grad(r, [p for p, _ in params.values()], allow_unused=True)
        out["regularizer"] = r.item()
        out["regularizer_grads"] = {
            n: to(g if g is not None else torch.zeros_like(p))
            for (n, (p, to)), g in zip(params.items(), rg)
        }
    return out


def set_(param, value):
    with torch.no_grad():
        param.copy_(value)
    return param


def stable_nalu_units(load, source):
    """NAC, NAC•, NALU, NAU and NMU as Madsen & Johansen's `simple_function_static.py` builds
    them (its defaults: `--oob-mode clip`, `--regualizer-shape linear`, `--mnac-epsilon 0`,
    `eps = 1e-7`)."""
    layer = load("layer")
    out = []
    shape = (D_OUTPUT, D_INPUT)

    nac = layer.NACLayer(D_INPUT, D_OUTPUT)
    set_(nac.W_hat, rows(1, shape, -2.0, 2.0))
    set_(nac.M_hat, rows(2, shape, -2.0, 2.0))
    params = {"w_hat": (nac.W_hat, crate_layout), "m_hat": (nac.M_hat, crate_layout)}
    out.append(record("nac", dict(source, layer="stable_nalu.layer.nac.NACLayer"), nac, params, nac))

    # NAC•: the network's second layer with `--nac-mul normal`, exp(NAC(log(|z| + eps))), on
    # inputs given directly (its first layer replaced by the identity).
    net = load("network.simple_function_static").SimpleFunctionStaticNetwork(
        "NAC", input_size=D_INPUT, hidden_size=D_INPUT, nac_mul="normal"
    )
    net.layer_1 = torch.nn.Identity()
    mul = net.layer_2.layer
    set_(mul.W_hat, rows(3, (1, D_INPUT), -2.0, 2.0))
    set_(mul.M_hat, rows(4, (1, D_INPUT), -2.0, 2.0))
    params = {"w_hat": (mul.W_hat, crate_layout), "m_hat": (mul.M_hat, crate_layout)}
    src = dict(source, layer="stable_nalu.network.simple_function_static.SimpleFunctionStaticNetwork",
               options="nac_mul='normal', eps=1e-7 (its layer_2; layer_1 the identity)")
    out.append(record("nac_mul", src, mul, params, net))

    nalu = layer.NALULayer(D_INPUT, D_OUTPUT)
    set_(nalu.nac_add.W_hat, rows(5, shape, -2.0, 2.0))
    set_(nalu.nac_add.M_hat, rows(6, shape, -2.0, 2.0))
    set_(nalu.G_add, rows(8, shape, -2.0, 2.0))
    params = {
        "w_hat": (nalu.nac_add.W_hat, crate_layout),
        "m_hat": (nalu.nac_add.M_hat, crate_layout),
        "gate": (nalu.G_add, crate_layout),
    }
    src = dict(source, layer="stable_nalu.layer.nalu.NALULayer", options="eps=1e-7")
    out.append(record("nalu", src, nalu, params, nalu))

    nau = layer.ReRegualizedLinearNACLayer(
        D_INPUT, D_OUTPUT, nac_oob="clip", regualizer_shape="linear"
    )
    # Inside [−1, 1], away from the regulariser's kinks at 0 and ±½, but for two weights at
    # the forward pass's clamp, ±1.
    w = rows(9, shape, -0.95, 0.95)
    w[0, 0], w[1, 1] = 1.0, -1.0
    set_(nau.W, w)
    params = {"weight": (nau.W, crate_layout)}
    src = dict(source, layer="stable_nalu.layer.re_regualized_linear_nac.ReRegualizedLinearNACLayer",
               options="nac_oob='clip', regualizer_shape='linear'")
    out.append(record("nau", src, nau, params, nau, lambda: nau.regualizer()["W"]))

    mod = load("layer.re_regualized_linear_mnac")
    nmu = mod.ReRegualizedLinearMNACLayer(
        D_INPUT, D_OUTPUT, nac_oob="clip", regualizer_shape="linear", mnac_epsilon=0
    )
    set_(nmu.W, rows(10, shape, 0.02, 0.98))
    params = {"weight": (nmu.W, crate_layout)}
    src = dict(source, layer="stable_nalu.layer.re_regualized_linear_mnac.ReRegualizedLinearMNACLayer",
               options="nac_oob='clip', regualizer_shape='linear', mnac_epsilon=0")
    out.append(record("nmu", src, nmu, params, nmu, lambda: nmu.regualizer()["W"]))
    return out


def same_layout(t):
    """A weight the authors already store as `[in, out]` (or a vector)."""
    return t.detach().tolist()


def open_gate(g, value=1.0):
    """`g` with the gate of input 2 (whose inputs include 0 and 1.2e-7) at `value`, fully open
    by default: there `ε` counts (r = |x| + ε), and the forward pass's clamp to [0, 1] is at its
    bound, where torch 1 passes the gradient (torch 2 passes none)."""
    g[2] = value
    return g


def nalm_benchmark_units(load, source):
    """iNALU, the G-NALU, the NPU and the RealNPU (plain, and as Mistry et al.'s modified
    RealNPU with its regularisers) as `experiments/single_layer_benchmark.py` builds them."""
    out = []
    shape = (D_INPUT, D_OUTPUT)
    inalu = load("layer.inalu").INALULayer(D_INPUT, D_OUTPUT)
    for k, name in enumerate(["W_a_hat", "M_a_hat", "W_m_hat", "M_m_hat"]):
        set_(getattr(inalu, name), rows(11 + k, shape, -2.0, 2.0))
    set_(inalu.g, rows(15, (D_OUTPUT,), -1.0, 1.0))
    params = {
        "add.w_hat": (inalu.W_a_hat, same_layout),
        "add.m_hat": (inalu.M_a_hat, same_layout),
        "mul.w_hat": (inalu.W_m_hat, same_layout),
        "mul.m_hat": (inalu.M_m_hat, same_layout),
        "gate": (inalu.g, same_layout),
    }
    src = dict(source, layer="stable_nalu.layer.inalu.INALULayer",
               options="regulariser as the training loop adds it: 0.05 * regualizer()['inalu']")
    out.append(record("inalu", src, inalu, params, inalu, lambda: 0.05 * inalu.regualizer()["inalu"]))

    # The Primer's G-NALU: `single_layer_benchmark.sh`'s `--nalu-gate golden-ratio --nalu-mul
    # golden-ratio --nac-weight golden-ratio`.
    golden = dict(nalu_gate="golden-ratio", nalu_mul="golden-ratio", nac_weight="golden-ratio")
    gnalu = load("layer.nalu").NALULayer(D_INPUT, D_OUTPUT, **golden)
    set_(gnalu.nac_add.W_hat, rows(21, (D_OUTPUT, D_INPUT), -3.0, 3.0))
    set_(gnalu.nac_add.M_hat, rows(22, (D_OUTPUT, D_INPUT), -3.0, 3.0))
    set_(gnalu.G_add, rows(23, (D_OUTPUT, D_INPUT), -2.0, 2.0))
    params = {
        "w_hat": (gnalu.nac_add.W_hat, crate_layout),
        "m_hat": (gnalu.nac_add.M_hat, crate_layout),
        "gate": (gnalu.G_add, crate_layout),
    }
    src = dict(source, layer="stable_nalu.layer.nalu.NALULayer",
               options="eps=1e-7; " + ", ".join(f"{k}='{v}'" for k, v in golden.items()))
    out.append(record("gnalu", src, gnalu, params, gnalu))

    npu_options = dict(npu_Wr_init="xavier-uniform", regualizer_npu_w=0, regualizer_gate=0)
    npu = load("layer.npu").NPULayer(D_INPUT, D_OUTPUT, **npu_options)
    set_(npu.W_real, rows(16, shape, -1.5, 1.5))
    set_(npu.W_im, rows(17, shape, -0.5, 0.5))
    set_(npu.g, open_gate(rows(18, (D_INPUT,), 0.1, 0.9)))
    params = {"w_re": (npu.W_real, same_layout), "w_im": (npu.W_im, same_layout),
              "gate": (npu.g, same_layout)}
    src = dict(source, layer="stable_nalu.layer.npu.NPULayer", options="eps = f32 epsilon")
    out.append(record("npu", src, npu, params, npu))

    real = load("layer.npu_real")
    for unit, reg in [("realnpu", 0), ("realnpu_mistry", 1)]:
        layer = real.RealNPULayer(
            D_INPUT, D_OUTPUT, npu_clip="wg", npu_Wr_init="xavier-uniform-constrained",
            regualizer_npu_w=reg, regualizer_gate=reg, realnpu_reg_type="W",
        )
        set_(layer.W_real, rows(19, shape, -0.95, 0.95))
        # With the regulariser, a hair below 1: `|1 − g|` has a kink at 1 whose gradient is a
        # convention (torch: 0; the crate: −1), which the clamp after each step makes moot.
        set_(layer.g, open_gate(rows(20, (D_INPUT,), 0.1, 0.9), 1.0 - 1e-12 if reg else 1.0))
        params = {"w_re": (layer.W_real, same_layout), "gate": (layer.g, same_layout)}
        options = "eps = f32 epsilon"
        regularizer = None
        if reg:
            options += "; regulariser W-NPU + g-NPU (realnpu_reg_type='W', both weighted 1)"
            regularizer = (lambda l: lambda: l.regualizer()["W-NPU"] + l.regualizer()["g-NPU"])(layer)
        src = dict(source, layer="stable_nalu.layer.npu_real.RealNPULayer", options=options)
        out.append(record(unit, src, layer, params, layer, regularizer))
    return out


# The NRU's domain leaves out 0 (`|0|^W` is infinite for W < 0): the NRU reads these inputs,
# X with its zero moved to 2e-8.
X_NONZERO = [[2e-8 if v == 0.0 else v for v in row] for row in X]


def nalm_division_units(load, source):
    """The NRU and the NMRU (the paper's NMRU is the sign-retrieving `SignNMRU` of
    `lfs_batch_jobs/single_layer_task/neurips_2021/sltr-in10.sh`) as
    `experiments/single_layer.py` builds them (its defaults `--oob-mode clip`,
    `--regualizer-shape linear`, `--nru-div-mode div`), in training mode."""
    out = []
    shape = (D_OUTPUT, D_INPUT)
    nru = load("layer.reciprocal_nmu").ReciprocalNMULayer(
        D_INPUT, D_OUTPUT, nac_oob="clip", regualizer_shape="linear",
        beta_nau=False, nru_div_mode="div", trash_cell=False,
    )
    # Most weights where the training selector tanh²(1000·W) is saturated, three in its slope.
    w = rows(21, shape, -0.95, 0.95)
    w[0, 0], w[1, 2], w[2, 3] = 0.002, -0.003, 0.0015
    set_(nru.W, w)
    params = {"weight": (nru.W, crate_layout)}
    src = dict(source, layer="stable_nalu.layer.reciprocal_nmu.ReciprocalNMULayer",
               options="nac_oob='clip', regualizer_shape='linear', nru_div_mode='div'; training")
    out.append(record("nru", src, nru, params, nru, lambda: nru.regualizer()["W"], x=X_NONZERO))

    nmru = load("layer.concat_reciprocal_nmu_sign_retrieval").ConcatReciprocalNMUSignRetrievalLayer(
        D_INPUT, D_OUTPUT, nac_oob="clip", regualizer_shape="linear",
        nmu_noise=False, noise_range=[1, 5],
    )
    set_(nmru.W, rows(22, (D_OUTPUT, 2 * D_INPUT), 0.02, 0.98))
    params = {"weight": (nmru.W, crate_layout)}
    src = dict(source, layer="stable_nalu.layer.concat_reciprocal_nmu_sign_retrieval."
               "ConcatReciprocalNMUSignRetrievalLayer",
               options="nac_oob='clip', regualizer_shape='linear'; training (1/(x + eps), eps = f32 epsilon)")
    out.append(record("nmru", src, nmru, params, nmru, lambda: nmru.regualizer()["W"]))
    return out


def nalm_robust_nmu_units(load, source):
    """The sNMU: Mistry et al.'s NMU with its inputs multiplied by noise and the noise's
    product divided back out, in training mode. The noise is torch's draw from
    `--noise-range`: here the one-point range [3, 3], so that the vector is deterministic (the
    crate draws from [3, 3 + 1e-9))."""
    nmu = load("layer.re_regualized_linear_mnac").ReRegualizedLinearMNACLayer(
        D_INPUT, D_OUTPUT, nac_oob="clip", regualizer_shape="linear", mnac_epsilon=0,
        nmu_noise=True, noise_range=[3, 3],
    )
    set_(nmu.W, rows(23, (D_OUTPUT, D_INPUT), 0.02, 0.98))
    params = {"weight": (nmu.W, crate_layout)}
    src = dict(source, layer="stable_nalu.layer.re_regualized_linear_mnac.ReRegualizedLinearMNACLayer",
               options="nmu_noise=True, noise_range=[3, 3], nac_oob='clip', regualizer_shape='linear'; training")
    return [record("snmu", src, nmu, params, nmu, lambda: nmu.regualizer()["W"])]


# The Hill Space unit's exponential primitive is a complex power with no guard at 0 (none of
# its tasks has a zero input); the crate adds `ε` to `|x|`, as the NAC• does. These inputs are
# X without its zero and its values near the guards.
X_AWAY_FROM_ZERO = [[v if abs(v) >= 0.1 else math.copysign(0.2, v) for v in row] for row in X]


def hill_space_units(load, source):
    """DuJardin's Hill Space unit (`hillspace.model.MathyUnit`, `space="hill_snap"`, as
    `experiments/experiment_inalu.py` builds it) under its additive primitive (`"add"`) and its
    exponential one (`"multiply"`): both read the same weights, `W_combine_hat` and
    `M_combine_hat`. Some weights saturated past the snap (`|Ŵ| = 9`: 1 − tanh = 3e-8; `M̂ =
    ±16`: σ within 1.1e-7 of 1 or 0), the rest well inside it."""
    model = load("model")
    out = []
    for unit, operation, x in [("hill_additive", "add", X),
                               ("hill_exponential", "multiply", X_AWAY_FROM_ZERO)]:
        mathy = model.MathyUnit(input_size=D_INPUT, output_size=D_OUTPUT,
                                dtype=torch.float64, space="hill_snap")
        w_hat = rows(24, (D_INPUT, D_OUTPUT), -1.5, 1.5)
        m_hat = rows(25, (D_INPUT, D_OUTPUT), -3.0, 3.0)
        w_hat[0, 0], w_hat[1, 1], w_hat[2, 2] = 9.0, -9.0, 9.0
        m_hat[0, 0], m_hat[1, 1], m_hat[3, 0] = 16.0, 16.0, -16.0
        set_(mathy.W_combine_hat, w_hat)
        set_(mathy.M_combine_hat, m_hat)
        params = {"w_hat": (mathy.W_combine_hat, same_layout),
                  "m_hat": (mathy.M_combine_hat, same_layout)}
        src = dict(source, layer="hillspace.model.MathyUnit",
                   options=f"space='hill_snap', operation '{operation}'")
        out.append(record(unit, src, mathy, params, lambda x, m=mathy, o=operation: m(x, o), x=x))
    return out


def hill_space_package(name, directory, stubs):
    """A loader of `hillspace`'s modules from the checkout in `directory`; `safetensors`
    (imported for saving, unused here) stubbed."""
    del name, stubs
    for stub in ("safetensors", "safetensors.torch"):
        module = types.ModuleType(stub)
        module.load_file = module.save_file = None
        sys.modules[stub] = module
    package_module = types.ModuleType("hillspace")
    package_module.__path__ = [str(Path(directory, "hillspace"))]
    sys.modules["hillspace"] = package_module
    return lambda module: importlib.import_module(f"hillspace.{module}")


# The DMU's inputs: X and a row of tiny values, whose linear results fall inside the width 1e-4
# of its smooth sign `tanh(r / 1e-4)` (elsewhere it is ±1 to the bit).
X_DMU = X + [[2e-5, -1e-5, 3e-5, 1.5e-5]]


def dmu_units(load, source):
    """The DMU (`DAGLayer`, depth 2 with its output selector), trained (soft) and as its authors
    evaluate it (`.eval()`: hard gates, rounded operand weights, hard selector)."""
    sys.modules["debug_utils"] = types.SimpleNamespace(tap=lambda x, *_: x)  # logging only
    out = []
    depth, nodes = 2, D_INPUT + 2
    for unit, training in [("dmu", True), ("dmu_discrete", False)]:
        layer = load("layer.dag").DAGLayer(D_INPUT, 1, dag_depth=depth, _enable_taps=False)
        heads = [("o_mag", layer.O_mag_head, depth * nodes), ("o_sign", layer.O_sign_head, depth * nodes),
                 ("gate", layer.G_head, depth * 2), ("selector", layer.output_selector_head, depth)]
        params = {}
        for k, (name, head, size) in enumerate(heads):
            set_(head.weight, rows(30 + 2 * k, (size, D_INPUT), -1.0, 1.0))
            set_(head.bias, rows(31 + 2 * k, (size,), -0.5, 0.5))
            params[f"{name}.weight"] = (head.weight, crate_layout)
            params[f"{name}.bias"] = (head.bias, same_layout)
        set_(layer.input_norm.weight, rows(40, (D_INPUT,), 0.5, 1.5))
        set_(layer.input_norm.bias, rows(41, (D_INPUT,), -0.3, 0.3))
        params["input_norm.gamma"] = (layer.input_norm.weight, same_layout)
        params["input_norm.beta"] = (layer.input_norm.bias, same_layout)
        layer.train(training)
        src = dict(source, layer="stable_nalu.layer.dag.DAGLayer",
                   options=f"dag_depth={depth}; {'train()' if training else 'eval()'}")
        out.append(record(unit, src, layer, params, layer, x=X_DMU))
    return out


PACKAGES = ("stable_nalu", "stable_nalu.network")
UNITS = {
    "stable-nalu": ("AndreasMadsen/stable-nalu", stable_nalu_units, PACKAGES),
    "nalm-benchmark": ("bmistry4/nalm-benchmark", nalm_benchmark_units, PACKAGES),
    "nalm-division": ("bmistry4/nalm-division", nalm_division_units, PACKAGES),
    # Its `layer/__init__` imports `layer/unused/`, which the repository does not hold.
    "nalm-robust-nmu": (
        "bmistry4/nalm-robust-nmu", nalm_robust_nmu_units, PACKAGES + ("stable_nalu.layer",)
    ),
    "hillspace": ("justindujardin/hillspace", hill_space_units, None),
    "dmu": ("marict/nalm-benchmark", dmu_units, PACKAGES),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--repo", action="append", required=True, metavar="NAME=DIR@COMMIT")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for spec in args.repo:
        name, rest = spec.split("=", 1)
        directory, commit = rest.rsplit("@", 1)
        github, units, stubs = UNITS[name]
        source = {"repository": github, "commit": commit}
        loader = hill_space_package if name == "hillspace" else package
        for vector in units(loader(name, directory, stubs), source):
            path = args.out / f"{vector['unit']}.json"
            path.write_text(json.dumps(vector, indent=1) + "\n")
            print(path)


if __name__ == "__main__":
    main()
