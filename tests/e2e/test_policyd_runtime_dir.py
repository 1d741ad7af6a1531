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


def test_pidfile_is_complete_when_the_start_command_returns(tmp_path):
    """Type=forking and start-stop-daemon read the pidfile as soon as the
    starting process exits: the daemon must have written it by then."""
    import signal
    import subprocess
    import time

    from policyd_daemon import POLICYD

    run, _ = runtime_dir(tmp_path)
    pidfile = run / "tlsgate-policyd.pid"
    d = Policyd(tmp_path / "pd", POLICY, conf_extra=f"pidfile = {pidfile}\n")
    for attempt in range(5):    # a race shows only now and then: try a few times
        # no pipes: waiting for their end would wait for the daemon too
        cp = subprocess.run([str(POLICYD), "-c", str(d.conf)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        assert cp.returncode == 0, d.conf.read_text()
        text = pidfile.read_text()
        assert text.endswith("\n") and text.strip().isdigit(), repr(text)
        pid = int(text)
        os.kill(pid, 0)     # alive
        # it serves (and handles SIGTERM) once it answers
        assert d.ask({"request": "smtpd_access_policy", "sasl_username": "a@example.com"}
                     ).startswith("action=")
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not pidfile.exists(), "the daemon left its pidfile behind"
