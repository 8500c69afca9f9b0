#!/usr/bin/env bash
# Installs the real mail peers and clients the Postfach tests run against
# (Debian/Ubuntu, apt). Idempotent and non-interactive: packages already
# installed are skipped, so a second run takes a second or two.
#
# Postfix's smtp-sink and smtp-source are extracted from the postfix package
# into .cache/postfix instead of installing Postfix, so no mail daemon is
# configured or started. Wrappers in .cache/postfix/bin set the library path.
set -euo pipefail

cd "$(dirname "$0")/.."
root_dir=$(pwd)
postfix_dir="$root_dir/.cache/postfix"

export DEBIAN_FRONTEND=noninteractive

packages=(
	chromium
	dovecot-imapd
	dovecot-pop3d
	swaks
	libio-socket-ssl-perl
	isync
	curl
	wrk
	python3
	openssl
	make
)

log() { printf '==> %s\n' "$*"; }

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo -n "$@"
	else
		echo "install-test-deps: need root (or password-less sudo) for: $*" >&2
		return 1
	fi
}

installed() {
	[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

# sink_runs succeeds when the smtp-sink at $1 starts far enough to print its
# usage (it exits non-zero without arguments).
sink_runs() {
	local out
	out=$("$1" 2>&1 || true)
	[[ $out == *usage* ]]
}

apt_updated=false
apt_update_once() {
	if [ "$apt_updated" = false ]; then
		log "apt-get update"
		as_root apt-get update -qq </dev/null
		apt_updated=true
	fi
}

if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-test-deps: apt-get not found; install the packages listed in docs/testing.md by hand" >&2
	exit 1
fi

# A policy-rc.d answering 101 keeps maintainer scripts from starting
# services (Dovecot would otherwise start on the system ports). Only ours is
# removed again; an existing one is left alone.
policy_rc=/usr/sbin/policy-rc.d
own_policy_rc=false
remove_policy_rc() {
	if [ "$own_policy_rc" = true ]; then
		as_root rm -f "$policy_rc"
	fi
}
trap remove_policy_rc EXIT

missing=()
for pkg in "${packages[@]}"; do
	installed "$pkg" || missing+=("$pkg")
done

# Libraries smtp-sink and smtp-source link against, taken from the postfix
# package's dependencies so this follows the distribution release.
postfix_libs() {
	apt-cache depends --no-recommends --no-suggests postfix 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^lib/ { print $2 }' | sort -u
}

need_postfix_extract=true
if [ -x "$postfix_dir/bin/smtp-sink" ] && [ -x "$postfix_dir/bin/smtp-source" ] &&
	sink_runs "$postfix_dir/bin/smtp-sink"; then
	need_postfix_extract=false
fi

if [ "$need_postfix_extract" = true ]; then
	apt_update_once
	for lib in $(postfix_libs); do
		installed "$lib" || missing+=("$lib")
	done
fi

if [ "${#missing[@]}" -gt 0 ]; then
	apt_update_once
	if [ ! -e "$policy_rc" ]; then
		printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy_rc" >/dev/null
		as_root chmod 755 "$policy_rc"
		own_policy_rc=true
	fi
	log "apt-get install ${missing[*]}"
	as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
	remove_policy_rc
	own_policy_rc=false
else
	log "Debian packages already installed"
fi

# Stop and disable a system Dovecot if a package started one: the tests run
# their own private instances and must not find the system one on its ports.
if [ -r /run/dovecot/master.pid ] && kill -0 "$(cat /run/dovecot/master.pid)" 2>/dev/null; then
	log "stopping the system Dovecot service"
	if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
		as_root systemctl stop dovecot.service || true
	else
		as_root invoke-rc.d dovecot stop || as_root kill "$(cat /run/dovecot/master.pid)" || true
	fi
fi
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
	as_root systemctl disable --quiet dovecot.service 2>/dev/null || true
fi

if [ "$need_postfix_extract" = true ]; then
	log "extracting smtp-sink and smtp-source from the postfix package into .cache/postfix"
	tmp=$(mktemp -d)
	# apt-get download writes into the current directory; the _apt sandbox
	# user may not write to a root-owned mktemp directory.
	chmod 755 "$tmp"
	(cd "$tmp" && apt-get download -qq postfix </dev/null 2>&1 | grep -v 'unsandboxed' || true)
	deb=$(ls "$tmp"/postfix_*.deb 2>/dev/null | head -n 1)
	if [ -z "$deb" ]; then
		echo "install-test-deps: apt-get download postfix failed" >&2
		rm -rf "$tmp"
		exit 1
	fi
	rm -rf "$postfix_dir"
	mkdir -p "$postfix_dir/bin"
	dpkg -x "$deb" "$postfix_dir/root"
	rm -rf "$tmp"
	for tool in smtp-sink smtp-source; do
		# The binaries look for Postfix's own libraries in /usr/lib/postfix;
		# the wrapper points them at the extracted copy. exec keeps the PID,
		# so tests can signal the tool itself.
		cat >"$postfix_dir/bin/$tool" <<EOF
#!/bin/sh
here=\$(cd "\$(dirname "\$0")/.." && pwd)
LD_LIBRARY_PATH="\$here/root/usr/lib/postfix\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "\$here/root/usr/sbin/$tool" "\$@"
EOF
		chmod 755 "$postfix_dir/bin/$tool"
	done
	libs=$(LD_LIBRARY_PATH="$postfix_dir/root/usr/lib/postfix" ldd "$postfix_dir/root/usr/sbin/smtp-sink" "$postfix_dir/root/usr/sbin/smtp-source")
	if [[ $libs == *"not found"* ]]; then
		echo "install-test-deps: smtp-sink/smtp-source miss shared libraries:" >&2
		echo "$libs" >&2
		exit 1
	fi
fi

log "check"
for tool in dovecot doveadm swaks mbsync curl wrk openssl python3; do
	PATH="$PATH:/usr/sbin:/sbin" command -v "$tool" >/dev/null || { echo "install-test-deps: $tool missing after install" >&2; exit 1; }
done
command -v chromium >/dev/null || command -v chromium-browser >/dev/null ||
	{ echo "install-test-deps: chromium missing after install" >&2; exit 1; }
sink_runs "$postfix_dir/bin/smtp-sink" ||
	{ echo "install-test-deps: smtp-sink does not run" >&2; exit 1; }
log "test peers ready (dovecot $(PATH="$PATH:/usr/sbin" dovecot --version | cut -d' ' -f1), smtp-sink in .cache/postfix/bin)"
