package outqueue_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"postfach/internal/core"
	"postfach/internal/i18n"
	"postfach/internal/mailout"
	"postfach/internal/outqueue"
	"postfach/internal/secrets"
	"postfach/internal/store"
	"postfach/internal/store/storetest"
)

// clock is the injected time of a test: the store, the core and the queue all read it, so
// a test moves days ahead in one call.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixture is a tenant with a user who may send from the system mailbox.
type fixture struct {
	db     *store.DB
	svc    *core.Service
	clock  *clock
	admin  core.Actor
	user   core.Actor
	tenant int64
}

const inboundDomain = "in.postfach.test"

func newFixture(t testing.TB) *fixture {
	t.Helper()
	db := storetest.Open(t)
	clk := &clock{t: time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC)}
	db.SetClock(clk.Now)
	box, err := secrets.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	svc := core.New(db, box, i18n.MustLoad(), nil)
	svc.InboundDomain = inboundDomain
	svc.Now = clk.Now
	ctx := context.Background()
	op := core.Actor{Kind: core.ActorSystem, Name: "test"}
	name, slug, sys := "Firma", "firma", "info@firma.example"
	tn, err := svc.CreateTenant(ctx, op, core.TenantInput{Name: &name, Slug: &slug, SystemAddress: &sys})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := core.AsOperatorIn(op, tn.ID)
	if err != nil {
		t.Fatal(err)
	}
	login, display, email := "anna", "Anna Muster", "anna@firma.example"
	u, err := svc.CreateUser(ctx, admin, core.UserInput{Login: &login, DisplayName: &display, Email: &email})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{db: db, svc: svc, clock: clk, admin: admin, tenant: tn.ID,
		user: core.Actor{Kind: core.ActorUser, TenantID: tn.ID, UserID: u.ID, Name: login, Lang: "en"}}
}

// queue builds a queue that relays everything through route.
func (f *fixture) queue(route mailout.Route, mut ...func(*outqueue.Config)) *outqueue.Queue {
	s := mailout.DefaultSchedule()
	s.Jitter = 0
	cfg := outqueue.Config{Smarthost: &route, Hostname: "out.postfach.test", Schedule: &s,
		System: &mailout.Deliverer{HeloName: "out.postfach.test", Timeouts: mailout.Timeouts{Connect: 5 * time.Second, Command: 10 * time.Second, Data: 10 * time.Second}},
		Log:    discardLog()}
	for _, m := range mut {
		m(&cfg)
	}
	return outqueue.New(f.db, f.svc, cfg)
}

func (f *fixture) send(t testing.TB, in core.SendInput) core.SendResult {
	t.Helper()
	if in.Sender == "" {
		in.Sender = "system"
	}
	if in.Subject == "" {
		in.Subject = "Angebot"
	}
	if in.Text == "" && in.HTML == "" {
		in.Text = "Guten Tag,\r\nanbei das Angebot."
	}
	res, err := f.svc.Send(context.Background(), f.user, in)
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	return res
}

func (f *fixture) delivery(t testing.TB, id int64) core.Delivery {
	t.Helper()
	d, err := f.svc.MessageDelivery(context.Background(), f.admin, id)
	if err != nil {
		t.Fatalf("delivery %d: %v", id, err)
	}
	return d
}

func to(addrs ...string) []core.SendAddress {
	out := make([]core.SendAddress, len(addrs))
	for i, a := range addrs {
		out[i] = core.SendAddress{Address: a}
	}
	return out
}

// received is one message the in-process server took.
type received struct {
	tls  bool
	user string
	mech string // the SASL mechanism the client logged in with
	from string
	to   []string
	data []byte
}

// smtpServer is an in-process go-smtp server whose answer to each DATA the test decides.
type smtpServer struct {
	host string
	port int

	mu    sync.Mutex
	msgs  []received
	datas int
	users map[string]string
	// tokens are the access tokens (user → token) XOAUTH2 accepts; non-nil offers XOAUTH2.
	tokens map[string]string
	// onData answers the n-th DATA (1-based); nil accepts. errDrop closes the connection
	// after the body without an answer.
	onData func(n int, r received) error
	onRcpt func(rcpt string) error
}

var errDrop = errors.New("drop the connection")

type serverMode int

const (
	plain serverMode = iota
	startTLS
	implicitTLS
)

func startServer(t testing.TB, mode serverMode, tlsConfig *tls.Config, configure func(*smtpServer)) *smtpServer {
	t.Helper()
	ts := &smtpServer{}
	if configure != nil {
		configure(ts)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{ts: ts, conn: c}, nil
	}))
	srv.Domain = "mx.test"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.AllowInsecureAuth = true
	srv.ReadTimeout, srv.WriteTimeout = 20*time.Second, 20*time.Second
	var l net.Listener
	var err error
	switch mode {
	case implicitTLS:
		l, err = tls.Listen("tcp", "127.0.0.1:0", tlsConfig)
	default:
		if mode == startTLS {
			srv.TLSConfig = tlsConfig
		}
		l, err = net.Listen("tcp", "127.0.0.1:0")
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

func (ts *smtpServer) route(sec mailout.Security) mailout.Route {
	return mailout.Route{Host: ts.host, Port: ts.port, Security: sec}
}

func (ts *smtpServer) messages() []received {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]received(nil), ts.msgs...)
}

type session struct {
	ts   *smtpServer
	conn *smtp.Conn
	user string
	mech string
	cur  received
}

func (s *session) AuthMechanisms() []string {
	var mechs []string
	if s.ts.users != nil {
		mechs = append(mechs, sasl.Plain, sasl.Login)
	}
	if s.ts.tokens != nil {
		mechs = append(mechs, "XOAUTH2")
	}
	return mechs
}

func (ts *smtpServer) requiresAuth() bool { return ts.users != nil || ts.tokens != nil }

func (s *session) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		if want, ok := s.ts.users[user]; !ok || want != pass {
			return smtp.ErrAuthFailed
		}
		s.user, s.mech = user, mech
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	case "XOAUTH2":
		if s.ts.tokens != nil {
			return &xoauth2Server{check: func(user, token string) error {
				if want, ok := s.ts.tokens[user]; !ok || want != token {
					return smtp.ErrAuthFailed
				}
				s.user, s.mech = user, mech
				return nil
			}}, nil
		}
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.ts.requiresAuth() && s.user == "" {
		return smtp.ErrAuthRequired
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.cur = received{tls: isTLS, user: s.user, mech: s.mech, from: from}
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.ts.onRcpt != nil {
		if err := s.ts.onRcpt(to); err != nil {
			return err
		}
	}
	s.cur.to = append(s.cur.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.data = b
	s.ts.mu.Lock()
	s.ts.datas++
	n := s.ts.datas
	s.ts.mu.Unlock()
	if s.ts.onData != nil {
		if err := s.ts.onData(n, s.cur); err != nil {
			if errors.Is(err, errDrop) {
				// The body arrived; the answer never does (RFC 5321 §6.1 duplicate case).
				s.ts.mu.Lock()
				s.ts.msgs = append(s.ts.msgs, s.cur)
				s.ts.mu.Unlock()
				s.conn.Conn().Close()
			}
			return err
		}
	}
	s.ts.mu.Lock()
	s.ts.msgs = append(s.ts.msgs, s.cur)
	s.ts.mu.Unlock()
	return nil
}

func (s *session) Reset()        { s.cur = received{} }
func (s *session) Logout() error { return nil }

// loginServer is the server side of the LOGIN mechanism, which go-sasl lacks.
type loginServer struct {
	check      func(user, pass string) error
	user       string
	step       int
	authorized bool
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	l.step++
	switch l.step {
	case 1:
		if len(response) > 0 {
			l.user = string(response)
			l.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 2:
		l.user = string(response)
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.user, string(response))
	}
}

// xoauth2Server is the server side of XOAUTH2 as Google and Microsoft run it: the initial
// response "user=U^Aauth=Bearer T^A^A"; a refused token gets a JSON challenge first, and the
// final 535 follows the client's empty answer to it.
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

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func header(raw []byte, name string) string {
	i := bytes.Index(raw, []byte("\r\n\r\n"))
	if i < 0 {
		return ""
	}
	for _, line := range bytes.Split(raw[:i], []byte("\r\n")) {
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && string(bytes.ToLower(k)) == name {
			return string(bytes.TrimSpace(v))
		}
	}
	return ""
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func splitAddr(t testing.TB, addr string) (string, int) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(port)
	return host, n
}
