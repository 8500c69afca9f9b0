package pop3

import (
	"context"
	"encoding/json"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"postfach/internal/testpeers"
)

// Tests with real POP3 clients against our server: curl and Python's poplib.

func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("%s %s: %v\n%s\n%s", name, strings.Join(args, " "), err, out, stderr)
	}
	return string(out)
}

func TestCurl(t *testing.T) {
	t.Parallel()
	curl := testpeers.Curl(t)
	ca := testpeers.NewCA(t)
	caPath, _, _ := ca.WriteFiles(t.TempDir())
	b := newMemBackend()
	b.addUser(testUser, testPass, testMessages...)
	tlsConfig := ca.ServerTLS()
	plainAddr := startServer(t, &Server{Backend: b, TLSConfig: tlsConfig})
	implicitAddr := startServer(t, &Server{Backend: b, TLSConfig: tlsConfig, ImplicitTLS: true})
	creds := testUser + ":" + testPass
	_, plainPort, _ := net.SplitHostPort(plainAddr)
	_, implicitPort, _ := net.SplitHostPort(implicitAddr)

	// curl's default SASL exchange sends PLAIN without initial response;
	// --sasl-ir sends it in the AUTH command.
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"LIST over STLS", []string{"--ssl-reqd", "pop3://127.0.0.1:" + plainPort + "/"}, "1 80\r\n2 55\r\n3 23\r\n"},
		{"RETR over STLS with initial response", []string{"--ssl-reqd", "--sasl-ir", "pop3://127.0.0.1:" + plainPort + "/1"}, testMessages[0]},
		{"LIST over implicit TLS", []string{"pop3s://127.0.0.1:" + implicitPort + "/"}, "1 80\r\n2 55\r\n3 23\r\n"},
		{"RETR over implicit TLS", []string{"pop3s://127.0.0.1:" + implicitPort + "/2"}, testMessages[1]},
		{"TOP", []string{"pop3s://127.0.0.1:" + implicitPort + "/", "-X", "TOP 2 1"}, "Subject: two\r\n\r\nbody line 1\r\n"},
		{"UIDL", []string{"pop3s://127.0.0.1:" + implicitPort + "/", "-X", "UIDL"}, "1 uid-1\r\n2 uid-2\r\n3 uid-3\r\n"},
	}
	for _, tc := range tests {
		args := append([]string{"-sS", "--cacert", caPath, "--user", creds}, tc.args...)
		if got := runTool(t, curl, args...); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}

	// Cleartext login is refused without TLS.
	cmd := exec.Command(curl, "-sS", "--user", creds, "pop3://127.0.0.1:"+plainPort+"/")
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("cleartext login succeeded: %s", out)
	}

	// DELE (no body expected: -I), then curl's QUIT commits it.
	runTool(t, curl, "-sS", "--cacert", caPath, "--user", creds, "-X", "DELE", "-I", "pop3s://127.0.0.1:"+implicitPort+"/1")
	if got := b.uids(testUser); !slices.Equal(got, []string{"uid-2", "uid-3"}) {
		t.Errorf("after curl DELE: %v", got)
	}
}

// poplibScript drives Python's poplib: argv = mode host port cafile user pass.
const poplibScript = `
import json, poplib, ssl, sys
mode, host, port, cafile, user, password = sys.argv[1:7]
ctx = ssl.create_default_context(cafile=cafile)
if mode == "stls":
    p = poplib.POP3(host, int(port), timeout=20)
    caps = p.capa()
    p.stls(ctx)
else:
    p = poplib.POP3_SSL(host, int(port), context=ctx, timeout=20)
    caps = p.capa()
p.user(user)
p.pass_(password)
count, size = p.stat()
uidl = [l.decode() for l in p.uidl()[1]]
retr = b"\r\n".join(p.retr(1)[1]).decode() + "\r\n"
top = b"\r\n".join(p.top(2, 1)[1]).decode() + "\r\n"
p.dele(3)
p.quit()
print(json.dumps({"caps": sorted(caps), "count": count, "size": size, "uidl": uidl, "retr": retr, "top": top}))
`

func TestPythonPoplib(t *testing.T) {
	t.Parallel()
	python := testpeers.Binary(t, "python3", "python3")
	ca := testpeers.NewCA(t)
	caPath, _, _ := ca.WriteFiles(t.TempDir())
	for _, mode := range []string{"stls", "implicit"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			b := newMemBackend()
			b.addUser(testUser, testPass, testMessages...)
			addr := startServer(t, &Server{Backend: b, TLSConfig: ca.ServerTLS(), ImplicitTLS: mode == "implicit"})
			host, port, _ := net.SplitHostPort(addr)
			out := runTool(t, python, "-c", poplibScript, mode, host, port, caPath, testUser, testPass)
			var got struct {
				Caps  []string
				Count int
				Size  int64
				UIDL  []string
				Retr  string
				Top   string
			}
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			// poplib undoes byte-stuffing itself; what it returns must be
			// the stored message.
			if got.Count != 3 || got.Size != 158 || got.Retr != testMessages[0] || got.Top != "Subject: two\r\n\r\nbody line 1\r\n" {
				t.Errorf("poplib saw %+v", got)
			}
			if !slices.Equal(got.UIDL, []string{"1 uid-1", "2 uid-2", "3 uid-3"}) {
				t.Errorf("UIDL %v", got.UIDL)
			}
			if !slices.Contains(got.Caps, "UIDL") {
				t.Errorf("CAPA %v", got.Caps)
			}
			if uids := b.uids(testUser); !slices.Equal(uids, []string{"uid-1", "uid-2"}) {
				t.Errorf("after poplib DELE 3 and QUIT: %v", uids)
			}
		})
	}
}
