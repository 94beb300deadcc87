"""PyTorch eager timing of the NALU benchmarks (see bench/compare.sh).

Same formulas, initialisation (Xavier-uniform), batch and optimizer settings as burn-nalu:
  W = tanh(W_hat) * sigmoid(M_hat); a = x W; m = exp(log(|x| + eps) W); g = sigmoid(x G);
  y = g a + (1 - g) m.
Prints one JSON object with seconds per toy training step and per large forward+backward.
"""
import json
import sys

import torch

from blocks import median_seconds


class Nalu(torch.nn.Module):
    def __init__(self, d_in, d_out, eps=1e-7):
        super().__init__()
        self.eps = eps
        self.w_hat = torch.nn.Parameter(torch.empty(d_in, d_out))
        self.m_hat = torch.nn.Parameter(torch.empty(d_in, d_out))
        self.gate = torch.nn.Parameter(torch.empty(d_in, d_out))
        for p in (self.w_hat, self.m_hat, self.gate):
            torch.nn.init.xavier_uniform_(p)

    def forward(self, x):
        w = torch.tanh(self.w_hat) * torch.sigmoid(self.m_hat)
        a = x @ w
        m = torch.exp(torch.log(torch.abs(x) + self.eps) @ w)
        g = torch.sigmoid(x @ self.gate)
        return g * a + (1 - g) * m


def toy_step_seconds(per_block, warmup):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = torch.nn.Sequential(Nalu(100, 2), Nalu(2, 1))
    # Keras's RMSProp: rho 0.9, epsilon 1e-7, no momentum.
    opt = torch.optim.RMSprop(model.parameters(), lr=0.01, alpha=0.9, eps=1e-7, momentum=0.0)
    x = torch.rand(64, 100)
    y = x.sum(dim=1, keepdim=True)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = torch.mean((model(x) - y) ** 2)
        loss.backward()
        opt.step()
        return loss

    return median_seconds(step, per_block, warmup)


def large_seconds(warmup, threads):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    layer = Nalu(1024, 1024)
    x = torch.rand(4096, 1024)

    def fwd_bwd():
        for p in layer.parameters():
            p.grad = None
        layer(x).sum().backward()

    return median_seconds(fwd_bwd, 1, warmup)


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    print(json.dumps({
        "framework": f"PyTorch {torch.__version__} eager",
        "toy_step_s": toy_step_seconds(20 if quick else 300, 50 if quick else 300),
        "large_fwd_bwd_s": large_seconds(1 if quick else 2, threads=2),
    }))
