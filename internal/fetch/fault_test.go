package fetch

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"postfach/internal/core"
	"postfach/internal/i18n"
	"postfach/internal/secrets"
	"postfach/internal/store"
	"postfach/internal/store/storetest"
	"postfach/internal/testpeers"
)

// Variables that turn the test binary into the fetcher process the fault test kills.
const (
	envFaultChild  = "POSTFACH_FETCH_FAULT_CHILD"
	envFaultDBURL  = "POSTFACH_FETCH_FAULT_DB_URL"
	envFaultDBPath = "POSTFACH_FETCH_FAULT_DB_PATH"
	faultHolder    = "fault-fetcher"
)

// faultFetcher is the fetcher of the fault test: a short lease, many small commits.
func faultFetcher(db *store.DB, svc *core.Service) *Fetcher {
	return &Fetcher{DB: db, Core: svc, Network: loopback, NoIdle: true, Holder: faultHolder,
		Lease: time.Second, PollInterval: 50 * time.Millisecond, RetryAfter: 20 * time.Millisecond, Tick: 20 * time.Millisecond,
		BatchMessages: 7}
}

// runFaultChild is the killed process: it fetches until it is killed.
func runFaultChild(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, os.Getenv(envFaultDBURL), os.Getenv(envFaultDBPath))
	if err != nil {
		t.Fatal(err)
	}
	box, _ := secrets.New(make([]byte, 32))
	svc := core.New(db, box, i18n.MustLoad(), nil)
	faultFetcher(db, svc).Run(ctx)
}

var messageIDRE = regexp.MustCompile(`<([^<>@\s]+@[^<>\s]+)>`)

// TestFetchFaults: Dovecot behind toxiproxy resetting connections, the fetcher process killed
// with SIGKILL at random moments, another client appending all along, delete-on-server on.
// At the end the store holds exactly the appended messages (by content hash) and at no
// moment was a message gone from the server before it was in the store.
func TestFetchFaults(t *testing.T) {
	if os.Getenv(envFaultChild) != "" {
		runFaultChild(t)
		return
	}
	t.Parallel()
	dv := testpeers.StartDovecot(t, map[string]string{"fault": "pw-fault"})
	ctx := context.Background()
	dbURL, dbPath := storetest.URL(t)
	db, err := store.Open(ctx, dbURL, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	fx := newFixture(t, db, dv)

	tp := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	proxy := toxiproxy.NewProxy(tp, "imap", "127.0.0.1:0", dv.IMAPAddr)
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Stop)
	// Half of the connections are reset 30 ms after the first bytes from the server.
	if _, err := proxy.Toxics.AddToxicJson(strings.NewReader(`{"name":"reset","type":"reset_peer","stream":"downstream","toxicity":0.5,"attributes":{"timeout":30}}`)); err != nil {
		t.Fatal(err)
	}
	id := fx.account(t, "fault@firma.example", core.ReceiveIMAP, proxy.Listen, "none", "fault", "pw-fault", true)

	const total, kills = 300, 20
	var mu sync.Mutex
	appended := map[string]string{} // Message-ID → content hash
	var violations []string
	appendDone := make(chan struct{})
	// Another client appends over IMAP, straight to Dovecot.
	appender, err := imapclient.DialInsecure(dv.IMAPAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer appender.Close()
	if err := appender.Login("fault", "pw-fault").Wait(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(appendDone)
		for i := 0; i < total; i++ {
			raw := message(i, "fault")
			cmd := appender.Append("INBOX", int64(len(raw)), nil)
			_, _ = cmd.Write(raw)
			_ = cmd.Close()
			if _, err := cmd.Wait(); err != nil {
				t.Errorf("append: %v", err)
				return
			}
			mu.Lock()
			appended[fmt.Sprintf("fault.%d@example.org", i)] = hashOf(raw)
			mu.Unlock()
			time.Sleep(time.Duration(rand.IntN(40)) * time.Millisecond)
		}
	}()

	// The invariant, checked while everything runs: read what was appended, then what the
	// server holds, then what we stored. Whatever was appended and is no longer on the
	// server must be stored by then, or it left the server before our commit.
	checks := 0
	check := func() {
		mu.Lock()
		known := make(map[string]bool, len(appended))
		for k := range appended {
			known[k] = true
		}
		mu.Unlock()
		out := dv.Doveadm(t, "fetch", "-u", "fault", "hdr.message-id", "mailbox", "INBOX", "ALL")
		onServer := map[string]bool{}
		for _, m := range messageIDRE.FindAllStringSubmatch(out, -1) {
			onServer[m[1]] = true
		}
		stored := storedMessageIDs(t, db, id)
		for k := range known {
			if !onServer[k] && !stored[k] {
				violations = append(violations, k)
			}
		}
		checks++
	}

	var childLog bytes.Buffer
	for i := 0; i < kills; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFetchFaults$")
		cmd.Env = append(os.Environ(), envFaultChild+"=1", envFaultDBURL+"="+dbURL, envFaultDBPath+"="+dbPath)
		cmd.Stdout, cmd.Stderr = &childLog, &childLog
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// A random moment: before the login, in the middle of a batch, between the commit
		// and the expunge. A child needs about half a second to start on PostgreSQL.
		time.Sleep(time.Duration(200+rand.IntN(1300)) * time.Millisecond)
		_ = cmd.Process.Kill() // SIGKILL: no deferred cleanup, no QUIT, no rollback of ours
		_ = cmd.Wait()
		check()
	}
	<-appendDone
	duringFaults := len(storedMessageIDs(t, db, id))
	if duringFaults < total/2 {
		t.Logf("fetcher output:\n%.3000s", childLog.String())
	}

	// Recovery without faults: the same holder takes its lease back at once.
	if err := proxy.Toxics.RemoveToxic(ctx, "reset"); err != nil {
		t.Fatal(err)
	}
	f := faultFetcher(db, fx.svc)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := db.InTx(ctx, func(tx *store.Tx) error { return tx.MarkFetchDue(ctx, fx.tenant, id, false) }); err != nil {
			t.Fatal(err)
		}
		_, err := f.RunSource(ctx, id)
		if err == nil && serverCount(t, dv, "fault", "INBOX") == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fetcher did not recover: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	check()

	got := storedHashes(t, db, id)
	want := map[string]bool{}
	for _, h := range appended {
		want[h] = true
	}
	lost, dup := 0, 0
	for h := range want {
		if got[h] == 0 {
			lost++
		}
	}
	for h, n := range got {
		if !want[h] {
			t.Errorf("stored a message that was never appended: %s", h)
		}
		if n > 1 {
			dup += n - 1
		}
	}
	stored := 0
	for _, n := range got {
		stored += n
	}
	fmt.Printf("fetch fault test: appended %d, stored %d (%d while faults ran), lost %d, duplicated %d, left on server %d, kills %d, invariant checks %d, deleted before commit %d, %s\n",
		len(appended), stored, duringFaults, lost, dup, serverCount(t, dv, "fault", "INBOX"), kills, checks, len(violations), db.Dialect())
	if lost != 0 || dup != 0 || len(violations) != 0 {
		t.Fatalf("lost %d, duplicated %d, deleted before commit %v\nfetcher output:\n%s", lost, dup, violations, childLog.String())
	}
}

func storedMessageIDs(t testing.TB, db *store.DB, mailboxID int64) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, s := range queryRows(t, db, column[string], `SELECT message_id FROM messages WHERE mailbox_id = ?`, mailboxID) {
		out[strings.Trim(s, "<>")] = true
	}
	return out
}
