"""machine_isolation - the e2e session never sees the machine's own
tlsgate, Dovecot or Postfix configuration.

isolate() moves the test process (and so every program it starts) into a
private mount namespace in which /etc is an overlay: the machine's /etc
below, a throwaway tmpfs above. Into that view it plants configuration
files that make any reader fail loudly:

  /etc/tlsgate/tlsgate.conf   not a valid tlsgate.conf (and policy.d says
                              `require *`, should anything read it)
  /etc/dovecot/dovecot.conf   includes a file that does not exist
  /etc/postfix/main.cf        a queue directory that does not exist

The tests always name their own configuration (`tlsgate -c` / `--policy` /
`--no-config`, `tlsgate-policyd -c`, the passdb `args`, `dovecot -c`,
`postfix -c`); a program that fell back to a default path would fail, and
with it the test. The machine itself is never written: the planted files
live in the tmpfs, and the namespace ends with the process.

Mounts below /etc (e.g. /etc/hosts in a container) are carried over into
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


def isolate() -> None:
    """Enter the private namespace and plant the files. Once per process
    tree: a child that runs pytest again inherits the namespace."""
    if os.environ.get(ENV_FLAG):
        return
    _libc_call("unshare", CLONE_NEWNS)
    _libc_call("mount", b"none", b"/", None, MS_REC | MS_PRIVATE, None)
    scratch = Path(tempfile.mkdtemp(prefix="tlsgate-e2e-etc-"))
    _mount("-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs", str(scratch))
    for d in ("upper", "work", "keep"):
        (scratch / d).mkdir()
    # keep what is mounted below /etc: the overlay would hide it
    kept = []
    for i, point in enumerate(_mounts_below("/etc")):
        stash = scratch / "keep" / str(i)
        if os.path.isdir(point):
            stash.mkdir()
        else:
            stash.touch()
        _mount("--bind", point, str(stash))
        kept.append((stash, point))
    _mount("-t", "overlay", "overlay", "-o",
           f"lowerdir=/etc,upperdir={scratch / 'upper'},workdir={scratch / 'work'}", "/etc")
    for stash, point in kept:
        _mount("--bind", str(stash), point)
    for path, text in PLANTED.items():
        p = Path(path)
        if any(path == point or path.startswith(point + "/") for _, point in kept):
            raise IsolationError(f"{path} is on a mount of its own: cannot plant it")
        p.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(p.parent, 0o755)
        if p.is_symlink():
            p.unlink()
        p.write_text(text)
        os.chmod(p, 0o644)
    # The overlay holds on to its layers: the tmpfs can leave the tree at
    # once, and its mount point leave /tmp.
    subprocess.run(["umount", "-l", str(scratch)], check=True)
    scratch.rmdir()
    os.environ[ENV_FLAG] = "1"
