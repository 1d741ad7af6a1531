"""A flood of idle connections must not lock Postfix out of tlsgate-policyd
(docs/security.md, promise 2).

With `default_action=DUNNO` (the audit-phase setting of docs/postfix.md),
Postfix takes the mail when the policy server does not answer. Earlier,
idle connections up to `max_connections` made the daemon close every new
connection at once, Postfix's among them: plaintext mail from a `require`
account went through. Now a peer (client address, or uid on a unix socket)
holds at most `max_connections_per_peer` connections, and a full server
closes its least recently active connection to take a new one. The attack
runs from 127.0.0.1, the address Postfix connects from (the worst case: one
peer for both), and from 127.0.0.2; a real Postfix session then still gets
`530`.
"""

from __future__ import annotations

import socket

import pytest

import mailstack
from policyd_daemon import POLICYD, Policyd

PW = "Secret-123"
POLICY = "require  req@example.test\n"
MAX_CONNECTIONS = 60
PER_PEER = 20


@pytest.fixture(scope="module")
def pd(tmp_path_factory):
    if not POLICYD.is_file():
        pytest.skip(f"not built: {POLICYD}")
    d = Policyd(tmp_path_factory.mktemp("flood"), POLICY, conf_extra=(
        f"max_connections = {MAX_CONNECTIONS}\n"
        f"max_connections_per_peer = {PER_PEER}\n")).start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def gate(session_stack_factory, pd):
    service = (f"{{ inet:{mailstack.SERVER_ADDR}:{pd.port}, default_action=DUNNO, "
               f"timeout=5s }}")
    st = session_stack_factory(name="flood-stack", start=False,
                               postfix_kw=dict(policy_service=service))
    st.add_user("req@example.test", PW)
    st.add_user("rcpt@example.test", PW)
    return st.start()


def flood(pd, count: int, source: str) -> list[socket.socket]:
    """`count` connections that send nothing, kept open."""
    socks = []
    for _ in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((source, 0))
        s.connect((mailstack.SERVER_ADDR, pd.port))
        socks.append(s)
    return socks


def smtp_rcpt_reply(st) -> tuple[int, str]:
    with st.smtp("submission", "plain") as c:
        code, text = c.try_login("req@example.test", PW)
        assert code == 235, (code, text)
        replies = c.send_simple("req@example.test", ["rcpt@example.test"])
    assert replies[0][0] == 250, replies
    return replies[1]


@pytest.mark.parametrize("source", ["127.0.0.1", "127.0.0.2"])
def test_flood_then_postfix_still_gets_530(gate, pd, source):
    mark = pd.mark()
    socks = flood(pd, 3 * MAX_CONNECTIONS, source)
    try:
        pd.wait_log(r"max_connections", since=mark)     # the flood is in
        code, text = smtp_rcpt_reply(gate)
        assert code == 530 and text.startswith("5.7.0 "), (code, text)
        pd.wait_log(r"at max_connections_per_peer \(%d\), last %s" % (PER_PEER, source),
                    since=mark)
        ev = pd.wait_events(1, since=mark, user="req@example.test")[0]
        assert ev["verdict"] == "reject" and ev["tls"] == "none"
        # the flood keeps at most PER_PEER connections open
        open_count = 0
        for s in socks:
            s.setblocking(False)
            try:
                open_count += s.recv(1) != b""
            except BlockingIOError:
                open_count += 1
        assert open_count <= PER_PEER, open_count
    finally:
        for s in socks:
            s.close()


def test_flood_from_many_peers_then_postfix_still_gets_530(gate, pd):
    """Over max_connections from several addresses (each within its
    per-peer limit): the server closes its least recently active
    connections, and Postfix is still answered."""
    mark = pd.mark()
    socks = []
    try:
        for i in range(4):
            socks += flood(pd, PER_PEER, f"127.0.1.{i + 1}")
        pd.wait_log(r"max_connections \(%d\) reached" % MAX_CONNECTIONS, since=mark)
        code, text = smtp_rcpt_reply(gate)
        assert code == 530 and text.startswith("5.7.0 "), (code, text)
        pd.wait_log(r"to make room: max_connections \(%d\) reached" % MAX_CONNECTIONS,
                    since=mark)
    finally:
        for s in socks:
            s.close()
