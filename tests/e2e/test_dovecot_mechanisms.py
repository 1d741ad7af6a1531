"""Every SASL mechanism Dovecot 2.3 offers, with real exchanges, against a
real Dovecot with the tlsgate passdb (docs/security.md, promise 11).

- PLAIN, LOGIN, CRAM-MD5, DIGEST-MD5, SCRAM-SHA-1, SCRAM-SHA-256 (client
  responses computed here with hashlib/hmac): in plaintext an unflagged
  account logs in and a `require` account is refused; over STARTTLS both
  log in.
- Enumeration: with a wrong password, a `require` account and an
  unflagged one go through the same steps and get the same final reply
  (SCRAM used to refuse a `require` account right after the client-first
  message, before the server's challenge, without any password).
- ANONYMOUS skips every passdb: the module warns at start; a plaintext
  ANONYMOUS login is not refused (documented, docs/dovecot.md).
- Master users: with a master passdb `result_success = continue`, a
  master login as an account that does not exist fails (Postfix SMTP AUTH
  through Dovecot SASL has no userdb lookup that would catch it).

EXTERNAL needs a client certificate on a TLS connection (never plaintext);
OAUTHBEARER/XOAUTH2 need an OAuth2 token server: not configured here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import imaplib
import os
import re

import pytest

import mailstack as ms
from dovecot_tlsgate import MODULE, PolicyDir, passdb_block

D = ms.DOMAIN
PW = "Secret-123"
REQ, OPT, ANON = f"req@{D}", f"opt@{D}", f"anonymous@{D}"
RULES = f"require {REQ}\n"
MECHS = ["PLAIN", "LOGIN", "CRAM-MD5", "DIGEST-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256"]


@pytest.fixture(scope="module")
def gate(session_stack_factory, tmp_path_factory):
    if not MODULE.is_file():
        pytest.skip(f"not built: {MODULE}")
    etc = tmp_path_factory.mktemp("mech-etc")
    pol = PolicyDir(etc, RULES)
    masters = etc / "master-users"
    masters.write_text("master:{PLAIN}master-pw\n")
    os.chmod(masters, 0o644)
    master_passdb = f"""passdb {{
  driver = passwd-file
  master = yes
  args = scheme=PLAIN {masters}
  result_success = continue
}}
"""
    st = session_stack_factory(
        name="mechs", start=False,
        dovecot_kw=dict(
            passdb_extra=master_passdb + passdb_block(pol.conf), auth_modules=[MODULE],
            config_extra=("auth_mechanisms = plain login cram-md5 digest-md5 "
                          "scram-sha-1 scram-sha-256 anonymous\n"
                          f"auth_anonymous_username = {ANON}\n"
                          "auth_master_user_separator = *\n")),
        postfix_kw=dict())
    for u in (REQ, OPT, ANON):
        st.add_user(u, PW)
    return st.start()


# ---- client side of each mechanism ----------------------------------------

def _h(name):
    return {"SCRAM-SHA-1": hashlib.sha1, "SCRAM-SHA-256": hashlib.sha256}[name]


class Exchange:
    """An imaplib authobject: answers each server challenge, records them."""

    def __init__(self, mech: str, user: str, password: str):
        self.mech, self.user, self.password = mech, user, password
        self.challenges: list[bytes] = []
        self.cnonce = base64.b64encode(os.urandom(18)).decode()

    def __call__(self, challenge: bytes) -> bytes:
        self.challenges.append(challenge)
        step = len(self.challenges)
        m = self.mech
        if m == "PLAIN":
            return f"\0{self.user}\0{self.password}".encode()
        if m == "LOGIN":
            return (self.user if step == 1 else self.password).encode()
        if m == "CRAM-MD5":
            digest = hmac.new(self.password.encode(), challenge, hashlib.md5).hexdigest()
            return f"{self.user} {digest}".encode()
        if m == "DIGEST-MD5":
            return self._digest(challenge) if step == 1 else b""
        if m.startswith("SCRAM-"):
            return self._scram(step, challenge)
        if m == "ANONYMOUS":
            return b"tester"
        raise ValueError(m)

    def _digest(self, challenge: bytes) -> bytes:
        fields = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge.decode()))
        realm, nonce = fields.get("realm", ""), fields["nonce"]
        cnonce, nc, qop, uri = self.cnonce, "00000001", "auth", "imap/mail.test"
        md5 = lambda b: hashlib.md5(b).digest()   # noqa: E731
        hexmd5 = lambda b: hashlib.md5(b).hexdigest()   # noqa: E731
        a1 = md5(f"{self.user}:{realm}:{self.password}".encode()) + \
            f":{nonce}:{cnonce}".encode()
        a2 = f"AUTHENTICATE:{uri}".encode()
        resp = hexmd5(f"{hexmd5(a1)}:{nonce}:{nc}:{cnonce}:{qop}:{hexmd5(a2)}".encode())
        return (f'username="{self.user}",realm="{realm}",nonce="{nonce}",cnonce="{cnonce}",'
                f'nc={nc},qop={qop},digest-uri="{uri}",response={resp},charset=utf-8').encode()

    def _scram(self, step: int, challenge: bytes) -> bytes:
        h = _h(self.mech)
        name = self.user.replace("=", "=3D").replace(",", "=2C")
        self.first_bare = getattr(self, "first_bare", f"n={name},r={self.cnonce}")
        if step == 1:
            return ("n,," + self.first_bare).encode()
        if step == 2:
            server_first = challenge.decode()
            f = dict(kv.split("=", 1) for kv in server_first.split(","))
            salted = hashlib.pbkdf2_hmac(h().name, self.password.encode(),
                                         base64.b64decode(f["s"]), int(f["i"]))
            client_key = hmac.new(salted, b"Client Key", h).digest()
            stored = h(client_key).digest()
            without_proof = f"c=biws,r={f['r']}"
            auth_msg = f"{self.first_bare},{server_first},{without_proof}".encode()
            sig = hmac.new(stored, auth_msg, h).digest()
            proof = bytes(a ^ b for a, b in zip(client_key, sig))
            return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()
        return b""


def authenticate(st, mech: str, user: str, password: str, mode: str = "plain"):
    """(typ, text, exchange) of an IMAP AUTHENTICATE."""
    ex = Exchange(mech, user, password)
    with st.imap(mode) as c:
        # imaplib's authenticate() raises on NO without the status: the
        # same steps, keeping it
        c.literal = imaplib._Authenticator(ex).process
        try:
            typ, data = c._simple_command("AUTHENTICATE", mech)
        except imaplib.IMAP4.error as e:
            return "BAD", str(e), ex
        return typ, data[-1].decode(errors="replace") if data and data[-1] else "", ex


# ---- tests ------------------------------------------------------------------

@pytest.mark.parametrize("mech", MECHS)
def test_mechanism_outcomes(gate, mech):
    typ, text, _ = authenticate(gate, mech, OPT, PW)
    assert typ == "OK", (mech, text)
    typ, text, _ = authenticate(gate, mech, REQ, PW)
    assert typ == "NO", (mech, text)
    typ, text, _ = authenticate(gate, mech, REQ, PW, mode="starttls")
    assert typ == "OK", (mech, text)


@pytest.mark.parametrize("mech", MECHS)
def test_wrong_password_does_not_tell_require_accounts(gate, mech):
    """Without the password, a `require` account looks like any other."""
    seen = {}
    for user in (REQ, OPT):
        typ, text, ex = authenticate(gate, mech, user, "wrong-" + PW)
        # strip the per-exchange nonces and salts; keep the shape
        shape = [re.findall(rb"(?:^|,)([a-z-]+)=", c) for c in ex.challenges]
        seen[user] = (typ, re.sub(r"\[[^]]*\] *", "", text), len(ex.challenges), shape)
    assert seen[REQ] == seen[OPT], seen
    assert seen[REQ][0] == "NO"
    if mech.startswith("SCRAM-"):
        assert seen[REQ][2] == 2, seen    # the server-first message came


def test_anonymous_is_not_seen_by_the_passdb_and_is_warned_about(gate):
    gate.dovecot.wait_log(r"auth_mechanisms has ANONYMOUS: those logins skip every passdb",
                          since=0)
    typ, text, _ = authenticate(gate, "ANONYMOUS", "", "")
    assert typ == "OK", text      # documented: tlsgate cannot refuse it


def test_master_login_as_nonexistent_user_fails(gate):
    # Postfix SMTP AUTH through Dovecot SASL: no userdb lookup afterwards
    with gate.smtp("submission", "plain") as c:
        code, text = c.try_login(f"nosuch@{D}*master", "master-pw")
    assert code == 535, (code, text)
    with gate.smtp("submission", "plain") as c:
        code, text = c.try_login(f"{OPT}*master", "master-pw")
    assert code == 235, (code, text)
    with gate.smtp("submission", "plain") as c:
        code, text = c.try_login(f"{REQ}*master", "master-pw")
    assert code == 535, (code, text)
