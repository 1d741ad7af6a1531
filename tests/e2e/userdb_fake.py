"""userdb_fake - a small stand-in for Dovecot's auth-userdb socket, for the
fault tests only (the real backends are in userdb_backends.py).

    f = FakeUserdb(path, users={"a@x": {"tlsgate_mode": "off"}, "b@x": None})
    f.behaviour = "answer" | "slow" | "garbage" | "fail" | "close" | "silent"
    f.lookups["a@x"]   # USER requests seen per name
    f.stop()

It speaks the auth-master protocol (VERSION/SPID, USER -> USER/NOTFOUND/FAIL);
a name missing from `users` gets NOTFOUND. The socket is owned by `owner`
(default nobody) with mode 0600, like a dedicated tlsgate listener.
"""

from __future__ import annotations

import os
import pwd
import socket
import socketserver
import threading
import time
from collections import Counter
from pathlib import Path


def _escape(v: str) -> str:
    return (v.replace("\001", "\0011").replace("\t", "\001t")
            .replace("\r", "\001r").replace("\n", "\001n"))


class FakeUserdb:
    def __init__(self, path, users=None, owner="nobody", mode=0o600):
        self.path = Path(path)
        self.users = dict(users or {})
        self.behaviour = "answer"
        self.delay = 3.0
        self.lookups: Counter = Counter()
        self.connections = 0
        self.open_sockets: list[socket.socket] = []
        fake = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                fake.connections += 1
                fake.open_sockets.append(self.request)
                if fake.behaviour == "close":
                    return
                self.wfile.write(b"VERSION\t1\t2\nSPID\t1\n")
                for raw in self.rfile:
                    line = raw.decode("utf-8", "replace").rstrip("\n")
                    if not line.startswith("USER\t"):
                        continue
                    _, rid, name = line.split("\t")[:3]
                    fake.lookups[name] += 1
                    reply = fake.reply(rid, name)
                    if reply is None:
                        continue
                    try:
                        self.wfile.write(reply.encode())
                        self.wfile.flush()
                    except OSError:
                        return

        if self.path.exists():
            self.path.unlink()
        self.server = socketserver.ThreadingUnixStreamServer(str(self.path), Handler)
        self.server.daemon_threads = True
        pw = pwd.getpwnam(owner)
        os.chown(self.path, pw.pw_uid, pw.pw_gid)
        os.chmod(self.path, mode)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def reply(self, rid: str, name: str):
        b = self.behaviour
        if b == "silent":
            return None
        if b == "slow":
            time.sleep(self.delay)
        if b == "garbage":
            return "\033[31mHELLO\tgarbage\n"
        if b == "fail":
            return f"FAIL\t{rid}\treason=backend down\n"
        if name not in self.users or self.users[name] is None:
            return f"NOTFOUND\t{rid}\n"
        fields = "\t".join(f"{k}={_escape(v)}" for k, v in self.users[name].items())
        return f"USER\t{rid}\t{_escape(name)}\tuid=8\tgid=8\t{fields}\n"

    def drop_connections(self) -> None:
        """Closes every open connection, as a Dovecot restart would."""
        for s in self.open_sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.open_sockets.clear()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
