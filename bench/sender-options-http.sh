#!/usr/bin/env bash
# Load test of GET /api/v1/me/sender-options on the demo tenant with wrk, compared with
# GET /livez (the same server, the same middleware, no database) in the same run.
# Usage: bench/sender-options-http.sh [duration] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10s}
conns=${2:-32}
command -v wrk >/dev/null || { echo "wrk not installed: apt-get install wrk" >&2; exit 1; }
dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
go build -o "$dir/postfach" ./cmd/postfach
port=$((20000 + RANDOM % 10000))
"$dir/postfach" serve --demo --demo-password bench-password-1 --data-dir "$dir/data" --http-addr "127.0.0.1:$port" \
	--smtp-addr off --submission-addr off --submission-tls-addr off --imap-addr off --imap-tls-addr off --pop3-addr off --pop3-tls-addr off \
	--log-level warn >"$dir/out.log" 2>&1 &
pid=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/livez" >/dev/null && break; sleep 0.2; done
token=$(curl -sf -X POST "http://127.0.0.1:$port/api/v1/login" -d '{"tenant":"demo","login":"brenner","password":"bench-password-1"}' | sed 's/.*"token":"\([^"]*\)".*/\1/')
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== baseline GET /livez"
wrk -t2 -c"$conns" -d"$duration" "http://127.0.0.1:$port/livez" | grep -E 'Requests/sec|Latency'
echo "== GET /api/v1/me/sender-options (session cookie, SQLite)"
wrk -t2 -c"$conns" -d"$duration" -H "Cookie: postfach_session=$token" "http://127.0.0.1:$port/api/v1/me/sender-options" | grep -E 'Requests/sec|Latency'
