// Package testpeers starts real mail peers for tests: Dovecot as IMAP and
// POP3 server, Postfix's smtp-sink as SMTP receiver, and finds client tools
// such as swaks, curl, mbsync and chromium.
//
// Every peer runs as a child process of the test binary, listens on
// 127.0.0.1 on a random high port, keeps all of its state in a private
// temporary directory and is stopped by t.Cleanup. Nothing here touches a
// system-wide mail service.
//
// A peer that is not installed skips the test with the Debian package to
// install, except when CI=true: there a missing peer fails the test, so a
// broken CI machine cannot pass by skipping everything.
// scripts/install-test-deps.sh installs every peer.
//
// Some helpers run no external peer: StartSMTPServer is a go-smtp server in
// the test binary for failures a test scripts per command, StartOAuthProvider
// an OAuth2 token endpoint in the test binary that can revoke a grant or be
// down, and StartServe runs "postfach serve" itself so crash tests can kill
// and restart it.
package testpeers

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// postfixCacheDir is where scripts/install-test-deps.sh extracts smtp-sink and
// smtp-source (with wrapper scripts in bin/) relative to the module root, so
// the SMTP test peers are available without installing and starting Postfix.
const postfixCacheDir = ".cache/postfix"

// startTimeout bounds how long a peer may take to accept connections. It is
// generous because two CI cores may be busy with other test binaries.
const startTimeout = 30 * time.Second

// Binary returns the absolute path of the executable name. It looks in PATH,
// the sbin directories and the project's Postfix extraction directory. When
// the binary is missing it skips the test with the Debian package to install,
// or fails it when CI=true.
func Binary(t testing.TB, name, debianPackage string) string {
	t.Helper()
	if path, err := findBinary(name); err == nil {
		return path
	}
	missing(t, name, debianPackage)
	return ""
}

// missing skips the test because what is not installed, or fails it when
// CI=true.
func missing(t testing.TB, what, debianPackage string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not installed (CI=true): apt-get install %s (or run scripts/install-test-deps.sh)", what, debianPackage)
	}
	t.Skipf("%s not installed: apt-get install %s (or run scripts/install-test-deps.sh)", what, debianPackage)
}

func findBinary(name string) (string, error) {
	if path, err := exec.LookPath(name); err == nil {
		return filepath.Abs(path)
	}
	// A non-root PATH often lacks the sbin directories, and dovecot lives there.
	dirs := []string{"/usr/sbin", "/usr/local/sbin", "/sbin"}
	if root, err := moduleRoot(); err == nil {
		dirs = append(dirs, filepath.Join(root, postfixCacheDir, "bin"))
	}
	for _, dir := range dirs {
		path := filepath.Join(dir, name)
		if info, err := os.Stat(path); err == nil && info.Mode().IsRegular() && info.Mode().Perm()&0o111 != 0 {
			return path, nil
		}
	}
	return "", fmt.Errorf("testpeers: %s not found", name)
}

// moduleRoot walks up from the working directory (a package directory under
// go test) to the directory holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("testpeers: working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testpeers: go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Swaks returns the path of swaks, the scriptable SMTP client.
func Swaks(t testing.TB) string {
	t.Helper()
	return Binary(t, "swaks", "swaks libio-socket-ssl-perl")
}

// Curl returns the path of curl.
func Curl(t testing.TB) string {
	t.Helper()
	return Binary(t, "curl", "curl")
}

// Mbsync returns the path of mbsync, the IMAP synchronisation client.
func Mbsync(t testing.TB) string {
	t.Helper()
	return Binary(t, "mbsync", "isync")
}

// Chromium returns the path of the chromium browser for chromedp tests.
func Chromium(t testing.TB) string {
	t.Helper()
	// Other distributions name the same browser differently.
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := findBinary(name); err == nil {
			return path
		}
	}
	return Binary(t, "chromium", "chromium")
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. It is
// chosen below the kernel's ephemeral range, so the client side of the
// tests' own outgoing connections cannot occupy it before a peer binds it.
// Another process may still take it in between; the Start functions retry
// when a peer fails to bind.
func FreePort(t testing.TB) int {
	t.Helper()
	low, high := nonEphemeralRange()
	for range 100 {
		port := low + rand.IntN(high-low+1)
		ln, err := net.Listen("tcp", loopback(port))
		if err == nil {
			ln.Close()
			return port
		}
	}
	// The range is crowded: take whatever the kernel hands out.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testpeers: free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// nonEphemeralRange returns unprivileged ports below the kernel's ephemeral
// port range (Linux default 32768–60999).
func nonEphemeralRange() (low, high int) {
	low, high = 10000, 32767
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return low, high
	}
	fields := strings.Fields(string(b))
	if len(fields) != 2 {
		return low, high
	}
	if first, err := strconv.Atoi(fields[0]); err == nil && first-1 >= low+1000 {
		high = first - 1
	}
	return low, high
}

// FreeAddr returns "127.0.0.1:N" for a port from FreePort.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return loopback(FreePort(t))
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// waitForListeners polls until every address accepts a TCP connection, the
// process exits, or startTimeout passes.
func waitForListeners(exited <-chan struct{}, addrs ...string) error {
	deadline := time.Now().Add(startTimeout)
	for _, addr := range addrs {
		for {
			conn, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				conn.Close()
				break
			}
			select {
			case <-exited:
				return fmt.Errorf("process exited before %s accepted connections", addr)
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s did not accept connections within %s: %w", addr, startTimeout, err)
			}
		}
	}
	return nil
}
