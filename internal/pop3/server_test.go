package pop3

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"postfach/internal/testpeers"
)

// Test messages with the byte-stuffing cases of RFC 1939 §3: lines that
// start with ".", a line that is only ".", and "..".
var testMessages = []string{
	"From: a@example.test\r\nSubject: one\r\n\r\nHello\r\n.\r\n..two dots\r\n.leading dot\r\nlast\r\n",
	"Subject: two\r\n\r\nbody line 1\r\nbody line 2\r\nbody line 3\r\n",
	"Subject: headers only\r\n",
}

const (
	testUser = "anna@example.test"
	testPass = "correct horse"
)

func newTestServer(t *testing.T, configure func(*Server)) (string, *memBackend) {
	t.Helper()
	b := newMemBackend()
	b.addUser(testUser, testPass, testMessages...)
	srv := &Server{Backend: b, AllowInsecureAuth: true}
	if configure != nil {
		configure(srv)
	}
	return startServer(t, srv), b
}

func TestServerSession(t *testing.T) {
	t.Parallel()
	addr, _ := newTestServer(t, nil)
	ctx := testCtx(t)
	c := dialClient(t, addr)
	if !strings.Contains(c.Greeting(), "POP3") {
		t.Errorf("greeting %q", c.Greeting())
	}
	caps, err := c.Capabilities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"TOP", "UIDL", "USER", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"} {
		if _, ok := caps[want]; !ok {
			t.Errorf("CAPA lacks %s: %v", want, caps)
		}
	}
	if !slices.Equal(caps["SASL"], []string{"PLAIN"}) {
		t.Errorf("SASL = %v", caps["SASL"])
	}
	if err := c.Login(ctx, testUser, testPass); err != nil {
		t.Fatal(err)
	}
	count, size, err := c.Stat(ctx)
	var wantSize int64
	for _, m := range testMessages {
		wantSize += int64(len(m))
	}
	if err != nil || count != len(testMessages) || size != wantSize {
		t.Fatalf("Stat = %d, %d, %v; want %d, %d", count, size, err, len(testMessages), wantSize)
	}
	uidl, err := c.UIDL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	list, err := c.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, raw := range testMessages {
		if uidl[i] != (UIDLEntry{Num: i + 1, UID: fmt.Sprintf("uid-%d", i+1)}) {
			t.Errorf("UIDL[%d] = %+v", i, uidl[i])
		}
		if list[i] != (ListEntry{Num: i + 1, Size: int64(len(raw))}) {
			t.Errorf("LIST[%d] = %+v", i, list[i])
		}
		got, err := c.Retr(ctx, i+1)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != raw {
			t.Errorf("RETR %d = %q, want %q", i+1, got, raw)
		}
	}
	tops := []struct {
		msg, lines int
		want       string
	}{
		{1, 0, "From: a@example.test\r\nSubject: one\r\n\r\n"},
		{1, 2, "From: a@example.test\r\nSubject: one\r\n\r\nHello\r\n.\r\n"},
		{2, 99, testMessages[1]},
		{3, 1, testMessages[2]},
	}
	for _, tc := range tops {
		got, err := c.Top(ctx, tc.msg, tc.lines)
		if err != nil || string(got) != tc.want {
			t.Errorf("TOP %d %d = %q, %v; want %q", tc.msg, tc.lines, got, err, tc.want)
		}
	}
	if err := c.Noop(ctx); err != nil {
		t.Error(err)
	}
	var re *ResponseError
	if _, err := c.Retr(ctx, 99); !errors.As(err, &re) || re.Command != "RETR" {
		t.Errorf("RETR 99: %v", err)
	}
	if err := c.Quit(ctx); err != nil {
		t.Error(err)
	}
}

func TestServerDeletesOnlyOnQuit(t *testing.T) {
	t.Parallel()
	addr, b := newTestServer(t, nil)
	ctx := testCtx(t)
	all := []string{"uid-1", "uid-2", "uid-3"}

	// DELE, then the connection drops: nothing is deleted.
	c := dialClient(t, addr)
	if err := c.Login(ctx, testUser, testPass); err != nil {
		t.Fatal(err)
	}
	if err := c.Dele(ctx, 1); err != nil {
		t.Fatal(err)
	}
	var re *ResponseError
	if err := c.Dele(ctx, 1); !errors.As(err, &re) {
		t.Errorf("second DELE 1: %v, want -ERR", err)
	}
	if count, _, _ := c.Stat(ctx); count != 2 {
		t.Errorf("STAT after DELE counts %d", count)
	}
	c.Close()
	waitClosed(t, b, 1)
	if got := b.uids(testUser); !slices.Equal(got, all) {
		t.Fatalf("after drop: %v", got)
	}

	// DELE, RSET, QUIT: nothing is deleted.
	c = dialClient(t, addr)
	if err := c.Login(ctx, testUser, testPass); err != nil {
		t.Fatal(err)
	}
	if err := c.Dele(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := c.Rset(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := b.uids(testUser); !slices.Equal(got, all) {
		t.Fatalf("after RSET: %v", got)
	}

	// DELE, QUIT: deleted.
	c = dialClient(t, addr)
	if err := c.Login(ctx, testUser, testPass); err != nil {
		t.Fatal(err)
	}
	if err := c.Dele(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := b.uids(testUser); !slices.Equal(got, []string{"uid-1", "uid-3"}) {
		t.Fatalf("after QUIT: %v", got)
	}
}

// waitClosed waits until the backend saw n Mailbox.Close calls, which the
// server makes when a session ends.
func waitClosed(t *testing.T, b *memBackend, n int) {
	t.Helper()
	for i := 0; i < 3000; i++ {
		if _, closes := b.counts(); closes >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("mailbox not closed")
}

func TestServerAuthErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		backend   error
		pass      string
		code      string
		authFail  bool
		temporary bool
	}{
		{"wrong password", nil, "wrong", CodeAuth, true, false},
		{"temporarily unavailable", fmt.Errorf("db: %w", ErrTemporarilyUnavailable), testPass, CodeSysTemp, false, true},
		{"in use", ErrInUse, testPass, CodeInUse, false, true},
		{"internal error", errors.New("disk on fire"), testPass, CodeSysTemp, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr, b := newTestServer(t, nil)
			b.authErr = tc.backend
			ctx := testCtx(t)
			for _, login := range []func(*Client) error{
				func(c *Client) error { return c.Login(ctx, testUser, tc.pass) },
				func(c *Client) error { return c.AuthPlain(ctx, testUser, tc.pass) },
			} {
				c := dialClient(t, addr)
				err := login(c)
				var re *ResponseError
				if !errors.As(err, &re) {
					t.Fatalf("login error %v, want ResponseError", err)
				}
				if re.Code != tc.code || re.AuthFailed() != tc.authFail || re.Temporary() != tc.temporary {
					t.Errorf("got %+v (AuthFailed %v, Temporary %v)", re, re.AuthFailed(), re.Temporary())
				}
				if strings.Contains(err.Error(), tc.pass) {
					t.Errorf("error %q contains the password", err)
				}
			}
		})
	}
}

func TestServerHangsUpAfterAuthFailures(t *testing.T) {
	t.Parallel()
	addr, _ := newTestServer(t, func(s *Server) { s.MaxAuthFailures = 2 })
	ctx := testCtx(t)
	c := dialClient(t, addr)
	var re *ResponseError
	for i := 0; i < 2; i++ {
		if err := c.Login(ctx, testUser, "wrong"); !errors.As(err, &re) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if err := c.Login(ctx, testUser, testPass); err == nil || errors.As(err, &re) {
		t.Fatalf("third attempt: %v, want a closed connection", err)
	}
}

func TestServerRequiresTLSForAuth(t *testing.T) {
	t.Parallel()
	ca := testpeers.NewCA(t)
	addr, _ := newTestServer(t, func(s *Server) {
		s.AllowInsecureAuth = false
		s.TLSConfig = ca.ServerTLS()
	})
	ctx := testCtx(t)
	c := dialClient(t, addr)
	caps, err := c.Capabilities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := caps["STLS"]; !ok {
		t.Errorf("CAPA lacks STLS: %v", caps)
	}
	if _, ok := caps["USER"]; ok {
		t.Errorf("CAPA offers USER without TLS: %v", caps)
	}
	var re *ResponseError
	if err := c.Login(ctx, testUser, testPass); !errors.As(err, &re) {
		t.Fatalf("cleartext login: %v, want -ERR", err)
	}
	if err := c.AuthPlain(ctx, testUser, testPass); !errors.As(err, &re) {
		t.Fatalf("cleartext AUTH: %v, want -ERR", err)
	}
	if err := c.StartTLS(ctx, ca.ClientTLS("127.0.0.1")); err != nil {
		t.Fatal(err)
	}
	caps, err = c.Capabilities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := caps["STLS"]; ok {
		t.Errorf("CAPA offers STLS under TLS: %v", caps)
	}
	if _, ok := caps["USER"]; !ok {
		t.Errorf("CAPA lacks USER under TLS: %v", caps)
	}
	if err := c.AuthPlain(ctx, testUser, testPass); err != nil {
		t.Fatal(err)
	}
	if n, _, err := c.Stat(ctx); err != nil || n != 3 {
		t.Fatalf("Stat = %d, %v", n, err)
	}
}

func TestServerImplicitTLS(t *testing.T) {
	t.Parallel()
	ca := testpeers.NewCA(t)
	addr, _ := newTestServer(t, func(s *Server) {
		s.AllowInsecureAuth = false
		s.ImplicitTLS = true
		s.TLSConfig = ca.ServerTLS()
	})
	ctx := testCtx(t)
	conn, err := tls.Dial("tcp", addr, ca.ClientTLS("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(conn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(ctx, testUser, testPass); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Retr(ctx, 2); err != nil || string(got) != testMessages[1] {
		t.Fatalf("Retr = %q, %v", got, err)
	}
}

// rawSession sends a client transcript in one write and returns everything
// the server answered until it closed the connection.
func rawSession(t *testing.T, addr, transcript string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, transcript); err != nil {
		t.Fatal(err)
	}
	// Half-close, so that a transcript without QUIT ends like a dropped client.
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("reading: %v (got %q)", err, out)
	}
	return string(out)
}

func TestServerTranscripts(t *testing.T) {
	t.Parallel()
	plain := func(authz, user, pass string) string {
		return b64(authz + "\x00" + user + "\x00" + pass)
	}
	tests := []struct {
		name       string
		transcript string
		want       []string // response lines after the greeting
	}{
		{
			name:       "pipelined",
			transcript: "USER " + testUser + "\r\nPASS " + testPass + "\r\nSTAT\r\nLIST 2\r\nUIDL 3\r\nDELE 1\r\nLIST\r\nQUIT\r\n",
			want: []string{"+OK send PASS", "+OK maildrop has 3 messages (158 octets)", "+OK 3 158", "+OK 2 55", "+OK 3 uid-3",
				"+OK message 1 deleted", "+OK 2 messages (78 octets)", "2 55", "3 23", ".", "+OK bye (1 messages deleted)"},
		},
		{
			name:       "AUTH PLAIN with continuation",
			transcript: "AUTH PLAIN\r\n" + plain("", testUser, testPass) + "\r\nSTAT\r\nQUIT\r\n",
			want:       []string{"+ ", "+OK maildrop has 3 messages (158 octets)", "+OK 3 158", "+OK bye (0 messages deleted)"},
		},
		{
			name:       "AUTH PLAIN cancelled",
			transcript: "AUTH PLAIN\r\n*\r\nQUIT\r\n",
			want:       []string{"+ ", "-ERR authentication cancelled", "+OK bye"},
		},
		{
			name:       "AUTH PLAIN as another identity",
			transcript: "AUTH PLAIN " + plain("boss@example.test", testUser, testPass) + "\r\nQUIT\r\n",
			want:       []string{"-ERR malformed PLAIN response", "+OK bye"},
		},
		{
			name:       "AUTH lists mechanisms",
			transcript: "AUTH\r\nauth plain " + plain(testUser, testUser, testPass) + "\r\nQUIT\r\n",
			want:       []string{"+OK SASL mechanisms follow", "PLAIN", ".", "+OK maildrop has 3 messages (158 octets)", "+OK bye (0 messages deleted)"},
		},
		{
			name:       "commands out of state",
			transcript: "STAT\r\nPASS x\r\nXYZZY\r\nUSER " + testUser + "\r\nPASS " + testPass + "\r\nUSER x\r\nRETR 0\r\nRETR x\r\nTOP 1\r\nDELE 4\r\nquit\r\n",
			want: []string{"-ERR not authenticated", "-ERR USER first", "-ERR unknown command", "+OK send PASS", "+OK maildrop has 3 messages (158 octets)",
				"-ERR already authenticated", "-ERR no such message", "-ERR invalid message number", "-ERR usage: TOP msg n", "-ERR no such message", "+OK bye (0 messages deleted)"},
		},
		{
			name:       "password with spaces and no QUIT",
			transcript: "USER " + testUser + "\r\nPASS " + testPass + "\r\nDELE 1\r\n",
			want:       []string{"+OK send PASS", "+OK maildrop has 3 messages (158 octets)", "+OK message 1 deleted"},
		},
		{
			name:       "line too long",
			transcript: "USER " + strings.Repeat("x", 5000) + "\r\nQUIT\r\n",
			want:       []string{"-ERR line too long"},
		},
		{
			name:       "too many commands before login",
			transcript: strings.Repeat("CAPA\r\n", 25),
			want:       append(slices.Repeat([]string{"+OK capability list follows", "TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "IMPLEMENTATION Postfach", "USER", "SASL PLAIN", "."}, 20), "-ERR too many commands without authentication"),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr, b := newTestServer(t, nil)
			out := rawSession(t, addr, tc.transcript)
			lines := strings.Split(strings.TrimSuffix(out, "\r\n"), "\r\n")
			if !strings.HasPrefix(lines[0], "+OK ") {
				t.Fatalf("greeting %q", lines[0])
			}
			if got := lines[1:]; !slices.Equal(got, tc.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if !strings.Contains(strings.ToUpper(tc.transcript), "QUIT") {
				if deletes, _ := b.counts(); deletes != 0 {
					t.Errorf("%d deletions without QUIT", deletes)
				}
			}
		})
	}
}

func TestServerEndsSessionWhenMailboxDone(t *testing.T) {
	t.Parallel()
	addr, b := newTestServer(t, nil)
	ctx := testCtx(t)
	c := dialClient(t, addr)
	if err := c.Login(ctx, testUser, testPass); err != nil {
		t.Fatal(err)
	}
	if err := c.Dele(ctx, 1); err != nil {
		t.Fatal(err)
	}
	b.kick(testUser) // the password changed
	// The server drops the connection while the client is idle.
	if _, err := c.br.ReadByte(); err == nil {
		t.Fatal("connection still open after Done")
	}
	waitClosed(t, b, 1)
	if deletes, _ := b.counts(); deletes != 0 {
		t.Errorf("%d deletions after Done", deletes)
	}
}

func TestServerAutologout(t *testing.T) {
	t.Parallel()
	addr, b := newTestServer(t, func(s *Server) { s.AutologoutTimeout = time.Second })
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, "USER "+testUser+"\r\nPASS "+testPass+"\r\nDELE 1\r\n"); err != nil {
		t.Fatal(err)
	}
	// The client stays idle, with its side open; the server must hang up.
	out, err := io.ReadAll(conn)
	if err != nil || !strings.HasSuffix(string(out), "+OK message 1 deleted\r\n") {
		t.Errorf("transcript %q, %v", out, err)
	}
	waitClosed(t, b, 1)
	if deletes, _ := b.counts(); deletes != 0 {
		t.Errorf("%d deletions after autologout", deletes)
	}
}

func TestServerCloseEndsSessions(t *testing.T) {
	t.Parallel()
	b := newMemBackend()
	b.addUser(testUser, testPass, testMessages...)
	srv := &Server{Backend: b, AllowInsecureAuth: true}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	ctx := testCtx(t)
	c := dialClient(t, ln.Addr().String())
	if err := c.Login(ctx, testUser, testPass); err != nil {
		t.Fatal(err)
	}
	if err := c.Dele(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != ErrServerClosed {
		t.Errorf("Serve = %v", err)
	}
	if deletes, closes := b.counts(); deletes != 0 || closes != 1 {
		t.Errorf("deletes %d, closes %d; want 0, 1", deletes, closes)
	}
	if err := c.Noop(ctx); err == nil {
		t.Error("NOOP after Close succeeded")
	}
}

// TestServerSTLSDropsInjectedCommands checks that commands sent in
// plaintext together with STLS are never executed (RFC 2595 §4).
func TestServerSTLSDropsInjectedCommands(t *testing.T) {
	t.Parallel()
	ca := testpeers.NewCA(t)
	addr, _ := newTestServer(t, func(s *Server) { s.TLSConfig = ca.ServerTLS() })
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(conn)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, "STLS\r\nUSER injected\r\n"); err != nil {
		t.Fatal(err)
	}
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+OK") {
		t.Fatalf("STLS answer %q, %v", line, err)
	}
	tc := tls.Client(conn, ca.ClientTLS("127.0.0.1"))
	if err := tc.Handshake(); err != nil {
		return // the injected bytes broke the handshake: also safe
	}
	io.WriteString(tc, "PASS "+testPass+"\r\n")
	line, err := bufio.NewReader(tc).ReadString('\n')
	if err != nil || line != "-ERR USER first\r\n" {
		t.Fatalf("after STLS: %q, %v; the injected USER survived", line, err)
	}
}

func TestServerRejectsBadSnapshot(t *testing.T) {
	t.Parallel()
	addr, b := newTestServer(t, nil)
	b.mu.Lock()
	b.messages[testUser] = append(b.messages[testUser], memMessage{uid: "has space", raw: []byte("x\r\n")})
	b.mu.Unlock()
	c := dialClient(t, addr)
	var re *ResponseError
	if err := c.Login(testCtx(t), testUser, testPass); !errors.As(err, &re) || re.Code != CodeSysTemp {
		t.Fatalf("login with invalid UID in snapshot: %v", err)
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestServerLogsNoPasswords(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	addr, _ := newTestServer(t, func(s *Server) {
		s.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	ctx := testCtx(t)
	for _, pass := range []string{"wrong secret", testPass} {
		c := dialClient(t, addr)
		c.Login(ctx, testUser, pass)
		c.Quit(ctx)
		c = dialClient(t, addr)
		c.AuthPlain(ctx, testUser, pass)
		c.Quit(ctx)
	}
	rawSession(t, addr, "AUTH PLAIN\r\n"+b64("\x00"+testUser+"\x00wrong secret")+"\r\nQUIT\r\n")
	out := logs.String()
	if !strings.Contains(out, testUser) {
		t.Errorf("logins not logged:\n%s", out)
	}
	for _, secret := range []string{"wrong secret", testPass, "secret", b64("\x00" + testUser + "\x00wrong secret")} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains %q:\n%s", secret, out)
		}
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
