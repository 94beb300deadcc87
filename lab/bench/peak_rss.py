"""Runs a benchmark command and adds its peak RSS to the JSON line it prints.

  bench/peak_rss.py COMMAND [ARGS...]

For programs that do not report their own memory (examples/timing.rs): the peak resident set
of the child, from getrusage(RUSAGE_CHILDREN), becomes "peak_rss_bytes" of its last stdout line.
"""
import json
import resource
import subprocess
import sys

done = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, text=True, check=True)
result = json.loads(done.stdout.strip().splitlines()[-1])
result["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(json.dumps(result))
