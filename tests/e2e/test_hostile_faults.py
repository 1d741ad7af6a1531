"""Fault tests for tlsgate-policyd (docs/security.md): the daemon killed in
the middle of a request, and what Postfix's retry then gets; the event of
a retried request counted once by `tlsgate report`; a clean stop.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from hostile_daemon import (DUNNO, POLICYD, REJECT, TLSGATE, PolicyDaemon,
                            read_reply, request_bytes, wait_closed)

pytestmark = pytest.mark.skipif(not POLICYD.exists(),
                                reason=f"{POLICYD} not built")


@pytest.fixture
def daemon():
    d = PolicyDaemon("faults").start()
    yield d
    d.cleanup()


def test_killed_mid_request_retry_gets_same_answer(daemon):
    """Postfix sends a request, the daemon dies before answering (here:
    frozen, then SIGKILL), Postfix reconnects and asks again."""
    before = daemon.ask("alice@example.com", instance="k.1")
    assert before.startswith(REJECT)

    # killed while a request is half sent
    s = daemon.connect()
    s.sendall(request_bytes("alice@example.com", instance="k.2")[:60])
    daemon.kill()
    assert wait_closed(s, timeout=5)
    s.close()
    daemon.start()
    assert daemon.ask("alice@example.com", instance="k.2") == before

    # killed with a whole request sent but not answered
    os.kill(daemon.pid, signal.SIGSTOP)
    s = daemon.connect()
    s.sendall(request_bytes("alice@example.com", instance="k.3"))
    daemon.kill()
    s.settimeout(5)
    try:
        assert s.recv(65536) == b""
    except ConnectionResetError:
        pass
    s.close()
    daemon.start()
    assert daemon.ask("alice@example.com", instance="k.3") == before
    assert daemon.ask("alice@example.com", tls="TLSv1.3", instance="k.4") == DUNNO + b"\n\n"


def test_retried_request_counted_once_in_report(daemon, tmp_path):
    """The first daemon answered and logged the event, then died before
    Postfix read the answer; the retry to the new daemon logs the same
    event again. `tlsgate report` counts it once (same session=)."""
    assert daemon.ask("dora@example.com", instance="r.1").startswith(REJECT)
    daemon.kill()
    daemon.start()
    assert daemon.ask("dora@example.com", instance="r.1").startswith(REJECT)
    assert daemon.ask("dora@example.com", instance="r.2").startswith(REJECT)

    events = [l for l in daemon.log_text().splitlines()
              if "tlsgate: service=smtp user=dora@example.com" in l]
    assert len(events) == 3, events
    # as syslog would have written them
    log = tmp_path / "mail.log"
    log.write_text("".join(f"Nov 29 10:00:{i:02d} mx tlsgate-policyd[{i}]: {l.split(': ', 1)[1]}\n"
                           for i, l in enumerate(events)))
    out = subprocess.run([str(TLSGATE), "--no-config", "report", "--json", str(log)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["input"]["duplicates"] == 1
    (dora,) = [a for a in report["accounts"] if a["account"] == "dora@example.com"]
    assert dora["events"] == 2


def test_sigterm_answers_what_was_sent(daemon):
    """SIGTERM while requests are in flight: complete ones are answered,
    then the daemon exits 0 (under ASan: no leak or error report)."""
    s = daemon.connect()
    s.sendall(request_bytes("alice@example.com") * 5)
    daemon.proc.send_signal(signal.SIGTERM)
    got = b""
    s.settimeout(10)
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    s.close()
    assert got.count(REJECT) == 5, got
    assert daemon.proc.wait(timeout=10) == 0
