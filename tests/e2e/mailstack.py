"""mailstack - throwaway Dovecot 2.3 + Postfix 3.7 instances and protocol clients
for the tlsgate end-to-end tests (Python 3.11, stdlib only, run as root).

Quick start (see HARNESS.md for more)::

    from mailstack import make_cert_set, Dovecot, Postfix, Stack

    certs = make_cert_set(tmp / "certs")          # CA + server cert variants
    with Stack(tmp / "stack", certs.server,
               dovecot_kw=dict(passdb_extra=TLSGATE_PASSDB,
                               auth_modules=["build/dovecot-plugin/libauthdb_tlsgate.so"]),
               postfix_kw=dict(policy_service=10040), ca=certs.ca.cert) as st:
        st.dovecot.add_user("alice@example.test", "secret", extra="tlsgate_mode=require")
        st.start()
        with st.imap() as c:                      # plaintext, from 127.0.0.2
            assert c.try_login("alice@example.test", "secret")[0] == "NO"

What runs where
  * Servers listen on 127.0.0.1 only, on ports picked at random from
    20000-32767 (outside the kernel's ephemeral range) after a bind test.
  * Clients connect from 127.0.0.2 by default, so Dovecot does not treat
    them as "secured" (it does when remote IP == local IP).
  * Postfix never delivers anywhere but Dovecot's LMTP on 127.0.0.1:
    default_transport, relay_transport and local_transport are `error:`.
    No DNS lookups (smtpd_peername_lookup = no, numeric addresses only).

What is written where
  * Everything lives below the directory given to each object (pytest's
    tmp_path_factory in conftest.py, i.e. /tmp/tlsgate-e2e/run-XXXX/tmp/,
    the 3 previous runs are kept): configs, logs, sockets, queue, mail.
  * Unavoidable: the directories leading to it are made traversable
    (o+x, never readable) because Dovecot's auth process (user dovecot),
    mail processes (user `mail`, uid 8, exists on every Debian) and Postfix
    daemons (user postfix) must reach files in there. (Not under
    /tmp/pytest-of-root: every new pytest session resets that to 0700.)
  * Nothing in /etc is modified: as root, `postfix -c DIR` and
    `sendmail -C DIR` do not require DIR in alternate_config_directories
    (that check only applies to non-root callers; verified on 3.7.11).
  * auth_module_dir/auth_modules: Dovecot runs inside `unshare -m` with a
    private bind mount of <dir>/dovecot/modules-auth over
    /usr/lib/dovecot/modules/auth (copies of the system modules + ours).
    The system directory itself is never changed and the mount is gone
    when the instance stops.

Process hygiene: every instance registers itself; stop() terminates the
master and its children at once (Dovecot's log then ends with "Killed with
signal 15" warnings: read logs before stop()), then SIGKILLs and reaps any
process of its tree that survived. An atexit
hook stops whatever is still running; Dovecot also gets PDEATHSIG so it dies
with the test process even on SIGKILL.
"""

from __future__ import annotations

import atexit
import base64
import ctypes
import datetime as _dt
import imaplib
import os
import poplib
import random
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional, Union

import dovecot24

SERVER_ADDR = "127.0.0.1"
CLIENT_ADDR = "127.0.0.2"
DEFAULT_TIMEOUT = 10.0
SERVER_NAME = "mail.test"
DOMAIN = "example.test"
SYSTEM_AUTH_MODULE_DIR = "/usr/lib/dovecot/modules/auth"

PathLike = Union[str, os.PathLike]


class HarnessError(RuntimeError):
    """Something in the harness (not the code under test) went wrong."""


# --------------------------------------------------------------------------
# small utilities
# --------------------------------------------------------------------------

def run(cmd, *, timeout: float = 60, check: bool = True, input=None, env=None,
        cwd=None) -> subprocess.CompletedProcess:
    """Run a command, capture text output; raise HarnessError with output."""
    try:
        cp = subprocess.run([str(c) for c in cmd], input=input, env=env, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise HarnessError(f"timeout after {timeout}s: {cmd}\n{e.stdout}\n{e.stderr}")
    if check and cp.returncode != 0:
        raise HarnessError(f"command failed ({cp.returncode}): {' '.join(map(str, cmd))}\n"
                           f"stdout: {cp.stdout}\nstderr: {cp.stderr}")
    return cp


def wait_for(pred: Callable[[], object], timeout: float = DEFAULT_TIMEOUT,
             interval: float = 0.02, what: str = "condition"):
    """Poll pred() until it returns something truthy; return it."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
        interval = min(interval * 1.5, 0.2)


_port_lock = threading.Lock()
_ports_handed_out: set[int] = set()


def free_port(host: str = SERVER_ADDR) -> int:
    """A TCP port on host that nothing listens on, outside the ephemeral range."""
    with _port_lock:
        for _ in range(500):
            port = random.randint(20000, 32767)
            if port in _ports_handed_out:
                continue
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((host, port))
            except OSError:
                continue
            finally:
                s.close()
            if port in listening_ports():
                continue
            _ports_handed_out.add(port)
            return port
    raise HarnessError("no free port found")


def listening_ports(addr: str = SERVER_ADDR) -> set[int]:
    """Ports in LISTEN state on addr (or 0.0.0.0), from /proc/net/tcp (no traffic)."""
    want = {_hexaddr(addr), "00000000"}
    ports = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            ip, port = parts[1].split(":")
            if parts[3] == "0A" and ip in want:
                ports.add(int(port, 16))
    return ports


def _hexaddr(addr: str) -> str:
    return "%08X" % int.from_bytes(socket.inet_aton(addr), "little")


def make_traversable(path: Path) -> None:
    """Add o+x (search only) to path and its parents up to /, where missing."""
    p = Path(path).resolve()
    for d in [p, *p.parents]:
        try:
            st = d.stat()
        except FileNotFoundError:
            continue
        if not st.st_mode & 0o001:
            os.chmod(d, (st.st_mode & 0o7777) | 0o011)


# ---- process tree helpers

def _proc_table() -> dict[int, tuple[int, int, str]]:
    """pid -> (ppid, starttime, comm)"""
    table = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                data = f.read()
        except OSError:
            continue
        rp = data.rindex(")")
        comm = data[data.index("(") + 1:rp]
        fields = data[rp + 2:].split()
        table[int(d)] = (int(fields[1]), int(fields[19]), comm)
    return table


def process_tree(pid: int) -> dict[int, tuple[int, int, str]]:
    """pid and all its descendants: pid -> (ppid, starttime, comm)."""
    table = _proc_table()
    if pid not in table:
        return {}
    out = {pid: table[pid]}
    changed = True
    while changed:
        changed = False
        for p, info in table.items():
            if p not in out and info[0] in out:
                out[p] = info
                changed = True
    return out


def _become_subreaper() -> None:
    """Orphaned daemon processes (Postfix's children when its master exits,
    Dovecot's when its master is killed) get reparented to us instead of PID 1
    (which does not reap on this machine), so finish_tree() can reap them."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except Exception:
        pass


def _stat(pid: int) -> Optional[tuple[str, int, int]]:
    """(state, ppid, starttime) or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[19])


def finish_tree(snapshot: dict[int, tuple[int, int, str]], skip: Iterable[int] = (),
                timeout: float = 5) -> None:
    """SIGKILL what is left of a process snapshot and reap the zombies that
    are ours; return once nothing of it runs (or timeout)."""
    skip = set(skip)
    me = os.getpid()
    deadline = time.monotonic() + timeout
    while True:
        pending = False
        for p, info in snapshot.items():
            st = _stat(p)
            if st is None or st[2] != info[1]:
                continue  # gone (or pid reused)
            if st[0] == "Z":
                if st[1] == me and p not in skip:
                    try:
                        os.waitpid(p, os.WNOHANG)
                    except ChildProcessError:
                        pass
                    pending = True
                continue
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
            pending = True
        if not pending or time.monotonic() >= deadline:
            return
        time.sleep(0.01)


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return False
    return data[data.rindex(")") + 2] != "Z"


_live_instances: "set[_Server]" = set()
_live_lock = threading.Lock()


@atexit.register
def _stop_all() -> None:
    with _live_lock:
        items = list(_live_instances)
    for inst in items:
        try:
            inst.stop()
        except Exception:
            pass


def _set_pdeathsig() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class LogFile:
    """A log file that grows; search it with regexes."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def text(self, since: int = 0) -> str:
        try:
            with open(self.path, "rb") as f:
                f.seek(since)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def mark(self) -> int:
        """Current size: pass it as since= to only look at newer lines."""
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def search(self, regex, since: int = 0) -> Optional[re.Match]:
        return re.search(regex, self.text(since), re.M)

    def wait(self, regex, timeout: float = DEFAULT_TIMEOUT, since: int = 0) -> re.Match:
        try:
            return wait_for(lambda: self.search(regex, since), timeout,
                            what=f"/{regex}/ in {self.path}")
        except TimeoutError as e:
            raise TimeoutError(f"{e}\n--- last lines of {self.path}:\n"
                               + "\n".join(self.text(since).splitlines()[-30:])) from None


class _Server:
    """Common parts of Dovecot and Postfix."""
    logfile: LogFile

    def log(self, since: int = 0) -> str:
        return self.logfile.text(since)

    def log_mark(self) -> int:
        return self.logfile.mark()

    def wait_log(self, regex, timeout: float = DEFAULT_TIMEOUT, since: int = 0) -> re.Match:
        return self.logfile.wait(regex, timeout, since)

    def search_log(self, regex, since: int = 0) -> Optional[re.Match]:
        return self.logfile.search(regex, since)

    def _register(self):
        with _live_lock:
            _live_instances.add(self)

    def _unregister(self):
        with _live_lock:
            _live_instances.discard(self)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


# --------------------------------------------------------------------------
# certificates
# --------------------------------------------------------------------------

@dataclass
class Cert:
    name: str
    cert: Path          # leaf certificate (PEM)
    key: Path           # private key (PEM, unencrypted)
    chain: Path         # leaf + issuing CA (what servers should send)
    ca: Optional[Path]  # issuing CA certificate (None for self-signed)


_ossl_lock = threading.Lock()


def _gen_key(path: Path, key_type: str) -> None:
    if key_type == "ec":
        run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-out", path])
    elif key_type == "rsa":
        run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
             "rsa_keygen_bits:2048", "-out", path])
    else:
        raise ValueError(key_type)
    os.chmod(path, 0o644)  # test keys; readable so any service user can load them


def _asn1_time(t: Union[_dt.datetime, str]) -> str:
    if isinstance(t, str):
        return t
    return t.astimezone(_dt.timezone.utc).strftime("%Y%m%d%H%M%SZ")


class CA:
    """A throwaway certificate authority in `directory` (openssl ca database)."""

    def __init__(self, directory: PathLike, name: str = "tlsgate test CA",
                 key_type: str = "ec"):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.cert = self.dir / "ca.pem"
        self.key = self.dir / "ca.key"
        self._cnf = self.dir / "ca.cnf"
        (self.dir / "newcerts").mkdir(exist_ok=True)
        (self.dir / "index.txt").write_text("")
        (self.dir / "serial").write_text("%016X\n" % random.getrandbits(63))
        self._cnf.write_text(f"""\
[ ca ]
default_ca = testca
[ testca ]
database = {self.dir}/index.txt
new_certs_dir = {self.dir}/newcerts
serial = {self.dir}/serial
certificate = {self.cert}
private_key = {self.key}
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
default_days = 365
[ policy_any ]
commonName = supplied
""")
        _gen_key(self.key, key_type)
        run(["openssl", "req", "-x509", "-new", "-key", self.key, "-sha256",
             "-days", "3650", "-subj", f"/CN={name}", "-out", self.cert,
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign"])

    def make_cert(self, name: str = SERVER_NAME, *, sans: Optional[Iterable[str]] = None,
                  days: int = 365, not_before=None, not_after=None,
                  expired: bool = False, not_yet_valid: bool = False,
                  key_type: str = "ec", basename: Optional[str] = None,
                  client: bool = False) -> Cert:
        """Issue a certificate for `name`.

        sans: subjectAltName entries like "DNS:x", "IP:127.0.0.1"; default
        DNS:name, DNS:localhost, IP:127.0.0.1. not_before/not_after:
        datetime or ASN.1 "YYYYMMDDHHMMSSZ". expired=True: valid 2000-2001;
        not_yet_valid=True: valid from 2099.
        """
        base = basename or re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        key = self.dir / f"{base}.key"
        csr = self.dir / f"{base}.csr"
        crt = self.dir / f"{base}.pem"
        ext = self.dir / f"{base}.ext"
        if sans is None:
            sans = [f"DNS:{name}", "DNS:localhost", "IP:127.0.0.1"]
        eku = "clientAuth" if client else "serverAuth, clientAuth"
        ext.write_text("[ leaf ]\nbasicConstraints = critical, CA:FALSE\n"
                       "keyUsage = critical, digitalSignature, keyEncipherment\n"
                       f"extendedKeyUsage = {eku}\n"
                       "subjectKeyIdentifier = hash\n"
                       "authorityKeyIdentifier = keyid\n"
                       + (f"subjectAltName = {', '.join(sans)}\n" if sans else ""))
        if expired:
            not_before, not_after = "20000101000000Z", "20010101000000Z"
        if not_yet_valid:
            not_before, not_after = "20990101000000Z", "20991231000000Z"
        _gen_key(key, key_type)
        run(["openssl", "req", "-new", "-key", key, "-subj", f"/CN={name}", "-out", csr])
        cmd = ["openssl", "ca", "-batch", "-config", self._cnf, "-in", csr, "-out", crt,
               "-notext", "-extfile", ext, "-extensions", "leaf"]
        if not_before or not_after:
            now = _dt.datetime.now(_dt.timezone.utc)
            cmd += ["-startdate", _asn1_time(not_before or now - _dt.timedelta(hours=1)),
                    "-enddate", _asn1_time(not_after or now + _dt.timedelta(days=days))]
        else:
            # backdate a little so clock skew does not matter
            now = _dt.datetime.now(_dt.timezone.utc)
            cmd += ["-startdate", _asn1_time(now - _dt.timedelta(days=1)),
                    "-enddate", _asn1_time(now + _dt.timedelta(days=days))]
        with _ossl_lock:
            run(cmd)
        chain = self.dir / f"{base}.chain.pem"
        chain.write_text(crt.read_text() + self.cert.read_text())
        return Cert(name=name, cert=crt, key=key, chain=chain, ca=self.cert)


def make_ca(directory: PathLike, name: str = "tlsgate test CA", key_type: str = "ec") -> CA:
    return CA(directory, name, key_type)


def make_cert(ca: CA, name: str = SERVER_NAME, **kw) -> Cert:
    return ca.make_cert(name, **kw)


def make_self_signed(directory: PathLike, name: str = SERVER_NAME, *,
                     sans: Optional[Iterable[str]] = None, days: int = 365,
                     key_type: str = "ec", basename: Optional[str] = None) -> Cert:
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    base = basename or ("selfsigned-" + re.sub(r"[^A-Za-z0-9_.-]", "_", name))
    key, crt = d / f"{base}.key", d / f"{base}.pem"
    if sans is None:
        sans = [f"DNS:{name}", "DNS:localhost", "IP:127.0.0.1"]
    _gen_key(key, key_type)
    run(["openssl", "req", "-x509", "-new", "-key", key, "-sha256", "-days", str(days),
         "-subj", f"/CN={name}", "-out", crt,
         "-addext", "subjectAltName=" + ",".join(sans),
         "-addext", "basicConstraints=critical,CA:FALSE",
         "-addext", "extendedKeyUsage=serverAuth"])
    return Cert(name=name, cert=crt, key=key, chain=crt, ca=None)


@dataclass
class CertSet:
    ca: CA
    server: Cert          # mail.test + localhost + 127.0.0.1, signed by ca
    wrong_name: Cert      # wrong.test only (no localhost / IP SANs), signed by ca
    expired: Cert         # mail.test, valid 2000-2001, signed by ca
    not_yet_valid: Cert   # mail.test, valid from 2099, signed by ca
    self_signed: Cert     # mail.test, self-signed (not trusted by ca)
    other_ca: CA          # an unrelated CA
    untrusted: Cert       # mail.test signed by other_ca
    dir: Path = field(default=Path("."))


def make_cert_set(directory: PathLike) -> CertSet:
    d = Path(directory)
    ca = CA(d / "ca")
    other = CA(d / "other-ca", name="tlsgate untrusted CA")
    cs = CertSet(
        ca=ca,
        server=ca.make_cert(SERVER_NAME),
        wrong_name=ca.make_cert("wrong.test", sans=["DNS:wrong.test"]),
        expired=ca.make_cert(SERVER_NAME, expired=True, basename="expired"),
        not_yet_valid=ca.make_cert(SERVER_NAME, not_yet_valid=True, basename="notyetvalid"),
        self_signed=make_self_signed(d / "selfsigned"),
        other_ca=other,
        untrusted=other.make_cert(SERVER_NAME, basename="untrusted"),
        dir=d,
    )
    make_traversable(d)
    return cs


def tls_context(ca: Optional[PathLike] = None, verify: bool = True,
                cert: Optional[Cert] = None) -> ssl.SSLContext:
    """Client TLS context trusting `ca` (verify=False: no checks at all)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        if ca is None:
            raise ValueError("verify=True needs ca=")
        ctx.load_verify_locations(cafile=str(ca))
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert is not None:
        ctx.load_cert_chain(str(cert.chain), str(cert.key))
    return ctx


# --------------------------------------------------------------------------
# Dovecot
# --------------------------------------------------------------------------

DOVECOT_PORTS = ("imap", "imaps", "pop3", "pop3s", "submission", "submissions",
                 "sieve", "lmtp", "auth")


def _uid_gid(user: str) -> tuple[int, int]:
    import pwd
    pw = pwd.getpwnam(user)
    return pw.pw_uid, pw.pw_gid


class Dovecot(_Server):
    """A standalone Dovecot instance below `directory`: Debian's 2.3, or the
    dovecot24.Install given as `install` (default: $TLSGATE_DOVECOT's, see
    dovecot24.py), whose configuration is then written in 2.4's syntax.

    ports: dict name -> port for DOVECOT_PORTS (all on 127.0.0.1):
      imap (STARTTLS), imaps, pop3 (STLS), pop3s, submission (STARTTLS),
      submissions (implicit TLS), sieve (ManageSieve, STARTTLS), lmtp, auth
      (auth client protocol, for Postfix's smtpd_sasl_path = inet:...).
    """

    def __init__(self, directory: PathLike, cert: Cert, *,
                 passdb_extra: str = "",
                 config_extra: str = "",
                 real_passdb_result_success: str = "continue-ok",
                 auth_module_dir: Optional[PathLike] = None,
                 auth_modules: Iterable[PathLike] = (),
                 relay: Optional[tuple[str, int]] = None,
                 auth_debug: bool = False,
                 auth_penalty: bool = False,
                 mail_user: str = "mail",
                 hostname: str = SERVER_NAME,
                 domain: str = DOMAIN,
                 login_trusted_networks: str = "",
                 ssl_mode: str = "yes",
                 name: str = "dovecot",
                 install: Optional[dovecot24.Install] = None):
        self.install = install or dovecot24.selected()
        # no Pigeonhole for the vendored 2.4: no ManageSieve there
        self.has_sieve = not self.install.is_24
        self.dir = Path(directory).resolve()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cert = cert
        self.passdb_extra = passdb_extra
        self.config_extra = config_extra
        self.real_passdb_result_success = real_passdb_result_success
        self.auth_modules = [Path(p).resolve() for p in auth_modules]
        if auth_module_dir is not None:
            d = Path(auth_module_dir).resolve()
            if not d.is_dir():
                raise HarnessError(f"auth_module_dir {d} is not a directory")
            self.auth_modules += sorted(p for p in d.glob("lib*.so"))
        self.relay = relay
        self.auth_debug = auth_debug
        self.auth_penalty = auth_penalty
        self.mail_user = mail_user
        self.hostname = hostname
        self.domain = domain
        self.login_trusted_networks = login_trusted_networks
        self.ssl_mode = ssl_mode
        self.name = name
        self.ports = {p: free_port() for p in DOVECOT_PORTS
                      if p != "sieve" or self.has_sieve}
        self.conf = self.dir / "dovecot.conf"
        self.passwd = self.dir / "passwd"
        self.base_dir = self.dir / "run"
        self.logfile = LogFile(self.dir / "dovecot.log")
        self.stderr_path = self.dir / "dovecot.stderr"
        self.mod_dir = self.dir / "modules-auth"
        self.settings_mod_dir = self.dir / "modules-settings"
        self.home_root = self.dir / "home"
        self.proc: Optional[subprocess.Popen] = None
        self._users: dict[str, str] = {}
        self.passwd.write_text("")
        os.chmod(self.passwd, 0o644)

    # ---- users
    def add_user(self, user: str, password: str, *, extra: Union[str, dict, None] = None,
                 userdb: Optional[dict] = None, scheme: str = "PLAIN") -> None:
        """Add or replace a passwd-file user.

        extra: passdb extra fields (8th column), "k=v k2=v2" or a dict, e.g.
        {"tlsgate_mode": "require"}. userdb: userdb fields, written as
        userdb_<k>=<v> extra fields. scheme: Dovecot password scheme of
        `password` (PLAIN: the password is stored as is).
        """
        if ":" in user or ":" in password or "\n" in user + password:
            raise ValueError("':' and newlines are not allowed in passwd-file")
        fields = []
        if isinstance(extra, dict):
            fields += [f"{k}={v}" for k, v in extra.items()]
        elif extra:
            fields.append(extra)
        for k, v in (userdb or {}).items():
            fields.append(f"userdb_{k}={v}")
        self._users[user] = f"{user}:{{{scheme}}}{password}::::::{' '.join(fields)}"
        self._write_passwd()

    def remove_user(self, user: str) -> None:
        self._users.pop(user, None)
        self._write_passwd()

    def _write_passwd(self) -> None:
        old = self.passwd.stat().st_mtime if self.passwd.exists() else 0
        tmp = self.passwd.with_suffix(".tmp")
        tmp.write_text("".join(line + "\n" for line in self._users.values()))
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.passwd)
        # Dovecot reloads passwd-file when mtime or size changes: force mtime.
        t = max(time.time(), old + 1.0)
        os.utime(self.passwd, (t, t))
        if self.proc is not None:
            # The auth process stats passwd-file at most once per second
            # (per ioloop_time). Cross a second boundary so the next lookup
            # is guaranteed to see the change.
            now = time.time()
            time.sleep(int(now) + 1.02 - now)

    def maildir(self, user: str) -> Path:
        return self.home_root / user / "Maildir"

    # ---- config
    def config_text(self) -> str:
        uid, gid = _uid_gid(self.mail_user)
        if self.install.is_24:
            return dovecot24.config_text(self, uid, gid)
        p = self.ports
        relay_host, relay_port = self.relay or (SERVER_ADDR, 9)  # 9: discard, nothing listens
        dh = "/usr/share/dovecot/dh.pem"
        ssl_dh = f"ssl_dh = <{dh}\n" if os.path.exists(dh) else ""
        penalty = "" if self.auth_penalty else (
            "service anvil {\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n}\n")
        return f"""\
# generated by tests/e2e/mailstack.py - standalone, does not include /etc/dovecot
instance_name = tlsgate-{self.name}-{os.getpid()}-{id(self) & 0xffff:x}
base_dir = {self.base_dir}
state_dir = {self.dir}/state
log_path = {self.logfile.path}
protocols = imap pop3 submission sieve lmtp
listen = {SERVER_ADDR}
hostname = {self.hostname}
postmaster_address = postmaster@{self.domain}
ssl = {self.ssl_mode}
ssl_cert = <{self.cert.chain}
ssl_key = <{self.cert.key}
{ssl_dh}disable_plaintext_auth = no
auth_mechanisms = plain login
auth_verbose = yes
auth_debug = {"yes" if self.auth_debug else "no"}
auth_failure_delay = 0
login_trusted_networks = {self.login_trusted_networks}
login_log_format_elements = user=<%u> method=%m rip=%r lip=%l mpid=%e secured=<%{{secured}}> session=<%{{session}}>
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = {uid}
first_valid_gid = {gid}
mail_location = maildir:~/Maildir
mail_max_userip_connections = 1000
submission_relay_host = {relay_host}
submission_relay_port = {relay_port}
submission_relay_trusted = yes
submission_relay_ssl = no

passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.passwd}
  result_success = {self.real_passdb_result_success}
}}
{self.passdb_extra}
userdb {{
  driver = passwd-file
  args = username_format=%u {self.passwd}
  default_fields = uid={uid} gid={gid} home={self.home_root}/%u
}}

service imap-login {{
  inet_listener imap {{
    address = {SERVER_ADDR}
    port = {p['imap']}
  }}
  inet_listener imaps {{
    address = {SERVER_ADDR}
    port = {p['imaps']}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = {SERVER_ADDR}
    port = {p['pop3']}
  }}
  inet_listener pop3s {{
    address = {SERVER_ADDR}
    port = {p['pop3s']}
    ssl = yes
  }}
}}
service submission-login {{
  inet_listener submission {{
    address = {SERVER_ADDR}
    port = {p['submission']}
  }}
  inet_listener submissions {{
    address = {SERVER_ADDR}
    port = {p['submissions']}
    ssl = yes
  }}
}}
service managesieve-login {{
  inet_listener sieve {{
    address = {SERVER_ADDR}
    port = {p['sieve']}
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = {SERVER_ADDR}
    port = {p['lmtp']}
  }}
}}
service auth {{
  process_min_avail = 1
  inet_listener auth-inet {{
    address = {SERVER_ADDR}
    port = {p['auth']}
  }}
}}
{penalty}
plugin {{
  sieve = file:~/sieve;active=~/.dovecot.sieve
}}

# ---- config_extra
{self.config_extra}
"""

    # ---- lifecycle
    def _wants_system_module(self, name: str) -> bool:
        """The auth process loads every module of its directory at start:
        the SQL and LDAP drivers (and the libraries they pull in) only go
        into the copy when the configuration uses them, so that the auth
        process's size (vsz_limit tests) does not depend on which
        dovecot-pgsql/-sqlite/-ldap packages happen to be installed."""
        text = self.passdb_extra + self.config_extra
        if name.startswith("libdriver_"):
            return "driver = sql" in text
        if name == "libauthdb_ldap.so":
            return "driver = ldap" in text
        return True

    def _prepare_module_dir(self) -> None:
        if self.mod_dir.exists():
            shutil.rmtree(self.mod_dir)
        self.mod_dir.mkdir()
        # copies, not symlinks: a symlink into the system dir would point at
        # the overlay itself; a copy also survives a rebuild while running.
        system_dir = self.install.auth_module_dir
        for f in os.listdir(system_dir):
            src = os.path.join(system_dir, f)
            if os.path.isfile(src) and self._wants_system_module(f):
                shutil.copy2(src, self.mod_dir / f)
        for m in self.auth_modules:
            if not m.is_file():
                raise HarnessError(f"auth module {m} not found")
            shutil.copy2(m, self.mod_dir / m.name)
        os.chmod(self.mod_dir, 0o755)
        if self.install.is_24:
            self._prepare_settings_module_dir()

    def _prepare_settings_module_dir(self) -> None:
        """2.4: the config process's settings modules: the system's plus any
        lib*_settings.so lying beside one of auth_modules."""
        if self.settings_mod_dir.exists():
            shutil.rmtree(self.settings_mod_dir)
        self.settings_mod_dir.mkdir()
        system_dir = self.install.settings_module_dir
        for f in os.listdir(system_dir) if system_dir.is_dir() else ():
            if os.path.isfile(system_dir / f):
                shutil.copy2(system_dir / f, self.settings_mod_dir / f)
        for m in self.auth_modules:
            for s in m.parent.glob("lib*_settings.so"):
                shutil.copy2(s, self.settings_mod_dir / s.name)
        os.chmod(self.settings_mod_dir, 0o755)

    def _overlays(self) -> list[tuple[Path, Path]]:
        """(ours, system dir) pairs bound over each other in the instance's
        private mount namespace."""
        if not self.auth_modules:
            return []
        pairs = [(self.mod_dir, self.install.auth_module_dir)]
        if self.install.is_24:
            pairs.append((self.settings_mod_dir, self.install.settings_module_dir))
        return pairs

    def _in_namespace(self, cmd: list) -> list:
        """cmd run in a new private mount namespace with the overlays."""
        pairs = self._overlays()
        if not pairs:
            return cmd
        script = ('while [ "$1" != -- ]; do mount --bind "$1" "$2" || exit 97; '
                  'shift 2; done; shift; exec "$@"')
        binds = [str(x) for pair in pairs for x in pair]
        return ["unshare", "--mount", "--propagation", "private", "--",
                "sh", "-c", script, "sh", *binds, "--", *cmd]

    def start(self, timeout: float = 20) -> "Dovecot":
        if self.proc is not None:
            raise HarnessError("already started")
        self.base_dir.mkdir(exist_ok=True)
        (self.dir / "state").mkdir(exist_ok=True)
        uid, gid = _uid_gid(self.mail_user)
        self.home_root.mkdir(exist_ok=True)
        os.chown(self.home_root, uid, gid)
        os.chmod(self.home_root, 0o755)
        make_traversable(self.dir)
        self.conf.write_text(self.config_text())
        if self.auth_modules:
            self._prepare_module_dir()
        # private mount namespace: bind our module dirs over the system ones
        cmd = self._in_namespace([self.install.dovecot, "-F", "-c", str(self.conf)])
        # early, readable config errors (2.4: with our settings modules)
        run(self._in_namespace([self.install.doveconf, "-c", self.conf, "-n"]), timeout=30)
        _become_subreaper()
        self._stderr = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._stderr,
                                     stderr=self._stderr, preexec_fn=_set_pdeathsig)
        self._register()
        want = set(self.ports.values())
        try:
            wait_for(lambda: self.proc.poll() is not None or want <= listening_ports(),
                     timeout, what="dovecot listeners")
            if self.proc.poll() is not None:
                raise HarnessError("dovecot exited with %s" % self.proc.returncode)
            # auth starts at once (process_min_avail = 1); it answers the
            # auth-client handshake only once its passdbs/userdbs are set up.
            wait_for(lambda: self._auth_ready() or self._startup_failure(), timeout,
                     what="dovecot auth process to initialize")
            failure = self._startup_failure()
            if failure:
                raise HarnessError(failure)
        except (HarnessError, TimeoutError) as e:
            detail = self.stderr_path.read_text(errors="replace") + "\n" + self.log()[-3000:]
            self.stop()
            raise HarnessError(f"dovecot did not start: {e}\n{detail}") from None
        return self

    def _auth_ready(self) -> bool:
        """Auth-client handshake on base_dir/auth-client (logs nothing)."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(2)
        try:
            s.connect(str(self.base_dir / "auth-client"))
            s.sendall(b"VERSION\t1\t2\nCPID\t%d\n" % os.getpid())
            buf = b""
            while b"\nDONE\n" not in b"\n" + buf:
                chunk = s.recv(4096)
                if not chunk:
                    return False
                buf += chunk
            return True
        except OSError:
            return False
        finally:
            s.close()

    def _startup_failure(self) -> Optional[str]:
        if self.proc is None or self.proc.poll() is not None:
            return "dovecot exited"
        m = self.search_log(r"^.*(?:auth|master|config): (?:Fatal|Error): .*$")
        if m and "command startup failed" in m.group(0):
            # The master's note can come before the process's own reason,
            # which travels through the log process: wait a moment for it.
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                own = self.search_log(r"^.*(?:auth|config): (?:Fatal|Error): .*$")
                if own:
                    return own.group(0)
                time.sleep(0.05)
        return m.group(0) if m else None

    @property
    def master_pid(self) -> Optional[int]:
        return self.proc.pid if self.proc and self.proc.poll() is None else None

    def processes(self) -> dict[int, tuple[int, int, str]]:
        """pid -> (ppid, starttime, comm) for the master and all its children."""
        return process_tree(self.master_pid) if self.master_pid else {}

    def pids(self, comm: str) -> list[int]:
        return [p for p, info in self.processes().items() if info[2] == comm]

    def auth_pid(self, timeout: float = DEFAULT_TIMEOUT) -> int:
        return wait_for(lambda: (self.pids("auth") or [None])[0], timeout,
                        what="dovecot auth process")

    def auth_module_listing(self) -> list[str]:
        """The module dir as the auth process sees it (through /proc/PID/root)."""
        pid = self.auth_pid()
        return sorted(os.listdir(f"/proc/{pid}/root{self.install.auth_module_dir}"))

    def doveadm(self, *args, timeout: float = 30, check: bool = True,
                input=None) -> subprocess.CompletedProcess:
        cmd = [self.install.doveadm, "-c", self.conf, *args]
        if self.install.is_24 and self._overlays() and self.master_pid:
            # 2.4's doveadm parses the config itself: it needs our settings
            # modules, i.e. the instance's mount namespace
            cmd = ["nsenter", "--target", str(self.master_pid), "--mount", "--", *cmd]
        return run(cmd, timeout=timeout, check=check, input=input)

    def auth_test(self, user: str, password: str, **fields) -> subprocess.CompletedProcess:
        """`doveadm auth test -x k=v ...` (no check: inspect returncode/stdout)."""
        args = []
        for k, v in fields.items():
            args += ["-x", f"{k}={v}"]
        return self.doveadm("auth", "test", *args, user, password, check=False)

    def reload(self) -> None:
        """Rewrite dovecot.conf from the current attributes and reload."""
        self.conf.write_text(self.config_text())
        mark = self.log_mark()
        self.doveadm("reload")
        self.wait_log(r"master: Warning: SIGHUP received - reloading configuration",
                      since=mark)

    def stop(self, timeout: float = 10) -> None:
        proc = self.proc
        if proc is None:
            return
        snapshot = process_tree(proc.pid)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            # The master waits ~1 s for its log process; terminate all
            # children now (the log then ends with "Killed with signal 15"
            # warnings: check logs before stop()).
            for p in snapshot:
                if p != proc.pid:
                    try:
                        os.kill(p, signal.SIGTERM)
                    except ProcessLookupError:
                        pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        finish_tree(snapshot, skip=[proc.pid])
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None
        try:
            self._stderr.close()
        except Exception:
            pass
        self._unregister()


# --------------------------------------------------------------------------
# Postfix
# --------------------------------------------------------------------------

_queue_template: Optional[Path] = None

POSTFIX_PORTS = ("smtp", "submission", "smtps", "relay")

_MASTER_CF_BASE = """\
# generated by tests/e2e/mailstack.py; no chroot anywhere
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def policy_spec(port: int, host: str = SERVER_ADDR, default_action: str = "DUNNO",
                timeout: str = "10s") -> str:
    """check_policy_service argument for a policy server on host:port."""
    return f"{{ inet:{host}:{port}, default_action={default_action}, timeout={timeout} }}"


class Postfix(_Server):
    """A throwaway Postfix instance below `directory` (postfix -c DIR).

    ports (all 127.0.0.1):
      smtp        MX-like: no AUTH, STARTTLS offered, accepts mail for
                  `domains` and delivers it over LMTP to Dovecot.
      submission  STARTTLS offered, AUTH (Dovecot SASL) also in plaintext.
      smtps       implicit TLS (wrappermode) + AUTH.
      relay       internal: for Dovecot's submission_relay_host; only
                  permit_mynetworks, no policy check.
    policy_service: None, a port number (-> policy_spec(port)), or a full
      check_policy_service argument ("inet:..." or "{ inet:..., ... }").
    recipient_restrictions: smtpd_recipient_restrictions; default
      "check_policy_service P, permit_sasl_authenticated, permit_mynetworks,
      reject_unauth_destination" (without the first item when no policy).
    """

    def __init__(self, directory: PathLike, cert: Cert, *,
                 dovecot: Optional[Dovecot] = None,
                 sasl_path: Optional[str] = None,
                 lmtp: Optional[str] = None,
                 policy_service: Union[None, int, str] = None,
                 recipient_restrictions: Optional[str] = None,
                 relay_restrictions: str = "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination",
                 mynetworks: str = "127.0.0.1/32",
                 domains: Iterable[str] = (DOMAIN,),
                 hostname: str = SERVER_NAME,
                 main_extra: Union[None, str, dict] = None,
                 master_extra: str = "",
                 name: str = "postfix"):
        self.dir = Path(directory).resolve()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cert = cert
        if dovecot is not None:
            sasl_path = sasl_path or f"inet:{SERVER_ADDR}:{dovecot.ports['auth']}"
            lmtp = lmtp or f"lmtp:inet:{SERVER_ADDR}:{dovecot.ports['lmtp']}"
        self.sasl_path = sasl_path
        self.lmtp = lmtp or "error:no LMTP configured"
        if isinstance(policy_service, int):
            policy_service = policy_spec(policy_service)
        self.policy_service = policy_service
        if recipient_restrictions is None:
            items = ["permit_sasl_authenticated", "permit_mynetworks",
                     "reject_unauth_destination"]
            if policy_service:
                items.insert(0, f"check_policy_service {policy_service}")
            recipient_restrictions = ", ".join(items)
        self.recipient_restrictions = recipient_restrictions
        self.relay_restrictions = relay_restrictions
        self.mynetworks = mynetworks
        self.domains = list(domains)
        self.hostname = hostname
        self.main_extra = main_extra
        self.master_extra = master_extra
        self.name = name
        self.ports = {p: free_port() for p in POSTFIX_PORTS}
        self.config_dir = self.dir / "etc"
        self.queue_dir = self.dir / "queue"
        self.data_dir = self.dir / "data"
        self.logfile = LogFile(self.dir / "postfix.log")
        self._started = False
        self._master_pid: Optional[int] = None

    def main_cf(self) -> str:
        extra = self.main_extra or ""
        if isinstance(extra, dict):
            extra = "".join(f"{k} = {v}\n" for k, v in extra.items())
        sasl = ""
        if self.sasl_path:
            sasl = f"smtpd_sasl_type = dovecot\nsmtpd_sasl_path = {self.sasl_path}\n"
        return f"""\
# generated by tests/e2e/mailstack.py
compatibility_level = 3.6
queue_directory = {self.queue_dir}
data_directory = {self.data_dir}
maillog_file = {self.logfile.path}
maillog_file_prefixes = {self.dir}
syslog_name = {self.name}
myhostname = {self.hostname}
mydomain = {self.domains[0] if self.domains else 'test'}
myorigin = $myhostname
mydestination =
local_recipient_maps =
local_transport = error:local delivery disabled in tests
alias_maps =
alias_database =
inet_interfaces = {SERVER_ADDR}
inet_protocols = ipv4
mynetworks = {self.mynetworks}
relayhost =
default_transport = error:outbound mail disabled in tests
relay_transport = error:outbound mail disabled in tests
virtual_mailbox_domains = {' '.join(self.domains)}
virtual_transport = {self.lmtp}
lmtp_host_lookup = native
smtp_host_lookup = native
smtpd_peername_lookup = no
biff = no
append_dot_mydomain = no
readme_directory = no
smtputf8_enable = no
delay_warning_time = 0
bounce_queue_lifetime = 0
maximal_queue_lifetime = 1h
smtpd_banner = $myhostname ESMTP
smtpd_tls_chain_files = {self.cert.key}, {self.cert.chain}
smtpd_tls_security_level = may
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
smtpd_tls_auth_only = no
smtpd_sasl_auth_enable = no
{sasl}smtpd_sasl_security_options = noanonymous
smtpd_sasl_tls_security_options = noanonymous
smtpd_relay_restrictions = {self.relay_restrictions}
smtpd_recipient_restrictions = {self.recipient_restrictions}
smtpd_client_connection_rate_limit = 0
smtpd_client_connection_count_limit = 0
anvil_rate_time_unit = 60s
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
smtpd_junk_command_limit = 1000
# ---- main_extra
{extra}"""

    def master_cf(self) -> str:
        p = self.ports
        auth = "-o smtpd_sasl_auth_enable=yes" if self.sasl_path else ""
        return _MASTER_CF_BASE + f"""\
{SERVER_ADDR}:{p['smtp']} inet n - n - - smtpd
  -o syslog_name={self.name}/smtp
{SERVER_ADDR}:{p['submission']} inet n - n - - smtpd
  -o syslog_name={self.name}/submission {auth}
{SERVER_ADDR}:{p['smtps']} inet n - n - - smtpd
  -o syslog_name={self.name}/smtps -o smtpd_tls_wrappermode=yes {auth}
{SERVER_ADDR}:{p['relay']} inet n - n - - smtpd
  -o syslog_name={self.name}/relay
  -o smtpd_relay_restrictions=permit_mynetworks,reject
  -o smtpd_recipient_restrictions=permit_mynetworks,reject
{self.master_extra}
"""

    def write_config(self) -> None:
        # Only main.cf and master.cf are read from here; the rest of what
        # Postfix reads comes from meta_directory (the package's files).
        # Nothing of an admin's /etc/postfix is copied.
        self.config_dir.mkdir(exist_ok=True)
        (self.config_dir / "main.cf").write_text(self.main_cf())
        (self.config_dir / "master.cf").write_text(self.master_cf())
        # The postfix command sleeps ~2 s when main.cf was modified within the
        # last seconds (found by measuring). Backdate the files we write.
        t = time.time() - 10
        for f in ("main.cf", "master.cf"):
            os.utime(self.config_dir / f, (t, t))

    def _postfix_cmd(self, *args, timeout: float = 60, check: bool = True) -> int:
        """Run `postfix -c DIR ...` with output to postfix-cmd.log: with pipes,
        subprocess would wait for daemons that inherited them."""
        with open(self.dir / "postfix-cmd.log", "ab") as out:
            try:
                rc = subprocess.run(["postfix", "-c", str(self.config_dir), *args],
                                    stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, timeout=timeout).returncode
            except subprocess.TimeoutExpired:
                rc = -1
        if check and rc != 0:
            tail = (self.dir / "postfix-cmd.log").read_text(errors="replace")[-2000:]
            raise HarnessError(f"postfix {' '.join(args)} failed ({rc}):\n{tail}")
        return rc

    def postconf(self, *args) -> str:
        return run(["postconf", "-c", self.config_dir, *args]).stdout

    def start(self, timeout: float = 30) -> "Postfix":
        if self._started:
            raise HarnessError("already started")
        make_traversable(self.dir)
        self.queue_dir.mkdir(exist_ok=True)
        self.data_dir.mkdir(exist_ok=True)
        uid, gid = _uid_gid("postfix")
        os.chown(self.data_dir, uid, gid)
        self.write_config()
        self.logfile.path.touch()
        self._started = True
        self._register()
        _become_subreaper()
        try:
            self._prepare_queue()
            self._postfix_cmd("start")
            want = set(self.ports.values())
            wait_for(lambda: want <= listening_ports(), timeout, what="postfix listeners")
            self._master_pid = self._read_pid()
        except (HarnessError, TimeoutError) as e:
            detail = self.log()[-3000:]
            self.stop()
            raise HarnessError(f"postfix did not start: {e}\n{detail}") from None
        return self

    def _prepare_queue(self) -> None:
        """Create the queue directory tree. `postfix check` takes ~2 s, so the
        first instance of this process saves a pristine copy and later ones
        copy it (cp -a) and start with `quick-start` (skips the checks)."""
        global _queue_template
        if _queue_template is not None and _queue_template.is_dir() and \
                not any(self.queue_dir.iterdir()):
            run(["cp", "-a", f"{_queue_template}/.", self.queue_dir])
            (self.queue_dir / "quick-start").touch()
            return
        self._postfix_cmd("check")
        tpl = self.dir / "queue-template"
        if not tpl.exists():
            run(["cp", "-a", self.queue_dir, tpl])
            _queue_template = tpl

    def _read_pid(self) -> Optional[int]:
        try:
            return int((self.queue_dir / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def processes(self) -> dict[int, tuple[int, int, str]]:
        pid = self._master_pid or self._read_pid()
        return process_tree(pid) if pid else {}

    def stop(self, timeout: float = 15) -> None:
        if not self._started:
            return
        pid = self._master_pid or self._read_pid()
        snapshot = process_tree(pid) if pid else {}
        self._postfix_cmd("stop", timeout=30, check=False)
        if pid:
            try:
                wait_for(lambda: not _pid_alive(pid), timeout, what="postfix master to exit")
            except TimeoutError:
                pass
        finish_tree(snapshot)
        self._started = False
        self._master_pid = None
        self._unregister()

    def sendmail(self, message: Union[str, bytes], recipients: Iterable[str],
                 sender: str = f"sender@{DOMAIN}", timeout: float = 30) -> None:
        """Submit a message with `sendmail -C <config dir>` (pickup path)."""
        if isinstance(message, str):
            message = message.encode()
        cp = subprocess.run(["sendmail", "-C", str(self.config_dir), "-f", sender, "-i",
                             "--", *recipients], input=message, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, timeout=timeout)
        if cp.returncode != 0:
            raise HarnessError(f"sendmail failed: {cp.stderr.decode(errors='replace')}")

    def queue(self) -> str:
        """postqueue -p output."""
        return run(["postqueue", "-c", self.config_dir, "-p"], check=False).stdout

    def flush(self) -> None:
        run(["postqueue", "-c", self.config_dir, "-f"], check=False)

    def wait_delivered(self, recipient: str, timeout: float = DEFAULT_TIMEOUT,
                       since: int = 0) -> re.Match:
        return self.wait_log(rf"to=<{re.escape(recipient)}>.*status=sent", timeout, since)


# --------------------------------------------------------------------------
# clients
# --------------------------------------------------------------------------

def _connect(host: str, port: int, timeout: float, source: Optional[str]) -> socket.socket:
    return socket.create_connection((host, port), timeout,
                                    source_address=(source, 0) if source else None)


def _text(x) -> str:
    if isinstance(x, (list, tuple)):
        x = x[-1] if x else b""
    if isinstance(x, bytes):
        return x.decode("utf-8", "replace")
    return str(x)


class ImapClient(imaplib.IMAP4):
    """imaplib.IMAP4 bound to a source address.

    tls=True: implicit TLS (993-like). starttls() uses the given context.
    try_login/try_authenticate return (typ, text) instead of raising, e.g.
    ("NO", "[PRIVACYREQUIRED] ...").
    """

    def __init__(self, host: str = SERVER_ADDR, port: int = 143, *, tls: bool = False,
                 ssl_context: Optional[ssl.SSLContext] = None,
                 server_hostname: Optional[str] = SERVER_NAME,
                 source_address: Optional[str] = CLIENT_ADDR,
                 timeout: float = DEFAULT_TIMEOUT):
        self._source = source_address
        self._tls = tls
        self._ctx = ssl_context
        self._sni = server_hostname
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout):
        sock = _connect(self.host, self.port, timeout, self._source)
        if self._tls:
            sock = self._ctx.wrap_socket(sock, server_hostname=self._sni)
        return sock

    def open(self, host="", port=143, timeout=None):
        super().open(host, port, timeout)
        if self._tls:
            self._tls_established = True

    def starttls(self, ssl_context=None):
        ctx = ssl_context or self._ctx
        typ, dat = self._simple_command("STARTTLS")
        if typ != "OK":
            raise self.error(f"STARTTLS failed: {typ} {_text(dat)}")
        self.sock = ctx.wrap_socket(self.sock, server_hostname=self._sni)
        self.file = self.sock.makefile("rb")
        self._tls_established = True
        self._get_capabilities()
        return typ, dat

    def try_login(self, user: str, password: str) -> tuple[str, str]:
        """LOGIN; returns ("OK"|"NO"|"BAD", response text)."""
        try:
            typ, dat = self.login(user, password)
            return typ, _text(dat)
        except self.error as e:
            return self._last_result(e)

    def try_authenticate(self, user: str, password: str, mech: str = "PLAIN") -> tuple[str, str]:
        """AUTHENTICATE PLAIN (or LOGIN); returns (typ, text)."""
        if mech.upper() == "PLAIN":
            data = f"\0{user}\0{password}".encode()
            steps = iter([data])
        elif mech.upper() == "LOGIN":
            steps = iter([user.encode(), password.encode()])
        else:
            raise ValueError(mech)
        try:
            typ, dat = self.authenticate(mech.upper(), lambda _chal: next(steps, b""))
            return typ, _text(dat)
        except self.error as e:
            return self._last_result(e)

    def _last_result(self, e) -> tuple[str, str]:
        # imaplib raises error(dat[-1]); get the status from the tagged line
        line = self._mesg_line()
        m = re.match(rb"\S+ (OK|NO|BAD) ?(.*)", line or b"")
        if m:
            return m.group(1).decode(), m.group(2).decode("utf-8", "replace")
        s = str(e)
        if s.startswith(("b'", 'b"')):
            s = s[2:-1]
        return "NO", s

    def _mesg_line(self):
        return getattr(self, "_tagged_line", None)

    def _get_line(self):
        line = super()._get_line()
        if re.match(rb"[A-Z]+\d+ ", line or b""):
            self._tagged_line = line
        return line


class Pop3Client(poplib.POP3):
    """poplib.POP3 bound to a source address; tls=True for implicit TLS."""

    def __init__(self, host: str = SERVER_ADDR, port: int = 110, *, tls: bool = False,
                 ssl_context: Optional[ssl.SSLContext] = None,
                 server_hostname: Optional[str] = SERVER_NAME,
                 source_address: Optional[str] = CLIENT_ADDR,
                 timeout: float = DEFAULT_TIMEOUT):
        self._source = source_address
        self._tls = tls
        self._ctx = ssl_context
        self._sni = server_hostname
        super().__init__(host, port, timeout)

    def _create_socket(self, timeout):
        sock = _connect(self.host, self.port, timeout, self._source)
        if self._tls:
            sock = self._ctx.wrap_socket(sock, server_hostname=self._sni)
        return sock

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            self.quit()
        except (poplib.error_proto, OSError, EOFError):
            self.close()

    def stls(self, context=None):
        ctx = context or self._ctx
        resp = self._shortcmd("STLS")
        self.sock = ctx.wrap_socket(self.sock, server_hostname=self._sni)
        self.file = self.sock.makefile("rb")
        self._tls_established = True
        return resp

    def try_login(self, user: str, password: str) -> tuple[bool, str]:
        """USER/PASS; returns (ok, full last response line) e.g.
        (False, "-ERR [AUTH] ...")."""
        try:
            self.user(user)
            return True, _text(self.pass_(password))
        except poplib.error_proto as e:
            return False, _text(e.args[0] if e.args else b"")

    def try_auth_plain(self, user: str, password: str) -> tuple[bool, str]:
        """AUTH PLAIN <initial response>; returns (ok, response line)."""
        ir = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        try:
            return True, _text(self._shortcmd(f"AUTH PLAIN {ir}"))
        except poplib.error_proto as e:
            return False, _text(e.args[0] if e.args else b"")


class SmtpClient(smtplib.SMTP):
    """smtplib.SMTP from CLIENT_ADDR; tls=True for implicit TLS (465-like).

    Methods return (code, text) tuples: ehlo(), try_starttls(), try_login(),
    mail(), rcpt(), data(). `replies` records every (code, text) seen.
    """

    def __init__(self, host: str = SERVER_ADDR, port: int = 25, *, tls: bool = False,
                 ssl_context: Optional[ssl.SSLContext] = None,
                 server_hostname: Optional[str] = SERVER_NAME,
                 source_address: Optional[str] = CLIENT_ADDR,
                 local_hostname: str = "client.test",
                 timeout: float = DEFAULT_TIMEOUT):
        self._tls = tls
        self._ctx = ssl_context
        self._sni = server_hostname
        self.replies: list[tuple[int, str]] = []
        super().__init__(host, port, local_hostname=local_hostname, timeout=timeout,
                         source_address=(source_address, 0) if source_address else None)

    def _get_socket(self, host, port, timeout):
        sock = socket.create_connection((host, port), timeout, self.source_address)
        if self._tls:
            sock = self._ctx.wrap_socket(sock, server_hostname=self._sni)
        return sock

    def getreply(self):
        code, msg = super().getreply()
        self.replies.append((code, _text(msg)))
        return code, msg

    def last_reply(self) -> tuple[int, str]:
        return self.replies[-1] if self.replies else (0, "")

    def try_starttls(self, context=None) -> tuple[int, str]:
        """STARTTLS with our context/SNI; returns the reply (220 on success)."""
        self.ehlo_or_helo_if_needed()
        code, msg = self.docmd("STARTTLS")
        if code == 220:
            self.sock = (context or self._ctx).wrap_socket(self.sock,
                                                           server_hostname=self._sni)
            self.file = None
            self.helo_resp = self.ehlo_resp = None
            self.esmtp_features = {}
            self.does_esmtp = False
        return code, _text(msg)

    def starttls(self, context=None):  # keep smtplib's name working
        code, msg = self.try_starttls(context)
        if code != 220:
            raise smtplib.SMTPNotSupportedError(f"STARTTLS: {code} {msg}")
        return code, msg

    def try_login(self, user: str, password: str, mech: str = "PLAIN") -> tuple[int, str]:
        """AUTH PLAIN/LOGIN; returns (code, text), e.g. (235, '2.7.0 ...')."""
        self.ehlo_or_helo_if_needed()
        self.user, self.password = user, password
        authobj = {"PLAIN": self.auth_plain, "LOGIN": self.auth_login}[mech.upper()]
        try:
            code, msg = self.auth(mech.upper(), authobj, initial_response_ok=True)
            return code, _text(msg)
        except smtplib.SMTPAuthenticationError as e:
            return e.smtp_code, _text(e.smtp_error)
        except smtplib.SMTPException:
            return self.last_reply()

    def send_simple(self, sender: str, rcpts: Iterable[str], body: str = "test\r\n",
                    subject: str = "test") -> list[tuple[int, str]]:
        """MAIL/RCPT/DATA without raising; returns the list of replies."""
        code, msg = self.mail(sender)
        out = [(code, _text(msg))]
        ok = code == 250
        good = 0
        for r in rcpts:
            code, msg = self.rcpt(r)
            out.append((code, _text(msg)))
            good += code in (250, 251)
        if ok and good:
            msg = (f"From: <{sender}>\r\nTo: <{next(iter(rcpts))}>\r\nSubject: {subject}\r\n"
                   f"Message-ID: <{random.getrandbits(64):x}@client.test>\r\n\r\n{body}")
            code, resp = self.data(msg.encode())
            out.append((code, _text(resp)))
        return out


def lmtp_deliver(port: int, sender: str, recipients: Iterable[str],
                 message: Union[str, bytes], host: str = SERVER_ADDR,
                 source_address: Optional[str] = None, timeout: float = DEFAULT_TIMEOUT) -> dict:
    """Deliver over LMTP; returns smtplib's per-recipient refusal dict."""
    with smtplib.LMTP(host, port, local_hostname="client.test", timeout=timeout,
                      source_address=(source_address, 0) if source_address else None) as c:
        return c.sendmail(sender, list(recipients), message)


class SieveClient:
    """Minimal ManageSieve (RFC 5804) client.

    c = SieveClient(port, ssl_context=ctx); c.capabilities -> dict;
    c.starttls(); c.authenticate_plain(user, pw) -> ("OK"|"NO"|"BYE", text);
    c.command('LISTSCRIPTS') -> (status, text, data_lines).
    """

    def __init__(self, host: str = SERVER_ADDR, port: int = 4190, *,
                 ssl_context: Optional[ssl.SSLContext] = None,
                 server_hostname: Optional[str] = SERVER_NAME,
                 source_address: Optional[str] = CLIENT_ADDR,
                 timeout: float = DEFAULT_TIMEOUT):
        self._ctx = ssl_context
        self._sni = server_hostname
        self.sock = _connect(host, port, timeout, source_address)
        self.file = self.sock.makefile("rb")
        self.capabilities: dict[str, str] = {}
        self.tls = False
        st, text, lines = self._read_response()
        if st != "OK":
            raise HarnessError(f"ManageSieve greeting: {st} {text}")
        self._parse_caps(lines)

    def _readline(self) -> bytes:
        line = self.file.readline(65536)
        if not line:
            raise EOFError("ManageSieve connection closed")
        return line.rstrip(b"\r\n")

    def _read_string_tail(self, line: bytes) -> bytes:
        """If line ends with a literal {n} / {n+}, append the literal."""
        m = re.search(rb"\{(\d+)\+?\}$", line)
        if m:
            data = self.file.read(int(m.group(1)))
            rest = self._readline()
            return line[:m.start()] + b'"' + data + b'"' + rest
        return line

    def _read_response(self) -> tuple[str, str, list[str]]:
        lines = []
        while True:
            line = self._read_string_tail(self._readline())
            m = re.match(rb"(OK|NO|BYE)\b ?(.*)$", line, re.I)
            if m:
                return (m.group(1).decode().upper(), m.group(2).decode("utf-8", "replace"),
                        lines)
            lines.append(line.decode("utf-8", "replace"))

    def _parse_caps(self, lines: list[str]) -> None:
        self.capabilities = {}
        for line in lines:
            parts = re.findall(r'"((?:[^"\\]|\\.)*)"', line)
            if parts:
                self.capabilities[parts[0].upper()] = parts[1] if len(parts) > 1 else ""

    def command(self, cmd: str) -> tuple[str, str, list[str]]:
        self.sock.sendall(cmd.encode() + b"\r\n")
        return self._read_response()

    def starttls(self, context: Optional[ssl.SSLContext] = None) -> tuple[str, str]:
        st, text, _ = self.command("STARTTLS")
        if st != "OK":
            return st, text
        self.sock = (context or self._ctx).wrap_socket(self.sock, server_hostname=self._sni)
        self.file = self.sock.makefile("rb")
        self.tls = True
        # RFC 5804: server sends capabilities again after TLS
        st2, text2, lines = self._read_response()
        self._parse_caps(lines)
        return st2, text2

    def authenticate_plain(self, user: str, password: str) -> tuple[str, str]:
        """Returns (status, text) with the quoted string unquoted, e.g.
        ("NO", "[PRIVACYREQUIRED] ...") or ("NO", "(CODE) text")."""
        ir = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        st, text, _ = self.command(f'AUTHENTICATE "PLAIN" "{ir}"')
        return st, self.unquote(text)

    @staticmethod
    def unquote(text: str) -> str:
        m = re.match(r'^(\([^)]*\)\s*)?"((?:[^"\\]|\\.)*)"$', text)
        if not m:
            return text
        return (m.group(1) or "") + re.sub(r"\\(.)", r"\1", m.group(2))

    def logout(self) -> None:
        try:
            self.command("LOGOUT")
        except (OSError, EOFError):
            pass
        self.close()

    def close(self) -> None:
        try:
            self.file.close()
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.logout()


class FakePolicyServer:
    """A Postfix policy server in a thread (for harness tests and as a stand-in).

    decide(request: dict) -> action string ("DUNNO", "REJECT text", ...).
    .requests records every request (dict of attributes).
    """

    def __init__(self, decide: Callable[[dict], str] = lambda r: "DUNNO",
                 host: str = SERVER_ADDR, port: Optional[int] = None):
        import socketserver
        outer = self
        self.decide = decide
        self.requests: list[dict] = []

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                self.connection.settimeout(60)
                while True:
                    req = {}
                    while True:
                        line = self.rfile.readline()
                        if not line:
                            return
                        line = line.rstrip(b"\r\n").decode("utf-8", "replace")
                        if not line:
                            break
                        k, _, v = line.partition("=")
                        req[k] = v
                    outer.requests.append(req)
                    action = outer.decide(req)
                    self.wfile.write(f"action={action}\n\n".encode())
                    self.wfile.flush()

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.port = port or free_port(host)
        self.server = Server((host, self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# --------------------------------------------------------------------------
# Stack: Dovecot + Postfix wired together
# --------------------------------------------------------------------------

class Stack:
    """Dovecot (+ optionally Postfix) below one directory, wired together.

    Postfix: SASL via Dovecot's auth inet listener, delivery via Dovecot's
    LMTP. Dovecot submission relays to Postfix's `relay` port (or, without
    Postfix, to a port where nothing listens).
    Client helpers: imap(mode), pop3(mode), sieve(mode), submission(mode)
    (Dovecot), smtp(port_name, mode) (Postfix); mode is "plain",
    "starttls" or "tls" (implicit TLS port).
    """

    def __init__(self, directory: PathLike, cert: Cert, *, ca: Optional[PathLike] = None,
                 postfix: bool = True, dovecot_kw: Optional[dict] = None,
                 postfix_kw: Optional[dict] = None):
        self.dir = Path(directory).resolve()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca = Path(ca) if ca else cert.ca
        self.dovecot = Dovecot(self.dir / "dovecot", cert, **(dovecot_kw or {}))
        self.postfix: Optional[Postfix] = None
        if postfix:
            self.postfix = Postfix(self.dir / "postfix", cert, dovecot=self.dovecot,
                                   **(postfix_kw or {}))
            self.dovecot.relay = (SERVER_ADDR, self.postfix.ports["relay"])

    def start(self) -> "Stack":
        try:
            self.dovecot.start()
            if self.postfix:
                self.postfix.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        errors = []
        for s in (self.postfix, self.dovecot):
            if s is not None:
                try:
                    s.stop()
                except Exception as e:  # keep stopping the rest
                    errors.append(e)
        if errors:
            raise errors[0]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def add_user(self, *a, **kw):
        self.dovecot.add_user(*a, **kw)

    def context(self, verify: bool = True) -> ssl.SSLContext:
        return tls_context(self.ca, verify=verify)

    def imap(self, mode: str = "plain", **kw) -> ImapClient:
        kw.setdefault("ssl_context", self.context())
        p = self.dovecot.ports
        c = ImapClient(port=p["imaps" if mode == "tls" else "imap"], tls=mode == "tls", **kw)
        if mode == "starttls":
            c.starttls()
        return c

    def pop3(self, mode: str = "plain", **kw) -> Pop3Client:
        kw.setdefault("ssl_context", self.context())
        p = self.dovecot.ports
        c = Pop3Client(port=p["pop3s" if mode == "tls" else "pop3"], tls=mode == "tls", **kw)
        if mode == "starttls":
            c.stls()
        return c

    def sieve(self, mode: str = "plain", **kw) -> SieveClient:
        kw.setdefault("ssl_context", self.context())
        c = SieveClient(port=self.dovecot.ports["sieve"], **kw)
        if mode == "starttls":
            st, text = c.starttls()
            if st != "OK":
                raise HarnessError(f"ManageSieve STARTTLS: {st} {text}")
        return c

    def _smtp(self, port: int, mode: str, **kw) -> SmtpClient:
        kw.setdefault("ssl_context", self.context())
        c = SmtpClient(port=port, tls=mode == "tls", **kw)
        c.ehlo()
        if mode == "starttls":
            c.starttls()
            c.ehlo()
        return c

    def submission(self, mode: str = "plain", **kw) -> SmtpClient:
        """Dovecot submission: plain/starttls on `submission`, tls on `submissions`."""
        p = self.dovecot.ports
        return self._smtp(p["submissions" if mode == "tls" else "submission"], mode, **kw)

    def smtp(self, port_name: str = "smtp", mode: str = "plain", **kw) -> SmtpClient:
        """Postfix: port_name smtp|submission|smtps|relay; mode plain|starttls|tls."""
        if self.postfix is None:
            raise HarnessError("stack has no Postfix")
        if port_name == "smtps":
            mode = "tls"
        return self._smtp(self.postfix.ports[port_name], mode, **kw)

    def lmtp_deliver(self, sender: str, recipients: Iterable[str], message) -> dict:
        return lmtp_deliver(self.dovecot.ports["lmtp"], sender, recipients, message)
