"""Runs `tlsgate notify --follow -` over one generated log on standard input
and prints throughput, peak memory and the follower's counts:
follow-run.py TLSGATE LOG WORKDIR. Two runs: "notices" with a policy that
names the log's 1000 domains (d0.example ... d999.example) with `require`,
so that each refused account is one a notice may go to (--max-per-hour at
its highest, so the bounded queue - 64 notices, 4 sendmails at once - is
what drops notices when the log comes faster than sendmail takes them; the
sendmail is dd to /dev/null), and "reading" with a policy that names none
of them (no notice is due: the cost of reading and checking the lines)."""
import os
import subprocess
import sys
import time
from pathlib import Path

tlsgate, log, work = sys.argv[1], sys.argv[2], Path(sys.argv[3])
repo = Path(__file__).resolve().parent.parent
size = os.path.getsize(log)
with open(log, "rb") as f:          # warm the page cache
    while f.read(1 << 24):
        pass
policies = {
    "notices": "".join(f"require @d{i}.example\n" for i in range(1000)),
    "reading": "require @elsewhere.example\n",
}
for name, rules in policies.items():
    policy = work / f"follow-bench-{name}.policy"
    policy.write_text(rules)
    state = work / "follow-bench.state"
    state.unlink(missing_ok=True)
    start = time.monotonic()
    hwm = 0
    with open(log, "rb") as inp:
        proc = subprocess.Popen([tlsgate, "--policy", str(policy), "notify", "--follow",
                                 "--send", "--sendmail", "/usr/bin/dd of=/dev/null status=none",
                                 "--from", "postmaster@d0.example", "--state", str(state),
                                 "--template", str(repo / "docs/templates/notice.en.txt"),
                                 "--max-per-hour", "100000", "-"],
                                stdin=inp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # the follower's own high-water mark (VmHWM), sampled while it runs:
        # the rusage of children would count the Python image forked before exec
        status = Path(f"/proc/{proc.pid}/status")
        while proc.poll() is None:
            try:
                for line in status.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        hwm = max(hwm, int(line.split()[1]))
            except (OSError, ValueError):
                pass
            time.sleep(0.02)
        err = proc.stderr.read().decode(errors="replace")
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit("tlsgate notify --follow failed: " + err[-2000:])
    print(f"{name:<8} log {size / 1e6:5.0f} MB: {elapsed:6.2f} s, {size / 1e6 / elapsed:5.0f} MB/s, "
          f"peak RSS {hwm / 1024:.1f} MB")
    print("         " + [line for line in err.splitlines() if "stopped:" in line][-1])
