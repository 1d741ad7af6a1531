#!/bin/sh
# analyze - cppcheck and clang-tidy (bugprone-*, clang-analyzer-*; see
# .clang-tidy) over lib/, cli/ (and its tool folders), postfix-policyd/ and dovecot-plugin/.
#
# Every finding must be fixed or answered: tests/analyze-suppressions.txt
# holds one answer per known finding (file, check, a piece of the flagged
# source line, and why it is not a bug). Findings without an answer are
# printed and make this script exit 1. Run from the top directory (make
# analyze). Needs cppcheck, clang-tidy and, for the Dovecot module,
# dovecot-dev.
set -eu
cd "$(dirname "$0")/.."
out=${ANALYZE_OUT:-build/analyze}
mkdir -p "$out"
jobs=$(nproc 2>/dev/null || echo 2)

# The Dovecot glue (the files that include Dovecot's lib.h or auth-common.h,
# or dcompat.h) is compiled with Dovecot's headers, gnu99 and its own
# config.h; the rest of dovecot-plugin/ with the project's flags, like the
# build does. The glue is analyzed against Debian's 2.3 and, when
# tests/dovecot24-setup has built it, against 2.4 as well (the 2.4-only
# settings-tlsgate.c only there).
glue=$(grep -lE '^#include "(lib\.h|auth-common\.h|dcompat\.h)"' dovecot-plugin/*.c 2>/dev/null || true)
only24=dovecot-plugin/settings-tlsgate.c
srcs=$(ls lib/*.c cli/*.c cli/*/*.c postfix-policyd/*.c dovecot-plugin/*.c 2>/dev/null |
	grep -vxF "$glue" || true)
glue23=$(printf '%s\n' $glue | grep -vxF "$only24" || true)
flags="-std=c11 -D_GNU_SOURCE -Ilib -Icli -Ipostfix-policyd -Idovecot-plugin"
dc=/usr/lib/dovecot/dovecot-config
dsrcs= dflags=
if [ -r "$dc" ] && [ -n "$glue23" ]; then
	dsrcs=$glue23
	dflags="-std=gnu99 $(. "$dc" && printf '%s' "$LIBDOVECOT_INCLUDE") -DHAVE_CONFIG_H -Ilib -Idovecot-plugin"
fi
dc24=${TLSGATE_DOVECOT24:-/var/cache/tlsgate/dovecot-2.4.4}/lib/dovecot/dovecot-config
dflags24=
if [ -r "$dc24" ] && [ -n "$glue" ]; then
	inc24=$(. "$dc24" && printf '%s' "$dovecot_pkgincludedir")
	dflags24="-std=gnu99 -I$inc24 -DHAVE_CONFIG_H -Ilib -Idovecot-plugin"
	# the sasl-server.h trap of 2.4.2-2.4.4 (dovecot-plugin/build.mk)
	if [ -f "$inc24/lib-sasl/sasl-server.h" ]; then
		dflags24="$dflags24 -DDCOMPAT_LIB_SASL_SERVER_H='\"$inc24/lib-sasl/sasl-server.h\"'"
	fi
fi

echo "analyze: cppcheck"
# shellcheck disable=SC2086
cppcheck --quiet --enable=warning,portability --std=c11 -D_GNU_SOURCE \
	-Ilib -Icli -Ipostfix-policyd -Idovecot-plugin --inline-suppr \
	--template='{file}:{line}:{column}: {severity}: {message} [cppcheck-{id}]' \
	$srcs $dsrcs > "$out/cppcheck.txt" 2>&1 || true

echo "analyze: clang-tidy ($jobs jobs)"
: > "$out/clang-tidy.txt"
# shellcheck disable=SC2086
printf '%s\n' $srcs | xargs -P "$jobs" -n 4 sh -c \
	'clang-tidy --quiet "$@" -- '"$flags"' 2>/dev/null' sh >> "$out/clang-tidy.txt" || true
if [ -n "$dsrcs" ]; then
	# shellcheck disable=SC2086
	printf '%s\n' $dsrcs | xargs -P "$jobs" -n 4 sh -c \
		'clang-tidy --quiet "$@" -- '"$dflags"' 2>/dev/null' sh >> "$out/clang-tidy.txt" || true
fi
if [ -n "$dflags24" ]; then
	echo "analyze: clang-tidy, Dovecot glue against $dc24"
	# shellcheck disable=SC2086
	printf '%s\n' $glue | xargs -P "$jobs" -n 4 sh -c \
		'clang-tidy --quiet "$@" -- '"$dflags24"' 2>/dev/null' sh >> "$out/clang-tidy.txt" || true
fi

exec /usr/bin/python3 - "$out/cppcheck.txt" "$out/clang-tidy.txt" <<'PY'
import os, re, sys

finding = re.compile(r'^(?P<file>[^:\s]+):(?P<line>\d+):(?P<col>\d+): (?:warning|error|style|portability|performance): (?P<msg>.*) \[(?P<id>[^\]]+)\]$')
answers = []
with open('tests/analyze-suppressions.txt') as f:
    for raw in f:
        if not raw.strip() or raw.startswith('#'):
            continue
        parts = [p.strip() for p in raw.rstrip('\n').split(' | ', 3)]
        if len(parts) != 4 or not all(parts):
            sys.exit(f'analyze-suppressions.txt: bad line: {raw.strip()}')
        answers.append(parts + [0])

def source_line(path, n):
    try:
        with open(path, errors='replace') as f:
            for i, line in enumerate(f, 1):
                if i == n:
                    return line
    except OSError:
        pass
    return ''

seen, open_findings, answered = set(), [], 0
for report in sys.argv[1:]:
    for line in open(report, errors='replace'):
        m = finding.match(line.strip())
        if not m:
            continue
        path = os.path.relpath(m['file'])
        key = (path, m['line'], m['id'])
        if key in seen:
            continue
        seen.add(key)
        text = source_line(path, int(m['line']))
        for a in answers:
            if a[0] == path and a[1] == m['id'] and a[2] in text:
                a[4] += 1
                answered += 1
                break
        else:
            open_findings.append(f"{path}:{m['line']}: {m['msg']} [{m['id']}]\n    {text.strip()}")

for a in answers:
    if a[4] == 0:
        print(f"analyze: note: answer no longer needed: {a[0]} | {a[1]} | {a[2]}")
print(f"analyze: {len(seen)} findings, {answered} answered in tests/analyze-suppressions.txt, {len(open_findings)} open")
for f in open_findings:
    print(f)
sys.exit(1 if open_findings else 0)
PY
