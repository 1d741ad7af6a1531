#!/usr/bin/python3
"""dovecot-provider-bench - two timings of the `tlsgate` passdb that
matter where many customers share one Dovecot, measured against a real
Dovecot 2.3:

- penalty: with Dovecot's auth penalty on (its default), N refused
  plaintext logins of different accounts from 127.0.0.2, then a STARTTLS
  login from the same address: the seconds each takes;
- reload: the seconds from a policy edit to `policy reloaded` in Dovecot's
  log while no logins arrive (R edits, 1.3-2.3 s apart, require and audit
  in turn).

Usage: bench/dovecot-provider-bench.py [--module PATH] [--refusals N]
       [--edits R]
--module: the libauthdb_tlsgate.so to load (default: the build tree's),
e.g. one built from an older commit to compare.
Needs root (it starts Dovecot).
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "e2e"))

import mailstack as ms  # noqa: E402
from dovecot_tlsgate import MODULE, PolicyDir, passdb_block  # noqa: E402

D = ms.DOMAIN
PW = "Secret-123"


def start(base: Path, module: Path, certs, name: str, **kw) -> tuple[ms.Stack, PolicyDir]:
    pol = PolicyDir(base / (name + "-etc"), f"require @{D}\n")
    # Dovecot loads auth modules by file name
    mod_dir = base / (name + "-module")
    mod_dir.mkdir()
    shutil.copy2(module, mod_dir / "libauthdb_tlsgate.so")
    st = ms.Stack(base / name, certs.server, postfix=False,
                  dovecot_kw=dict(passdb_extra=passdb_block(pol.conf),
                                  auth_modules=[mod_dir / "libauthdb_tlsgate.so"], **kw))
    return st, pol


def timed_login(st: ms.Stack, user: str, mode: str) -> tuple[str, float]:
    t0 = time.monotonic()
    with st.imap(mode, timeout=60) as c:
        typ = c.try_login(user, PW)[0]
    return typ, time.monotonic() - t0


def penalty(base: Path, module: Path, certs, refusals: int) -> None:
    st, _ = start(base, module, certs, "penalty", auth_penalty=True)
    users = [f"nat{i}@{D}" for i in range(refusals + 1)]
    for u in users:
        st.add_user(u, PW)
    st.start()
    try:
        times = []
        for u in users[:-1]:
            typ, t = timed_login(st, u, "plain")
            times.append(t)
            print(f"penalty: refused plaintext login {u}: {typ} {t:.2f} s")
        typ, t = timed_login(st, users[-1], "starttls")
        print(f"penalty: STARTTLS login from the same address after {refusals} refusals: "
              f"{typ} {t:.2f} s (refusals took {min(times):.2f}-{max(times):.2f} s each)")
    finally:
        st.stop()


def reload(base: Path, module: Path, certs, edits: int) -> None:
    st, pol = start(base, module, certs, "reload")
    st.add_user(f"alice@{D}", PW)
    st.start()
    d = st.dovecot
    delays = []
    try:
        for i in range(edits):
            time.sleep(1.3 + random.random())
            mark = d.log_mark()
            t0 = time.monotonic()
            pol.write("main.conf", ("audit" if i % 2 == 0 else "require") + f" @{D}\n")
            try:
                d.wait_log(r"tlsgate passdb: policy reloaded from", timeout=8, since=mark)
                delays.append(time.monotonic() - t0)
            except TimeoutError:
                delays.append(None)
        shown = " ".join("none" if x is None else f"{x:.2f}" for x in delays)
        print(f"reload: edit -> 'policy reloaded', no logins, {edits} edits (s): {shown}")
        done = [x for x in delays if x is not None]
        if done:
            print(f"reload: min {min(done):.2f} s, median {statistics.median(done):.2f} s, "
                  f"max {max(done):.2f} s; not reloaded within 8 s: {len(delays) - len(done)}")
        else:
            print("reload: never reloaded within 8 s without logins")
    finally:
        st.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--module", type=Path, default=MODULE)
    ap.add_argument("--refusals", type=int, default=6)
    ap.add_argument("--edits", type=int, default=10)
    args = ap.parse_args()
    if not args.module.is_file():
        print(f"{args.module} not found (make)", file=sys.stderr)
        return 1
    base = Path(tempfile.mkdtemp(prefix="tlsgate-provider-bench-"))
    ms.make_traversable(base)
    try:
        certs = ms.make_cert_set(base / "certs")
        print(f"module: {args.module}")
        penalty(base, args.module, certs, args.refusals)
        reload(base, args.module, certs, args.edits)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
