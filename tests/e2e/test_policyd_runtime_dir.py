"""tlsgate-policyd's pidfile in a runtime directory owned by its user
(/run/tlsgate of the init script and the systemd unit): the file belongs to
that user, is gone after a stop, and a file that user planted there before
a start as root is never truncated or given away."""

from __future__ import annotations

import os
import pwd

import pytest

import mailstack
from policyd_daemon import Policyd

POLICY = "audit *\n"


def runtime_dir(tmp_path, user="nobody"):
    pw = pwd.getpwnam(user)
    run = tmp_path / "run"
    run.mkdir()
    os.chown(run, pw.pw_uid, pw.pw_gid)
    os.chmod(run, 0o755)
    mailstack.make_traversable(run)
    return run, pw


def test_pidfile_belongs_to_the_user_and_is_removed_at_stop(tmp_path):
    run, pw = runtime_dir(tmp_path)
    pidfile = run / "tlsgate-policyd.pid"
    d = Policyd(tmp_path / "pd", POLICY, conf_extra=f"pidfile = {pidfile}\n").start()
    try:
        st = pidfile.stat()
        assert (st.st_uid, st.st_gid) == (pw.pw_uid, pw.pw_gid)
        assert pidfile.read_text() == f"{d.proc.pid}\n"
    finally:
        assert d.stop() == 0
    assert not pidfile.exists(), "the daemon left its pidfile behind"


@pytest.mark.parametrize("plant", ["hardlink", "symlink", "fifo"])
def test_a_planted_pidfile_is_refused_and_its_target_untouched(tmp_path, plant):
    """The daemon's user controls the runtime directory; as root at start,
    the daemon must not write to (or chown) what that user put there."""
    run, _ = runtime_dir(tmp_path)
    victim = tmp_path / "victim"
    victim.write_text("root's secret\n")
    os.chmod(victim, 0o600)
    pidfile = run / "tlsgate-policyd.pid"
    if plant == "hardlink":
        os.link(victim, pidfile)
    elif plant == "symlink":
        os.symlink(victim, pidfile)
    else:
        os.mkfifo(pidfile)
    d = Policyd(tmp_path / "pd", POLICY, conf_extra=f"pidfile = {pidfile}\n")
    with pytest.raises(mailstack.HarnessError, match="exited with 1"):
        d.start()
    assert "tlsgate-policyd.pid" in d.log()
    st = victim.stat()
    assert victim.read_text() == "root's secret\n"
    assert (st.st_uid, st.st_mode & 0o777) == (0, 0o600)
