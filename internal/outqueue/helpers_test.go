package outqueue_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"postfach/internal/core"
	"postfach/internal/i18n"
	"postfach/internal/mailout"
	"postfach/internal/outqueue"
	"postfach/internal/secrets"
	"postfach/internal/store"
	"postfach/internal/store/storetest"
	"postfach/internal/testpeers"
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

// smtpServer is the shared in-process go-smtp server (testpeers.SMTPServer) as these tests
// script it: any login table makes AUTH mandatory, and the answer to each DATA is the test's.
type smtpServer struct {
	host string
	port int
	srv  *testpeers.SMTPServer

	users map[string]string
	// tokens are the access tokens (user → token) XOAUTH2 accepts; non-nil offers XOAUTH2.
	tokens map[string]string
	// onData answers the n-th DATA (1-based); nil accepts. errDrop closes the connection
	// after the body without an answer.
	onData func(n int, r received) error
	onRcpt func(rcpt string) error
}

var errDrop = testpeers.ErrSMTPDrop

type serverMode = testpeers.SMTPSecurity

const (
	plain       = testpeers.SMTPPlain
	startTLS    = testpeers.SMTPStartTLS
	implicitTLS = testpeers.SMTPImplicitTLS
)

func startServer(t testing.TB, mode serverMode, tlsConfig *tls.Config, configure func(*smtpServer)) *smtpServer {
	t.Helper()
	ts := &smtpServer{}
	if configure != nil {
		configure(ts)
	}
	ts.srv = testpeers.StartSMTPServer(t, testpeers.SMTPConfig{
		Security:    mode,
		TLS:         tlsConfig,
		Users:       ts.users,
		Tokens:      ts.tokens,
		RequireAuth: ts.users != nil || ts.tokens != nil,
		OnRcpt:      ts.onRcpt,
		OnData: func(n int, m testpeers.SMTPMessage) error {
			if ts.onData == nil {
				return nil
			}
			return ts.onData(n, toReceived(m))
		},
	})
	ts.host, ts.port = ts.srv.Host, ts.srv.Port
	return ts
}

func (ts *smtpServer) route(sec mailout.Security) mailout.Route {
	return mailout.Route{Host: ts.host, Port: ts.port, Security: sec}
}

// messages are the bodies the client may take as delivered: accepted, or dropped before the
// answer. Bodies refused with an error are left out.
func (ts *smtpServer) messages() []received {
	var out []received
	for _, m := range ts.srv.Messages() {
		if m.Delivered() {
			out = append(out, toReceived(m))
		}
	}
	return out
}

func toReceived(m testpeers.SMTPMessage) received {
	return received{tls: m.TLS, user: m.User, mech: m.Mech, from: m.From, to: m.To, data: m.Data}
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
