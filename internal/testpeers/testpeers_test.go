package testpeers

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// lineConn is a tiny line-oriented client for the IMAP and POP3 dialogues
// below; the harness tests must not depend on the product's own clients.
type lineConn struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dialLines(t *testing.T, conn net.Conn) *lineConn {
	t.Helper()
	// A deadline keeps a hung peer from hanging the test binary; it is not
	// an assertion about speed.
	if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &lineConn{t: t, conn: conn, r: bufio.NewReader(conn)}
}

func (c *lineConn) readLine() string {
	c.t.Helper()
	line, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (got %q)", err, line)
	}
	return strings.TrimRight(line, "\r\n")
}

func (c *lineConn) send(line string) {
	c.t.Helper()
	if _, err := fmt.Fprintf(c.conn, "%s\r\n", line); err != nil {
		c.t.Fatalf("write %q: %v", line, err)
	}
}

// imapCommand sends a tagged command and returns the untagged lines and the
// tagged completion line (RFC 9051 section 2.2.2).
func (c *lineConn) imapCommand(tag, command string) (untagged []string, done string) {
	c.t.Helper()
	c.send(tag + " " + command)
	for {
		line := c.readLine()
		if strings.HasPrefix(line, tag+" ") {
			return untagged, line
		}
		untagged = append(untagged, line)
	}
}

func (c *lineConn) expectPrefix(prefix string) string {
	c.t.Helper()
	line := c.readLine()
	if !strings.HasPrefix(line, prefix) {
		c.t.Fatalf("got %q, want a line starting with %q", line, prefix)
	}
	return line
}

func TestDovecotIMAPS(t *testing.T) {
	t.Parallel()
	d := StartDovecot(t, map[string]string{"alice@example.test": "secret one"})
	d.Append(t, "alice@example.test", "INBOX", []byte("From: bob@example.test\r\nSubject: hello\r\n\r\nbody\r\n"))

	conn, err := tls.Dial("tcp", d.IMAPSAddr, d.CA.ClientTLS("127.0.0.1"))
	if err != nil {
		t.Fatalf("TLS dial with the test CA: %v\n%s", err, d.Log())
	}
	c := dialLines(t, conn)
	c.expectPrefix("* OK")
	if _, done := c.imapCommand("a1", `LOGIN "alice@example.test" "secret one"`); !strings.HasPrefix(done, "a1 OK") {
		t.Fatalf("LOGIN: %q", done)
	}
	untagged, done := c.imapCommand("a2", "SELECT INBOX")
	if !strings.HasPrefix(done, "a2 OK") {
		t.Fatalf("SELECT: %q", done)
	}
	if !containsLine(untagged, "* 1 EXISTS") {
		t.Errorf("SELECT INBOX after Append: want * 1 EXISTS in %q", untagged)
	}
	c.imapCommand("a3", "LOGOUT")
}

func TestDovecotIMAPStartTLSAndWrongPassword(t *testing.T) {
	t.Parallel()
	d := StartDovecot(t, map[string]string{"alice": "right"})

	conn, err := net.Dial("tcp", d.IMAPAddr)
	if err != nil {
		t.Fatal(err)
	}
	c := dialLines(t, conn)
	c.expectPrefix("* OK")
	if _, done := c.imapCommand("a1", "LOGIN alice wrong"); !strings.HasPrefix(done, "a1 NO") {
		t.Fatalf("LOGIN with a wrong password: %q, want NO", done)
	}
	if _, done := c.imapCommand("a2", "STARTTLS"); !strings.HasPrefix(done, "a2 OK") {
		t.Fatalf("STARTTLS: %q", done)
	}
	tlsConn := tls.Client(conn, d.CA.ClientTLS("localhost"))
	if err := tlsConn.Handshake(); err != nil {
		t.Fatalf("STARTTLS handshake: %v", err)
	}
	c = dialLines(t, tlsConn)
	if _, done := c.imapCommand("a3", "LOGIN alice right"); !strings.HasPrefix(done, "a3 OK") {
		t.Fatalf("LOGIN after STARTTLS: %q", done)
	}

	// A certificate from another CA must be refused: clients really verify.
	other := NewCA(t)
	if conn, err := tls.Dial("tcp", d.IMAPSAddr, other.ClientTLS("127.0.0.1")); err == nil {
		conn.Close()
		t.Fatal("TLS dial trusting another CA succeeded, want a verification error")
	}
}

func TestDovecotPOP3(t *testing.T) {
	t.Parallel()
	d := StartDovecot(t, map[string]string{"bob": "pop-secret"})
	d.Append(t, "bob", "INBOX", []byte("Subject: one\n\nfirst\n"))
	d.Append(t, "bob", "INBOX", []byte("Subject: two\n\nsecond\n"))

	for _, tc := range []struct {
		name string
		dial func() (net.Conn, error)
	}{
		{"plain", func() (net.Conn, error) { return net.Dial("tcp", d.POP3Addr) }},
		{"implicit TLS", func() (net.Conn, error) { return tls.Dial("tcp", d.POP3SAddr, d.CA.ClientTLS("127.0.0.1")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := tc.dial()
			if err != nil {
				t.Fatal(err)
			}
			c := dialLines(t, conn)
			c.expectPrefix("+OK")
			// RFC 1939 section 7: USER and PASS.
			c.send("USER bob")
			c.expectPrefix("+OK")
			c.send("PASS pop-secret")
			c.expectPrefix("+OK")
			c.send("STAT")
			if got := c.readLine(); !strings.HasPrefix(got, "+OK 2 ") {
				t.Errorf("STAT = %q, want 2 messages", got)
			}
			c.send("QUIT")
			c.expectPrefix("+OK")
		})
	}
}

func TestDovecotDoveadmUIDValidityAndPassword(t *testing.T) {
	t.Parallel()
	d := StartDovecot(t, map[string]string{"carol": "old"})
	d.Append(t, "carol", "Archive/2024", []byte("Subject: archived\r\n\r\nx\r\n"))

	d.Doveadm(t, "mailbox", "update", "--uid-validity", "4242", "-u", "carol", "INBOX")
	if got := d.Doveadm(t, "-f", "flow", "mailbox", "status", "-u", "carol", "uidvalidity", "INBOX"); !strings.Contains(got, "uidvalidity=4242") {
		t.Errorf("uidvalidity after update = %q, want 4242", got)
	}
	if got := d.Doveadm(t, "-f", "flow", "mailbox", "status", "-u", "carol", "messages", "Archive/2024"); !strings.Contains(got, "messages=1") {
		t.Errorf("Archive/2024 status = %q, want 1 message", got)
	}

	d.SetPassword(t, "carol", "new")
	conn, err := net.Dial("tcp", d.POP3Addr)
	if err != nil {
		t.Fatal(err)
	}
	c := dialLines(t, conn)
	c.expectPrefix("+OK")
	c.send("USER carol")
	c.expectPrefix("+OK")
	c.send("PASS new")
	c.expectPrefix("+OK")
}

func TestSMTPSinkStdlibClient(t *testing.T) {
	t.Parallel()
	dump := filepath.Join(t.TempDir(), "dump")
	sink := StartSMTPSink(t, "-d", dump+"/%M.")

	msg := "From: a@example.test\r\nTo: b@example.test\r\nSubject: sink\r\n\r\nhello sink\r\n"
	if err := smtp.SendMail(sink.Addr, nil, "a@example.test", []string{"b@example.test"}, []byte(msg)); err != nil {
		t.Fatalf("send to smtp-sink: %v\n%s", err, sink.Output())
	}
	// smtp-sink writes the dump file when the transaction ends, before it
	// answers the final dot, so the file exists once SendMail returned.
	files, err := filepath.Glob(filepath.Join(dump, "*"))
	if err != nil || len(files) != 1 {
		t.Fatalf("dump files = %v (%v), want one", files, err)
	}
	got, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	// The dump records the envelope as X-Mail-Args and X-Rcpt-Args headers.
	for _, want := range []string{"X-Mail-Args: <a@example.test>", "X-Rcpt-Args: <b@example.test>", "hello sink"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("dump lacks %q:\n%s", want, got)
		}
	}
}

func TestSMTPSinkRejects(t *testing.T) {
	t.Parallel()
	sink := StartSMTPSink(t, "-r", "RCPT")
	err := smtp.SendMail(sink.Addr, nil, "a@example.test", []string{"b@example.test"}, []byte("Subject: x\r\n\r\nx\r\n"))
	if err == nil || !strings.Contains(err.Error(), "450") {
		t.Fatalf("send with RCPT rejected: err = %v, want a 450 reply", err)
	}
}

func TestSMTPSourcePath(t *testing.T) {
	t.Parallel()
	if path := SMTPSourcePath(t); !filepath.IsAbs(path) {
		t.Errorf("SMTPSourcePath = %q, want an absolute path", path)
	}
}

func TestCAServerTLSInProcess(t *testing.T) {
	t.Parallel()
	ca := NewCA(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", ca.ServerTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return // listener closed
			}
			_ = conn.(*tls.Conn).Handshake()
			conn.Close()
		}
	}()
	for _, name := range []string{"127.0.0.1", "localhost"} {
		conn, err := tls.Dial("tcp", ln.Addr().String(), ca.ClientTLS(name))
		if err != nil {
			t.Fatalf("verify leaf as %s: %v", name, err)
		}
		conn.Close()
	}
	if conn, err := tls.Dial("tcp", ln.Addr().String(), ca.ClientTLS("mail.example.test")); err == nil {
		conn.Close()
		t.Fatal("leaf verified for a name it was not issued for")
	}
}

func TestSwaksAgainstSMTPSink(t *testing.T) {
	t.Parallel()
	swaks := Swaks(t)
	sink := StartSMTPSink(t)
	host, port, _ := net.SplitHostPort(sink.Addr)
	out, err := exec.Command(swaks, "--server", host, "--port", port,
		"--from", "a@example.test", "--to", "b@example.test", "--body", "via swaks").CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "<-  250") {
		t.Errorf("swaks transcript lacks a 250 reply:\n%s", out)
	}
}

func TestCAWriteFiles(t *testing.T) {
	t.Parallel()
	ca := NewCA(t)
	caPath, certPath, keyPath := ca.WriteFiles(t.TempDir(), "mail.example.test")
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		t.Fatalf("load written pair: %v", err)
	}
	caPEM, err := os.ReadFile(caPath)
	if err != nil || string(caPEM) != string(ca.CertPEM()) {
		t.Fatalf("ca file: %v", err)
	}
	if err := pair.Leaf.VerifyHostname("mail.example.test"); err != nil {
		t.Errorf("leaf hostname: %v", err)
	}
	if info, err := os.Stat(keyPath); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v (%v), want 0600", info.Mode().Perm(), err)
	}
}

func TestBinaryMissingSkips(t *testing.T) {
	if os.Getenv("CI") == "true" {
		t.Skip("with CI=true a missing binary fails the test by design")
	}
	var skipped bool
	t.Run("missing", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		Binary(t, "postfach-no-such-binary", "no-such-package")
	})
	if !skipped {
		t.Error("Binary of a missing program did not skip")
	}
}

func TestFreeAddr(t *testing.T) {
	t.Parallel()
	// A port is free "a moment ago": a peer of a test binary running in parallel may bind it in
	// between (FreePort says so). So a bind may fail now and then, but not again and again.
	var errs []error
	for range 5 {
		addr := FreeAddr(t)
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			ln.Close()
			return
		}
		errs = append(errs, err)
	}
	t.Fatalf("no address from FreeAddr could be bound: %v", errs)
}

func TestListeningIn(t *testing.T) {
	t.Parallel()
	const table = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:0050 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1
`
	for _, tc := range []struct {
		port int
		want bool
	}{
		{8080, true},   // 0x1F90 listening
		{80, false},    // 0x0050 only established
		{50000, false}, // remote port of the established socket
		{9, false},
	} {
		got, err := listeningIn(strings.NewReader(table), tc.port)
		if err != nil || got != tc.want {
			t.Errorf("listeningIn(%d) = %v, %v; want %v", tc.port, got, err, tc.want)
		}
	}
}

func FuzzListeningIn(f *testing.F) {
	f.Add("   0: 0100007F:1F90 00000000:0000 0A 0", 8080)
	f.Add("garbage\n\n:::: 0A", 0)
	f.Add("  sl  local_address rem_address   st\n", 65535)
	f.Fuzz(func(t *testing.T, table string, port int) {
		_, _ = listeningIn(strings.NewReader(table), port)
	})
}

func containsLine(lines []string, want string) bool {
	for _, line := range lines {
		if line == want {
			return true
		}
	}
	return false
}
