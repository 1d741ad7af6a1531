"""Devices named in events, `tlsgate report` and `tlsgate notify`.

One module-wide world: Dovecot with the tlsgate passdb and
`imap_id_retain = yes`, Postfix asking a running tlsgate-policyd (audit
mode for example.test), clients from 127.0.0.2. Python's imaplib sends
IMAP `ID` before LOGIN (some with hostile texts), smtplib sends its own
EHLO name through Postfix. The events must carry what the devices said,
escaped; the report must group each account's plaintext logins by device
in every output form; a notice must name the program.
"""

from __future__ import annotations

import csv
import imaplib
import io
import json
import subprocess
from pathlib import Path

import pytest

import mailstack as ms
from dovecot_tlsgate import MODULE, PolicyDir, events, passdb_block, wait_event
from test_report_e2e import POLICYD, TEMPLATES, TLSGATE, Policyd, _missing_parts, _wait_log_event

D = ms.DOMAIN
PW = "Secret-123"
RULES = f"audit @{D}\n"
BIDI = "\u202e"
LONG = "L" * 1000     # RFC 2971's limit is 1024; Dovecot drops 10 KB lines
# name/version IMAP ID texts (the args of ID, as the client sends them)
HOSTILE = {
    "quotes": '("name" "say \\"hi\\"" "version" "1\\\\2")',
    "control": '("name" "ctl\x01\x1b[31mred" "version" "1.0")',
    "bidi": f'("name" "{BIDI}exe.cod" "version" "2")',
    "tag": '("name" "x tlsgate: service=imap user=evil@example.test verdict=allow" "version" "3")',
    "long": f'("name" "{LONG}" "version" "4")',
}
imaplib.Commands.setdefault("ID", ("NONAUTH", "AUTH", "SELECTED"))


def imap_login_with_id(st, user, id_args=None):
    with st.imap() as c:
        if id_args is not None:
            typ, _ = c._simple_command("ID", id_args.encode())
            assert typ == "OK"
        assert c.try_login(user, PW)[0] == "OK"
        return c.sock.getsockname()[1]


def world_10k_id(st):
    """An ID with a 10 KB value: Dovecot's login process drops the line
    (or the connection) itself; no login, no event, nothing crashes."""
    try:
        with st.imap() as c:
            typ, _ = c._simple_command("ID", ('("name" "' + "X" * 10240 + '")').encode())
            assert typ != "OK"
    except (imaplib.IMAP4.abort, imaplib.IMAP4.error, OSError):
        pass


@pytest.fixture(scope="module")
def world(session_stack_factory, tmp_path_factory):
    missing = _missing_parts()
    if missing:
        pytest.skip("not built: " + ", ".join(missing) + " (run make)")
    etc = tmp_path_factory.mktemp("devices-etc")
    pol = PolicyDir(etc, RULES)
    with open(pol.conf, "a") as f:
        f.write("user = nobody\ngroup = nogroup\n")
    logs = tmp_path_factory.mktemp("devices-logs")
    ms.make_traversable(logs)
    policyd_log = logs / "policyd.log"
    port = ms.free_port()
    policyd = Policyd(pol.conf, port, policyd_log)
    try:
        st = session_stack_factory(
            name="devices", start=False,
            dovecot_kw=dict(passdb_extra=passdb_block(pol.conf), auth_modules=[MODULE],
                            config_extra="imap_id_retain = yes\n"),
            postfix_kw=dict(policy_service=port))
        for u in ("scan", "laptop", "hostile", "smtp"):
            st.add_user(f"{u}@{D}", PW)
        st.start()
        ports = {}
        # scan@: the scanner twice, and once a program without ID
        ports["scanner"] = imap_login_with_id(st, f"scan@{D}",
                                              '("name" "scanner-x" "version" "1.0")')
        imap_login_with_id(st, f"scan@{D}", '("name" "scanner-x" "version" "1.0")')
        ports["noid"] = imap_login_with_id(st, f"scan@{D}")
        imap_login_with_id(st, f"laptop@{D}", '("name" "Thunderbird" "version" "115.3.1")')
        for args in HOSTILE.values():
            imap_login_with_id(st, f"hostile@{D}", args)
        world_10k_id(st)
        with st.smtp("submission", "plain", local_hostname="pc17.example.test") as c:
            assert c.try_login(f"smtp@{D}", PW)[0] == 235
            ports["smtp"] = c.sock.getsockname()[1]
            replies = c.send_simple(f"smtp@{D}", [f"scan@{D}"])
            assert replies[1][0] == 250, replies
        wait_event(st.dovecot, 0, user=f"hostile@{D}", imap_id_name="L" * 96 + "...")
        _wait_log_event(policyd_log, user=f"smtp@{D}", service="smtp")
        yield dict(stack=st, conf=pol.conf, dovecot_log=Path(st.dovecot.logfile.path),
                   policyd_log=policyd_log, tmp=logs, ports=ports)
    finally:
        policyd.stop()


def dovecot_events(world, **want):
    return [e for e in events(world["dovecot_log"].read_text(errors="replace"))
            if all(e.get(k) == v for k, v in want.items())]


def test_imap_id_in_events(world):
    st = world["stack"]
    scan = dovecot_events(world, user=f"scan@{D}")
    assert len(scan) == 3
    first = scan[0]
    assert (first["imap_id_name"], first["imap_id_version"]) == ("scanner-x", "1.0")
    assert first["client_port"] == str(world["ports"]["scanner"])
    assert first["server_port"] == str(st.dovecot.ports["imap"])
    noid = [e for e in scan if e["client_port"] == str(world["ports"]["noid"])]
    assert len(noid) == 1 and "imap_id_name" not in noid[0] and "imap_id_version" not in noid[0]
    # the device fields come after every other field
    line = next(ln for ln in world["dovecot_log"].read_text().splitlines()
                if "imap_id_name=scanner-x" in ln)
    assert line.index(" rule=") < line.index(" imap_id_name=") < line.index(" client_port=")


def test_hostile_ids_stay_inside_their_field(world):
    text = world["dovecot_log"].read_text(errors="replace")
    hostile = dovecot_events(world, user=f"hostile@{D}")
    # one event per login, none forged by the ID text
    assert len(hostile) == len(HOSTILE)      # the 10 KB ID logged nobody in
    assert not dovecot_events(world, user="evil@example.test")
    assert all(e["verdict"] == "audit" for e in hostile)
    by_version = {e.get("imap_id_version"): e for e in hostile}
    assert by_version["1\\2"]["imap_id_name"] == 'say "hi"'
    assert by_version["3"]["imap_id_name"].startswith("x tlsgate: service=imap user=evil")
    # escaped: no control byte and no raw bidi character in the log line
    for ln in text.splitlines():
        if f"user=hostile@{D}" in ln:
            assert not any(ord(ch) < 0x20 or ch == BIDI for ch in ln), repr(ln)
    # a 1000-byte name is cut at 96 bytes and says so (Dovecot keeps no
    # more of that ID, so no version)
    assert dovecot_events(world, user=f"hostile@{D}", imap_id_name="L" * 96 + "...")
    # Dovecot drops 8-bit bytes from the ID it passes on: the bidi
    # character never reaches the event
    assert by_version["2"]["imap_id_name"] == "exe.cod"


def test_ehlo_name_in_policyd_events(world):
    ev = [e for e in events(world["policyd_log"].read_text(errors="replace"))
          if e.get("user") == f"smtp@{D}"]
    assert ev
    assert ev[0]["helo"] == "pc17.example.test"
    assert ev[0]["client_port"] == str(world["ports"]["smtp"])
    assert ev[0]["server_port"] == str(world["stack"].postfix.ports["submission"])
    assert "imap_id_name" not in ev[0]


def report(world, *args):
    cp = subprocess.run([str(TLSGATE), "-c", str(world["conf"]), "report", *args,
                         str(world["dovecot_log"]), str(world["policyd_log"])],
                        capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    return cp.stdout


def test_report_groups_by_device_in_every_form(world):
    raw = report(world, "--json")
    assert "\x1b" not in raw and BIDI not in raw       # escaped as \u001b
    data = json.loads(raw)
    acc = {a["account"]: a for a in data["accounts"]}
    scan = {(c["address"], c["program"]): c for c in acc[f"scan@{D}"]["clients"]}
    assert set(scan) == {("127.0.0.2", "scanner-x 1.0"), ("127.0.0.2", "")}
    assert scan[("127.0.0.2", "scanner-x 1.0")]["count"] == 2
    assert scan[("127.0.0.2", "")]["count"] == 1
    dev = scan[("127.0.0.2", "scanner-x 1.0")]
    assert dev["first"] <= dev["last"] and dev["first"]
    assert [c["program"] for c in acc[f"laptop@{D}"]["clients"]] == ["Thunderbird 115.3.1"]
    smtp = acc[f"smtp@{D}"]["clients"]
    assert {c["helo"] for c in smtp} >= {"pc17.example.test"}
    hostile = [c["program"] for c in acc[f"hostile@{D}"]["clients"]]
    assert len(hostile) == len(HOSTILE)
    assert all(len(p.encode()) <= 64 for p in hostile)
    assert 'say "hi" 1\\2' in hostile and "ctl\x01\x1b[31mred 1.0" in hostile

    rows = list(csv.DictReader(io.StringIO(report(world, "--csv"))))
    row = {r["account"]: r for r in rows}[f"scan@{D}"]
    assert row["clients"] == "127.0.0.2"           # each address once
    assert "127.0.0.2 (scanner-x 1.0): 2, " in row["devices"]
    assert "127.0.0.2: 1, " in row["devices"]

    text = report(world)
    assert "PLAINTEXT DEVICES" in text
    line = next(ln for ln in text.splitlines() if ln.startswith(f"scan@{D}") and "scanner-x" in ln)
    assert "127.0.0.2" in line and "scanner-x 1.0" in line and " 2 " in line
    assert any(ln.startswith(f"smtp@{D}") and "pc17.example.test" in ln for ln in text.splitlines())
    assert "\x1b" not in text and BIDI not in text

    page = world["tmp"] / "devices.html"
    subprocess.run([str(TLSGATE), "-c", str(world["conf"]), "report", "--html", str(page),
                    str(world["dovecot_log"]), str(world["policyd_log"])], check=True, timeout=60)
    html = page.read_text()
    assert "127.0.0.2 (scanner-x 1.0) &ndash; 2&times;" in html
    assert "say &quot;hi&quot;" in html
    assert "\x1b" not in html and BIDI not in html

    wb = list(csv.DictReader(io.StringIO(report(world, "--would-break", D, "--csv"))))
    progs = {(r["account"], r["program"], r["helo"]) for r in wb}
    assert (f"scan@{D}", "scanner-x 1.0", "") in progs
    assert (f"laptop@{D}", "Thunderbird 115.3.1", "") in progs
    assert (f"smtp@{D}", "", "pc17.example.test") in progs
    wbj = json.loads(report(world, "--would-break", D, "--json"))
    assert {"program", "helo"} <= set(wbj[0])
    wbt = report(world, "--would-break", D)
    assert "PROGRAM (IMAP ID)" in wbt and "Thunderbird 115.3.1" in wbt


def test_notice_names_the_program(world):
    """`tlsgate notify --out`: the EN and DE notices say which program on
    which address and protocol; hostile names reach neither the headers
    nor the body raw."""
    import email
    import email.policy
    for lang, intro in (("en", "Which program on which device"),
                        ("de", "Welches Programm auf welchem Ger\u00e4t")):
        out = world["tmp"] / f"notices-{lang}"
        out.mkdir()
        cp = subprocess.run([str(TLSGATE), "-c", str(world["conf"]), "notify", "--out", str(out),
                             "--from", f"Mail Admin <postmaster@{D}>", "--templates",
                             str(TEMPLATES), "--lang", lang,
                             str(world["dovecot_log"]), str(world["policyd_log"])],
                            capture_output=True, text=True, timeout=60)
        assert cp.returncode == 0, cp.stderr

        def body(user):
            raw = (out / f"{user}@{D}.eml").read_bytes()
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            assert "scanner" not in str(msg["Subject"]) and "hi" not in str(msg["Subject"])
            return raw, msg.get_content()

        _, scan = body("scan")
        assert intro in scan
        line = next(ln for ln in scan.splitlines() if '"scanner-x 1.0"' in ln)
        assert "IMAP" in line and "127.0.0.2" in line
        _, smtp = body("smtp")
        line = next(ln for ln in smtp.splitlines() if "EHLO pc17.example.test" in ln)
        assert "SMTP" in line and "127.0.0.2" in line
        raw, hostile = body("hostile")
        assert '"say "hi" 1\\2"' in hostile
        assert '"ctl[31mred 1.0"' in hostile          # control bytes dropped
        assert "\x1b" not in hostile and "\x01" not in hostile and BIDI not in hostile
        assert b"\x1b" not in raw and b"=1B" not in raw
        assert "L" * 60 not in hostile                # cut
