package mailout

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"

	"postfach/internal/testpeers"
)

// received is one message body the in-process test server read, whatever it answered.
type received struct {
	helo string
	tls  bool
	user string
	from string
	to   []string
	data []byte
}

// testServer is the shared in-process go-smtp server (testpeers.SMTPServer) on loopback,
// scripted the way these tests fail a delivery: a fixed answer per command.
type testServer struct {
	*testpeers.SMTPServer

	users       map[string]string // user → password, also the XOAUTH2 token; nil disables AUTH
	mailErr     error
	rcptErr     map[string]error
	dataErr     error
	dropOnData  bool // close the connection after reading the body, before replying
	requireAuth bool
}

type serverMode = testpeers.SMTPSecurity

const (
	modePlain       = testpeers.SMTPPlain
	modeStartTLS    = testpeers.SMTPStartTLS
	modeImplicitTLS = testpeers.SMTPImplicitTLS
)

func startTestServer(t *testing.T, mode serverMode, tlsConfig *tls.Config, configure func(*testServer)) *testServer {
	t.Helper()
	ts := &testServer{rcptErr: map[string]error{}}
	if configure != nil {
		configure(ts)
	}
	ts.SMTPServer = testpeers.StartSMTPServer(t, testpeers.SMTPConfig{
		Security:    mode,
		TLS:         tlsConfig,
		SMTPUTF8:    true,
		Users:       ts.users,
		Tokens:      ts.users,
		RequireAuth: ts.requireAuth,
		OnMail:      func(string) error { return ts.mailErr },
		OnRcpt:      func(rcpt string) error { return ts.rcptErr[rcpt] },
		OnData: func(int, testpeers.SMTPMessage) error {
			if ts.dropOnData {
				return testpeers.ErrSMTPDrop
			}
			return ts.dataErr
		},
	})
	return ts
}

// messages are all bodies the server read, refused ones included.
func (ts *testServer) messages() []received {
	var out []received
	for _, m := range ts.Messages() {
		out = append(out, received{helo: m.Helo, tls: m.TLS, user: m.User, from: m.From, to: m.To, data: m.Data})
	}
	return out
}

func (ts *testServer) route(sec Security) Route {
	return Route{Host: ts.Host, Port: ts.Port, Security: sec, HeloName: "client.test"}
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
