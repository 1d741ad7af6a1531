"""machine_isolation - the e2e session never sees the machine's own
tlsgate, Dovecot or Postfix configuration.

isolate() moves the test process (and so every program it starts) into a
private mount namespace in which /etc is an overlay: the machine's /etc
below, a throwaway tmpfs above; /usr/local the same. Into that view it plants configuration
files that make any reader fail loudly:

  /etc/tlsgate/tlsgate.conf   not a valid tlsgate.conf (and policy.d says
                              `require *`, should anything read it)
  /etc/dovecot/dovecot.conf   includes a file that does not exist
  /etc/postfix/main.cf        a queue directory that does not exist
  /usr/local/...              an installed tlsgate: programs that exit 99,
                              a template and a Dovecot module that are junk

The tests always name their own configuration (`tlsgate -c` / `--policy` /
`--no-config`, `tlsgate-policyd -c`, the passdb `args`, `dovecot -c`,
`postfix -c`); a program that fell back to a default path would fail, and
with it the test. The machine itself is never written: the planted files
live in the tmpfs, and the namespace ends with the process.

Mounts below them (e.g. /etc/hosts in a container) are carried over into
the overlay. Nothing is left behind in /tmp: the tmpfs is detached at once
(the overlay keeps its layers). Errors raise IsolationError: a session that
cannot be isolated must not run as if it were.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import tempfile
from pathlib import Path

CLONE_NEWNS = 0x00020000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18

MARK = "planted by tests/e2e/machine_isolation.py"
PLANTED = {
    "/etc/tlsgate/tlsgate.conf":
        f"# {MARK}: no test may read the machine's configuration\n"
        "policy = /etc/tlsgate/policy.d\n"
        "this line is not valid: a tlsgate that reads this file fails\n",
    "/etc/tlsgate/policy.d/00-planted.conf": f"# {MARK}\nrequire *\n",
    "/etc/dovecot/dovecot.conf":
        f"# {MARK}\n!include /nonexistent/{MARK.replace(' ', '-')}.conf\n",
    "/etc/postfix/main.cf":
        f"# {MARK}\nqueue_directory = /nonexistent/planted-by-the-tlsgate-tests\n"
        "inet_interfaces = 192.0.2.1\n",
}
# An installed tlsgate (make install, PREFIX=/usr/local): programs that
# fail, templates that do not render, a module Dovecot cannot load.
FAIL = f"#!/bin/sh\necho '{MARK}: an installed program was run' >&2\nexit 99\n"
PLANTED.update({
    "/usr/local/bin/tlsgate": FAIL,
    "/usr/local/sbin/tlsgate-policyd": FAIL,
    "/usr/local/share/tlsgate/templates/notice.en.txt": f"# {MARK}\n{{{{#\n",
    "/usr/local/lib/dovecot/auth/libauthdb_tlsgate.so": f"{MARK}: not a module\n",
})
OVERLAID = ("/etc", "/usr/local")
ENV_FLAG = "TLSGATE_E2E_ISOLATED"


class IsolationError(RuntimeError):
    pass


def _libc_call(name: str, *args) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if getattr(libc, name)(*args) != 0:
        err = ctypes.get_errno()
        raise IsolationError(f"{name}: {os.strerror(err)}")


def _mount(*args: str) -> None:
    cp = subprocess.run(["mount", *args], capture_output=True, text=True)
    if cp.returncode != 0:
        raise IsolationError(f"mount {' '.join(args)}: {cp.stderr.strip()}")


def _mounts_below(top: str) -> list:
    """Mount points strictly below `top`, outermost first."""
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].encode().decode("unicode_escape")
            if point.startswith(top + "/"):
                points.append(point)
    return sorted(set(points), key=len)


def _overlay(top: str, layers: Path) -> list:
    """Mounts an overlay over `top` (upper layer in `layers`), carrying
    over what is mounted below it; returns those mount points."""
    for d in ("upper", "work", "keep"):
        (layers / d).mkdir(parents=True)
    kept = []
    for i, point in enumerate(_mounts_below(top)):
        stash = layers / "keep" / str(i)
        if os.path.isdir(point):
            stash.mkdir()
        else:
            stash.touch()
        _mount("--bind", point, str(stash))
        kept.append((stash, point))
    _mount("-t", "overlay", "overlay", "-o",
           f"lowerdir={top},upperdir={layers / 'upper'},workdir={layers / 'work'}", top)
    for stash, point in kept:
        _mount("--bind", str(stash), point)
    return [point for _, point in kept]


def _plant(path: str, text: str, kept: list) -> None:
    if any(path == point or path.startswith(point + "/") for point in kept):
        raise IsolationError(f"{path} is on a mount of its own: cannot plant it")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(p.parent, 0o755)
    if p.is_symlink():
        p.unlink()
    p.write_text(text)
    os.chmod(p, 0o755 if text.startswith("#!") else 0o644)


def isolate() -> None:
    """Enter the private namespace and plant the files. Once per process
    tree: a child that runs pytest again inherits the namespace."""
    if os.environ.get(ENV_FLAG):
        return
    _libc_call("unshare", CLONE_NEWNS)
    _libc_call("mount", b"none", b"/", None, MS_REC | MS_PRIVATE, None)
    scratch = Path(tempfile.mkdtemp(prefix="tlsgate-e2e-etc-"))
    _mount("-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs", str(scratch))
    kept = []
    for top in OVERLAID:
        os.makedirs(top, exist_ok=True)
        kept += _overlay(top, scratch / top.strip("/").replace("/", "-"))
    for path, text in PLANTED.items():
        _plant(path, text, kept)
    # The overlays hold on to their layers: the tmpfs can leave the tree at
    # once, and its mount point leave /tmp.
    subprocess.run(["umount", "-l", str(scratch)], check=True)
    scratch.rmdir()
    os.environ[ENV_FLAG] = "1"
