#!/bin/sh
# IMAP import figure: a mailbox of N messages (default 10,000, about 2.7 KB each) in a private
# Dovecot, copied by mbsync into a Maildir and imported by Postfach's fetcher into the
# database, one after the other in the same run.
#
#   bench/fetch.sh                   # SQLite in a temporary directory on disk
#   POSTFACH_TEST_POSTGRES=postgres://… bench/fetch.sh
#   POSTFACH_BENCH_FETCH=2000 bench/fetch.sh
#
# Needs Dovecot (Debian dovecot-imapd, dovecot-pop3d) and mbsync (Debian isync).
set -eu
cd "$(dirname "$0")/.."
work=$(mktemp -d "${TMPDIR:-/var/tmp}/postfach-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
# Dovecot's auth process runs as its own user and reads the users file in here.
chmod 755 "$work"
go test -c -o "$work/fetch.test" ./internal/fetch/
TMPDIR=$work POSTFACH_BENCH_FETCH=${POSTFACH_BENCH_FETCH:-10000} \
	"$work/fetch.test" -test.run '^TestImportFigure$' -test.v -test.timeout 15m >"$work/out.txt" 2>&1 ||
	{ cat "$work/out.txt"; exit 1; }
grep -A2 '^import of' "$work/out.txt"
