#!/bin/sh
# Send latency on a quiet server: how long from POST /api/v1/messages until the message's
# delivery state reads "sent", through a real "postfach serve" (demo data, SQLite) whose
# smarthost is Postfix's smtp-sink. One message at a time, 40 of them, about 40 ms apart; the
# client polls the state every millisecond, so the figure includes up to one poll.
#
#   bench/send-latency.sh                  # builds cmd/postfach from this checkout
#   bench/send-latency.sh path/to/postfach # another build, e.g. an older one to compare
#
# Needs smtp-sink (Debian postfix, or scripts/install-test-deps.sh), curl and python3.
set -eu
cd "$(dirname "$0")/.."
. bench/postfix-tool.sh
sink=$(postfix_tool smtp-sink)
work=$(mktemp -d "${TMPDIR:-/var/tmp}/postfach-bench.XXXXXX")
pids=
trap 'for p in $pids; do kill $p 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"' EXIT
bin=${1:-}
if [ -z "$bin" ]; then
	bin=$work/postfach
	go build -o "$bin" ./cmd/postfach
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
http_port=$(free_port)
sink_port=$(free_port)
mkdir -p "$work/sink"
(cd "$work/sink" && exec "$sink" -u "$(id -un)" "127.0.0.1:$sink_port" 100 >/dev/null 2>&1) &
pids="$pids $!"
password='Latenz-Messung-2026!'
"$bin" serve --demo --demo-password "$password" --data-dir "$work/data" --http-addr "127.0.0.1:$http_port" \
	--smtp-addr off --submission-addr off --submission-tls-addr off --imap-addr off --imap-tls-addr off \
	--pop3-addr off --pop3-tls-addr off --smarthost "127.0.0.1:$sink_port" --smarthost-security none >"$work/log" 2>&1 &
pids="$pids $!"
for _ in $(seq 100); do
	curl -sf "127.0.0.1:$http_port/livez" >/dev/null 2>&1 && break
	sleep 0.1
done
token=$(curl -sf -X POST "127.0.0.1:$http_port/api/v1/login" \
	-d "{\"tenant\":\"demo\",\"login\":\"brenner\",\"password\":\"$password\"}" |
	python3 -c 'import sys, json; print(json.load(sys.stdin)["token"])')
python3 - "$http_port" "$token" <<'PY'
import json, sys, time, urllib.request

port, token = sys.argv[1], sys.argv[2]

def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    r = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, data=data,
                               headers={"Cookie": f"postfach_session={token}", "Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(r))

took = []
for i in range(40):
    start = time.time()
    sent = call("POST", "/api/v1/messages", {"sender": "own", "to": [{"address": f"kunde{i}@example.org"}],
                                             "subject": f"Latenz {i}", "text": "Guten Tag"})
    while call("GET", f"/api/v1/messages/{sent['id']}/delivery")["state"] != "sent":
        if time.time() - start > 30:
            sys.exit(f"message {sent['id']} not sent after 30 s")
        time.sleep(0.001)
    took.append((time.time() - start) * 1000)
    time.sleep(0.04)
took.sort()
print(f"send -> sent, 40 messages one at a time: p50 {took[len(took) // 2]:.1f} ms, "
      f"p90 {took[int(len(took) * 0.9)]:.1f} ms, max {took[-1]:.1f} ms")
PY
