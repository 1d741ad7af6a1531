"""`make install` puts every file where docs/install.md says, the man pages
render without warnings and say what the code does, and the demo
(`make demo`, `make demo-up` / `make demo-down`) plays its scenario and
leaves no process behind."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import mailstack as ms

REPO = Path(__file__).resolve().parents[2]
# the build tree in use (make test-sanitize points it at the sanitized one)
BUILD = Path(os.environ.get("TLSGATE_BUILD", REPO / "build"))
# The demo runs Dovecot with the module of BUILD; Debian's Dovecot cannot
# load a module built with AddressSanitizer.
demo_needs_plain_build = pytest.mark.skipif(
    bool(os.environ.get("TLSGATE_SANITIZE")),
    reason="sanitized build: Debian's Dovecot cannot load an ASan-built module")
DEMO = REPO / "demo" / "tlsgate_demo.py"
PYTHON = "/usr/bin/python3"
MAN_PAGES = ["man/tlsgate.1", "man/tlsgate.conf.5", "man/tlsgate.policy.5",
             "man/tlsgate-policyd.8"]


def dovecot_moduledir() -> str:
    text = Path("/usr/lib/dovecot/dovecot-config").read_text()
    return re.search(r"^dovecot_moduledir=(.*)$", text, re.M).group(1)


def make_install(destdir: Path, *args: str) -> subprocess.CompletedProcess:
    cp = subprocess.run(["make", "-C", str(REPO), "--no-print-directory", "install",
                         f"DESTDIR={destdir}", *args],
                        capture_output=True, text=True, timeout=300)
    assert cp.returncode == 0, cp.stdout[-3000:] + cp.stderr[-3000:]
    return cp


def installed_files(root: Path) -> set[str]:
    return {"/" + str(p.relative_to(root)) for p in root.rglob("*")
            if p.is_file() or p.is_symlink()}


# ---------------------------------------------------------------------------
# make install
# ---------------------------------------------------------------------------

# Where each file goes, as written in docs/install.md's tables, and where it
# must land for PREFIX=/usr/local, SYSCONFDIR=/etc.
DOCUMENTED = [
    ("$(PREFIX)/bin/tlsgate", "/usr/local/bin/tlsgate", 0o755),
    ("$(PREFIX)/sbin/tlsgate-policyd", "/usr/local/sbin/tlsgate-policyd", 0o755),
    ("$(PREFIX)/share/man/man1/tlsgate.1", "/usr/local/share/man/man1/tlsgate.1", 0o644),
    ("$(PREFIX)/share/man/man5/", "/usr/local/share/man/man5/tlsgate.conf.5", 0o644),
    ("$(PREFIX)/share/man/man5/", "/usr/local/share/man/man5/tlsgate.policy.5", 0o644),
    ("$(PREFIX)/share/man/man8/tlsgate-policyd.8",
     "/usr/local/share/man/man8/tlsgate-policyd.8", 0o644),
    ("$(PREFIX)/share/tlsgate/templates/",
     "/usr/local/share/tlsgate/templates/notice.en.txt", 0o644),
    ("$(PREFIX)/share/tlsgate/templates/",
     "/usr/local/share/tlsgate/templates/notice.de.txt", 0o644),
    ("$(SYSTEMD_UNITDIR)/tlsgate-policyd.service",
     "/usr/local/lib/systemd/system/tlsgate-policyd.service", 0o644),
    ("$(SYSTEMD_UNITDIR)/tlsgate-notify.service",
     "/usr/local/lib/systemd/system/tlsgate-notify.service", 0o644),
    ("$(PREFIX)/share/doc/tlsgate/", "/usr/local/share/doc/tlsgate/install.md", 0o644),
    ("$(DOVECOT_MODULEDIR)/auth/libauthdb_tlsgate.so",
     None, 0o644),  # dovecot_moduledir + /auth/libauthdb_tlsgate.so
    ("$(SYSCONFDIR)/tlsgate/tlsgate.conf", "/etc/tlsgate/tlsgate.conf", 0o644),
    ("$(SYSCONFDIR)/tlsgate/policy.d/00-global.conf",
     "/etc/tlsgate/policy.d/00-global.conf", 0o644),
]


def expected_paths() -> dict[str, int]:
    out = {f"/usr/local/share/doc/tlsgate/{p.name}": 0o644
           for p in (REPO / "docs").glob("*.md")}
    for _doc, path, mode in DOCUMENTED:
        out[path or dovecot_moduledir() + "/auth/libauthdb_tlsgate.so"] = mode
    return out


def test_install_md_documents_each_destination():
    doc = (REPO / "docs" / "install.md").read_text()
    for pattern, _path, _mode in DOCUMENTED:
        assert pattern in doc, f"docs/install.md does not say where {pattern} is"
    assert "dovecot_moduledir" in doc


def test_notify_defaults_file_in_the_docs_reads_the_same_under_systemd():
    """The /etc/default/tlsgate-notify of docs/report.md is read by the init
    script (a shell) and by systemd's EnvironmentFile=, which keeps a
    `# ...` after a value as part of it: every line must be a comment or a
    bare KEY=VALUE, so that both read the same values, and every key must
    be one the unit or the init script uses."""
    text = (REPO / "docs" / "report.md").read_text()
    head = "Both read\n`/etc/default/tlsgate-notify`:\n\n```\n"
    assert head in text, "docs/report.md: the /etc/default/tlsgate-notify block moved"
    block = text.split(head, 1)[1].split("```", 1)[0]
    keys = []
    for line in block.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = re.fullmatch(r'(TLSGATE_NOTIFY_[A-Z_]+)=("[^"#]*"|[^\s"#]+)', line)
        assert m, f"docs/report.md: {line!r} is not KEY=VALUE alone (systemd keeps a trailing comment)"
        keys.append(m.group(1))
    assert "TLSGATE_NOTIFY_FROM" in keys
    unit = (REPO / "cli" / "report" / "tlsgate-notify.service").read_text()
    for key in keys:
        assert key in unit or key in (REPO / "cli" / "report" / "tlsgate-notify.init").read_text(), \
            f"{key} of docs/report.md is read by neither the unit nor the init script"


def test_make_install_puts_every_file_where_documented(tmp_path):
    dest = tmp_path / "stage"
    make_install(dest)
    want = expected_paths()
    got = installed_files(dest)
    assert got == set(want), (f"missing: {sorted(set(want) - got)}\n"
                              f"unexpected: {sorted(got - set(want))}")
    for path, mode in want.items():
        st = (dest / path.lstrip("/")).stat()
        assert st.st_mode & 0o7777 == mode, f"{path}: mode {st.st_mode & 0o7777:o}"
        assert st.st_uid == 0, path

    unit = (dest / "usr/local/lib/systemd/system/tlsgate-policyd.service").read_text()
    execs = re.findall(r"^ExecStart=(\S+)", unit, re.M)
    assert execs and all(e == "/usr/local/sbin/tlsgate-policyd" for e in execs), unit
    # every file the unit names as documentation is installed
    for doc in re.findall(r"file://(\S+)", unit):
        assert (dest / doc.lstrip("/")).is_file(), doc
    notify_unit = (dest / "usr/local/lib/systemd/system/tlsgate-notify.service").read_text()
    execs = re.findall(r"^ExecStart=(\S+)", notify_unit, re.M)
    assert execs == ["/usr/local/bin/tlsgate"], notify_unit
    for doc in re.findall(r"file://(\S+)", notify_unit):
        assert (dest / doc.lstrip("/")).is_file(), doc
    # the example configuration fits the unit: same pid file
    pidfile = re.search(r"^PIDFile=(\S+)", unit, re.M)
    if pidfile:
        conf_text = (dest / "etc/tlsgate/tlsgate.conf").read_text()
        assert re.search(rf"^pidfile = {re.escape(pidfile.group(1))}$", conf_text, re.M)

    # The installed programs run, and accept the installed example.
    tlsgate = dest / "usr/local/bin/tlsgate"
    conf = dest / "etc/tlsgate/tlsgate.conf"
    cp = subprocess.run([tlsgate, "-c", conf, "check"], capture_output=True, text=True)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert "global rule: yes" in cp.stdout
    cp = subprocess.run([dest / "usr/local/sbin/tlsgate-policyd", "--help"],
                        capture_output=True, text=True)
    assert cp.returncode == 0 and "--spawn" in cp.stdout
    # The module is the one built here, for this Dovecot.
    so = dest / dovecot_moduledir().lstrip("/") / "auth/libauthdb_tlsgate.so"
    assert so.read_bytes() == (BUILD / "dovecot-plugin/libauthdb_tlsgate.so").read_bytes()


def test_make_install_keeps_an_existing_configuration_and_honours_prefix(tmp_path):
    dest = tmp_path / "stage"
    confdir = dest / "etc/tlsgate"
    (confdir / "policy.d").mkdir(parents=True)
    mine = "policy = /srv/policy.d   # the admin's own\n"
    (confdir / "tlsgate.conf").write_text(mine)
    (confdir / "policy.d/50-mine.conf").write_text("require @example.com\n")

    cp = make_install(dest, "PREFIX=/usr")
    assert (confdir / "tlsgate.conf").read_text() == mine
    assert sorted(p.name for p in (confdir / "policy.d").iterdir()) == ["50-mine.conf"]
    assert "keeping the existing" in cp.stdout

    unit = dest / "usr/lib/systemd/system/tlsgate-policyd.service"
    assert re.search(r"^ExecStart=/usr/sbin/tlsgate-policyd\b", unit.read_text(), re.M)
    assert (dest / "usr/bin/tlsgate").is_file()
    assert (dest / "usr/share/man/man8/tlsgate-policyd.8").is_file()
    assert not (dest / "usr/local").exists()


# ---------------------------------------------------------------------------
# man pages
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("page", MAN_PAGES)
def test_man_page_renders_without_warnings(page):
    path = REPO / page
    cp = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", path],
                        capture_output=True, text=True)
    assert cp.returncode == 0 and cp.stderr == "", cp.stderr
    cp = subprocess.run(["man", "--warnings", "-l", path], capture_output=True, text=True,
                        env={**os.environ, "MANWIDTH": "80", "MAN_KEEP_FORMATTING": "",
                             "PAGER": "cat"})
    assert cp.returncode == 0 and cp.stderr == "", cp.stderr
    for heading in ("NAME", "DESCRIPTION", "SEE ALSO"):
        assert re.search(rf"^{heading}$", cp.stdout, re.M), f"{page}: no {heading}"
    assert max(len(line) for line in cp.stdout.splitlines()) <= 80


def rendered(page: str) -> str:
    cp = subprocess.run(["man", "-l", REPO / page], capture_output=True, text=True,
                        env={**os.environ, "MANWIDTH": "200", "PAGER": "cat"})
    # undo hyphenation at line ends and join the text
    return re.sub(r"\s+", " ", re.sub(r"(\w)[-\u2010]\n\s*(\w)", r"\1\2", cp.stdout))


def test_man_pages_name_every_config_key_command_and_option():
    """The pages follow the code: keys of lib/config.c, verbs and keys of
    lib/policy.c, commands of cli/main.c, options of postfix-policyd."""
    conf_keys = re.findall(r'\{ "(\w+)", set_\w+, (?:true|false) \}',
                           (REPO / "lib/config.c").read_text())
    assert len(conf_keys) >= 10
    text = rendered("man/tlsgate.conf.5")
    for key in conf_keys:
        assert re.search(rf"\b{key} =", text), f"tlsgate.conf(5) lacks {key}"

    policy_c = (REPO / "lib/policy.c").read_text()
    verbs = re.search(r'verbs\[\] = \{ (.*?) \}', policy_c).group(1)
    keys = re.search(r'key_names\[\] = \{(.*?)\}', policy_c, re.S).group(1)
    text = rendered("man/tlsgate.policy.5")
    for word in re.findall(r'"(\w+)"', verbs):
        assert re.search(rf"\b{word}\b", text), f"tlsgate.policy(5) lacks {word}"
    for key in re.findall(r'"(\w+)"', keys):
        assert f"{key}=" in text, f"tlsgate.policy(5) lacks {key}="

    commands = re.findall(r'\{ "(\w+)", cmd_\w+,', (REPO / "cli/main.c").read_text())
    assert {"check", "explain"} <= set(commands)
    man1 = (REPO / "man/tlsgate.1").read_text()
    for c in commands:
        assert re.search(rf"^\.SS {c}$", man1, re.M), f"tlsgate(1) lacks a section for {c}"

    # every option a command's --help lists is in tlsgate(1)
    text1 = rendered("man/tlsgate.1")
    for c in commands:
        cp = subprocess.run([BUILD / "tlsgate", c, "--help"], capture_output=True, text=True)
        for o in set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", cp.stdout + cp.stderr)):
            assert o in text1, f"tlsgate(1) lacks {c} {o}"

    opts = re.findall(r'\{ "([\w-]+)", (?:no|required)_argument',
                      (REPO / "postfix-policyd/main.c").read_text())
    text = rendered("man/tlsgate-policyd.8")
    for o in opts:
        assert f"--{o}" in text, f"tlsgate-policyd(8) lacks --{o}"


# ---------------------------------------------------------------------------
# the demo
# ---------------------------------------------------------------------------

def processes_under(directory: Path) -> list[str]:
    """Processes whose command line or working directory is below directory
    (Dovecot and tlsgate-policyd name their config; Postfix daemons run in
    their queue directory)."""
    d = str(directory.resolve())
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(f"/proc/{pid}/cwd")
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and (d in cmd or cwd.startswith(d)):
            found.append(f"{pid}: {cmd} (cwd {cwd})")
    return found


@demo_needs_plain_build
def test_demo_scenario_passes_and_leaves_no_process(tmp_path_factory):
    # short: Dovecot's unix socket paths below it must fit in 107 bytes
    out = tmp_path_factory.mktemp("demo")
    cp = subprocess.run([PYTHON, DEMO, "--dir", out, "--build", BUILD, "run"],
                        capture_output=True, text=True, timeout=240,
                        env={**os.environ, "NO_COLOR": "1"})
    text = cp.stdout
    assert cp.returncode == 0, text[-6000:] + cp.stderr[-2000:]
    steps = re.findall(r"^\s*(\d+)\. ", text, re.M)
    passed = re.findall(r"^\s+PASS \(", text, re.M)
    assert len(steps) >= 15 and len(passed) == len(steps), text[-4000:]
    assert not re.search(r"^\s+FAIL", text, re.M)
    assert f"demo passed: {len(steps)} of {len(steps)} steps" in text
    # What an admin is meant to see in the output.
    assert "NO [PRIVACYREQUIRED] TLS required" in text
    assert "verdict=exempt" in text and "verdict=audit" in text
    assert "550 5.7.10" in text             # TLS below min_tls (tlsgate-policyd)
    assert "ACCOUNTS SEEN IN PLAINTEXT" in text  # the tlsgate report at the end
    # the brownout window: refused inside it with the brownout message,
    # let through after it, and the report's brownout lists
    assert re.search(r"inside the window\n.*\n    server said: NO .*TLS will be required "
                     r"from \d{4}-\d\d-\d\d\. This was a test", text), text[-6000:]
    assert re.search(r"after the window\n.*\n    server said: OK", text)
    assert re.search(r"logged: .*user=carol@example\.net .*verdict=reject .*\n +"
                     r"brownout=yes: refused in a brownout window\n", text)
    listed = text.partition("REFUSED IN BROWNOUT WINDOWS")[2]
    assert re.search(r"\| carol@example\.net +imap +127\.0\.0\.2 +1 .* still plaintext", listed)
    assert "carol@example.net" in listed.partition("STILL PLAINTEXT AFTER A BROWNOUT (1)")[2]
    assert "no process left" in text
    assert processes_under(out) == []
    # It wrote below its directory only: logs and policy are there.
    assert (out / "run/stack/dovecot/dovecot.log").is_file()
    assert (out / "run/etc/policy.d").is_dir()


@demo_needs_plain_build
def test_demo_reports_failure_with_nonzero_exit(tmp_path):
    """A broken sandbox (no passdb module) is a clear error, not a pass."""
    fake_build = tmp_path / "build"
    fake_build.mkdir()
    for name in ("tlsgate", "tlsgate-policyd"):
        shutil.copy2(BUILD / name, fake_build / name)
    cp = subprocess.run([PYTHON, DEMO, "--dir", tmp_path / "demo", "--build", fake_build,
                         "run"], capture_output=True, text=True, timeout=60)
    assert cp.returncode == 2, cp.stdout
    assert "the Dovecot passdb module" in cp.stdout and "has not been built" in cp.stdout


@demo_needs_plain_build
def test_demo_fails_a_step_that_does_not_behave(tmp_path_factory):
    """A `tlsgate report` that fails: that step is FAIL, the others PASS,
    the demo says so, exits 1 and still stops everything."""
    out = tmp_path_factory.mktemp("demofail")
    fake_build = out / "build"
    (fake_build / "dovecot-plugin").mkdir(parents=True)
    shutil.copy2(BUILD / "tlsgate-policyd", fake_build / "tlsgate-policyd")
    shutil.copy2(BUILD / "dovecot-plugin/libauthdb_tlsgate.so",
                 fake_build / "dovecot-plugin/libauthdb_tlsgate.so")
    broken = fake_build / "tlsgate"
    broken.write_text("#!/bin/sh\n"
                      'for a; do [ "$a" = report ] && { echo "report broken" >&2; exit 1; }; done\n'
                      f'exec {BUILD / "tlsgate"} "$@"\n')
    broken.chmod(0o755)
    cp = subprocess.run([PYTHON, DEMO, "--dir", out, "--build", fake_build, "run"],
                        capture_output=True, text=True, timeout=240,
                        env={**os.environ, "NO_COLOR": "1"})
    text = cp.stdout
    assert cp.returncode == 1, text[-4000:]
    steps = re.findall(r"^\s*(\d+)\. ", text, re.M)
    failed = re.findall(r"^\s+FAIL \(", text, re.M)
    assert len(failed) == 1 and len(steps) >= 15, text[-4000:]
    assert "! report broken" in text
    assert re.search(rf"^demo FAILED \(1 of {len(steps)} steps.*who still uses plaintext",
                     text, re.M), text[-1000:]
    assert "no process left" in text
    assert processes_under(out) == []


@demo_needs_plain_build
def test_demo_up_serves_real_clients_and_down_stops_it(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    base = [PYTHON, DEMO, "--dir", out, "--build", BUILD]
    cp = subprocess.run([*base, "up"], capture_output=True, text=True, timeout=120,
                        env={**os.environ, "NO_COLOR": "1"})
    try:
        assert cp.returncode == 0, cp.stdout + cp.stderr
        state = json.loads((out / "up/state.json").read_text())
        ports = state["ports"]
        for name, port in ports.items():
            assert f"127.0.0.1:{port}" in cp.stdout, name
        alice = "alice@example.com"
        assert f"{alice}" in cp.stdout and state["users"][alice] in cp.stdout
        assert "make demo-down" in cp.stdout

        ctx = ms.tls_context(state["ca"])
        with ms.ImapClient(port=ports["IMAP (STARTTLS)"], ssl_context=ctx) as c:
            typ, text = c.try_login(alice, state["users"][alice])
            assert typ == "NO" and "[PRIVACYREQUIRED]" in text
        with ms.ImapClient(port=ports["IMAPS (implicit TLS)"], tls=True, ssl_context=ctx) as c:
            assert c.try_login(alice, state["users"][alice])[0] == "OK"
            c.logout()
        # `up` again while running: says so, starts nothing new.
        again = subprocess.run([*base, "up"], capture_output=True, text=True, timeout=60)
        assert again.returncode == 0 and "already running" in again.stdout
    finally:
        down = subprocess.run([*base, "down"], capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "stopped" in down.stdout
    assert processes_under(out) == []
    assert not (out / "up/state.json").exists()
    down2 = subprocess.run([*base, "down"], capture_output=True, text=True, timeout=60)
    assert down2.returncode == 0 and "not running" in down2.stdout


# ---------------------------------------------------------------------------
# the spawn(8) set-up of docs/install.md, with a real Postfix
# ---------------------------------------------------------------------------

def snippets(doc: str) -> list[str]:
    return re.findall(r"^```\n(.*?)^```", doc, re.S | re.M)


def test_install_md_spawn_setup_works(tmp_path_factory, stack_factory):
    doc = (REPO / "docs/install.md").read_text()
    master = next(s for s in snippets(doc) if " spawn\n" in s)
    main = next(s for s in snippets(doc) if "tlsgate_time_limit" in s)
    d = tmp_path_factory.mktemp("spawn")
    (d / "policy.d").mkdir()
    (d / "policy.d/50-example.test.conf").write_text("require @example.test\n")
    conf = d / "tlsgate.conf"
    conf.write_text("policy = policy.d\nmessage = \"TLS please\"\n")
    for p in (d, d / "policy.d"):
        p.chmod(0o755)
    # the documented lines, with this build's program and configuration
    master = master.replace("/usr/local/sbin/tlsgate-policyd",
                            f"{BUILD / 'tlsgate-policyd'} -c {conf}")
    master = master.replace("user=tlsgate", "user=nobody")  # exists everywhere
    restrictions = re.search(r"mua_recipient_restrictions =\s*(.*)", main, re.S).group(1)
    limit = re.search(r"^tlsgate_time_limit = \S+", main, re.M).group(0)
    ms.make_traversable(d)
    # spawn(8) runs the program as `nobody`: it must be able to
    cp = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                         BUILD / "tlsgate-policyd", "-c", conf, "--help"],
                        capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, f"nobody cannot run {BUILD / 'tlsgate-policyd'}: {cp}"
    # The program's stderr is Postfix's socket: a sanitizer report there
    # would read as a broken reply (default_action=DUNNO, then 250). Under
    # make test-sanitize, reports go to files, which must stay absent.
    reports = d / "sanitizer"
    reports.mkdir(mode=0o1777)
    reports.chmod(0o1777)
    san = (f"ASAN_OPTIONS=log_path={reports}/asan:detect_leaks=1 "
           f"UBSAN_OPTIONS=log_path={reports}/ubsan:print_stacktrace=1")
    st = stack_factory(name="spawn", start=False,
                       postfix_kw=dict(master_extra=master,
                                       recipient_restrictions=" ".join(restrictions.split()),
                                       main_extra=f"{limit}\nexport_environment = "
                                                  f"TZ MAIL_CONFIG LANG {san}\n"))
    st.add_user("alice@example.test", "alice-pw")
    st.start()
    with st.smtp("submission", "plain") as c:
        assert c.try_login("alice@example.test", "alice-pw")[0] == 235  # no module here
        replies = c.send_simple("alice@example.test", ["alice@example.test"])
    assert replies[1][0] == 530 and "TLS please" in replies[1][1], \
        (replies, st.postfix.log()[-3000:], {p.name: p.read_text() for p in reports.iterdir()})
    with st.smtp("submission", "starttls") as c:
        assert c.try_login("alice@example.test", "alice-pw")[0] == 235
        replies = c.send_simple("alice@example.test", ["alice@example.test"])
    assert [r[0] for r in replies] == [250, 250, 250], replies
    st.stop()					# the spawned programs exit (leak check)
    assert not list(reports.iterdir()), {p.name: p.read_text() for p in reports.iterdir()}
