#!/usr/bin/python3
"""userdb-bench - tlsgate-policyd with `userdb =` (docs/benchmarks.md,
section "tlsgate-policyd with the account database"). Run by `make bench`
(target bench-userdb), as root.

A real Dovecot 2.3 (tests/e2e/mailstack.py) with a passwd-file userdb of
all ACCOUNTS accounts of the policyd-load model plus the unlisted users it
draws (--x-users 1 per domain), none of them with a tlsgate_mode field, so
that every reply the load generator checks is still the policy files'
verdict; tlsgate-policyd asks it on the dedicated tlsgate-userdb listener.

Runs, K = 16 (bench/policyd-load.c, every reply checked):
  files     tlsgate-policyd without userdb
  warm      with userdb, after every account was looked up once (cache of
            all ACCOUNTS + unlisted users, TTL 1 h)
  cold      with userdb_cache_ttl = 0: every request with a login is a
            look-up in Dovecot
and `doveadm user -a SOCKET` doing LOOKUPS of the same look-ups in one
process, for comparison with the cold rate. Prints one line per run and
writes them to BUILD/bench/userdb/results.txt.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "e2e"))
import mailstack  # noqa: E402


def kb(pid: int, field: str) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def say(results, text: str) -> None:
    print(text, flush=True)
    with open(results, "a") as f:
        f.write(text + "\n")


def warm(port: int, users: list[str], k: int = 16, batch: int = 200) -> float:
    """Asks once about each user (pipelined, k connections); returns seconds."""
    t0 = time.monotonic()
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(k)]
    chunks = [users[i::k] for i in range(k)]
    pos = [0] * k
    pending = [0] * k
    bufs = [b""] * k
    while any(pos[i] < len(chunks[i]) or pending[i] for i in range(k)):
        for i, s in enumerate(socks):
            if pending[i] == 0 and pos[i] < len(chunks[i]):
                part = chunks[i][pos[i]:pos[i] + batch]
                pos[i] += len(part)
                s.sendall("".join(
                    "request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=192.0.2.1\n"
                    f"sasl_method=PLAIN\nsasl_username={u}\nencryption_protocol=TLSv1.3\n\n"
                    for u in part).encode())
                pending[i] = len(part)
            if pending[i]:
                bufs[i] += s.recv(1 << 20)
                n = bufs[i].count(b"\n\n")
                if n:
                    pending[i] -= n
                    bufs[i] = bufs[i][bufs[i].rfind(b"\n\n") + 2:]
    for s in socks:
        s.close()
    return time.monotonic() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--accounts", type=int, default=1000000)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--lookups", type=int, default=20000)
    ap.add_argument("--cache-size", type=int, default=None,
                    help="userdb_cache_size of the warm run (default: tlsgate's)")
    a = ap.parse_args()
    build = (REPO / a.build).resolve()
    load, policyd = build / "bench/policyd-load", build / "tlsgate-policyd"
    work = build / "bench" / "userdb"
    if work.exists():
        subprocess.run(["rm", "-rf", str(work)], check=True)
    work.mkdir(parents=True)
    os.chmod(work, 0o755)
    mailstack.make_traversable(work)
    results = work / "results.txt"
    n = a.accounts
    domains = max(n // 100, 10)
    say(results, f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} {os.cpu_count()} cores, "
                 f"load average {' '.join(open('/proc/loadavg').read().split()[:3])}")

    policy = work / "policy.conf"
    subprocess.run([str(load), "gen", str(n), str(policy)], check=True)
    os.chmod(policy, 0o644)
    users = [f"u{i}@d{i % domains}.example" for i in range(n)] + \
            [f"x0@d{d}.example" for d in range(domains)]

    certs = mailstack.make_cert_set(work / "certs")
    dc = mailstack.Dovecot(work / "dovecot", certs.server, config_extra="""
service auth {
  vsz_limit = 4G
  unix_listener tlsgate-userdb {
    user = nobody
    mode = 0600
  }
}
""")
    with open(dc.passwd, "w") as f:
        for u in users:
            f.write(f"{u}:{{PLAIN}}pw::::::\n")
    sock = dc.base_dir / "tlsgate-userdb"
    procs = []

    def start_policyd(name: str, extra: str):
        port = mailstack.free_port()
        conf = work / f"{name}.conf"
        conf.write_text(f"policy = {policy}\nuser = nobody\nlisten = inet:127.0.0.1:{port}\n"
                        f"message = \"TLS required\"\nlog_tls = no\n{extra}")
        os.chmod(conf, 0o644)
        log = open(work / f"{name}.log", "wb")
        p = subprocess.Popen([str(policyd), "-c", str(conf), "-f"], stdout=log, stderr=log)
        procs.append(p)
        # it binds first, then loads the policy, then logs "listening on"
        mailstack.wait_for(lambda: b"listening on" in (work / f"{name}.log").read_bytes(), 120,
                           what="tlsgate-policyd")
        return p, port

    def run(name: str, port: int, pid: int) -> None:
        out = subprocess.run([str(load), "run", "-c", f"inet:127.0.0.1:{port}", "-k", "16",
                              "-t", str(a.seconds), "-a", str(n), "--x-users", "1",
                              "--cpu", str(pid), "--name", name],
                             capture_output=True, text=True)
        say(results, out.stdout.strip() + (f" (exit {out.returncode})" if out.returncode else ""))

    failed = 0
    try:
        t0 = time.monotonic()
        dc.start(timeout=300)
        dc.doveadm("user", "-a", str(sock), users[0])   # loads the passwd-file
        say(results, f"dovecot with {len(users)} passwd-file accounts: ready in "
                     f"{time.monotonic() - t0:.1f} s")

        p, port = start_policyd("files", "")
        run("policyd files only", port, p.pid)
        say(results, f"policyd files only: RSS {kb(p.pid, 'VmRSS')} kB")
        p.terminate(); p.wait()

        size = "" if a.cache_size is None else f"userdb_cache_size = {a.cache_size}\n"
        p, port = start_policyd("warm", f"userdb = dovecot:{sock}\nuserdb_cache_ttl = 1h\n{size}")
        took = warm(port, users)
        say(results, f"warm-up: {len(users)} look-ups through tlsgate-policyd in {took:.1f} s "
                     f"({len(users) / took:,.0f}/s)")
        run("policyd userdb warm", port, p.pid)
        say(results, f"policyd userdb warm: RSS {kb(p.pid, 'VmRSS')} kB with "
                     f"{len(users)} cached accounts")
        p.terminate(); p.wait()

        p, port = start_policyd("cold", f"userdb = dovecot:{sock}\nuserdb_cache_ttl = 0\n")
        run("policyd userdb cold (no cache)", port, p.pid)
        p.terminate(); p.wait()

        sample = users[: a.lookups]
        t0 = time.monotonic()
        out = subprocess.run(["doveadm", "-c", str(dc.conf), "user", "-a", str(sock),
                              "-f", "uid", *sample], capture_output=True, text=True)
        took = time.monotonic() - t0
        ok = out.returncode == 0 and out.stdout.count("\n") >= len(sample)
        say(results, f"doveadm user -a tlsgate-userdb, {len(sample)} users in one process: "
                     f"{took:.2f} s ({len(sample) / took:,.0f}/s){'' if ok else ' FAILED'}")
        failed += not ok
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        dc.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
