package web_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"postfach/internal/config"
	"postfach/internal/core"
	"postfach/internal/demo"
	"postfach/internal/mailstore"
	"postfach/internal/server"
	"postfach/internal/store"
	"postfach/internal/store/storetest"
)

const demoPassword = "demodemo123"

// env is a postfach process with the demo tenant, served in-process.
type env struct {
	t      testing.TB
	ctx    context.Context
	srv    *server.Server
	tenant store.Tenant
	admin  core.Actor // the tenant's admin, for preparing data through core
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	// POSTFACH_TEST_POSTGRES runs the UI on a private PostgreSQL schema.
	if dbURL, _ := storetest.URL(t); dbURL != "" {
		cfg.DatabaseURL = dbURL
	}
	cfg.HTTPAddr = "127.0.0.1:0"
	srv, err := server.Open(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	if _, err := demo.Seed(ctx, srv.Core, demoPassword); err != nil {
		t.Fatal(err)
	}
	tn, err := srv.DB.Read().TenantBySlug(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	adminUser, err := srv.DB.Read().UserByLogin(ctx, tn.ID, "admin")
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, ctx: ctx, srv: srv, tenant: tn,
		admin: core.Actor{Kind: core.ActorAdmin, TenantID: tn.ID, UserID: adminUser.ID, Name: "admin"}}
}

func (e *env) user(login string) store.User {
	e.t.Helper()
	u, err := e.srv.DB.Read().UserByLogin(e.ctx, e.tenant.ID, login)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

func (e *env) mailboxByAddress(addr string) store.Mailbox {
	e.t.Helper()
	list, err := e.srv.DB.Read().MailboxesByAddress(e.ctx, e.tenant.ID, addr)
	if err != nil || len(list) == 0 {
		e.t.Fatalf("mailbox %s: %v", addr, err)
	}
	return list[0]
}

// account creates a mail account through core.
func (e *env) account(t testing.TB, address, name string) core.Account {
	t.Helper()
	a, err := e.srv.Core.CreateAccount(e.ctx, e.admin, core.AccountInput{Address: &address, SenderName: &name})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// txtRecords answers domain verification lookups from a map.
type txtRecords map[string][]string

func (m txtRecords) LookupTXT(_ context.Context, name string) ([]string, error) {
	if v, ok := m[name]; ok {
		return v, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

// verifiedDomain adds a domain to the demo tenant and verifies it against txtRecords.
func (e *env) verifiedDomain(t testing.TB, domain string) core.DomainView {
	t.Helper()
	d, err := e.srv.Core.AddTenantDomain(e.ctx, e.admin, domain)
	if err != nil {
		t.Fatal(err)
	}
	e.srv.Core.Hosting.Resolver = txtRecords{domain: {core.VerifyPrefix + d.VerifyToken}}
	if d, err = e.srv.Core.VerifyTenantDomain(e.ctx, e.admin, d.ID); err != nil || !d.Verified {
		t.Fatalf("verify %s: %v %v", domain, d, err)
	}
	return d
}

// client talks to the handler directly, carrying its cookies like a browser would.
type client struct {
	e       *env
	cookies map[string]string
	header  http.Header
}

func (e *env) client() *client {
	return &client{e: e, cookies: map[string]string{}, header: http.Header{}}
}

// login signs in; an empty tenant is the operator.
func (e *env) login(tenant, login string) *client {
	e.t.Helper()
	c := e.client()
	res := c.post("/login", url.Values{"tenant": {tenant}, "login": {login}, "password": {demoPassword}})
	if res.status != http.StatusSeeOther || c.cookies["postfach_session"] == "" {
		e.t.Fatalf("login %s/%s: status %d\n%s", tenant, login, res.status, res.body)
	}
	return c
}

type response struct {
	status   int
	body     string
	location string
	header   http.Header
}

func (c *client) do(req *http.Request) response {
	for k, v := range c.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	c.e.srv.Handler.ServeHTTP(rec, req)
	res := rec.Result()
	for _, ck := range res.Cookies() {
		if ck.MaxAge < 0 || ck.Value == "" {
			delete(c.cookies, ck.Name)
		} else {
			c.cookies[ck.Name] = ck.Value
		}
	}
	b, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, body: string(b), location: res.Header.Get("Location"), header: res.Header}
}

func (c *client) get(path string) response {
	return c.do(httptest.NewRequest(http.MethodGet, path, nil))
}

func (c *client) post(path string, form url.Values) response {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

// follow posts and then loads the page the answer redirects to.
func (c *client) postFollow(path string, form url.Values) response {
	c.e.t.Helper()
	res := c.post(path, form)
	if res.status != http.StatusSeeOther {
		return res
	}
	return c.get(res.location)
}

// tinyPNG is a valid 2×2 picture for uploads.
func tinyPNG(t testing.TB) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 2, 2))
	img.Set(0, 0, color.RGBA{R: 200, A: 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// deliver stores raw as received by the account's mailbox and returns the message id, or
// the quarantine id when the header cannot be read.
func (e *env) deliver(t testing.TB, accountID int64, raw string) (messageID, quarantineID int64) {
	t.Helper()
	mb, err := e.srv.DB.Read().Mailbox(e.ctx, e.tenant.ID, accountID)
	if err != nil {
		t.Fatal(err)
	}
	var st mailstore.Stored
	err = e.srv.DB.InTx(e.ctx, func(tx *store.Tx) error {
		st, err = mailstore.Deliver(e.ctx, tx, mailstore.Delivery{Source: "smtp", EnvelopeFrom: "kunde@example.com",
			Recipients: []string{mb.Address}, Mailboxes: []store.Mailbox{mb}, Raw: []byte(raw), Hostname: "postfach.test", NoAutoReply: true})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Messages) > 0 {
		return st.Messages[0].ID, 0
	}
	if len(st.Quarantined) > 0 {
		return 0, st.Quarantined[0]
	}
	t.Fatal("delivery stored nothing")
	return 0, 0
}
