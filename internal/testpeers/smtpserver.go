package testpeers

import (
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

// SMTPSecurity is how an SMTPServer offers TLS.
type SMTPSecurity int

const (
	// SMTPPlain offers no TLS, even when a TLS configuration is given.
	SMTPPlain SMTPSecurity = iota
	// SMTPStartTLS offers STARTTLS on the plain connection.
	SMTPStartTLS
	// SMTPImplicitTLS speaks TLS from the first byte, as on port 465.
	SMTPImplicitTLS
)

// ErrSMTPDrop, returned by SMTPConfig.OnData, closes the connection after the
// body arrived without any answer: the server may have the message while the
// client cannot know (RFC 5321 §6.1).
var ErrSMTPDrop = errors.New("testpeers: drop the connection after the data")

// SMTPConfig scripts an SMTPServer. Smtp-sink can only answer whole commands
// with fixed codes; these hooks let a test fail one recipient, the n-th
// message or a chosen sender.
type SMTPConfig struct {
	Security SMTPSecurity
	// TLS is the server side for SMTPStartTLS and SMTPImplicitTLS, usually
	// CA.ServerTLS.
	TLS *tls.Config
	// SMTPUTF8 announces the SMTPUTF8 extension (RFC 6531).
	SMTPUTF8 bool

	// Users (user → password) offers AUTH PLAIN and LOGIN; nil offers neither.
	Users map[string]string
	// Tokens (user → access token) offers AUTH XOAUTH2 as Google and
	// Microsoft run it; nil does not offer it.
	Tokens map[string]string
	// RequireAuth refuses MAIL before a successful AUTH.
	RequireAuth bool

	// OnMail answers MAIL FROM; nil or a nil error accepts.
	OnMail func(from string) error
	// OnRcpt answers RCPT TO; nil or a nil error accepts the recipient.
	OnRcpt func(rcpt string) error
	// OnData answers the n-th message body of the server's life (1-based);
	// nil or a nil error accepts, ErrSMTPDrop drops the connection.
	OnData func(n int, m SMTPMessage) error
}

// SMTPMessage is one message body an SMTPServer read, whatever it answered.
type SMTPMessage struct {
	Helo string // the client's EHLO/HELO name
	TLS  bool
	User string // "" without AUTH
	Mech string // the SASL mechanism of the AUTH, such as "PLAIN" or "XOAUTH2"
	From string
	To   []string
	Data []byte
	// Answer is what the server said after the body: nil for 250,
	// ErrSMTPDrop for no answer at all, else the error from OnData.
	Answer error
}

// Delivered reports whether the client may rightly take the message as
// delivered: accepted, or dropped before the answer.
func (m SMTPMessage) Delivered() bool {
	return m.Answer == nil || errors.Is(m.Answer, ErrSMTPDrop)
}

// SMTPServer is a go-smtp server inside the test binary on a loopback port,
// for failures a test scripts per command (see SMTPConfig). Outbound tests
// that need no script use smtp-sink, the independent implementation.
type SMTPServer struct {
	Addr string // "127.0.0.1:N"
	Host string
	Port int

	cfg      SMTPConfig
	mu       sync.Mutex
	msgs     []SMTPMessage
	sessions int
	bodies   int
}

// StartSMTPServer listens on a random loopback port and serves until cleanup.
func StartSMTPServer(t testing.TB, cfg SMTPConfig) *SMTPServer {
	t.Helper()
	s := &SMTPServer{cfg: cfg}
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = "mx.test"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.AllowInsecureAuth = true // the plain mode tests AUTH too
	srv.EnableSMTPUTF8 = cfg.SMTPUTF8
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	var l net.Listener
	var err error
	switch cfg.Security {
	case SMTPImplicitTLS:
		l, err = tls.Listen("tcp", "127.0.0.1:0", cfg.TLS)
	case SMTPStartTLS:
		srv.TLSConfig = cfg.TLS
		l, err = net.Listen("tcp", "127.0.0.1:0")
	default:
		l, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatalf("testpeers: SMTP server: %v", err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	s.Addr = l.Addr().String()
	host, port, _ := net.SplitHostPort(s.Addr)
	s.Host = host
	s.Port, _ = strconv.Atoi(port)
	return s
}

// Messages returns every body the server read, in order, refused ones
// included (see SMTPMessage.Answer).
func (s *SMTPServer) Messages() []SMTPMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SMTPMessage(nil), s.msgs...)
}

// Sessions is the number of SMTP sessions the server began. A session begins
// with the first EHLO of a connection; after STARTTLS the client starts over
// (RFC 3207 §4.2), so a TLS upgrade begins a second one.
func (s *SMTPServer) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions
}

func (s *SMTPServer) newSession(c *smtp.Conn) (smtp.Session, error) {
	s.mu.Lock()
	s.sessions++
	s.mu.Unlock()
	return &smtpSession{srv: s, conn: c}, nil
}

// countBody numbers the bodies for OnData, across all sessions.
func (s *SMTPServer) countBody() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bodies++
	return s.bodies
}

// record keeps a body with its answer for Messages.
func (s *SMTPServer) record(m SMTPMessage) {
	s.mu.Lock()
	s.msgs = append(s.msgs, m)
	s.mu.Unlock()
}

type smtpSession struct {
	srv  *SMTPServer
	conn *smtp.Conn
	user string
	mech string
	cur  SMTPMessage
}

func (s *smtpSession) AuthMechanisms() []string {
	var mechs []string
	if s.srv.cfg.Users != nil {
		mechs = append(mechs, sasl.Plain, sasl.Login)
	}
	if s.srv.cfg.Tokens != nil {
		mechs = append(mechs, "XOAUTH2")
	}
	return mechs
}

func (s *smtpSession) Auth(mech string) (sasl.Server, error) {
	// login checks one table and remembers who logged in with which mechanism.
	login := func(table map[string]string) func(user, secret string) error {
		return func(user, secret string) error {
			if want, ok := table[user]; !ok || want != secret {
				return smtp.ErrAuthFailed
			}
			s.user, s.mech = user, mech
			return nil
		}
	}
	cfg := s.srv.cfg
	switch {
	case mech == sasl.Plain && cfg.Users != nil:
		check := login(cfg.Users)
		return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
	case mech == sasl.Login && cfg.Users != nil:
		return &loginServer{check: login(cfg.Users)}, nil
	case mech == "XOAUTH2" && cfg.Tokens != nil:
		return &xoauth2Server{check: login(cfg.Tokens)}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.srv.cfg.RequireAuth && s.user == "" {
		return smtp.ErrAuthRequired
	}
	if s.srv.cfg.OnMail != nil {
		if err := s.srv.cfg.OnMail(from); err != nil {
			return err
		}
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.cur = SMTPMessage{Helo: s.conn.Hostname(), TLS: isTLS, User: s.user, Mech: s.mech, From: from}
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.srv.cfg.OnRcpt != nil {
		if err := s.srv.cfg.OnRcpt(to); err != nil {
			return err
		}
	}
	s.cur.To = append(s.cur.To, to)
	return nil
}

func (s *smtpSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.Data = data
	n := s.srv.countBody()
	if s.srv.cfg.OnData != nil {
		s.cur.Answer = s.srv.cfg.OnData(n, s.cur)
	}
	// Recorded before the answer, so a client that sees the answer (or the
	// drop) finds the message in Messages.
	s.srv.record(s.cur)
	if errors.Is(s.cur.Answer, ErrSMTPDrop) {
		s.conn.Conn().Close()
	}
	return s.cur.Answer
}

func (s *smtpSession) Reset()        { s.cur = SMTPMessage{} }
func (s *smtpSession) Logout() error { return nil }

// loginServer is the server side of LOGIN, which go-sasl lacks. It prompts
// for the user name unless the client sent it as initial response.
type loginServer struct {
	check func(user, pass string) error
	step  int
	user  string
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	l.step++
	switch l.step {
	case 1:
		if len(resp) > 0 {
			l.user = string(resp)
			l.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 2:
		l.user = string(resp)
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.user, string(resp))
	}
}

// xoauth2Server is the server side of XOAUTH2 as Google and Microsoft run it:
// the initial response "user=U^Aauth=Bearer T^A^A"; a refused token gets a
// JSON challenge first, and the final 535 follows the client's empty answer
// to it.
type xoauth2Server struct {
	check   func(user, token string) error
	refused error
}

func (x *xoauth2Server) Next(resp []byte) ([]byte, bool, error) {
	if x.refused != nil {
		return nil, true, x.refused
	}
	if resp == nil {
		return []byte{}, false, nil // no initial response: ask for it
	}
	user, rest, ok1 := strings.Cut(string(resp), "\x01")
	bearer, end, ok2 := strings.Cut(rest, "\x01")
	if !ok1 || !ok2 || end != "\x01" || !strings.HasPrefix(user, "user=") || !strings.HasPrefix(bearer, "auth=Bearer ") {
		return nil, true, errors.New("malformed XOAUTH2 response")
	}
	if err := x.check(strings.TrimPrefix(user, "user="), strings.TrimPrefix(bearer, "auth=Bearer ")); err != nil {
		x.refused = err
		return []byte(`{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}`), false, nil
	}
	return nil, true, nil
}
