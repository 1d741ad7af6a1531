"""dovecot24 - what mailstack needs to run a Dovecot 2.4 instead of Debian's 2.3.

Which Dovecot the harness starts: mailstack.Dovecot(install=...), by default
the one named by $TLSGATE_DOVECOT (a prefix such as
/var/cache/tlsgate/dovecot-2.4.4, built by tests/dovecot24-setup), else the
system's (Debian's 2.3 in /usr). `make e2e` runs the Dovecot suite once with
each (tests/build.mk).

For 2.4 this module writes the configuration in 2.4's syntax, and turns the
2.3-style snippets the tests pass (passdb_extra, config_extra) into 2.4's:
  passdb { driver = D  args = A ... }   ->  passdb NAME { driver = D ... }
      passwd-file args "scheme=S username_format=F PATH" -> passwd_file_path
      = PATH, default_password_scheme = S; tlsgate args PATH ->
      tlsgate_config = PATH; mechanisms -> mechanisms_filter
  disable_plaintext_auth = no           ->  auth_allow_cleartext = yes
Anything else passes through unchanged (most auth settings kept their name).

Pigeonhole (ManageSieve) is not part of the vendored 2.4.4: a 2.4 instance
has no `sieve` listener (Dovecot.has_sieve is False).
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

PREFIX_ENV = "TLSGATE_DOVECOT"


@dataclass(frozen=True)
class Install:
    """A Dovecot installation: its programs, module dir and version."""
    prefix: Path
    dovecot: str
    doveadm: str
    doveconf: str
    moduledir: Path
    version: str          # "2.4.4", "2.3.19.1"

    @property
    def major_minor(self) -> tuple[int, int]:
        parts = re.findall(r"\d+", self.version)
        return int(parts[0]), int(parts[1])

    @property
    def is_24(self) -> bool:
        return self.major_minor >= (2, 4)

    @property
    def auth_module_dir(self) -> Path:
        return self.moduledir / "auth"

    @property
    def settings_module_dir(self) -> Path:
        return self.moduledir / "settings"

    @property
    def config_version(self) -> str:
        """For dovecot_config_version: the release without any suffix."""
        return ".".join(re.findall(r"\d+", self.version)[:3])


def _dovecot_config_var(path: Path, name: str) -> Optional[str]:
    for line in path.read_text().splitlines():
        m = re.match(rf"{name}=['\"]?([^'\"]*)['\"]?$", line.strip())
        if m:
            return m.group(1)
    return None


def _version(dovecot: str) -> str:
    out = subprocess.run([dovecot, "--version"], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    return out.split()[0]


SYSTEM = Install(prefix=Path("/usr"), dovecot="dovecot", doveadm="doveadm",
                 doveconf="doveconf", moduledir=Path("/usr/lib/dovecot/modules"),
                 version="2.3")


def from_prefix(prefix) -> Optional[Install]:
    """The Dovecot installed below `prefix` (PREFIX/lib/dovecot/dovecot-config),
    or None when there is none."""
    prefix = Path(prefix)
    config = prefix / "lib" / "dovecot" / "dovecot-config"
    dovecot = prefix / "sbin" / "dovecot"
    if not config.is_file() or not os.access(dovecot, os.X_OK):
        return None
    moduledir = _dovecot_config_var(config, "dovecot_moduledir") or \
        str(prefix / "lib" / "dovecot")
    return Install(prefix=prefix, dovecot=str(dovecot),
                   doveadm=str(prefix / "bin" / "doveadm"),
                   doveconf=str(prefix / "bin" / "doveconf"),
                   moduledir=Path(moduledir), version=_version(str(dovecot)))


def selected() -> Install:
    """$TLSGATE_DOVECOT's install, else the system's."""
    prefix = os.environ.get(PREFIX_ENV)
    if not prefix:
        return SYSTEM
    inst = from_prefix(prefix)
    if inst is None:
        raise RuntimeError(f"{PREFIX_ENV}={prefix}: no Dovecot installed there")
    return inst


# ---- 2.3-style snippets -> 2.4

_BLOCK_RE = re.compile(r"^passdb\s*\{\n(.*?)^\}\n?", re.M | re.S)


def _passdb_24(body: str, names: set[str]) -> str:
    settings: list[tuple[str, str]] = []
    rest: list[str] = []
    for line in body.splitlines():
        m = re.match(r"\s*(\w+)\s*=\s*(.*?)\s*$", line)
        if m:
            settings.append((m.group(1), m.group(2)))
        elif line.strip():
            rest.append(line)
    driver = dict(settings).get("driver", "static")
    out: list[str] = []
    for key, value in settings:
        if key == "args":
            out += _driver_args(driver, value)
        elif key == "mechanisms":
            out.append(f"mechanisms_filter = {value}")
        else:
            out.append(f"{key} = {value}")
    name = driver.replace("-", "_")
    if dict(settings).get("master") == "yes":
        name = "master_" + name
    base, n = name, 1
    while name in names:
        n += 1
        name = f"{base}{n}"
    names.add(name)
    lines = "".join(f"  {x}\n" for x in out + [r.strip() for r in rest])
    return f"passdb {name} {{\n{lines}}}\n"


def _driver_args(driver: str, args: str) -> list[str]:
    if driver == "tlsgate":
        return [f"tlsgate_config = {args}"] if args else []
    if driver == "passwd-file":
        out = []
        for word in args.split():
            if word.startswith("scheme="):
                out.append(f"default_password_scheme = {word[7:]}")
            elif word.startswith("username_format="):
                continue  # 2.4's default %{user} is what the tests use
            else:
                out.append(f"passwd_file_path = {word}")
        return out
    raise ValueError(f"no 2.4 translation for `args` of passdb driver {driver}")


_LINE_MAP = {
    "disable_plaintext_auth = no": "auth_allow_cleartext = yes",
    "disable_plaintext_auth = yes": "auth_allow_cleartext = no",
    "vsz_limit = 0": "vsz_limit = unlimited",
    # 2.4 keeps string lists in blocks; the defaults stay
    "import_environment = $import_environment MALLOC_ARENA_MAX=1":
        "import_environment {\n  MALLOC_ARENA_MAX = 1\n}",
}


def translate(snippet: str, names: Optional[set[str]] = None) -> str:
    """A 2.3-style config snippet in 2.4 syntax (see the module doc)."""
    names = set() if names is None else names
    text = _BLOCK_RE.sub(lambda m: _passdb_24(m.group(1), names), snippet)
    return "\n".join(_LINE_MAP.get(line.strip(), line) for line in text.split("\n"))


# ---- the whole configuration

def config_text(d, uid: int, gid: int) -> str:
    """dovecot.conf for mailstack.Dovecot `d` on Dovecot 2.4."""
    p = d.ports
    relay_host, relay_port = d.relay or ("127.0.0.1", 9)
    addr = "127.0.0.1"
    penalty = "" if d.auth_penalty else (
        "service anvil {\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n}\n")
    names = {"passwd_file"}
    passdb_extra = translate(d.passdb_extra, names)
    config_extra = translate(d.config_extra, names)
    return f"""\
dovecot_config_version = {d.install.config_version}
dovecot_storage_version = {d.install.config_version}
# generated by tests/e2e/dovecot24.py - standalone Dovecot 2.4 configuration
instance_name = tlsgate-{d.name}-{os.getpid()}-{id(d) & 0xffff:x}
base_dir = {d.base_dir}
state_dir = {d.dir}/state
log_path = {d.logfile.path}
protocols = imap pop3 submission lmtp
listen = {addr}
hostname = {d.hostname}
postmaster_address = postmaster@{d.domain}
ssl = {d.ssl_mode}
ssl_server_cert_file = {d.cert.chain}
ssl_server_key_file = {d.cert.key}
auth_allow_cleartext = yes
auth_mechanisms = plain login
auth_verbose = yes
auth_debug = {"yes" if d.auth_debug else "no"}
auth_failure_delay = 0
login_trusted_networks = {d.login_trusted_networks}
login_log_format_elements = user=<%{{user}}> method=%{{mechanism}} rip=%{{remote_ip}} lip=%{{local_ip}} mpid=%{{mail_pid}} secured=<%{{secured}}> session=<%{{session}}>
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = {uid}
first_valid_gid = {gid}
mail_driver = maildir
mail_path = ~/Maildir
namespace inbox {{
  inbox = yes
}}
mail_max_userip_connections = 1000
submission_relay_host = {relay_host}
submission_relay_port = {relay_port}
submission_relay_trusted = yes
submission_relay_ssl = no

passdb passwd_file {{
  driver = passwd-file
  passwd_file_path = {d.passwd}
  default_password_scheme = PLAIN
  result_success = {d.real_passdb_result_success}
}}
{passdb_extra}
userdb passwd_file {{
  driver = passwd-file
  passwd_file_path = {d.passwd}
  fields {{
    uid:default = {uid}
    gid:default = {gid}
    home:default = {d.home_root}/%{{user}}
  }}
}}

service imap-login {{
  inet_listener imap {{
    listen = {addr}
    port = {p['imap']}
  }}
  inet_listener imaps {{
    listen = {addr}
    port = {p['imaps']}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    listen = {addr}
    port = {p['pop3']}
  }}
  inet_listener pop3s {{
    listen = {addr}
    port = {p['pop3s']}
    ssl = yes
  }}
}}
service submission-login {{
  inet_listener submission {{
    listen = {addr}
    port = {p['submission']}
  }}
  inet_listener submissions {{
    listen = {addr}
    port = {p['submissions']}
    ssl = yes
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    listen = {addr}
    port = {p['lmtp']}
  }}
}}
service auth {{
  process_min_avail = 1
  inet_listener auth-inet {{
    listen = {addr}
    port = {p['auth']}
  }}
}}
{penalty}
# ---- config_extra
{config_extra}
"""
