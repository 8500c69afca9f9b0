package server

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"os/exec"
	"strings"
	"testing"
	"time"

	"postfach/internal/store/storetest"
	"postfach/internal/testpeers"
)

// TestIMAPIdleAcrossInstances runs two instances on one PostgreSQL database: an IMAP client
// IDLEs on instance A, mail for the mailbox arrives through instance B's inbound SMTP, and
// A's session reports it. Both instances poll only once an hour, so only the LISTEN/NOTIFY
// signal can wake the session before the client gives up.
func TestIMAPIdleAcrossInstances(t *testing.T) {
	if !storetest.IsPostgres() {
		t.Skip("IDLE across instances needs PostgreSQL (set " + storetest.EnvPostgres + "); SQLite is single-instance by design")
	}
	swaks := testpeers.Swaks(t)
	opts := MailOptions{IMAPPollInterval: time.Hour}
	a := startMailWith(t, opts)

	cfg := a.srv.Config
	cfg.DataDir = t.TempDir()
	cfg.SMTPAddr = "127.0.0.1:0"
	for _, addr := range []*string{&cfg.IMAPAddr, &cfg.IMAPTLSAddr, &cfg.POP3Addr, &cfg.POP3TLSAddr, &cfg.SubmissionAddr, &cfg.SubmissionTLSAddr} {
		*addr = "127.0.0.1:0"
	}
	b, err := Open(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	if err := b.ListenSMTP(); err != nil {
		t.Fatal(err)
	}
	if err := b.ListenMailWith(opts); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(python(t), "-c", pyPrelude+`
m = imaplib.IMAP4_SSL("localhost", int(os.environ["IMAPS"]), ssl_context=ctx)
m.login(U, P)
typ, data = m.select("INBOX")
assert data[0] == b"1", data
m.sock.settimeout(60)
m.send(b"i1 IDLE\r\n")
line = m.readline()
assert line.startswith(b"+"), line
print("idling", flush=True)
while True:
    line = m.readline()
    if not line:
        print("connection closed"); sys.exit(1)
    if b"EXISTS" in line:
        print("woken", line.decode().strip(), flush=True)
        break
m.send(b"DONE\r\n")
print("done", m.readline().decode().strip())
typ, data = m.fetch("2", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
print("fetched", data[0][1].decode().strip())
m.logout()
`)
	cmd.Env = append(cmd.Environ(), a.env()...)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(stdout)
	if line, _ := r.ReadString('\n'); strings.TrimSpace(line) != "idling" {
		rest, _ := io.ReadAll(r)
		t.Fatalf("python: %q %s", line, rest)
	}
	host, port := hostPort(b.SMTPAddr())
	sw, err := exec.Command(swaks, "--server", host, "--port", port, "--from", "kunde@example.org", "--to", a.box.Address,
		"--header", "Subject: Ueber Instanz B", "--body", "Hallo").CombinedOutput()
	if err != nil {
		t.Fatalf("swaks into instance B: %v\n%s", err, sw)
	}
	rest, _ := io.ReadAll(r)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("python: %v\n%s", err, rest)
	}
	out := string(rest)
	if !strings.Contains(out, "woken * 2 EXISTS") || !strings.Contains(out, "done i1 OK") || !strings.Contains(out, "Ueber Instanz B") {
		t.Fatalf("IDLE on instance A:\n%s", out)
	}
}
