"""The timing method every benchmark script shares (examples/timing.rs does the same in Rust)."""
import statistics
import time


def median_seconds(f, per_block, warmup, blocks=10):
    """Median over `blocks` blocks of the mean time of one call of `f`, after `warmup` calls.

    A median of blocks shrugs off the bursts of other load on a shared machine.
    """
    for _ in range(warmup):
        f()
    times = []
    for _ in range(blocks):
        start = time.perf_counter()
        for _ in range(per_block):
            f()
        times.append((time.perf_counter() - start) / per_block)
    return statistics.median(times)
