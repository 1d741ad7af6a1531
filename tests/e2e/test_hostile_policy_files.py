"""Hostile policy files under a running tlsgate-policyd (docs/security.md).

The daemon serves POLICY_A from a directory; each test puts something
hostile in that directory and has the daemon reload (SIGHUP). A file the
daemon must not trust, or cannot read as a policy, makes the reload fail:
the daemon logs why and keeps answering with the old policy. Files that
are odd but valid (BOM, no final newline, 100 MB) load.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time

import pytest

from hostile_daemon import (DUNNO, POLICY_A, POLICYD, REJECT, PolicyDaemon,
                            read_reply, request_bytes)

pytestmark = pytest.mark.skipif(not POLICYD.exists(),
                                reason=f"{POLICYD} not built")

FAILED = r"policy \S+ did not load; still serving the policy loaded at"


@pytest.fixture(scope="module")
def daemon():
    d = PolicyDaemon("policyfiles", idle_timeout=30).start()
    yield d
    d.cleanup()


@pytest.fixture(autouse=True)
def clean_policy_dir(daemon):
    """Each test starts from POLICY_A alone, in force."""
    yield
    for entry in daemon.policy_dir.iterdir():
        if entry.name == "a.conf":
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    os.chmod(daemon.policy_dir, 0o755)
    daemon.write_policy("a.conf", POLICY_A)
    # wait for the load to finish, not to start: the next test's reload
    # must not see this one's "reloaded" line as its own
    reload_works(daemon)
    daemon.check_healthy()


def reload_fails(daemon, why: str) -> None:
    """SIGHUP; the reload fails with `why` and the old policy still serves."""
    mark = daemon.mark()
    daemon.reload()
    daemon.wait_log(FAILED, since=mark)
    daemon.wait_log(why, since=mark)
    # POLICY_A still in force: audit * would make bob's answer DUNNO, the
    # new rule "require @example.org" is not in force.
    assert daemon.ask("alice@example.com").startswith(REJECT)
    assert daemon.ask("bob@example.org") == DUNNO + b"\n\n"


def reload_works(daemon) -> None:
    mark = daemon.mark()
    daemon.reload()
    daemon.wait_log(r"policy reloaded from", since=mark)


NEW_RULE = "require @example.org\n"


def test_symlink_to_untrusted_file(daemon, tmp_path):
    target = daemon.dir / "elsewhere.conf"
    target.write_text(NEW_RULE)
    os.chmod(target, 0o664)			# group-writable target
    os.symlink(target, daemon.policy_dir / "b.conf")
    reload_fails(daemon, r"b\.conf: file \S+ is writable by its group")
    target.unlink()


def test_symlink_to_trusted_file_is_followed(daemon):
    target = daemon.dir / "elsewhere.conf"
    target.write_text(NEW_RULE)
    os.chmod(target, 0o644)
    os.symlink(target, daemon.policy_dir / "b.conf")
    reload_works(daemon)
    assert daemon.ask("bob@example.org").startswith(REJECT)
    target.unlink()


def test_fifo_does_not_hang_the_daemon(daemon):
    os.mkfifo(daemon.policy_dir / "b.conf", 0o644)
    t0 = time.monotonic()
    reload_fails(daemon, r"b\.conf: not a regular file")
    assert time.monotonic() - t0 < 5


def test_directory_named_conf(daemon):
    (daemon.policy_dir / "b.conf").mkdir(mode=0o755)
    reload_fails(daemon, r"b\.conf: not a regular file")


@pytest.mark.parametrize("mode,who", [(0o664, "its group"), (0o646, "everyone")])
def test_writable_file(daemon, mode, who):
    daemon.write_policy("b.conf", NEW_RULE, mode=mode)
    reload_fails(daemon, rf"b\.conf: file \S+ is writable by {who}")


def test_writable_policy_directory(daemon):
    daemon.write_policy("b.conf", NEW_RULE)
    os.chmod(daemon.policy_dir, 0o775)
    reload_fails(daemon, r"directory \S+policy\.d is writable by its group")


def test_writable_parent_directory(daemon):
    daemon.write_policy("b.conf", NEW_RULE)
    os.chmod(daemon.dir, 0o757)
    try:
        reload_fails(daemon, r"directory \S+ is writable by everyone")
    finally:
        os.chmod(daemon.dir, 0o755)


def test_wrong_owner(daemon):
    # The daemon runs as nobody, which may own its files: another user.
    path = daemon.write_policy("b.conf", NEW_RULE)
    os.chown(path, 12345, 12345)
    reload_fails(daemon, r"b\.conf: file \S+ is owned by uid 12345")


def test_unreadable_file(daemon):
    daemon.write_policy("b.conf", NEW_RULE, mode=0o600)	# root's, daemon is nobody
    reload_fails(daemon, r"b\.conf: Permission denied")


def test_syntax_error_names_file_and_line(daemon):
    daemon.write_policy("b.conf", "require @example.org\nrequire @example.org from=2027-02-30\n")
    reload_fails(daemon, r"b\.conf:2: from='2027-02-30' is not a valid date")


def test_bom_and_missing_final_newline_load(daemon):
    daemon.write_policy("b.conf", b"\xef\xbb\xbfaudit @example.net\r\nrequire @example.org")
    reload_works(daemon)
    assert daemon.ask("bob@example.org").startswith(REJECT)
    assert daemon.ask("carol@example.net") == DUNNO + b"\n\n"


def test_hundred_megabyte_file(daemon):
    """100 MB of comments around one rule: loads, memory returns to what
    the rules need (the file is read in chunks, not kept)."""
    block = ("# " + "x" * 97 + "\n").encode()		# 100 bytes
    path = daemon.policy_dir / "big.tmp"
    with open(path, "wb") as f:
        chunk = block * 10000				# 1 MB
        for i in range(100):
            if i == 50:
                f.write(NEW_RULE.encode())
            f.write(chunk)
    os.chmod(path, 0o644)
    os.replace(path, daemon.policy_dir / "big.conf")
    t0 = time.monotonic()
    reload_works(daemon)
    took = time.monotonic() - t0
    assert daemon.ask("bob@example.org").startswith(REJECT)
    daemon.check_healthy(rss_slack_kb=64 * 1024)
    assert took < 30, f"reload of 100 MB took {took:.1f} s"


def test_sighup_during_a_load_is_not_lost(daemon):
    """A SIGHUP while a load runs: that load may have read the directory
    before the change, so it is dropped and the files are read again; the
    one "reloaded" line that follows has the change in force."""
    block = ("# " + "x" * 97 + "\n").encode() * 10000          # 1 MB of comments
    with open(daemon.policy_dir / "c-big.conf", "wb") as f:
        for _ in range(100):
            f.write(block)
    os.chmod(daemon.policy_dir / "c-big.conf", 0o644)
    mark = daemon.mark()
    daemon.reload()
    daemon.wait_log(r"SIGHUP: reloading", since=mark)
    daemon.write_policy("b.conf", NEW_RULE)
    daemon.reload()
    ms_wait(lambda: daemon.log_text(mark).count("SIGHUP: reloading") == 2, "second SIGHUP")
    ms_wait(lambda: "policy reloaded from" in daemon.log_text(mark), "the reload")
    time.sleep(1.5)                 # room for a second line, if there were one
    log = daemon.log_text(mark)
    # the second SIGHUP came while the first load ran, whose result was dropped
    assert log.index("policy reloaded from") > log.rindex("SIGHUP: reloading"), log
    assert log.count("policy reloaded from") == 1, log
    assert daemon.ask("bob@example.org").startswith(REJECT)


def ms_wait(pred, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_oversized_line_reported(daemon):
    daemon.write_policy("b.conf", "require @example.org note=\"" + "n" * 5000 + "\"\n")
    reload_fails(daemon, r"b\.conf:1: line longer than 4096 bytes")


def test_policy_directory_removed_and_restored(daemon):
    saved = daemon.dir / "saved.d"
    shutil.copytree(daemon.policy_dir, saved)
    shutil.rmtree(daemon.policy_dir)
    reload_fails(daemon, r"No such file or directory")
    # also without SIGHUP: the once-a-second check keeps serving
    time.sleep(1.5)
    daemon.check_answers()
    shutil.copytree(saved, daemon.policy_dir)
    os.chmod(daemon.policy_dir, 0o755)
    shutil.rmtree(saved)
    daemon.write_policy("b.conf", NEW_RULE)
    reload_works(daemon)
    assert daemon.ask("bob@example.org").startswith(REJECT)


def test_file_rewritten_while_read_and_reloads_under_load(daemon):
    """A writer truncates and rewrites b.conf in place as fast as it can
    while SIGHUP reloads run in a loop and clients keep asking. Every
    answer must be one of the policies' answers; the daemon never stops
    answering; at the end the last complete file is in force."""
    versions = [NEW_RULE, "audit @example.org\n" + "# padding\n" * 2000]
    path = daemon.write_policy("b.conf", versions[0])
    stop = threading.Event()
    errors: list[str] = []

    def writer():
        i = 0
        while not stop.is_set():
            with open(path, "r+b") as f:
                f.truncate(0)
                data = versions[i % 2].encode()
                f.write(data[: len(data) // 2])
                f.flush()
                f.write(data[len(data) // 2:])
            i += 1

    def client():
        while not stop.is_set():
            try:
                with daemon.connect(timeout=10) as s:
                    for _ in range(20):
                        s.sendall(request_bytes("alice@example.com"))
                        r = read_reply(s)
                        if not r.startswith(REJECT):
                            errors.append(f"alice: {r!r}")
                        s.sendall(request_bytes("bob@example.org"))
                        r = read_reply(s)
                        if not (r.startswith(REJECT) or r == DUNNO + b"\n\n"):
                            errors.append(f"bob: {r!r}")
            except OSError as e:
                errors.append(f"client: {e!r}")

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for _ in range(60):
            daemon.reload()
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not errors, errors[:5]
    assert daemon.alive()
    # a clean final state
    daemon.write_policy("b.conf", versions[1])
    reload_works(daemon)
    assert daemon.ask("bob@example.org") == DUNNO + b"\n\n"
