"""userdb_backends - real account databases behind Dovecot for the e2e
tests of `userdb =` (test_userdb_backends.py): SQLite, PostgreSQL and
OpenLDAP, each started throwaway below a test directory, on loopback only.

Each backend has one table/entry per mailbox with its password and a
`tlsgate_mode` column/attribute, and offers:

    db = Backend(directory).start()
    db.add(user, password, mode)     # mode: "off" | "audit" | "require" | None
    db.set_mode(user, mode)          # what a control panel writes
    db.passdb_userdb(home_root, uid, gid) -> Dovecot passdb + userdb blocks
    db.stop()

The Dovecot configuration is the recipe of docs/dovecot.md: the mode is
returned by the password query (for the tlsgate passdb module) and by the
user query (for USER look-ups: tlsgate-policyd and the CLI).
"""

from __future__ import annotations

import os
import pwd
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Optional

import mailstack

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _sql_quote(v: Optional[str]) -> str:
    return "NULL" if v is None else "'" + v.replace("'", "''") + "'"


def _sql_conf(path: Path, driver: str, connect: str, home_root: Path, uid: int, gid: int) -> None:
    # The recipe of docs/dovecot.md ("Account database").
    path.write_text(f"""driver = {driver}
connect = {connect}
default_pass_scheme = PLAIN
password_query = SELECT email AS user, password, tls_mode AS tlsgate_mode \\
  FROM mailbox WHERE email = '%u'
user_query = SELECT '{home_root}/' || email AS home, {uid} AS uid, {gid} AS gid, \\
  tls_mode AS tlsgate_mode FROM mailbox WHERE email = '%u'
iterate_query = SELECT email AS user FROM mailbox
""")
    os.chmod(path, 0o644)


def _blocks(driver: str, args: Path) -> str:
    return f"""passdb {{
  driver = {driver}
  args = {args}
  result_success = continue-ok
}}
""", f"""userdb {{
  driver = {driver}
  args = {args}
}}
"""


SCHEMA = """CREATE TABLE mailbox (
  email    VARCHAR(255) PRIMARY KEY,
  password VARCHAR(255) NOT NULL,
  tls_mode VARCHAR(8) CHECK (tls_mode IN ('off', 'audit', 'require'))
)"""


class SqliteBackend:
    name = "sqlite"

    def __init__(self, directory):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.db = self.dir / "mail.sqlite"
        self.conf = self.dir / "dovecot-sql.conf.ext"

    def start(self) -> "SqliteBackend":
        with sqlite3.connect(self.db) as c:
            c.execute(SCHEMA)
        os.chmod(self.db, 0o644)    # the auth worker (user dovecot) reads it
        return self

    def _exec(self, sql: str) -> None:
        with sqlite3.connect(self.db) as c:
            c.execute(sql)

    def add(self, user: str, password: str, mode: Optional[str]) -> None:
        self._exec(f"INSERT INTO mailbox VALUES ({_sql_quote(user)}, {_sql_quote(password)}, "
                   f"{_sql_quote(mode)})")

    def set_mode(self, user: str, mode: Optional[str]) -> None:
        self._exec(f"UPDATE mailbox SET tls_mode = {_sql_quote(mode)} WHERE email = {_sql_quote(user)}")

    def passdb_userdb(self, home_root: Path, uid: int, gid: int) -> tuple[str, str]:
        _sql_conf(self.conf, "sqlite", str(self.db), home_root, uid, gid)
        return _blocks("sql", self.conf)

    def stop(self) -> None:
        pass


class PostgresBackend:
    """A throwaway cluster: initdb as the postgres user, listening on
    127.0.0.1:PORT and a private socket directory, trust authentication
    for the loopback address only."""
    name = "pgsql"

    def __init__(self, directory):
        self.dir = Path(directory).resolve()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.data = self.dir / "pgdata"
        self.sockdir = self.dir / "pgsock"
        self.logfile = self.dir / "postgres.log"
        self.port = mailstack.free_port()
        self.conf = self.dir / "dovecot-sql.conf.ext"
        self.started = False

    def _as_postgres(self, *cmd, check=True, timeout=120):
        return mailstack.run(["runuser", "-u", "postgres", "--", *map(str, cmd)],
                             timeout=timeout, check=check)

    def start(self) -> "PostgresBackend":
        pw = pwd.getpwnam("postgres")
        os.chmod(self.dir, 0o755)
        mailstack.make_traversable(self.dir)
        for d in (self.data, self.sockdir):
            d.mkdir(exist_ok=True)
            os.chown(d, pw.pw_uid, pw.pw_gid)
        os.chmod(self.data, 0o700)
        self.logfile.touch()
        os.chown(self.logfile, pw.pw_uid, pw.pw_gid)
        self._as_postgres(PG_BIN / "initdb", "-D", self.data, "-U", "postgres",
                          "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")
        opts = (f"-p {self.port} -k {self.sockdir} -c listen_addresses=127.0.0.1 "
                f"-c fsync=off -c max_connections=20 -c shared_buffers=16MB")
        self._as_postgres(PG_BIN / "pg_ctl", "-D", self.data, "-l", self.logfile,
                          "-o", opts, "-w", "-t", "60", "start")
        self.started = True
        self.psql("CREATE ROLE dovecot LOGIN")
        self.psql("CREATE DATABASE mail OWNER dovecot")
        self.psql(SCHEMA, db="mail", user="dovecot")
        return self

    def psql(self, sql: str, db: str = "postgres", user: str = "postgres") -> str:
        return mailstack.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                              "-p", str(self.port), "-U", user, "-d", db, "-c", sql],
                             timeout=60).stdout

    def add(self, user: str, password: str, mode: Optional[str]) -> None:
        self.psql(f"INSERT INTO mailbox VALUES ({_sql_quote(user)}, {_sql_quote(password)}, "
                  f"{_sql_quote(mode)})", db="mail", user="dovecot")

    def set_mode(self, user: str, mode: Optional[str]) -> None:
        self.psql(f"UPDATE mailbox SET tls_mode = {_sql_quote(mode)} WHERE email = {_sql_quote(user)}",
                  db="mail", user="dovecot")

    def passdb_userdb(self, home_root: Path, uid: int, gid: int) -> tuple[str, str]:
        _sql_conf(self.conf, "pgsql", f"host=127.0.0.1 port={self.port} dbname=mail user=dovecot",
                  home_root, uid, gid)
        return _blocks("sql", self.conf)

    def stop(self) -> None:
        if self.started:
            self._as_postgres(PG_BIN / "pg_ctl", "-D", self.data, "-m", "immediate", "-w",
                              "stop", check=False)
            self.started = False


LDAP_SCHEMA = """\
# tlsgate: the TLS mode of a mailbox. Replace the OID arc 1.3.6.1.4.1.99999
# (a placeholder) with one of your organisation.
attributetype ( 1.3.6.1.4.1.99999.1.1 NAME 'tlsgateMode'
  DESC 'tlsgate: off, audit or require'
  EQUALITY caseExactMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.99999.2.1 NAME 'tlsgateAccount'
  DESC 'a mailbox with a tlsgate mode' SUP top AUXILIARY
  MAY tlsgateMode )
"""

SUFFIX = "dc=example,dc=test"
ROOTDN = f"cn=admin,{SUFFIX}"
ROOTPW = "ldap-admin-pw"


class LdapBackend:
    """A throwaway slapd (slapd.conf, mdb) on ldap://127.0.0.1:PORT/ with the
    small tlsgate schema above; mailboxes are inetOrgPerson entries
    uid=LOCAL,ou=people with mail, userPassword and tlsgateMode."""
    name = "ldap"

    def __init__(self, directory):
        self.dir = Path(directory).resolve()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = mailstack.free_port()
        self.url = f"ldap://127.0.0.1:{self.port}/"
        self.conf = self.dir / "dovecot-ldap.conf.ext"
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> "LdapBackend":
        os.chmod(self.dir, 0o755)
        data = self.dir / "data"
        data.mkdir(exist_ok=True)
        (self.dir / "tlsgate.schema").write_text(LDAP_SCHEMA)
        slapd_conf = self.dir / "slapd.conf"
        slapd_conf.write_text(f"""include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include {self.dir}/tlsgate.schema
pidfile {self.dir}/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 10485760
suffix "{SUFFIX}"
rootdn "{ROOTDN}"
rootpw {ROOTPW}
directory {data}
""")
        self.log = open(self.dir / "slapd.log", "ab")
        self.proc = subprocess.Popen(["/usr/sbin/slapd", "-f", str(slapd_conf), "-h", self.url,
                                      "-d", "0"], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log)
        mailstack.wait_for(lambda: self.proc.poll() is not None or
                           self.port in mailstack.listening_ports("127.0.0.1"),
                           30, what="slapd")
        if self.proc.poll() is not None:
            raise mailstack.HarnessError("slapd exited:\n" +
                                         (self.dir / "slapd.log").read_text(errors="replace"))
        self._modify("ldapadd", f"""dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
o: example
dc: example

dn: ou=people,{SUFFIX}
objectClass: organizationalUnit
ou: people
""")
        return self

    def _modify(self, tool: str, ldif: str) -> None:
        mailstack.run([tool, "-x", "-H", self.url, "-D", ROOTDN, "-w", ROOTPW], input=ldif,
                      timeout=30)

    def _dn(self, user: str) -> str:
        return f"uid={user.split('@')[0]},ou=people,{SUFFIX}"

    def add(self, user: str, password: str, mode: Optional[str]) -> None:
        local = user.split("@")[0]
        ldif = (f"dn: {self._dn(user)}\nobjectClass: inetOrgPerson\nobjectClass: tlsgateAccount\n"
                f"uid: {local}\ncn: {local}\nsn: {local}\nmail: {user}\n"
                f"userPassword: {{PLAIN}}{password}\n")
        if mode is not None:
            ldif += f"tlsgateMode: {mode}\n"
        self._modify("ldapadd", ldif)

    def set_mode(self, user: str, mode: Optional[str]) -> None:
        change = (f"replace: tlsgateMode\ntlsgateMode: {mode}\n" if mode is not None
                  else "delete: tlsgateMode\n")
        self._modify("ldapmodify", f"dn: {self._dn(user)}\nchangetype: modify\n{change}")

    def passdb_userdb(self, home_root: Path, uid: int, gid: int) -> tuple[str, str]:
        # The recipe of docs/dovecot.md ("Account database", LDAP).
        self.conf.write_text(f"""uris = {self.url}
dn = {ROOTDN}
dnpass = {ROOTPW}
auth_bind = no
ldap_version = 3
base = ou=people,{SUFFIX}
scope = subtree
default_pass_scheme = PLAIN
pass_filter = (&(objectClass=inetOrgPerson)(mail=%u))
pass_attrs = mail=user, userPassword=password, tlsgateMode=tlsgate_mode
user_filter = (&(objectClass=inetOrgPerson)(mail=%u))
user_attrs = =home={home_root}/%u, =uid={uid}, =gid={gid}, tlsgateMode=tlsgate_mode
iterate_attrs = mail=user
iterate_filter = (objectClass=inetOrgPerson)
""")
        os.chmod(self.conf, 0o644)    # a test password; in production 0640 root:dovecot
        return _blocks("ldap", self.conf)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


BACKENDS = {"sqlite": SqliteBackend, "pgsql": PostgresBackend, "ldap": LdapBackend}


def tlsgate_listener(user: str) -> str:
    """The dedicated auth listener for tlsgate (docs/dovecot.md)."""
    return f"""service auth {{
  unix_listener tlsgate-userdb {{
    user = {user}
    mode = 0600
  }}
}}
"""
