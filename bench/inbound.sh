#!/bin/sh
# Inbound SMTP ingest figure: smtp-source against Postfix's smtp-sink and against Postfach's
# inbound SMTP server (durable: 250 only after commit), 1 KB and 50 KB, 1 and 20 sessions,
# and fsync/fdatasync calls per accepted message counted with strace.
#
#   bench/inbound.sh                 # SQLite in a temporary directory on disk
#   POSTFACH_TEST_POSTGRES=postgres://… bench/inbound.sh
#
# Needs smtp-source/smtp-sink (Debian postfix, or scripts/install-test-deps.sh) and strace.
set -eu
cd "$(dirname "$0")/.."
work=$(mktemp -d "${TMPDIR:-/var/tmp}/postfach-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
go test -c -o "$work/smtpd.test" ./internal/smtpd/
configs=${POSTFACH_BENCH_CONFIGS:-"1024/1/2000 1024/20/5000 51200/1/1000 51200/20/3000"}

echo "== throughput (no tracing)"
TMPDIR=$work POSTFACH_BENCH_INBOUND=1 POSTFACH_BENCH_CONFIGS="$configs" \
	"$work/smtpd.test" -test.run '^TestIngestFigure$' -test.v | grep '^ingest'

echo "== fsyncs per accepted message (strace, one run per configuration)"
for c in $configs; do
	messages=${c##*/}
	TMPDIR=$work POSTFACH_BENCH_INBOUND=1 POSTFACH_BENCH_CONFIGS="$c" \
		strace -f --seccomp-bpf -c -e trace=fsync,fdatasync -o "$work/strace.txt" \
		"$work/smtpd.test" -test.run '^TestIngestFigure$' >/dev/null
	calls=$(awk '$NF=="fsync"||$NF=="fdatasync"{n+=$4} END{print n+0}' "$work/strace.txt")
	echo "$c: $calls fsync+fdatasync calls for $messages messages: $(echo "scale=3; $calls/$messages" | bc) per message"
done
