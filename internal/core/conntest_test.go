package core

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"postfach/internal/conntest"
	"postfach/internal/store"
	"postfach/internal/store/storetest"
)

// TestConnectionTestRefusesLoopback goes through the use case the UI and the API call: a
// connection test to loopback, with stored and with typed settings, is refused at the TCP
// step with a clear message, nothing reaches a canary listener on 127.0.0.1, every test is
// audited, and the eleventh test in a minute is refused by the rate limit.
func TestConnectionTestRefusesLoopback(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.Open(t)
	f := newAccountsFixture(t, db, "ssrf")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port

	acc, err := f.svc.CreateAccount(ctx, f.admin, AccountInput{Address: ptrTo("info@kunde.example"),
		Receive: &ReceiveInput{Type: ptrTo(ReceiveIMAP), Host: ptrTo("localhost"), Port: ptrTo(port), Username: ptrTo("info"), Password: ptrTo("pw-imap-123")},
		Send:    &SMTPInput{Host: ptrTo("127.0.0.1"), Port: ptrTo(port), Auth: ptrTo(true), Username: ptrTo("info"), Password: ptrTo("pw-smtp-123")}})
	if err != nil {
		t.Fatal(err)
	}

	hosts := []string{"127.0.0.1", "::1", "0.0.0.0", "::ffff:127.0.0.1", "10.0.0.1", "169.254.169.254"}
	for _, host := range hosts {
		r, err := f.svc.TestConnection(ctx, f.admin, ConnTestInput{Protocol: "pop3", Host: ptrTo(host), Port: ptrTo(port), Username: ptrTo("u"), Password: ptrTo("p")})
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		if r.OK || r.FailedStep != "tcp" || r.MessageKey != conntest.KeyTCPForbidden {
			t.Errorf("%s: %+v", host, r)
		}
		if r.Message == "" || r.Message == r.MessageKey || len(r.Steps) == 0 || r.Steps[len(r.Steps)-1].Name == "" {
			t.Errorf("%s: no clear message: %+v", host, r)
		}
	}
	for _, proto := range []string{"receive", "smtp"} {
		r, err := f.svc.TestAccountConnection(ctx, f.admin, acc.ID, ConnTestInput{Protocol: proto})
		if err != nil {
			t.Fatal(err)
		}
		if r.OK || r.FailedStep != "tcp" || r.MessageKey != conntest.KeyTCPForbidden || r.Port != port {
			t.Errorf("stored %s settings: %+v", proto, r)
		}
	}
	if want := conntest.Text(conntest.KeyTCPForbidden, "de"); want == conntest.KeyTCPForbidden {
		t.Fatalf("no German text for %s", conntest.KeyTCPForbidden)
	}

	// Eight tests so far; two more pass the limit, the eleventh is refused.
	for i := 0; i < 2; i++ {
		if _, err := f.svc.TestConnection(ctx, f.admin, ConnTestInput{Protocol: "imap", Host: ptrTo("127.0.0.1"), Port: ptrTo(port)}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = f.svc.TestConnection(ctx, f.admin, ConnTestInput{Protocol: "imap", Host: ptrTo("127.0.0.1"), Port: ptrTo(port)})
	if ce := AsError(err); err == nil || ce.Status != 429 || !strings.Contains(f.svc.Text.T("de", ce.Key, ce.Params), "Sekunden") {
		t.Errorf("11th test in a minute: %v", err)
	}
	// Another user of the same tenant has their own budget.
	other := Actor{Kind: ActorAdmin, TenantID: f.tenant, UserID: 99, Name: "zweiter"}
	if _, err := f.svc.TestConnection(ctx, other, ConnTestInput{Protocol: "imap", Host: ptrTo("127.0.0.1"), Port: ptrTo(port)}); err != nil {
		t.Errorf("second user limited too: %v", err)
	}

	// Nothing reached the canary: a sentinel connection made now is accepted after any
	// earlier one would have been.
	s, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	deadline := time.Now().Add(5 * time.Second)
	for accepted.Load() < 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := accepted.Load(); n != 1 {
		t.Errorf("canary accepted %d connections; want only the sentinel", n)
	}

	entries, err := f.svc.Audit(ctx, f.admin, store.AuditFilter{Action: "conntest", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 11 {
		t.Errorf("%d conntest audit entries, want 11", len(entries))
	}
	for _, e := range entries {
		if !strings.Contains(e.Detail, ":"+strconv.Itoa(port)) || !strings.Contains(e.Detail, "tcp:"+conntest.KeyTCPForbidden) || strings.Contains(e.Detail, "pw-") {
			t.Errorf("audit detail %q", e.Detail)
		}
	}
}

func TestConnectionTestInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.Open(t)
	f := newAccountsFixture(t, db, "input")
	for name, in := range map[string]ConnTestInput{
		"unknown protocol": {Protocol: "ftp", Host: ptrTo("mail.example.org")},
		"no host":          {Protocol: "imap"},
		"bad security":     {Protocol: "smtp", Host: ptrTo("mail.example.org"), Security: ptrTo("ssl3")},
	} {
		if _, err := f.svc.TestConnection(ctx, f.admin, in); statusOf(err) != 422 {
			t.Errorf("%s: %v", name, err)
		}
	}
	user := f.admin
	user.Kind, user.UserID = ActorUser, 1
	if _, err := f.svc.TestConnection(ctx, user, ConnTestInput{Protocol: "imap", Host: ptrTo("mail.example.org")}); statusOf(err) != 403 {
		t.Errorf("plain user: %v", err)
	}
}
