#!/bin/sh
# Outbound end-to-end figure: HTTP POST /api/v1/messages (message and queue row committed
# before the 202) until the queue has delivered every message into Postfix's smtp-sink,
# against smtp-source → smtp-sink with the same size and 8 sessions in the same run; and the
# same with 10% transient (451) failures from an in-process peer, retried by the queue.
#
#   bench/outbound.sh                 # SQLite in a temporary directory on disk
#   POSTFACH_TEST_POSTGRES=postgres://… bench/outbound.sh
#   POSTFACH_BENCH_CONFIGS="1024/5000/0" POSTFACH_BENCH_CLIENTS=16 bench/outbound.sh
#
# Configurations are size/messages/failure-percent. Needs smtp-source/smtp-sink (Debian
# postfix, or scripts/install-test-deps.sh).
set -eu
cd "$(dirname "$0")/.."
work=$(mktemp -d "${TMPDIR:-/var/tmp}/postfach-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
go test -c -o "$work/outqueue.test" ./internal/outqueue/
cd internal/outqueue
TMPDIR=$work POSTFACH_BENCH_OUTBOUND=1 POSTFACH_BENCH_CONFIGS="${POSTFACH_BENCH_CONFIGS:-1024/5000/0 51200/2000/0 1024/5000/10}" \
	"$work/outqueue.test" -test.run '^TestSendFigure$' -test.v | grep -E '^(outbound|  all)'
