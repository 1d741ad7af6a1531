#!/bin/bash
# policyd-bench.sh - tlsgate-policyd against the minimal DUNNO server and
# postfwd, with the same load generator (bench/policyd-load.c), on
# 127.0.0.1. Run by `make bench` (target bench-policyd); as root.
#
#   bench/policyd-bench.sh [--build DIR] [--seconds S] [--accounts N]
#                          [--postfwd-accounts N] [--ks "1 16 64"] [--no-postfwd]
#
# Prints one line per run (requests/s, p50/p99/max latency, wrong/lost
# replies) and memory, and writes them to DIR/bench/policyd/results.txt.
# Exits 1 if any reply was wrong or missing.
set -eu -o pipefail

build=build
seconds=5
accounts=1000000
pf_accounts=1000
ks="1 16 64"
postfwd=1
while [ $# -gt 0 ]; do
	case "$1" in
	--build) build=$2; shift 2 ;;
	--seconds) seconds=$2; shift 2 ;;
	--accounts) accounts=$2; shift 2 ;;
	--postfwd-accounts) pf_accounts=$2; shift 2 ;;
	--ks) ks=$2; shift 2 ;;
	--no-postfwd) postfwd=0; shift ;;
	*) echo "policyd-bench: unknown option $1" >&2; exit 2 ;;
	esac
done

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
load=$repo/$build/bench/policyd-load
dunno=$repo/$build/bench/policyd-dunno
policyd=$repo/$build/tlsgate-policyd
work=$repo/$build/bench/policyd
mkdir -p "$work"
chmod 755 "$work"	# tlsgate reads policies only from trusted directories
results=$work/results.txt
: > "$results"
failed=0
pids=()

cleanup() {
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
}
trap cleanup EXIT

say() {
	echo "$*" | tee -a "$results"
}

free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_listen() {	# PORT PID
	for _ in $(seq 600); do
		ss -ltn "sport = :$1" | grep -q LISTEN && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

kb() {	# FIELD PID: a /proc/PID/status field in kB
	awk -v f="$1:" '$1 == f { print $2 }' "/proc/$2/status"
}

drop_events() {	# LOG: keep the daemon's other lines, not ~200 MB of events
	grep -v 'tlsgate: service=' "$1" > "$1.tmp" || true
	mv "$1.tmp" "$1"
}

runs() {	# NAME PORT ACCOUNTS [--dunno]
	local name=$1 port=$2 n=$3
	shift 3
	for k in $ks; do
		"$load" run -c "inet:127.0.0.1:$port" -k "$k" -t "$seconds" -a "$n" --cpu "$pid" \
			--name "$name" "$@" | tee -a "$results" || failed=1
	done
}

say "# $(date -u '+%Y-%m-%d %H:%M UTC') $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
say "# $seconds s per run, K = $ks persistent connections"

# ---- policies --------------------------------------------------------------
big=$work/policy-$accounts.conf
if [ ! -s "$big" ]; then
	"$load" gen "$accounts" "$big.tmp"
	mv "$big.tmp" "$big"
fi
chmod 644 "$big"

# ---- the minimal DUNNO server ----------------------------------------------
port=$(free_port)
"$dunno" "$port" & pid=$!
pids+=("$pid")
wait_listen "$port" "$pid"
runs dunno "$port" "$accounts" --dunno
say "dunno            RSS $(kb VmRSS "$pid") kB"
kill "$pid"

# ---- tlsgate-policyd, big policy -------------------------------------------
start_policyd() {	# POLICY PORT LOG -> $pid
	cat > "$work/tlsgate.conf" <<-EOF
	policy = $1
	user = nobody
	listen = inet:127.0.0.1:$2
	message = "TLS required"
	EOF
	local t0 t1
	rm -f "$3"
	t0=$(date +%s.%N)
	"$policyd" -c "$work/tlsgate.conf" -f 2> "$3" & pid=$!
	pids+=("$pid")
	# it binds first, then loads the policy, then logs "listening on"
	for _ in $(seq 1200); do
		grep -q 'listening on' "$3" && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if ! grep -q 'listening on' "$3"; then
		cat "$3" >&2
		exit 1
	fi
	t1=$(date +%s.%N)
	startup=$(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }")
}

port=$(free_port)
start_policyd "$big" "$port" "$work/policyd.log"
say "tlsgate-policyd  $accounts accounts: listening after ${startup}s, RSS $(kb VmRSS "$pid") kB"
runs tlsgate-policyd "$port" "$accounts"
say "tlsgate-policyd  RSS $(kb VmRSS "$pid") kB, peak $(kb VmHWM "$pid") kB"

# a reload of the big policy under load (SIGHUP after 2 s): no request lost
mark=$(grep -c 'policy reloaded' "$work/policyd.log" || true)
"$load" run -c "inet:127.0.0.1:$port" -k 16 -t $((seconds + 5)) -a "$accounts" \
	--name reload-under-load --hup "$pid@2" | tee -a "$results" || failed=1
now=$(grep -c 'policy reloaded' "$work/policyd.log" || true)
if [ "$now" -gt "$mark" ]; then
	say "reload-under-load: policy reloaded during the run ($(grep 'policy reloaded' "$work/policyd.log" | tail -1 | sed 's/.*info: //'))"
else
	say "reload-under-load: NO RELOAD SEEN"; failed=1
fi
say "tlsgate-policyd  after reload: RSS $(kb VmRSS "$pid") kB, peak $(kb VmHWM "$pid") kB"
say "tlsgate-policyd  event lines written: $(grep -c 'tlsgate: service=' "$work/policyd.log")"
kill "$pid"
wait "$pid" || true
drop_events "$work/policyd.log"

# ---- postfwd and tlsgate-policyd with the same small policy -----------------
if [ "$postfwd" = 1 ]; then
	"$repo/tests/install-deps" "$here/packages.txt"
	pfdir=$work/postfwd-$pf_accounts
	mkdir -p "$pfdir"
	chmod 755 "$pfdir"
	small=$pfdir/policy.conf
	"$load" gen "$pf_accounts" "$small" "$pfdir"
	chmod 644 "$pfdir"/*

	port=$(free_port)
	start_policyd "$small" "$port" "$work/policyd-small.log"
	runs tlsgate-policyd-1k "$port" "$pf_accounts"
	kill "$pid"
	wait "$pid" || true
	drop_events "$work/policyd-small.log"

	port=$(free_port)
	rm -f "$pfdir/postfwd.pid"
	# postfwd2 daemonises (master, cache, preforked policy children)
	postfwd2 -f "$pfdir/postfwd.cf" -i 127.0.0.1 -p "$port" -u nobody -g nogroup \
		--pidfile "$pfdir/postfwd.pid" -n --noidlestats --norulelog
	for _ in $(seq 100); do [ -s "$pfdir/postfwd.pid" ] && break; sleep 0.1; done
	pfpid=$(cat "$pfdir/postfwd.pid")
	pids+=("$pfpid")
	wait_listen "$port" "$pfpid"
	pid=0	# no CPU figure: postfwd is many processes
	runs postfwd-1k "$port" "$pf_accounts"
	# PSS of this instance only: the master and all its descendants
	tree=$pfpid; more=$pfpid
	while [ -n "$more" ]; do
		more=$(for q in $more; do pgrep -P "$q" || true; done | tr '\n' ' ')
		tree="$tree $more"
	done
	pss=0; n=0
	for p in $tree; do
		v=$(awk '$1 == "Pss:" { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
		pss=$((pss + v)); n=$((n + 1))
	done
	say "postfwd-1k       $n processes, PSS total $pss kB"
	kill "$pfpid"
	for _ in $(seq 50); do kill -0 "$pfpid" 2>/dev/null || break; sleep 0.1; done
fi

[ "$failed" = 0 ] || { say "policyd-bench: SOME REPLIES WERE WRONG OR MISSING"; exit 1; }
say "policyd-bench: every reply checked, all right"
