package web_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// fingerprint counts the rows of every table a form can change, plus the audit log, which
// every change writes to.
func (e *env) fingerprint(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, table := range []string{"tenants", "users", "user_groups", "group_members", "mailboxes", "mailbox_grants", "templates",
		"signatures", "user_pictures", "sessions", "audit_log", "messages", "outbound_queue", "domain_checks", "connection_tests", "tenant_domains",
		"hosted_credentials"} {
		var n int
		if err := e.srv.DB.SQL().QueryRowContext(e.ctx, "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s=%d ", table, n)
	}
	var grantsOpen, active int
	_ = e.srv.DB.SQL().QueryRowContext(e.ctx, "SELECT COUNT(*) FROM mailbox_grants WHERE valid_until IS NULL").Scan(&grantsOpen)
	_ = e.srv.DB.SQL().QueryRowContext(e.ctx, "SELECT COUNT(*) FROM mailboxes WHERE flag_global = TRUE OR active = FALSE").Scan(&active)
	fmt.Fprintf(&b, "open_grants=%d global_or_inactive=%d", grantsOpen, active)
	return b.String()
}

// TestEveryFormRefusesCrossOriginPost sends each registered POST route a request that a
// foreign site's page would make (Origin and Sec-Fetch-Site say so), with a valid session
// cookie and a plausible body: every one must answer 403 and change nothing.
func TestEveryFormRefusesCrossOriginPost(t *testing.T) {
	e := newEnv(t)
	f := e.fixture(t)
	ui := routes()
	admin := e.login("demo", "admin")
	op := e.login("", "operator")
	before := e.fingerprint(t)

	form := url.Values{"name": {"Evil"}, "slug": {"evil"}, "mailbox_quota": {"99"}, "address": {"evil@evil.example"}, "sender": {"1"},
		"global": {"1"}, "grant_user": {"1"}, "login": {"evil"}, "display_name": {"Evil"}, "role": {"admin"}, "password": {"evilevilevil"},
		"tenant": {"demo"}, "lang": {"en"}, "body_html": {"<p>evil</p>"}, "to": {"x@evil.example"}, "member": {"1"}, "active": {"1"}}
	posts := ui.PostRoutes()
	if len(posts) < 20 {
		t.Fatalf("only %d POST routes registered", len(posts))
	}
	for _, pattern := range posts {
		path := f.expand(t, pattern)
		c := admin
		if strings.HasPrefix(pattern, "/betreiber/") {
			c = op
		}
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "http://evil.example")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		res := c.do(req)
		if res.status != http.StatusForbidden {
			t.Errorf("cross-origin POST %s: status %d, want 403", path, res.status)
		}
	}
	if after := e.fingerprint(t); after != before {
		t.Errorf("cross-origin POSTs changed data:\nbefore %s\nafter  %s", before, after)
	}
	// The same request from our own origin is accepted: the refusal is about the origin.
	req := httptest.NewRequest(http.MethodPost, "/admin/gruppen", strings.NewReader(url.Values{"name": {"Gleicher Ursprung"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://example.com")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if res := admin.do(req); res.status != http.StatusSeeOther {
		t.Errorf("same-origin POST: status %d, want 303", res.status)
	}
}
