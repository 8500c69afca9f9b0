package policy_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"postfach/internal/policy"
	"postfach/internal/store"
	"postfach/internal/store/storetest"
)

// Benchmark data set (issue 2's figure): one tenant with 50,000 users, 2,000 groups (every
// user in two), 10,000 mailboxes — 100 unrestricted with the Absender flag, 9,900 restricted
// to one group each, one in ten also granted to a single user — plus 10 global mailboxes of
// another tenant. A user then has about 120 options.
const (
	benchUsers     = 50_000
	benchGroups    = 2_000
	benchMailboxes = 10_000
	benchOpen      = 100
)

func seedLarge(b *testing.B, db *store.DB) (tenantID int64, users []int64) {
	b.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	exec := func(tx *store.Tx, q string, args ...any) {
		if _, err := tx.Exec(ctx, q, args...); err != nil {
			b.Fatal(err)
		}
	}
	// Multi-row INSERTs in batches: both dialects accept VALUES (…), (…).
	batch := func(tx *store.Tx, head string, rows int, cols int, row func(i int) []any) {
		const per = 200
		for start := 0; start < rows; start += per {
			n := min(per, rows-start)
			var sb strings.Builder
			args := make([]any, 0, n*cols)
			sb.WriteString(head)
			for i := 0; i < n; i++ {
				if i > 0 {
					sb.WriteString(",")
				}
				sb.WriteString("(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + ")")
				args = append(args, row(start+i)...)
			}
			exec(tx, sb.String(), args...)
		}
	}
	err := db.InTx(ctx, func(tx *store.Tx) error {
		t, err := tx.CreateTenant(ctx, store.Tenant{Name: "Big", Slug: "big", MailboxQuota: benchMailboxes, AllowOwnAddress: true})
		if err != nil {
			return err
		}
		other, err := tx.CreateTenant(ctx, store.Tenant{Name: "Op", Slug: "op", MailboxQuota: 100})
		if err != nil {
			return err
		}
		tenantID = t.ID
		now := tx.Now()
		exec(tx, `INSERT INTO mailboxes (tenant_id, kind, address, display_name, flag_sender, flag_reply, active, created_at, updated_at) VALUES (?, 'system', 'system@big.example', 'Big', TRUE, TRUE, TRUE, ?, ?)`, t.ID, now, now)
		batch(tx, `INSERT INTO users (tenant_id, login, display_name, email, role, created_at) VALUES `, benchUsers, 6, func(i int) []any {
			return []any{t.ID, fmt.Sprintf("u%d", i), fmt.Sprintf("User %d", i), fmt.Sprintf("u%d@big.example", i), "user", now}
		})
		batch(tx, `INSERT INTO user_groups (tenant_id, name, created_at) VALUES `, benchGroups, 3, func(i int) []any {
			return []any{t.ID, fmt.Sprintf("g%d", i), now}
		})
		var firstUser, firstGroup int64
		_ = tx.QueryRow(ctx, `SELECT MIN(id) FROM users WHERE tenant_id = ?`, t.ID).Scan(&firstUser)
		_ = tx.QueryRow(ctx, `SELECT MIN(id) FROM user_groups WHERE tenant_id = ?`, t.ID).Scan(&firstGroup)
		batch(tx, `INSERT INTO group_members (tenant_id, group_id, user_id) VALUES `, benchUsers*2, 3, func(i int) []any {
			u := i / 2
			g := (u*7 + (i%2)*1013) % benchGroups
			return []any{t.ID, firstGroup + int64(g), firstUser + int64(u)}
		})
		batch(tx, `INSERT INTO mailboxes (tenant_id, kind, address, display_name, flag_sender, flag_reply, restricted, active, created_at, updated_at) VALUES `, benchMailboxes, 10, func(i int) []any {
			return []any{t.ID, "additional", fmt.Sprintf("mb%d@big.example", i), fmt.Sprintf("Mailbox %d", i), true, i%2 == 0, i >= benchOpen, true, now, now}
		})
		batch(tx, `INSERT INTO mailboxes (tenant_id, kind, address, display_name, flag_sender, flag_global, active, created_at, updated_at) VALUES `, 10, 9, func(i int) []any {
			return []any{other.ID, "additional", fmt.Sprintf("global%d@op.example", i), fmt.Sprintf("Global %d", i), true, true, true, now, now}
		})
		var firstMailbox int64
		_ = tx.QueryRow(ctx, `SELECT MIN(id) FROM mailboxes WHERE tenant_id = ? AND kind = 'additional'`, t.ID).Scan(&firstMailbox)
		restricted := benchMailboxes - benchOpen
		batch(tx, `INSERT INTO mailbox_grants (tenant_id, mailbox_id, group_id, valid_from) VALUES `, restricted, 4, func(i int) []any {
			return []any{t.ID, firstMailbox + int64(benchOpen+i), firstGroup + int64(rng.IntN(benchGroups)), now}
		})
		batch(tx, `INSERT INTO mailbox_grants (tenant_id, mailbox_id, user_id, valid_from) VALUES `, restricted/10, 4, func(i int) []any {
			return []any{t.ID, firstMailbox + int64(benchOpen+i*10), firstUser + int64(rng.IntN(benchUsers)), now}
		})
		for i := 0; i < 1000; i++ {
			users = append(users, firstUser+int64(rng.IntN(benchUsers)))
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	if db.Dialect() == store.Postgres {
		if _, err := db.SQL().Exec("ANALYZE"); err != nil {
			b.Fatal(err)
		}
	} else if _, err := db.SQL().Exec("ANALYZE"); err != nil {
		b.Fatal(err)
	}
	return tenantID, users
}

// BenchmarkSenderOptions reports per-call latency percentiles of the policy engine on a
// large tenant. "warm" repeats calls on one open database; "cold" opens a new database
// handle before each call (connected outside the timer), so SQLite's page cache, the
// prepared statements and PostgreSQL's per-connection caches start empty; the operating
// system's file cache and PostgreSQL's shared buffers stay warm.
func BenchmarkSenderOptions(b *testing.B) {
	if testing.Short() {
		b.Skip("large data set")
	}
	url, path := storetest.URL(b)
	ctx := context.Background()
	db, err := store.Open(ctx, url, path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	tid, users := seedLarge(b, db)
	b.Logf("seeded %d users, %d groups, %d mailboxes on %s in %s", benchUsers, benchGroups, benchMailboxes, db.Dialect(), time.Since(start).Round(time.Millisecond))
	e := &policy.Engine{DB: db}
	var options int
	b.Run("warm", func(b *testing.B) {
		var lat []time.Duration
		for i := 0; b.Loop(); i++ {
			t0 := time.Now()
			o, err := e.Options(ctx, tid, users[i%len(users)])
			lat = append(lat, time.Since(t0))
			if err != nil {
				b.Fatal(err)
			}
			options = len(o.Senders)
		}
		report(b, lat)
		b.ReportMetric(float64(options), "options")
	})
	b.Run("cold", func(b *testing.B) {
		var lat []time.Duration
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			fresh, err := store.Open(ctx, url, path)
			if err != nil {
				b.Fatal(err)
			}
			if err := fresh.SQL().PingContext(ctx); err != nil { // connect outside the timer
				b.Fatal(err)
			}
			fe := &policy.Engine{DB: fresh}
			b.StartTimer()
			t0 := time.Now()
			_, err = fe.Options(ctx, tid, users[i%len(users)])
			lat = append(lat, time.Since(t0))
			b.StopTimer()
			fresh.Close()
			b.StartTimer()
			if err != nil {
				b.Fatal(err)
			}
		}
		report(b, lat)
	})
	_ = os.Getenv
}

func report(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(p(0.50), "p50-ms")
	b.ReportMetric(p(0.99), "p99-ms")
}
