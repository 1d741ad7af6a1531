#!/bin/sh
# tests/package/inside.sh REPO DEBS - the package test proper, run by
# tests/package/run chrooted in a throwaway overlay of this machine's /.
# Each check prints "ok N - what" or "not ok N - what"; the exit status is
# the number of failed checks (0: all passed). What the purge leaves
# behind is checked outside, in the overlay's upper layer.
set -u
repo=$1
debs=$2
export DEBIAN_FRONTEND=noninteractive
n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
check() {	# check WHAT COMMAND...: passes when COMMAND succeeds
	what=$1
	shift
	if "$@" >/tmp/check.out 2>&1; then ok "$what"; else
		not_ok "$what"
		sed 's/^/    /' /tmp/check.out | tail -n 40
	fi
}
fails() {	# fails WHAT COMMAND...: passes when COMMAND fails
	what=$1
	shift
	if "$@" >/tmp/check.out 2>&1; then
		not_ok "$what"
		sed 's/^/    /' /tmp/check.out | tail -n 40
	else ok "$what"; fi
}

# -- installation
check "apt-get install ./tlsgate_*.deb ./dovecot-tlsgate_*.deb" \
	apt-get install -y -qq -o Dpkg::Use-Pty=0 \
	"$debs"/tlsgate_*.deb "$debs"/dovecot-tlsgate_*.deb
check "the system user tlsgate exists, without a shell" \
	sh -c 'getent passwd tlsgate | grep -q ":/usr/sbin/nologin$"'
check "the module depends on this Dovecot's ABI ($(cat /usr/share/dovecot/dovecot-abi 2>/dev/null))" \
	sh -c 'dpkg-query -W -f="\${Depends}" dovecot-tlsgate | grep -q "dovecot-abi-$(cat /usr/share/dovecot/dovecot-abi)"'
check "dpkg lists the module in Dovecot's auth module directory" \
	sh -c 'dpkg -L dovecot-tlsgate | grep -qx /usr/lib/dovecot/modules/auth/libauthdb_tlsgate.so'
check "tlsgate.conf and policy.d are conffiles" \
	sh -c 'dpkg-query -W -f="\${Conffiles}" tlsgate | grep -q /etc/tlsgate/tlsgate.conf &&
	       dpkg-query -W -f="\${Conffiles}" tlsgate | grep -q /etc/tlsgate/policy.d/00-global.conf'
check "nothing was started: no /run/tlsgate" test ! -e /run/tlsgate
check "the init script is registered but disabled (K links only)" \
	sh -c 'ls /etc/rc2.d/K*tlsgate-policyd && ! ls /etc/rc2.d/S*tlsgate-policyd'
# systemd's tools come with the package systemd, which a machine without
# systemd (e.g. with sysvinit-core) does not have and must not get for a test.
if command -v systemd-analyze >/dev/null; then
	check "the systemd unit is not enabled" \
		sh -c 'test "$(systemctl --root=/ is-enabled tlsgate-policyd.service)" = disabled'
	check "systemd-analyze verify of the installed unit" \
		sh -c 'systemd-analyze verify /lib/systemd/system/tlsgate-policyd.service 2>&1 |
		       tee /dev/stderr | (! grep .)'
else
	n=$((n + 1)); echo "ok $n - # SKIP the unit checks: no systemd-analyze (package systemd)"
fi
check "tlsgate check of the installed configuration" tlsgate check
check "man pages are installed" sh -c 'man -w tlsgate tlsgate-policyd tlsgate.conf tlsgate.policy'
check "the unit's Documentation= files exist" \
	sh -c 'for f in $(sed -n "s|^Documentation=.*file://||p" /lib/systemd/system/tlsgate-policyd.service); do test -f "$f" || exit 1; done'

# -- the init script, for real (the service of the package as installed,
# listening on a unix socket in its runtime directory)
sed -i -e 's|^listen = .*|listen = unix:/run/tlsgate/policyd.sock|' /etc/tlsgate/tlsgate.conf
pidfile=/run/tlsgate/tlsgate-policyd.pid
ask() {	# one policy request over the socket; prints the action
	python3 - <<'PY'
import socket
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect("/run/tlsgate/policyd.sock")
s.sendall(b"request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
          b"client_address=192.0.2.7\nsasl_username=alice@example.com\n"
          b"sender=alice@example.com\nrecipient=bob@example.org\n\n")
data = b""
while not data.endswith(b"\n\n"):
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
print(data.decode().strip())
PY
}
running() { kill -0 "$(cat $pidfile 2>/dev/null || echo none)" 2>/dev/null; }
owner() { stat -c %U "$1"; }
check "init script: start" /etc/init.d/tlsgate-policyd start
check "the runtime directory /run/tlsgate belongs to tlsgate" test "$(owner /run/tlsgate)" = tlsgate
check "the pidfile belongs to tlsgate" test "$(owner $pidfile)" = tlsgate
check "the daemon runs as tlsgate" \
	sh -c "test \"\$(ps -o user= -p \$(cat $pidfile))\" = tlsgate"
check "the socket /run/tlsgate/policyd.sock is there" test -S /run/tlsgate/policyd.sock
out=$(ask 2>&1); case $out in action=*) ok "policy answer: $out" ;; *) not_ok "policy answer: $out" ;; esac
check "init script: status while running" /etc/init.d/tlsgate-policyd status
check "init script: start while running is fine" /etc/init.d/tlsgate-policyd start
pid1=$(cat $pidfile)
check "init script: reload (SIGHUP)" /etc/init.d/tlsgate-policyd reload
sleep 0.5
check "reload keeps the process" sh -c "test \"\$(cat $pidfile)\" = $pid1 && kill -0 $pid1"
out=$(ask 2>&1); case $out in action=*) ok "answer after reload: $out" ;; *) not_ok "answer after reload: $out" ;; esac
check "init script: restart" /etc/init.d/tlsgate-policyd restart
check "restart started a new process" sh -c "test \"\$(cat $pidfile)\" != $pid1 && kill -0 \$(cat $pidfile)"
out=$(ask 2>&1); case $out in action=*) ok "answer after restart: $out" ;; *) not_ok "answer after restart: $out" ;; esac
pid2=$(cat $pidfile)
check "init script: stop" /etc/init.d/tlsgate-policyd stop
# Gone, or a zombie that nobody reaps (PID 1 of a container may not).
check "the process is gone" \
	sh -c "! kill -0 $pid2 2>/dev/null || ps -o stat= -p $pid2 | grep -q Z"
check "no pidfile left after stop" test ! -e $pidfile
check "no socket left after stop" test ! -e /run/tlsgate/policyd.sock
fails "init script: status after stop fails" /etc/init.d/tlsgate-policyd status
check "init script: stop when stopped is fine" /etc/init.d/tlsgate-policyd stop

# -- tlsgate-notify (notify --follow) through its init script: a refusal
# written to the log it follows gets the account one notice
mkdir -p /tmp/notify-out && chown tlsgate /tmp/notify-out
printf '#!/bin/sh\ncat > /tmp/notify-out/msg.$$\n' > /tmp/notify-sendmail
chmod 755 /tmp/notify-sendmail
: > /tmp/notify-mail.log && chmod 644 /tmp/notify-mail.log
echo "notify_domains = example.com" >> /etc/tlsgate/tlsgate.conf
cat > /etc/default/tlsgate-notify <<'DEF'
TLSGATE_NOTIFY_FROM="IT <postmaster@example.com>"
TLSGATE_NOTIFY_LOG=/tmp/notify-mail.log
TLSGATE_NOTIFY_OPTIONS="--sendmail /tmp/notify-sendmail"
DEF
npid=/run/tlsgate-notify.pid
check "tlsgate-notify: the init script is registered but disabled" \
	sh -c 'ls /etc/rc2.d/K*tlsgate-notify && ! ls /etc/rc2.d/S*tlsgate-notify'
if command -v systemd-analyze >/dev/null; then
	check "tlsgate-notify: the systemd unit is not enabled" \
		sh -c 'test "$(systemctl --root=/ is-enabled tlsgate-notify.service)" = disabled'
	check "tlsgate-notify: systemd-analyze verify of the installed unit" \
		sh -c 'systemd-analyze verify /lib/systemd/system/tlsgate-notify.service 2>&1 |
		       tee /dev/stderr | (! grep .)'
fi
check "tlsgate-notify: init script: start" /etc/init.d/tlsgate-notify start
check "tlsgate-notify: runs as tlsgate" \
	sh -c 'sleep 0.5; test "$(ps -o user= -p $(cat '$npid'))" = tlsgate'
echo "Dec  1 10:00:00 mx dovecot: auth: Info: tlsgate: service=imap user=alice@example.com client=192.0.2.7 tls=none verdict=reject mode=require rule=x:1" >> /tmp/notify-mail.log
check "tlsgate-notify: the refused account got a notice" \
	sh -c 'for i in $(seq 50); do grep -qs "^To: alice@example.com" /tmp/notify-out/msg.* && exit 0; sleep 0.1; done; cat /var/log/tlsgate-notify.log; exit 1'
check "tlsgate-notify: init script: reload (SIGHUP)" /etc/init.d/tlsgate-notify reload
check "tlsgate-notify: init script: stop" /etc/init.d/tlsgate-notify stop
check "tlsgate-notify: the state file in /var/lib/tlsgate names the account" \
	grep -q "^alice@example.com	" /var/lib/tlsgate/notify.state
check "tlsgate-notify: one notice" test "$(ls /tmp/notify-out | wc -l)" = 1
rm -f /etc/default/tlsgate-notify

# -- the demo scenario against the installed programs and module
check "the demo scenario with the installed files (demo --installed)" \
	python3 "$repo/demo/tlsgate_demo.py" --installed --dir /tmp/demo run

# -- purge
check "apt-get purge tlsgate dovecot-tlsgate" \
	apt-get purge -y -qq -o Dpkg::Use-Pty=0 tlsgate dovecot-tlsgate
check "the user tlsgate stays (Debian keeps system users on purge)" \
	getent passwd tlsgate

echo "package test: $((n - failed)) of $n checks passed"
exit $failed
