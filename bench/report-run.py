"""Runs `tlsgate report` on one generated log and prints throughput and peak
memory: report-run.py TLSGATE LOG ACCOUNTS. The log is read once first so
that the figure is for parsing, not for the disk."""
import os
import resource
import subprocess
import sys
import time

tlsgate, log, accounts = sys.argv[1], sys.argv[2], int(sys.argv[3])
size = os.path.getsize(log)
with open(log, "rb") as f:          # warm the page cache
    while f.read(1 << 24):
        pass
results = []
for args in (["report"], ["report", "--json"]):
    start = time.monotonic()
    with open(os.devnull, "wb") as null:
        # --no-config: no policy, whatever /etc/tlsgate holds here
        proc = subprocess.run([tlsgate, "--no-config", *args, log], stdout=null,
                              stderr=subprocess.PIPE)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit("tlsgate report failed: " + proc.stderr.decode(errors="replace"))
    results.append((" ".join(args), elapsed))
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
for name, elapsed in results:
    print(f"{name:<14} log {size / 1e6:7.0f} MB, {accounts:>9,} accounts: "
          f"{elapsed:6.2f} s, {size / 1e6 / elapsed:6.0f} MB/s")
print(f"{'':<14} peak RSS of the runs: {peak:.0f} MB")
