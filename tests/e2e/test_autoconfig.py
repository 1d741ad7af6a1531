"""`tlsgate autoconfig`: client setup files that publish TLS endpoints only.

Each file is checked by a real tool (xmllint against the schemas in
schemas/, named-checkzone on a zone that includes the snippet) and parsed
back field by field (xml.etree, plistlib). With --probe, the endpoints of
a real Dovecot on loopback are checked first: ready -> written, a closed
port -> nothing written.
"""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import mailstack

REPO = Path(__file__).resolve().parent.parent.parent
TLSGATE = Path(os.environ.get("TLSGATE_BIN",
                              Path(os.environ.get("TLSGATE_BUILD", REPO / "build")) / "tlsgate"))
SCHEMAS = Path(__file__).resolve().parent / "schemas"
FILES = ["config-v1.1.xml", "autodiscover.xml", "mail.mobileconfig", "srv.zone"]
MOZ = ""
AD = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"

POLICY = """\
require @example.test from=2027-03-01
audit @Second.Example
require carol@third.example
off bare
exempt printer@example.test 192.0.2.0/24
"""


def write_conf(tmp: Path, extra: str) -> Path:
    (tmp / "policy.conf").write_text(POLICY)
    conf = tmp / "tlsgate.conf"
    conf.write_text(f"policy = {tmp / 'policy.conf'}\n{extra}")
    return conf


def autoconfig(conf: Path, *args, check: bool = True):
    cp = subprocess.run([str(TLSGATE), "-c", str(conf), "autoconfig", *map(str, args)],
                        capture_output=True, text=True, timeout=120)
    if check:
        assert cp.returncode == 0, cp.stdout + cp.stderr
    return cp


FULL = ('autoconfig_imap = imap.example.net\nautoconfig_pop3 = pop.example.net:1995\n'
        'autoconfig_submission = smtp.example.net:465\nautoconfig_name = "Example & Co"\n')


@pytest.fixture()
def written(tmp_path):
    conf = write_conf(tmp_path, FULL)
    out = tmp_path / "out"
    out.mkdir()
    cp = autoconfig(conf, "--out", out)
    return out, cp


def test_one_directory_per_policy_domain(written):
    out, cp = written
    assert sorted(p.name for p in out.iterdir()) == \
        ["example.test", "second.example", "third.example"]
    for d in out.iterdir():
        assert sorted(p.name for p in d.iterdir()) == sorted(FILES)
        for f in d.iterdir():
            assert (f.stat().st_mode & 0o777) == 0o644
    assert cp.stdout.count("config-v1.1.xml") == 3


def test_mozilla_file(written):
    out, _ = written
    path = out / "example.test" / "config-v1.1.xml"
    subprocess.run(["xmllint", "--noout", "--nonet", "--schema",
                    str(SCHEMAS / "autoconfig.xsd"), str(path)], check=True,
                   capture_output=True)
    root = ET.parse(path).getroot()
    prov = root.find("emailProvider")
    assert prov.get("id") == "example.test"
    assert prov.findtext("domain") == "example.test"
    assert prov.findtext("displayName") == "Example & Co"
    servers = [(s.tag, s.get("type"), s.findtext("hostname"), s.findtext("port"),
                s.findtext("socketType"), s.findtext("username"))
               for s in prov if s.tag.endswith("Server")]
    assert servers == [
        ("incomingServer", "imap", "imap.example.net", "993", "SSL", "%EMAILADDRESS%"),
        ("incomingServer", "pop3", "pop.example.net", "1995", "SSL", "%EMAILADDRESS%"),
        ("outgoingServer", "smtp", "smtp.example.net", "465", "SSL", "%EMAILADDRESS%"),
    ]


def test_autodiscover_file(written):
    out, _ = written
    path = out / "second.example" / "autodiscover.xml"
    subprocess.run(["xmllint", "--noout", "--nonet", "--schema",
                    str(SCHEMAS / "autodiscover.xsd"), str(path)], check=True,
                   capture_output=True)
    account = ET.parse(path).getroot().find(f"{AD}Response/{AD}Account")
    protos = [(p.findtext(f"{AD}Type"), p.findtext(f"{AD}Server"), p.findtext(f"{AD}Port"),
               p.findtext(f"{AD}SSL"), p.findtext(f"{AD}Encryption"))
              for p in account.findall(f"{AD}Protocol")]
    assert protos == [("IMAP", "imap.example.net", "993", "on", "SSL"),
                      ("POP3", "pop.example.net", "1995", "on", "SSL"),
                      ("SMTP", "smtp.example.net", "465", "on", "SSL")]


def test_apple_profile(written):
    out, _ = written
    path = out / "third.example" / "mail.mobileconfig"
    # The structure of a property list (schemas/plist.dtd), offline.
    subprocess.run(["xmllint", "--noout", "--nonet", "--dtdvalid",
                    str(SCHEMAS / "plist.dtd"), str(path)], check=True, capture_output=True)
    profile = plistlib.loads(path.read_bytes())
    assert profile["PayloadType"] == "Configuration"
    assert profile["PayloadIdentifier"] == "example.third.mail"
    assert profile["PayloadVersion"] == 1
    (mail,) = profile["PayloadContent"]
    assert mail["PayloadType"] == "com.apple.mail.managed"
    assert mail["EmailAccountType"] == "EmailTypeIMAP"
    assert mail["IncomingMailServerHostName"] == "imap.example.net"
    assert mail["IncomingMailServerPortNumber"] == 993
    assert mail["IncomingMailServerUseSSL"] is True
    assert mail["OutgoingMailServerHostName"] == "smtp.example.net"
    assert mail["OutgoingMailServerPortNumber"] == 465
    assert mail["OutgoingMailServerUseSSL"] is True
    assert mail["EmailAccountDescription"] == "Example & Co"
    uuids = {profile["PayloadUUID"], mail["PayloadUUID"]}
    assert len(uuids) == 2
    import uuid
    for u in uuids:
        assert uuid.UUID(u).version == 5


@pytest.mark.skipif(shutil.which("named-checkzone") is None,
                    reason="named-checkzone not installed (bind9-utils)")
def test_zone_snippet(written, tmp_path):
    out, _ = written
    snippet = out / "example.test" / "srv.zone"
    zone = tmp_path / "example.test.zone"
    zone.write_text(
        "$TTL 3600\n"
        "@ IN SOA ns1.example.test. hostmaster.example.test. 1 7200 900 1209600 3600\n"
        "@ IN NS ns1.example.test.\n"
        "ns1 IN A 192.0.2.53\n"
        f"$INCLUDE {snippet}\n")
    cp = subprocess.run(["named-checkzone", "-k", "fail", "example.test", str(zone)],
                        capture_output=True, text=True)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert cp.stdout.strip().endswith("OK")
    records = {}
    for line in snippet.read_text().splitlines():
        if line.startswith(";") or not line.strip():
            continue
        owner, ttl, cls, rtype, prio, weight, port, target = line.split()
        assert (ttl, cls, rtype) == ("3600", "IN", "SRV")
        records[owner] = (prio, weight, int(port), target)
    assert records == {
        "_imaps._tcp.example.test.": ("0", "1", 993, "imap.example.net."),
        "_pop3s._tcp.example.test.": ("0", "1", 1995, "pop.example.net."),
        "_submissions._tcp.example.test.": ("0", "1", 465, "smtp.example.net."),
        "_submission._tcp.example.test.": ("0", "0", 0, "."),
        "_imap._tcp.example.test.": ("0", "0", 0, "."),
        "_pop3._tcp.example.test.": ("0", "0", 0, "."),
    }


def test_starttls_submission_and_domain_option(tmp_path):
    conf = write_conf(tmp_path, "autoconfig_imap = imap.example.net\n"
                      "autoconfig_submission = smtp.example.net:587\n")
    out = tmp_path / "out"
    out.mkdir()
    autoconfig(conf, "--out", out, "--domain", "Other.Example", "--ttl", "300")
    assert [p.name for p in out.iterdir()] == ["other.example"]
    moz = ET.parse(out / "other.example" / "config-v1.1.xml").getroot()
    (smtp,) = moz.iter("outgoingServer")
    assert (smtp.findtext("port"), smtp.findtext("socketType")) == ("587", "STARTTLS")
    assert not list(moz.iter("incomingServer"))[1:]        # no POP3
    zone = [line.split() for line in
            (out / "other.example" / "srv.zone").read_text().splitlines()
            if line and not line.startswith(";")]
    assert ["_submission._tcp.other.example.", "300", "IN", "SRV", "0", "1", "587",
            "smtp.example.net."] in zone
    assert ["_submissions._tcp.other.example.", "300", "IN", "SRV", "0", "0", "0", "."] in zone
    assert ["_pop3s._tcp.other.example.", "300", "IN", "SRV", "0", "0", "0", "."] in zone


@pytest.mark.parametrize("extra, args, why", [
    ("autoconfig_imap = imap.example.net\n", ["--out", "/nonexistent"], "/nonexistent"),
    ("", ["--out", "."], "set autoconfig_imap"),
    ("autoconfig_imap = imap.example.net\n", ["--out", ".", "--domain", "../etc"],
     "is not a domain name"),
    ("autoconfig_imap = imap.example.net\n", ["--out", ".", "--ttl", "5"], "--ttl"),
    ("autoconfig_imap = imap.example.net\n", ["--out", ".", "--ca", "x"], "go with --probe"),
    ("autoconfig_submission = smtp.example.net:25\n", ["--out", "."], "port 465"),
    ("autoconfig_imap = imap.example.net\n", [], "--out DIR is required"),
])
def test_errors(tmp_path, extra, args, why):
    conf = write_conf(tmp_path, extra)
    cp = autoconfig(conf, *args, check=False)
    assert cp.returncode == 2
    assert why in cp.stderr


def test_symlinked_domain_directory_refused(tmp_path):
    """Whoever can write OUT cannot redirect the files elsewhere."""
    conf = write_conf(tmp_path, FULL)
    out, victim = tmp_path / "out", tmp_path / "victim"
    out.mkdir()
    victim.mkdir()
    (out / "example.test").symlink_to(victim)
    (victim / "config-v1.1.xml").write_text("keep")
    cp = autoconfig(conf, "--out", out, "--domain", "example.test", check=False)
    assert cp.returncode == 2
    assert "symbolic link" in cp.stderr
    assert (victim / "config-v1.1.xml").read_text() == "keep"
    assert sorted(p.name for p in victim.iterdir()) == ["config-v1.1.xml"]


def test_planted_file_symlink_is_replaced_not_followed(tmp_path):
    conf = write_conf(tmp_path, FULL)
    out = tmp_path / "out"
    (out / "example.test").mkdir(parents=True)
    target = tmp_path / "precious"
    target.write_text("keep")
    (out / "example.test" / "srv.zone").symlink_to(target)
    autoconfig(conf, "--out", out, "--domain", "example.test")
    assert target.read_text() == "keep"
    assert not (out / "example.test" / "srv.zone").is_symlink()
    assert "_imaps._tcp.example.test." in (out / "example.test" / "srv.zone").read_text()


@pytest.fixture(scope="module")
def dovecot(tmp_path_factory, certs):
    st = mailstack.Stack(tmp_path_factory.mktemp("autoconfig"), certs.server,
                         ca=certs.ca.cert, postfix=False)
    st.start()
    yield st
    st.stop()


def test_probe_ready_writes(dovecot, certs, tmp_path):
    p = dovecot.dovecot.ports
    conf = write_conf(tmp_path, f"autoconfig_imap = localhost:{p['imaps']}\n"
                      f"autoconfig_pop3 = localhost:{p['pop3s']}\n")
    out = tmp_path / "out"
    out.mkdir()
    cp = autoconfig(conf, "--out", out, "--domain", "example.test", "--probe",
                    "--ca", certs.ca.cert, "--timeout", "5", check=False)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert f"imaps localhost:{p['imaps']} (IMAP implicit TLS): ready" in cp.stdout
    assert sorted(p.name for p in (out / "example.test").iterdir()) == sorted(FILES)


def test_probe_not_ready_writes_nothing(dovecot, certs, tmp_path):
    p = dovecot.dovecot.ports
    closed = mailstack.free_port()
    conf = write_conf(tmp_path, f"autoconfig_imap = localhost:{p['imaps']}\n"
                      f"autoconfig_pop3 = localhost:{closed}\n")
    out = tmp_path / "out"
    out.mkdir()
    cp = autoconfig(conf, "--out", out, "--probe", "--ca", certs.ca.cert,
                    "--timeout", "5", check=False)
    assert cp.returncode == 1, cp.stdout + cp.stderr
    assert "not ready: nothing written for 3 domain(s)" in cp.stderr
    assert list(out.iterdir()) == []
