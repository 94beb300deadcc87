"""Judges logs of run-nmru-range4.sh as their `neurips_range.r` does: the step with the lowest
validation (interpolation) MSE, NaN ignored; solved when the test (extrapolation) MSE there is
below 1e-5. Prints a CSV row per finished run.   usage: python3 judge.py LOG..."""
import math, re, sys

print("seed,best_step,valid_mse,extrapolation_mse,solved,non_finite_step")
for path in sys.argv[1:]:
    text = open(path).read()
    rows = [tuple(map(float, m.groups())) for m in re.finditer(
        r"^train (\d+): (\S+), inter: (\S+), extra: (\S+)", text, re.M)]
    if not rows or rows[-1][0] < 100000:
        continue
    best = min((r for r in rows if not math.isnan(r[2])), key=lambda r: r[2])
    bad = next((int(r[0]) for r in rows if not all(map(math.isfinite, r[1:]))), "")
    seed = re.search(r"seed(\d+)", path).group(1)
    print(f"{seed},{int(best[0])},{best[2]:.6e},{best[3]:.6e},{str(best[3] < 1e-5).lower()},{bad}")
