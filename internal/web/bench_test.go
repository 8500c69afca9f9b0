package web_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"testing"
	"time"

	"postfach/internal/core"
	"postfach/internal/store"
)

// bigTenant gives the demo tenant 1,000 more additional mailboxes: 500 unrestricted with
// Absender (so every user gets 500+ sender options) and 500 with Antwort only.
func bigTenant(b *testing.B) *env {
	e := newEnv(b)
	quota := 2000
	op := core.Actor{Kind: core.ActorSystem, Name: "bench"}
	if _, err := e.srv.Core.UpdateTenant(e.ctx, op, e.tenant.ID, core.TenantInput{MailboxQuota: &quota}); err != nil {
		b.Fatal(err)
	}
	err := e.srv.DB.InTx(e.ctx, func(tx *store.Tx) error {
		for i := range 1000 {
			m := store.Mailbox{Kind: store.KindAdditional, Address: fmt.Sprintf("postfach%04d@celanio.example", i),
				DisplayName: fmt.Sprintf("Postfach %04d", i), Sender: i%2 == 0, Reply: true, Active: true}
			if _, err := tx.CreateMailbox(e.ctx, e.tenant.ID, m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// measure runs b.N requests through the whole handler (auth middleware with the session
// lookup, the page handler with its core calls on SQLite, template rendering) and reports
// the median and the 99th percentile.
func measure(b *testing.B, c *client, path string) {
	b.Helper()
	durations := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		start := time.Now()
		res := c.do(req)
		durations = append(durations, time.Since(start))
		if res.status != http.StatusOK {
			b.Fatalf("%s: status %d", path, res.status)
		}
	}
	b.StopTimer()
	sort.Slice(durations, func(i, j int) bool { return durations[i] < durations[j] })
	pct := func(p float64) float64 {
		return float64(durations[int(float64(len(durations)-1)*p)].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// BenchmarkMailboxListPage renders Zusätzliche Postfächer with 1,002 mailboxes; the JSON
// API's list of the same data is the reference the page is compared with.
func BenchmarkMailboxListPage(b *testing.B) {
	e := bigTenant(b)
	admin := e.login("demo", "admin")
	b.Run("page", func(b *testing.B) { measure(b, admin, "/admin/postfaecher") })
	b.Run("json-api", func(b *testing.B) { measure(b, admin, "/api/v1/mailboxes") })
}

// BenchmarkComposePage renders the Kommunikationsmanager for a user with 502 sender options
// (500 mailboxes, the system mailbox and the own address), against the JSON API's
// sender-options answer for the same user.
func BenchmarkComposePage(b *testing.B) {
	e := bigTenant(b)
	user := e.login("demo", "pschneller")
	opts, err := e.srv.Core.SenderOptions(e.ctx, core.Actor{Kind: core.ActorUser, TenantID: e.tenant.ID, UserID: e.user("pschneller").ID}, e.user("pschneller").ID)
	if err != nil || len(opts.Senders) < 500 {
		b.Fatalf("sender options: %d %v", len(opts.Senders), err)
	}
	b.Run("page", func(b *testing.B) { measure(b, user, "/kommunikation") })
	b.Run("json-api", func(b *testing.B) { measure(b, user, "/api/v1/me/sender-options") })
}
