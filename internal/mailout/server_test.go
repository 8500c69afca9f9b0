package mailout

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// received is one message the in-process test server accepted.
type received struct {
	helo string
	tls  bool
	user string
	from string
	to   []string
	data []byte
}

// testServer is an in-process go-smtp server on loopback whose answers the
// test chooses.
type testServer struct {
	host string
	port int

	mu       sync.Mutex
	msgs     []received
	sessions int

	users       map[string]string // user → password; nil disables AUTH
	mailErr     error
	rcptErr     map[string]error
	dataErr     error
	dropOnData  bool // close the connection after reading the body, before replying
	requireAuth bool
}

type serverMode int

const (
	modePlain serverMode = iota
	modeStartTLS
	modeImplicitTLS
)

func startTestServer(t *testing.T, mode serverMode, tlsConfig *tls.Config, configure func(*testServer)) *testServer {
	t.Helper()
	ts := &testServer{rcptErr: map[string]error{}}
	if configure != nil {
		configure(ts)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		ts.mu.Lock()
		ts.sessions++
		ts.mu.Unlock()
		return &testSession{ts: ts, conn: c}, nil
	}))
	srv.Domain = "mx.test"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.AllowInsecureAuth = true
	srv.EnableSMTPUTF8 = true
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	var l net.Listener
	var err error
	switch mode {
	case modePlain:
		l, err = net.Listen("tcp", "127.0.0.1:0")
	case modeStartTLS:
		srv.TLSConfig = tlsConfig
		l, err = net.Listen("tcp", "127.0.0.1:0")
	case modeImplicitTLS:
		l, err = tls.Listen("tcp", "127.0.0.1:0", tlsConfig)
	}
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	host, port, _ := net.SplitHostPort(l.Addr().String())
	ts.host = host
	ts.port, _ = strconv.Atoi(port)
	return ts
}

func (ts *testServer) messages() []received {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]received(nil), ts.msgs...)
}

func (ts *testServer) route(sec Security) Route {
	return Route{Host: ts.host, Port: ts.port, Security: sec, HeloName: "client.test"}
}

type testSession struct {
	ts   *testServer
	conn *smtp.Conn
	user string
	cur  received
}

func (s *testSession) AuthMechanisms() []string {
	if s.ts.users == nil {
		return nil
	}
	return []string{sasl.Plain, sasl.Login, "XOAUTH2"}
}

func (s *testSession) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		if want, ok := s.ts.users[user]; !ok || want != pass {
			return smtp.ErrAuthFailed
		}
		s.user = user
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	case "XOAUTH2":
		return &xoauth2Server{check: check}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (s *testSession) Mail(from string, opts *smtp.MailOptions) error {
	if s.ts.requireAuth && s.user == "" {
		return smtp.ErrAuthRequired
	}
	if s.ts.mailErr != nil {
		return s.ts.mailErr
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.cur = received{helo: s.conn.Hostname(), tls: isTLS, user: s.user, from: from}
	return nil
}

func (s *testSession) Rcpt(to string, opts *smtp.RcptOptions) error {
	if err := s.ts.rcptErr[to]; err != nil {
		return err
	}
	s.cur.to = append(s.cur.to, to)
	return nil
}

func (s *testSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.data = data
	s.ts.mu.Lock()
	s.ts.msgs = append(s.ts.msgs, s.cur)
	s.ts.mu.Unlock()
	if s.ts.dropOnData {
		s.conn.Conn().Close()
		return errors.New("dropped")
	}
	return s.ts.dataErr
}

func (s *testSession) Reset()        { s.cur = received{} }
func (s *testSession) Logout() error { return nil }

// loginServer is the server side of LOGIN, prompting without an initial
// response as most servers do.
type loginServer struct {
	check    func(user, pass string) error
	step     int
	username string
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	l.step++
	switch l.step {
	case 1:
		if resp != nil {
			l.username = string(resp)
			l.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 2:
		l.username = string(resp)
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.username, string(resp))
	}
}

// xoauth2Server accepts "user=U\x01auth=Bearer T\x01\x01" where T is the
// user's password in the test's user table.
type xoauth2Server struct {
	check func(user, pass string) error
}

func (x *xoauth2Server) Next(resp []byte) ([]byte, bool, error) {
	fields := strings.Split(string(resp), "\x01")
	if len(fields) != 4 || !strings.HasPrefix(fields[0], "user=") || !strings.HasPrefix(fields[1], "auth=Bearer ") {
		return nil, true, errors.New("malformed XOAUTH2 response")
	}
	return nil, true, x.check(strings.TrimPrefix(fields[0], "user="), strings.TrimPrefix(fields[1], "auth=Bearer "))
}

// loopbackDial sends every host name to 127.0.0.1, standing in for DNS.
func loopbackDial(ctx context.Context, network, addr string) (net.Conn, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
}

func testMessage(size int) []byte {
	var b bytes.Buffer
	b.WriteString("From: a@example.org\r\nTo: b@example.net\r\nSubject: test\r\nMessage-ID: <1@example.org>\r\n\r\n")
	line := strings.Repeat("x", 76) + "\r\n"
	for b.Len() < size {
		b.WriteString(line)
	}
	return b.Bytes()
}
