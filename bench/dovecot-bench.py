#!/usr/bin/python3
"""dovecot-bench - IMAP logins per second through a real Dovecot 2.3, with
and without the `tlsgate` passdb, and the login latency while a
1,000,000-account policy reloads.

Two Dovecot instances with the same configuration run side by side; the
second one adds the tlsgate passdb (policy: 1,000,000 accounts). Rounds
alternate between them (A B B A A B ...), each round K client processes
do IMAP connect + LOGIN + LOGOUT for S seconds from 127.0.0.2, over
STARTTLS and in plaintext (plaintext accounts have an `audit` rule, so
those logins write an event line too). Prints logins/s per round, the
median of each side and the overhead.

Then the auth process alone, where the module runs: AUTH PLAIN requests
over Dovecot's auth-client protocol (what Postfix speaks), 2 connections
with 32 requests in flight each, secured=tls and plaintext, alternating
likewise; requests/s and the auth process's CPU time per request.

Then the reload check: one round against the tlsgate instance while the
policy file is replaced twice (each replacement makes the module reload
1,000,000 accounts), compared with a round without reloads: the slowest
login and the 99th percentile.

Usage: bench/dovecot-bench.py [--clients K] [--seconds S] [--rounds R]
       [--accounts N] [--decide-bench PATH] [--auth-only] [--no-log-tls]
Needs root (it starts Dovecot) and build/dovecot-plugin/libauthdb_tlsgate.so
(with $TLSGATE_DOVECOT=PREFIX: that Dovecot and build/dovecot-VERSION/, see
bench/dovecot.mk).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "e2e"))

import mailstack as ms  # noqa: E402
from dovecot_tlsgate import MODULE, PolicyDir, passdb_block  # noqa: E402

PW = "Bench-pw-1"
BENCH_USERS = 32
DOMAIN = "bench.test"


def write_policy(path: Path, accounts: int) -> None:
    """accounts lines of `require userN@bench.test`; the bench's own
    plaintext accounts get `audit` (so that their logins succeed)."""
    with open(path, "w") as f:
        f.write(f"require @{DOMAIN}\n")
        for i in range(BENCH_USERS):
            f.write(f"audit plain{i}@{DOMAIN}\n")
        for i in range(accounts):
            f.write(f"require user{i}@{DOMAIN}\n")
    os.chmod(path, 0o644)


def login_loop(args) -> tuple[int, int, list[float]]:
    """One client process: LOGIN+LOGOUT until `until`. Returns (ok,
    errors, latencies)."""
    port, mode, ca, users, until, seed = args
    ctx = ms.tls_context(ca)
    ok = err = 0
    lat: list[float] = []
    i = seed
    while time.time() < until:
        user = users[i % len(users)]
        i += 1
        t0 = time.monotonic()
        try:
            c = ms.ImapClient(port=port, ssl_context=ctx)
            if mode == "starttls":
                c.starttls(ctx)
            typ, _ = c.try_login(user, PW)
            c.logout()
        except Exception:
            typ = "ERR"
        lat.append(time.monotonic() - t0)
        if typ == "OK":
            ok += 1
        else:
            err += 1
    return ok, err, lat


def auth_loop(args) -> tuple[int, int]:
    """One auth-client connection (the protocol Postfix uses) to the auth
    process only: AUTH PLAIN requests, WINDOW in flight, until `until`."""
    import base64
    import socket
    port, secured, users, until, seed = args
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = s.makefile("rb")
    s.sendall(f"VERSION\t1\t2\nCPID\t{os.getpid()}\n".encode())
    while f.readline().strip() != b"DONE":
        pass
    extra = "\tsecured=tls" if secured else ""
    resp = [base64.b64encode(f"\0{u}\0{PW}".encode()).decode() for u in users]
    ok = err = 0
    rid = 0
    window = 32

    def send():
        nonlocal rid
        rid += 1
        u = (rid + seed) % len(users)
        s.sendall(f"AUTH\t{rid}\tPLAIN\tservice=imap\tlip=127.0.0.1\trip=127.0.0.2"
                  f"{extra}\tresp={resp[u]}\n".encode())

    for _ in range(window):
        send()
    inflight = window
    while inflight:
        line = f.readline()
        if not line:
            break
        inflight -= 1
        if line.startswith(b"OK\t"):
            ok += 1
        else:
            err += 1
        if time.time() < until:
            send()
            inflight += 1
    s.close()
    return ok, err


def run_auth_round(pool, dovecot, secured, clients, seconds):
    users = [f"{'tls' if secured else 'plain'}{i}@{DOMAIN}" for i in range(BENCH_USERS)]
    until = time.time() + seconds
    t0 = time.time()
    res = pool.map(auth_loop, [(dovecot.ports["auth"], secured, users, until, k * 5)
                               for k in range(clients)])
    elapsed = time.time() - t0
    return sum(r[0] for r in res) / elapsed, sum(r[1] for r in res), sum(r[0] for r in res)


def run_round(pool, dovecot, mode, clients, seconds, ca):
    users = [f"{'tls' if mode == 'starttls' else 'plain'}{i}@{DOMAIN}"
             for i in range(BENCH_USERS)]
    start = time.time() + 0.2
    until = start + seconds
    jobs = [(dovecot.ports["imap"], mode, str(ca), users, until, k * 7) for k in range(clients)]
    t0 = time.time()
    res = pool.map(login_loop, jobs)
    elapsed = time.time() - t0
    ok = sum(r[0] for r in res)
    err = sum(r[1] for r in res)
    lat = sorted(x for r in res for x in r[2])
    return ok / elapsed, err, lat


def tree_cpu_seconds(dovecot) -> float:
    """CPU time of the whole instance: every live process, plus the
    children the master has already reaped (imap-login and imap processes
    come and go with each login)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    master = dovecot.master_pid
    for pid in dovecot.processes():
        try:
            f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(f[11]) + int(f[12])
        if pid == master:
            total += int(f[13]) + int(f[14])
    return total / tick


def auth_cpu_seconds(dovecot) -> float:
    """CPU time (user+system) the instance's auth process used so far."""
    fields = open(f"/proc/{dovecot.auth_pid()}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    return sorted_vals[min(len(sorted_vals) - 1, int(len(sorted_vals) * p))]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=int(os.environ.get("DOVECOT_BENCH_CLIENTS", 4)))
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("DOVECOT_BENCH_SECONDS", 4)))
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("DOVECOT_BENCH_ROUNDS", 6)))
    ap.add_argument("--accounts", type=int, default=int(os.environ.get("DOVECOT_BENCH_ACCOUNTS", 1000000)))
    ap.add_argument("--no-log-tls", action="store_true",
                    help="log_tls = no (TLS logins write no event line)")
    ap.add_argument("--auth-only", action="store_true",
                    help="skip the IMAP rounds and the reload round")
    ap.add_argument("--decide-bench", help="build/bench/dovecot-decide-bench: also time the "
                    "module's own work per login over the same policy")
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("dovecot-bench: needs root (starts Dovecot)", file=sys.stderr)
        return 2
    if not MODULE.is_file():
        print(f"dovecot-bench: {MODULE} missing: run make", file=sys.stderr)
        return 2

    top = Path(tempfile.mkdtemp(prefix="tlsgate-dovecot-bench-"))
    os.chmod(top, 0o755)
    stacks = []
    try:
        certs = ms.make_cert_set(top / "certs")
        pol = PolicyDir(top / "etc", None, policy_name="policy.conf",
                        log_tls=not a.no_log_tls)
        t0 = time.monotonic()
        write_policy(pol.policy, a.accounts)
        print(f"policy: {a.accounts} accounts + {BENCH_USERS} audit accounts, "
              f"{pol.policy.stat().st_size / 1e6:.1f} MB, written in {time.monotonic() - t0:.1f}s")

        def make(name, passdb):
            # vsz_limit: the 1M-account policy twice while reloading (docs/dovecot.md)
            d = ms.Dovecot(top / name, certs.server, passdb_extra=passdb,
                           auth_modules=[MODULE] if passdb else (), name=name,
                           config_extra="service auth {\n  vsz_limit = 1G\n}\n")
            for i in range(BENCH_USERS):
                d.add_user(f"tls{i}@{DOMAIN}", PW)
                d.add_user(f"plain{i}@{DOMAIN}", PW)
            stacks.append(d)
            d.start()
            return d

        base = make("without", "")
        tg = make("with", passdb_block(pol.conf))
        tg.wait_log(r"tlsgate passdb: policy loaded from", timeout=120)
        print("dovecot: 2 instances (same config; 'with' adds the tlsgate passdb)")
        print(f"clients: {a.clients} processes from 127.0.0.2, {a.seconds}s per round, "
              f"{a.rounds} rounds per side and mode, alternating")

        server_cpu: dict[str, float] = {}
        ctx = mp.get_context("fork")
        with ctx.Pool(a.clients) as pool:
            for mode in (() if a.auth_only else ("starttls", "plain")):
                rates = {"without": [], "with": []}
                cpu = {"without": 0.0, "with": 0.0}
                tree = {"without": 0.0, "with": 0.0}
                logins = {"without": 0, "with": 0}
                errors = 0
                for r in range(a.rounds):
                    order = (base, tg) if r % 2 == 0 else (tg, base)
                    for d in order:
                        c0, t0 = auth_cpu_seconds(d), tree_cpu_seconds(d)
                        rate, err, lat = run_round(pool, d, mode, a.clients, a.seconds, certs.ca.cert)
                        cpu[d.name] += auth_cpu_seconds(d) - c0
                        tree[d.name] += tree_cpu_seconds(d) - t0
                        logins[d.name] += len(lat)
                        errors += err
                        rates[d.name].append(rate)
                        print(f"  {mode:8} round {r + 1} {d.name:7}: {rate:8.1f} logins/s"
                              + (f" ({err} failed)" if err else ""))
                mw = statistics.median(rates["without"])
                mt = statistics.median(rates["with"])
                # each round's two runs are back to back: their ratio cancels
                # most of the drift of other load on the machine
                paired = statistics.median(t / w for w, t in zip(rates["without"], rates["with"]))
                print(f"{mode}: median without {mw:.1f}/s, with tlsgate {mt:.1f}/s, "
                      f"overhead {100 * (mw - mt) / mw:+.2f}%; median of paired rounds "
                      f"{100 * (1 - paired):+.2f}% (failed logins: {errors})")
                cw = 1e6 * cpu["without"] / max(1, logins["without"])
                ct = 1e6 * cpu["with"] / max(1, logins["with"])
                print(f"{mode}: auth process CPU per login: without {cw:.0f} us, "
                      f"with tlsgate {ct:.0f} us ({logins['without']} / {logins['with']} logins)")
                tw = 1e6 * tree["without"] / max(1, logins["without"])
                tt = 1e6 * tree["with"] / max(1, logins["with"])
                server_cpu[mode] = tw
                print(f"{mode}: all Dovecot processes, CPU per login: without {tw:.0f} us, "
                      f"with tlsgate {tt:.0f} us")

            # the auth process alone (where the module runs): AUTH PLAIN
            # over the auth-client protocol, alternating likewise
            for secured in (True, False):
                mode = "secured=tls" if secured else "plaintext"
                rates = {"without": [], "with": []}
                cpu = {"without": 0.0, "with": 0.0}
                count = {"without": 0, "with": 0}
                errors = 0
                for r in range(a.rounds):
                    order = (base, tg) if r % 2 == 0 else (tg, base)
                    for d in order:
                        c0 = auth_cpu_seconds(d)
                        rate, err, n = run_auth_round(pool, d, secured, 2, a.seconds)
                        cpu[d.name] += auth_cpu_seconds(d) - c0
                        count[d.name] += n
                        errors += err
                        rates[d.name].append(rate)
                        print(f"  auth {mode:11} round {r + 1} {d.name:7}: {rate:8.0f} auth/s")
                mw = statistics.median(rates["without"])
                mt = statistics.median(rates["with"])
                paired = statistics.median(t / w for w, t in zip(rates["without"], rates["with"]))
                print(f"auth only, {mode}: median without {mw:.0f}/s, with tlsgate {mt:.0f}/s, "
                      f"overhead {100 * (mw - mt) / mw:+.2f}%; median of paired rounds "
                      f"{100 * (1 - paired):+.2f}% (failed: {errors})")
                cw = 1e6 * cpu["without"] / max(1, count["without"])
                ct = 1e6 * cpu["with"] / max(1, count["with"])
                print(f"auth only, {mode}: auth process CPU per request: without {cw:.1f} us, "
                      f"with tlsgate {ct:.1f} us ({count['without']} / {count['with']} requests)")

            # reload while logging in
            if a.auth_only:
                return 0
            _, _, lat_quiet = run_round(pool, tg, "plain", a.clients, a.seconds, certs.ca.cert)
            mark = tg.log_mark()
            stop = threading.Event()

            reload_seconds = 3 * a.seconds

            def replace_policy():
                for _ in range(2):
                    time.sleep(reload_seconds / 3)
                    if stop.is_set():
                        return
                    tmp = pol.policy.with_suffix(".new")
                    shutil.copy2(pol.policy, tmp)
                    os.replace(tmp, pol.policy)

            th = threading.Thread(target=replace_policy)
            th.start()
            _, err, lat_reload = run_round(pool, tg, "plain", a.clients, reload_seconds,
                                           certs.ca.cert)
            stop.set()
            th.join()
            reloads = tg.log(mark).count("policy reloaded from")
            if reloads == 0:
                print("reload: no reload was put in force during the round", file=sys.stderr)
            print(f"reload: {reloads} reloads of {a.accounts} accounts during a {reload_seconds:.0f}s round; "
                  f"login latency p50/p99/max: quiet {1000 * pct(lat_quiet, .5):.1f}/"
                  f"{1000 * pct(lat_quiet, .99):.1f}/{1000 * lat_quiet[-1]:.1f} ms, "
                  f"reloading {1000 * pct(lat_reload, .5):.1f}/{1000 * pct(lat_reload, .99):.1f}/"
                  f"{1000 * lat_reload[-1]:.1f} ms (failed logins: {err})")
        if a.decide_bench:
            # the module's share: its own work per login over the same
            # policy, against the CPU a whole login costs Dovecot
            out = ms.run([a.decide_bench, str(pol.conf), str(a.accounts), "2000000"],
                         timeout=300).stdout.strip()
            print(out)
            m = re.search(r"([0-9.]+) us each", out)
            if m:
                us = float(m.group(1))
                for mode, cpu_us in server_cpu.items():
                    print(f"{mode}: the module's work is {us:.2f} us of {cpu_us:.0f} us of "
                          f"Dovecot CPU per login = {100 * us / cpu_us:.3f}%")
    finally:
        for d in stacks:
            d.stop()
        shutil.rmtree(top, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
