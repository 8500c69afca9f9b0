package outqueue_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"postfach/internal/core"
	"postfach/internal/i18n"
	"postfach/internal/secrets"
	"postfach/internal/store"
	"postfach/internal/store/storetest"
	"postfach/internal/testpeers"
)

// TestCrashDeliversEveryMessage enqueues 2,000 messages with idempotency keys through the
// API of a real "postfach serve", kills it with SIGKILL at least 20 times while it enqueues
// and delivers into smtp-sink, restarts it and lets it drain. Every message must arrive; a
// message may arrive again only if it was retried (it was in flight at a kill), never more
// often than it was attempted, and then with the same Message-ID; repeated idempotency keys create no extra message.
func TestCrashDeliversEveryMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the postfach binary")
	}
	t.Parallel() // its own binary, database, sink and ports: the other tests overlap it
	const (
		messages = 2000
		clients  = 8
		minKills = 20
	)
	dumpDir := t.TempDir()
	sink := testpeers.StartSMTPSink(t, "-d", filepath.Join(dumpDir, "%H%M%S."))

	dbURL, _ := storetest.URL(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	ctx := context.Background()
	db, err := store.Open(ctx, dbURL, filepath.Join(dataDir, "postfach.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	box, _ := secrets.New(make([]byte, 32))
	svc := core.New(db, box, i18n.MustLoad(), nil)
	op := core.Actor{Kind: core.ActorSystem, Name: "test"}
	name, slug, sys := "Crash", "crash", "info@crash.example"
	tn, err := svc.CreateTenant(ctx, op, core.TenantInput{Name: &name, Slug: &slug, SystemAddress: &sys})
	if err != nil {
		t.Fatal(err)
	}
	admin, _ := core.AsOperatorIn(op, tn.ID)
	login, display := "sender", "Sender"
	u, err := svc.CreateUser(ctx, admin, core.UserInput{Login: &login, DisplayName: &display})
	if err != nil {
		t.Fatal(err)
	}
	tokenAdmin := admin
	tokenAdmin.Kind = core.ActorAdmin
	tok, err := svc.CreateAPIToken(ctx, tokenAdmin, "crash")
	if err != nil {
		t.Fatal(err)
	}

	httpAddr := testpeers.FreeAddr(t)
	server := testpeers.StartServe(t, testpeers.ServeConfig{DataDir: dataDir, DatabaseURL: dbURL, HTTPAddr: httpAddr,
		Flags: []string{"--smarthost", sink.Addr, "--smarthost-security", "none", "--queue-lease", "2s", "--hostname", "out.crash.test"}})

	client := &http.Client{Timeout: 10 * time.Second}
	post := func(key string, i int) bool {
		body := fmt.Sprintf(`{"user_id":%d,"sender":"system","to":[{"address":"kunde%d@example.org"}],"subject":"Crash %d","text":"Nachricht %d"}`, u.ID, i, i, i)
		req, _ := http.NewRequest("POST", "http://"+httpAddr+"/api/v1/messages", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusAccepted
	}
	var accepted, requests atomic.Int64
	next := make(chan int, messages)
	for i := range messages {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	// Generous: on a loaded machine each restart alone takes seconds; the deadline only
	// catches a server that stopped accepting for good.
	deadline := time.Now().Add(120 * time.Second)
	for range clients {
		wg.Go(func() {
			for i := range next {
				key := fmt.Sprintf("crash-%d", i)
				for time.Now().Before(deadline) {
					requests.Add(1)
					if post(key, i) {
						accepted.Add(1)
						break
					}
					time.Sleep(5 * time.Millisecond)
				}
				if i%10 == 0 {
					requests.Add(1)
					post(key, i) // a client retrying a request that succeeded
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	kills := 0
	// About minKills-2 kills while clients enqueue (each restart costs one to three seconds
	// on a loaded machine), the rest while only delivery runs.
	killEvery := messages / (minKills - 2)
	for waiting := true; waiting; {
		select {
		case <-done:
			waiting = false
		case <-time.After(2 * time.Millisecond):
			if accepted.Load() >= int64((kills+1)*killEvery) && accepted.Load() < messages {
				server.Restart()
				kills++
			}
		}
	}
	// A few more kills while only delivery runs.
	for kills < minKills+1 {
		time.Sleep(time.Duration(20+kills) * time.Millisecond)
		server.Restart()
		kills++
	}
	if n := accepted.Load(); n != messages {
		t.Fatalf("only %d of %d messages accepted", n, messages)
	}

	// Drain: every row sent.
	var counts map[string]int
	for drainBy := time.Now().Add(40 * time.Second); ; {
		counts, err = db.Read().OutboundStateCounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if counts[store.QueueSent] == messages || time.Now().After(drainBy) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if counts[store.QueueSent] != messages {
		t.Fatalf("queue did not drain: %v\n%s", counts, server.Output())
	}

	// What smtp-sink received, by Message-ID.
	files, _ := filepath.Glob(filepath.Join(dumpDir, "*"))
	delivered := map[string]int{}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		delivered[header(bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n")), "message-id")]++
	}
	rows, err := db.SQL().QueryContext(ctx, `SELECT m.message_id, q.attempts FROM messages m JOIN outbound_queue q ON q.message_id = m.id`)
	if err != nil {
		t.Fatal(err)
	}
	stored, lost, again, unexplained := 0, 0, 0, 0
	for rows.Next() {
		var id string
		var attempts int
		if err := rows.Scan(&id, &attempts); err != nil {
			t.Fatal(err)
		}
		stored++
		switch n := delivered["<"+id+">"]; {
		case n == 0:
			lost++
		case n > attempts:
			unexplained++ // more copies than attempts: not an in-flight duplicate
		case n > 1:
			again++ // in flight at a kill (once or more), retried with the same bytes
		}
	}
	rows.Close()
	fmt.Printf("outbound crash test (%s): %d messages, %d API requests, %d kill -9, %d stored, %d files in smtp-sink, %d delivered once, %d more than once (in flight at a kill, same Message-ID), %d lost\n",
		db.Dialect(), messages, requests.Load(), kills, stored, len(files), stored-again-lost, again, lost)
	if stored != messages {
		t.Errorf("%d messages stored for %d idempotency keys", stored, messages)
	}
	if lost != 0 || unexplained != 0 {
		t.Fatalf("%d lost, %d duplicated without a retry", lost, unexplained)
	}
}
