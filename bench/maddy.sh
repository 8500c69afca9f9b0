#!/bin/sh
# Inbound SMTP ingest of maddy (a Go mail server) next to Postfach's, on this machine in the
# same run: Postfix's smtp-source sends 1 KB messages over 20 sessions and over 1 session to
# a private maddy that delivers into its default storage (imapsql on SQLite in WAL mode with
# synchronous=NORMAL, message bodies in files that are fsynced: durable-ish), then the same
# configurations go to Postfach's inbound SMTP server (durable: 250 only after commit)
# through the test bench/inbound.sh uses. maddy gets a fresh state directory per
# configuration, as Postfach's test does, and the messages it stored are counted. Its
# config has no TLS, no SPF/DKIM/DMARC or DNS checks, nothing outbound and no limits block
# (maddy's sample config caps its SMTP endpoint at 20 messages/s, which would be measured
# instead of the server).
#
#   bench/maddy.sh
#   MADDY_BENCH_CONFIGS="1024/20/3000" bench/maddy.sh      # size/sessions/messages
#   MADDY_BENCH_POSTFACH=0 bench/maddy.sh                  # maddy only
#   MADDY_BENCH_KEEP=1 bench/maddy.sh                      # keep maddy's logs and state
#
# maddy is built from the Go module proxy into .cache/maddy/ the first time (about a minute
# and a half on two cores; cgo and a C compiler for its SQLite driver). Its go.mod has
# replace directives, so `go install …@version` refuses it: the module is downloaded and
# built in place instead. Needs smtp-source (Debian postfix, or
# scripts/install-test-deps.sh), ss and bc.
set -eu
cd "$(dirname "$0")/.."
root=$PWD
version=v0.8.1
maddy=$root/.cache/maddy/bin/maddy-$version
configs=${MADDY_BENCH_CONFIGS:-"1024/20/3000 1024/1/1000"}

. bench/postfix-tool.sh
source=$(postfix_tool smtp-source)

work=$(mktemp -d "${TMPDIR:-/var/tmp}/postfach-bench.XXXXXX")
pid=
cleanup() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	if [ -n "${MADDY_BENCH_KEEP:-}" ]; then
		echo "kept $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

if [ ! -x "$maddy" ]; then
	echo "== building maddy $version"
	dir=$(cd "$work" && GOWORK=off GOFLAGS=-mod=mod go mod download -json "github.com/foxcpp/maddy@$version" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -n "$dir" ] || { echo "could not download maddy $version" >&2; exit 1; }
	mkdir -p .cache/maddy/bin
	(cd "$dir" && GOWORK=off CGO_ENABLED=1 go build -trimpath \
		-ldflags "-X github.com/foxcpp/maddy.Version=$version" -o "$maddy.tmp" ./cmd/maddy)
	mv "$maddy.tmp" "$maddy"
fi

# A free port on the loopback interface: random in 20000–59999, not in ss's listening list.
free_port() {
	while :; do
		p=$(( $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000 + 20000 ))
		ss -Hltn "sport = :$p" | grep -q . || { echo "$p"; return; }
	done
}

# start_maddy DIR PORT: writes DIR/maddy.conf, creates the recipient's account, starts maddy
# in the background (pid in $pid) and waits until it listens.
start_maddy() {
	d=$1
	port=$2
	mkdir -p "$d/state" "$d/run"
	cat >"$d/maddy.conf" <<EOF
state_dir $d/state
runtime_dir $d/run
hostname mx.maddy.test
tls off
log $d/maddy.log

storage.imapsql local_mailboxes {
    driver sqlite3
    dsn imapsql.db
}

smtp tcp://127.0.0.1:$port {
    dmarc no
    default_source {
        destination maddy.test {
            deliver_to &local_mailboxes
        }
        default_destination {
            reject 550 5.1.1 "User doesn't exist"
        }
    }
}
EOF
	"$maddy" --config "$d/maddy.conf" --log "$d/cli.log" imap-acct create \
		--sent-name '' --trash-name '' --junk-name '' --drafts-name '' --archive-name '' \
		user@maddy.test >/dev/null
	"$maddy" --config "$d/maddy.conf" run >"$d/stderr.txt" 2>&1 &
	pid=$!
	i=0
	until ss -Hltn "sport = :$port" | grep -q .; do
		if ! kill -0 "$pid" 2>/dev/null || [ $i -ge 100 ]; then
			echo "maddy did not start listening on 127.0.0.1:$port:" >&2
			tail -20 "$d/stderr.txt" "$d/maddy.log" >&2
			exit 1
		fi
		i=$((i + 1))
		sleep 0.1
	done
}

stop_maddy() {
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	pid=
}

now() { date +%s.%N; }

echo "== maddy $version (imapsql on SQLite, fresh state per configuration)"
for c in $configs; do
	size=${c%%/*}
	rest=${c#*/}
	sessions=${rest%%/*}
	messages=${rest#*/}
	d=$work/maddy-$size-$sessions
	port=$(free_port)
	start_maddy "$d" "$port"
	start=$(now)
	"$source" -s "$sessions" -m "$messages" -l "$size" -f load@client.test -t user@maddy.test \
		"127.0.0.1:$port" >"$d/source.txt" 2>&1 || { cat "$d/source.txt" >&2; exit 1; }
	end=$(now)
	stored=$("$maddy" --config "$d/maddy.conf" --log "$d/cli.log" imap-msgs list user@maddy.test INBOX | grep -c '^UID ') || true
	stop_maddy
	rate=$(echo "scale=0; $messages / ($end - $start)" | bc)
	echo "maddy size=$size sessions=$sessions messages=$messages rate=$rate/s stored=$stored"
	[ "$stored" -eq "$messages" ] || { echo "maddy stored $stored of $messages" >&2; exit 1; }
	eval "maddy_rate_${size}_$sessions=\$rate"
done

[ "${MADDY_BENCH_POSTFACH:-1}" != 0 ] || exit 0

echo "== Postfach (TestIngestFigure, SQLite, same configurations)"
go test -c -o "$work/smtpd.test" ./internal/smtpd/
TMPDIR=$work POSTFACH_BENCH_INBOUND=1 POSTFACH_BENCH_CONFIGS="$configs" \
	"$work/smtpd.test" -test.run '^TestIngestFigure$' -test.v >"$work/postfach.txt" 2>&1 ||
	{ cat "$work/postfach.txt"; exit 1; }
grep '^ingest' "$work/postfach.txt" | while read -r line; do
	echo "$line"
	size=$(echo "$line" | sed -n 's/.* size=\([0-9]*\) .*/\1/p')
	sessions=$(echo "$line" | sed -n 's/.* sessions=\([0-9]*\) .*/\1/p')
	pf=$(echo "$line" | sed -n 's/.* postfach=\([0-9.]*\)\/s.*/\1/p')
	eval "m=\${maddy_rate_${size}_$sessions:-}"
	if [ -n "$m" ] && [ "$m" -gt 0 ]; then
		echo "postfach/maddy size=$size sessions=$sessions: $pf/s vs $m/s = $(echo "scale=2; $pf / $m" | bc)x"
	fi
done
