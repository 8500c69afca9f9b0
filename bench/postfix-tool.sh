# Sourced by the benchmark scripts. postfix_tool NAME prints the path of Postfix's NAME
# (smtp-source, smtp-sink): the copy scripts/install-test-deps.sh extracts into
# .cache/postfix/bin, else the one on PATH; without either it says how to get it and fails.
# Call it from the repository root.
postfix_tool() {
	if [ -x ".cache/postfix/bin/$1" ]; then
		echo "$PWD/.cache/postfix/bin/$1"
	elif command -v "$1" >/dev/null 2>&1; then
		command -v "$1"
	else
		echo "$1 not found: run scripts/install-test-deps.sh or install Debian postfix" >&2
		return 1
	fi
}
