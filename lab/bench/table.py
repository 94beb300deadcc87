"""Prints the comparison table from the JSON lines bench/compare.sh collected in a folder."""
import json
import pathlib
import platform
import re
import sys


def load(folder):
    rows = {}
    for path in sorted(pathlib.Path(folder).glob("*.json")):
        result = json.loads(path.read_text())
        # One file per thread count (jax_population.py, the Madsen peers; burn-nalu's --madsen
        # runs say theirs in the file name, NAME-2t.json): its keys get the thread count.
        named = re.search(r"-(\d+)t\.json$", path.name)
        t = result.pop("threads", named and int(named[1]))
        if t:
            per_thread = r"^(population|madsen_population|madsen_draw|madsen_step|peak_rss|base_rss)_"
            result = {k if re.search(r"_\d+t_", k) else re.sub(per_thread, rf"\1_{t}t_", k): v
                      for k, v in result.items()}
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
    print(f"machine: {machine()}")
    single_model_table(rows)
    population_table(rows)
    madsen_table(rows)


def single_model_table(rows):
    rows = {n: r for n, r in rows.items() if "toy_step_s" in r or "large_fwd_bwd_s" in r}
    if not rows:
        return
    peers = {name: r for name, r in rows.items() if not name.startswith("burn-nalu")}
    best = {
        key: min((r[key] for r in peers.values() if key in r), default=None)
        for key in ("toy_step_s", "large_fwd_bwd_s")
    }
    torch = next((r for name, r in peers.items() if name.startswith("PyTorch") and "toy_step_s" in r), {})
    print("| Implementation | Toy step (µs, 1 thread) | × vs PyTorch | Large fwd+bwd (s, 2 threads) | × vs fastest peer |")
    print("|---|---|---|---|---|")
    for name, r in rows.items():
        toy, large = r.get("toy_step_s"), r.get("large_fwd_bwd_s")
        speedup = f"{torch['toy_step_s'] / toy:.1f}" if toy and "toy_step_s" in torch else "-"
        vs_best = f"{best['large_fwd_bwd_s'] / large:.2f}" if large and best["large_fwd_bwd_s"] else "-"
        toy_us = f"{toy * 1e6:.1f}" if toy else "-"
        large_s = f"{large:.3f}" if large else "-"
        print(f"| {name} | {toy_us} | {speedup} | {large_s} | {vs_best} |")


def population_table(rows):
    """Seed-steps per second of each way to train S seeds; memory is the process's peak RSS / S."""
    entries = []  # (label, seed-steps per second, peak RSS bytes or None, S)
    for name, r in rows.items():
        s = r.get("population")
        if not s:
            continue
        if "population_step_s" in r:  # burn-nalu (examples/timing.rs --population)
            entries.append((f"{name} population, 1 thread", s / r["population_step_s"],
                            r.get("peak_rss_bytes"), s))
            if "toy_step_s" in r:
                entries.append((f"{name} {s} single runs, 1 thread", 1 / r["toy_step_s"], None, s))
        for key, seconds in r.items():
            m = re.fullmatch(r"(\w+?)_(\d+)t_step_s", key)
            if m and not key.startswith("madsen_"):  # Madsen's step has its own table
                variant = "" if m[1] == "population" else f" {m[1].replace('_', ' ')}"
                rss = r.get(f"peak_rss_{m[2]}t_bytes", r.get("peak_rss_bytes"))
                entries.append((f"{name}{variant}, {m[2]} thread{'s' * (m[2] != '1')}",
                                s / seconds, rss, s))
    if not entries:
        return
    ref = next((e[1] for e in entries if e[0].startswith("burn-nalu") and "population" in e[0]), None)
    print()
    print(f"Population training (S = {entries[0][3]} seeds, seed-steps per second = S / step time)")
    print("| Implementation | Seed-steps/s | burn-nalu population × | Memory per seed (MiB, peak RSS / S) |")
    print("|---|---|---|---|")
    for label, rate, rss, s in entries:
        ratio = f"{ref / rate:.2f}" if ref else "-"
        memory = f"{rss / s / 2**20:.2f}" if rss else "-"
        print(f"| {label} | {rate:,.0f} | {ratio} | {memory} |")


def madsen_table(rows):
    """Madsen & Johansen's NAU -> NMU step for S seeds, per implementation and thread count.

    Keys: madsen_VARIANT_Nt_step_s (seconds per population step; VARIANT `population` for
    burn-nalu and JAX, `eager` and `compile` for PyTorch), madsen_VARIANT_Nt_compile_s and
    madsen_draw_Nt_s (the fresh batch's draw alone, part of the step); burn-nalu's
    madsen_population_step_s without a thread count is its 1-thread run, and its madsen_step_s
    (madsen_step_Nt_s) the step of one seed trained alone.
    """
    entries = []  # (implementation, threads, seconds per step, seeds per step, compile s, draw s)
    for name, r in rows.items():
        s = r.get("population")
        for key, seconds in r.items():
            single = re.fullmatch(r"madsen_step(?:_(\d+)t)?_s", key)
            if single:
                entries.append((f"{name}, one seed alone", int(single[1] or 1), seconds, 1,
                                None, None))
            m = re.fullmatch(r"madsen_(\w+?)(?:_(\d+)t)?_step_s", key)
            if not (m and s):
                continue
            variant, threads = m[1], int(m[2] or 1)
            label = re.sub(r",? Madsen population$", "", name)
            if variant != "population":
                label += " " + {"compile": "torch.compile"}.get(variant, variant.replace("_", " "))
            compile_s = r.get(f"madsen_{variant}_{threads}t_compile_s")
            draw_s = r.get(f"madsen_draw_{threads}t_s")
            entries.append((label, threads, seconds, s, compile_s, draw_s))
    if not entries:
        return
    entries.sort(key=lambda e: (not e[0].startswith("burn-nalu"), e[1], e[3] == 1, e[0]))
    burn = {t: s / sec for label, t, sec, s, _, _ in entries
            if label.startswith("burn-nalu") and s > 1}
    print()
    print(f"Madsen & Johansen NAU -> NMU step (S = {max(e[3] for e in entries)} seeds, batch 128 "
          "drawn fresh each step; seed-steps per second = S / step time)")
    print("| Implementation | Threads | Step (ms) | Seed-steps/s | µs per seed-step "
          "| of which the draw (µs) | burn-nalu × (same threads) | Compile (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for label, t, sec, s, compile_s, draw_s in entries:
        ratio = f"{burn[t] / (s / sec):.2f}" if t in burn else "-"
        draw = f"{draw_s / s * 1e6:.1f}" if draw_s else "-"
        comp = f"{compile_s:.1f}" if compile_s else "-"
        print(f"| {label} | {t} | {sec * 1e3:.3f} | {s / sec:,.0f} | {sec / s * 1e6:.1f} "
              f"| {draw} | {ratio} | {comp} |")


if __name__ == "__main__":
    main(sys.argv[1])
