"""Prints the comparison table from the JSON lines bench/compare.sh collected in a folder."""
import json
import pathlib
import platform
import sys


def load(folder):
    rows = {}
    for path in sorted(pathlib.Path(folder).glob("*.json")):
        result = json.loads(path.read_text())
        row = rows.setdefault(result["framework"], {})
        row.update({k: v for k, v in result.items() if k != "framework"})
    return rows


def machine():
    """CPU model and core count, from /proc/cpuinfo where there is one."""
    try:
        lines = pathlib.Path("/proc/cpuinfo").read_text().splitlines()
        models = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
        return f"{models[0]}, {len(models)} logical cores"
    except (OSError, IndexError):
        return f"{platform.machine()}, {platform.system()}"


def main(folder):
    rows = load(folder)
    peers = {name: r for name, r in rows.items() if not name.startswith("burn-nalu")}
    best = {
        key: min(r[key] for r in peers.values() if key in r)
        for key in ("toy_step_s", "large_fwd_bwd_s")
    }
    torch = next((r for name, r in peers.items() if name.startswith("PyTorch")), {})
    print(f"machine: {machine()}")
    print("| Implementation | Toy step (µs, 1 thread) | × vs PyTorch | Large fwd+bwd (s, 2 threads) | × vs fastest peer |")
    print("|---|---|---|---|---|")
    for name, r in rows.items():
        toy, large = r.get("toy_step_s"), r.get("large_fwd_bwd_s")
        speedup = f"{torch['toy_step_s'] / toy:.1f}" if toy and "toy_step_s" in torch else "-"
        vs_best = f"{best['large_fwd_bwd_s'] / large:.2f}" if large else "-"
        toy_us = f"{toy * 1e6:.1f}" if toy else "-"
        large_s = f"{large:.3f}" if large else "-"
        print(f"| {name} | {toy_us} | {speedup} | {large_s} | {vs_best} |")


if __name__ == "__main__":
    main(sys.argv[1])
