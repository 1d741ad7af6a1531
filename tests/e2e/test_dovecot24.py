"""The `tlsgate` module and Dovecot 2.4: the settings module, `make install`
for another Dovecot, and a module built for the other version failing with
Dovecot's ABI message (both ways) instead of crashing the auth process.

Needs the Dovecot 2.4 that tests/dovecot24-setup builds ($TLSGATE_DOVECOT24,
default /var/cache/tlsgate/dovecot-2.4.4) and the module built for it
(`make dovecot24-module`); skips with the reason when they are absent. The
behaviour of the passdb on 2.4 is checked by running the Dovecot suite
against it (tests/build.mk: e2e-dovecot24).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import dovecot24
import mailstack as ms
from dovecot_tlsgate import REPO, PolicyDir, module_for

D = ms.DOMAIN
PW = "Secret-123"
PREFIX = Path(os.environ.get("TLSGATE_DOVECOT24", "/var/cache/tlsgate/dovecot-2.4.4"))
MODULE_23 = module_for(dovecot24.SYSTEM)
ABI_RE = r"Module is for different ABI version"


@pytest.fixture(scope="module")
def v24() -> dovecot24.Install:
    if os.environ.get("TLSGATE_SANITIZE"):
        pytest.skip("the module cannot load into a Dovecot built without ASan")
    inst = dovecot24.from_prefix(PREFIX)
    if inst is None or not inst.is_24:
        pytest.skip(f"no Dovecot 2.4 at {PREFIX} (tests/dovecot24-setup builds it)")
    if not module_for(inst).is_file():
        pytest.fail(f"{module_for(inst)} not built (make dovecot24-module)")
    return inst


def settings_module(inst) -> Path:
    return module_for(inst).parent / "libtlsgate_settings.so"


def exported(path: Path) -> set[str]:
    out = subprocess.run(["nm", "-D", "--defined-only", str(path)], capture_output=True,
                         text=True, check=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.strip()}


def test_modules_export_only_what_dovecot_looks_up(v24):
    assert exported(module_for(v24)) >= {"authdb_tlsgate_init", "authdb_tlsgate_deinit",
                                         "authdb_tlsgate_version"}
    assert not {s for s in exported(module_for(v24)) if s.startswith("tg_")}
    assert {"tlsgate_settings_set_infos", "tlsgate_settings_version"} <= \
        exported(settings_module(v24))
    # 2.3 needs no settings module: none is built for it
    assert not settings_module(dovecot24.SYSTEM).exists()


def test_make_install_for_another_dovecot(v24, tmp_path):
    cp = subprocess.run(["make", "--no-print-directory", "-C", str(REPO), "install-dovecot-plugin",
                         f"DOVECOT_CONFIG={v24.prefix}/lib/dovecot/dovecot-config",
                         f"DESTDIR={tmp_path}"], capture_output=True, text=True, timeout=300)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    root = Path(f"{tmp_path}{v24.moduledir}")
    assert (root / "auth/libauthdb_tlsgate.so").read_bytes() == module_for(v24).read_bytes()
    assert (root / "settings/libtlsgate_settings.so").read_bytes() == \
        settings_module(v24).read_bytes()


def v24_passdb(conf) -> str:
    return f"""passdb tlsgate {{
  driver = tlsgate
  skip = unauthenticated
  tlsgate_config = {conf}
}}
"""


def test_doveconf_needs_the_settings_module(v24, tmp_path_factory, stack_factory):
    pol = PolicyDir(tmp_path_factory.mktemp("tg24-etc"), f"require @{D}\n")
    st = stack_factory(name="tg24-conf", start=False, postfix=False,
                       dovecot_kw=dict(install=v24, passdb_extra=v24_passdb(pol.conf),
                                       auth_modules=[module_for(v24)]))
    d = st.dovecot
    d.conf.write_text(d.config_text())
    d._prepare_module_dir()
    # without the settings module the config process does not know the setting
    bare = ms.run([v24.doveconf, "-c", d.conf, "-n"], check=False)
    assert bare.returncode != 0
    assert "tlsgate_config" in bare.stderr, bare.stderr
    # with it (the instance's mount namespace), doveconf shows it
    ok = ms.run(d._in_namespace([v24.doveconf, "-c", d.conf, "-n"]), check=False)
    assert ok.returncode == 0, ok.stderr
    assert re.search(rf"^\s*tlsgate_config = {re.escape(str(pol.conf))}$", ok.stdout, re.M)


def start_expecting_auth_failure(stack_factory, name, install, module, passdb):
    st = stack_factory(name=name, start=False, postfix=False,
                       dovecot_kw=dict(install=install, passdb_extra=passdb,
                                       auth_modules=[module]))
    st.add_user(f"alice@{D}", PW)
    with pytest.raises(ms.HarnessError) as e:
        st.start()
    return st.dovecot, str(e.value)


def assert_abi_refusal_without_crash(d, detail, ours_abi, theirs_abi):
    log = d.log()
    m = re.search(rf"auth: Fatal: .*libauthdb_tlsgate\.so: {ABI_RE} (\S+) \(we have (\S+)\)",
                  log)
    assert m, detail + "\n" + log[-3000:]
    assert m.group(1).startswith(ours_abi) and m.group(2).startswith(theirs_abi), m.group(0)
    # a clean fatal exit, never a crash
    assert not re.search(r"killed with signal (?!15)|core dumped|Panic:", log, re.I), log[-3000:]


def test_23_module_in_24_fails_with_abi_message(v24, stack_factory):
    if not MODULE_23.is_file():
        pytest.fail(f"{MODULE_23} not built (make)")
    passdb = "passdb tlsgate {\n  driver = tlsgate\n  skip = unauthenticated\n}\n"
    d, detail = start_expecting_auth_failure(stack_factory, "tg-abi-23in24", v24,
                                             MODULE_23, passdb)
    assert_abi_refusal_without_crash(d, detail, "2.3.", "2.4.")


def test_24_module_in_23_fails_with_abi_message(v24, stack_factory, tmp_path_factory):
    pol = PolicyDir(tmp_path_factory.mktemp("tg-abi-etc"), f"require @{D}\n")
    # a copy: the settings module beside it must not reach 2.3 (it has no use)
    only = tmp_path_factory.mktemp("mod24") / "libauthdb_tlsgate.so"
    shutil.copy2(module_for(v24), only)
    passdb = f"passdb {{\n  driver = tlsgate\n  args = {pol.conf}\n  skip = unauthenticated\n}}\n"
    d, detail = start_expecting_auth_failure(stack_factory, "tg-abi-24in23",
                                             dovecot24.SYSTEM, only, passdb)
    assert_abi_refusal_without_crash(d, detail, "2.4.", "2.3.")


def test_documented_24_passdb_is_the_tested_one():
    """docs/dovecot.md's 2.4 tlsgate passdb is what the suite runs on 2.4
    (the harness's translation of the 2.3 block), up to the order of lines."""
    from dovecot_tlsgate import passdb_block
    doc = (REPO / "docs" / "dovecot.md").read_text()
    m = re.search(r"^passdb tlsgate \{\n(.*?)^\}", doc, re.M | re.S)
    assert m, "no `passdb tlsgate {` block in docs/dovecot.md"
    documented = sorted(line.strip() for line in m.group(1).splitlines())
    tested = dovecot24.translate(passdb_block(Path("/etc/tlsgate/tlsgate.conf")))
    t = re.search(r"^passdb tlsgate \{\n(.*?)^\}", tested, re.M | re.S)
    assert t, tested
    assert sorted(line.strip() for line in t.group(1).splitlines()) == documented
