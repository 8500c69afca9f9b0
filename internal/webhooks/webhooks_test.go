package webhooks_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"postfach/internal/mailstore"
	"postfach/internal/netguard"
	"postfach/internal/secrets"
	"postfach/internal/store"
	"postfach/internal/store/storetest"
	"postfach/internal/webhooks"
)

// receiver is an in-process HTTP endpoint on loopback that checks every signature and
// answers with the statuses it is given, then 200.
type receiver struct {
	t        *testing.T
	srv      *httptest.Server
	secret   string
	mu       sync.Mutex
	statuses []int
	got      []received
}

type received struct {
	event, eventID, attempt string
	envelope                webhooks.Envelope
	verifyErr               error
}

func newReceiver(t *testing.T, secret string, statuses ...int) *receiver {
	r := &receiver{t: t, secret: secret, statuses: statuses}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		rec := received{event: req.Header.Get(webhooks.HeaderEvent), eventID: req.Header.Get(webhooks.HeaderEventID), attempt: req.Header.Get(webhooks.HeaderAttempt)}
		rec.verifyErr = webhooks.Verify(r.secret, req.Header.Get(webhooks.HeaderSignature), req.Header.Get(webhooks.HeaderTimestamp), body, time.Now(), webhooks.DefaultTolerance)
		if err := json.Unmarshal(body, &rec.envelope); err != nil {
			rec.verifyErr = errors.Join(rec.verifyErr, err)
		}
		r.mu.Lock()
		r.got = append(r.got, rec)
		status := http.StatusOK
		if len(r.statuses) > 0 {
			status, r.statuses = r.statuses[0], r.statuses[1:]
		}
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

type env struct {
	ctx    context.Context
	db     *store.DB
	box    *secrets.Box
	tenant store.Tenant
	mb     store.Mailbox
	now    atomic.Int64
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{ctx: context.Background(), db: storetest.Open(t)}
	e.now.Store(time.Now().UnixMilli())
	e.db.SetClock(e.clock)
	box, err := secrets.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	e.box = box
	err = e.db.InTx(e.ctx, func(tx *store.Tx) error {
		var err error
		if e.tenant, err = tx.CreateTenant(e.ctx, store.Tenant{Name: "Makler", Slug: "makler", MailboxQuota: 10}); err != nil {
			return err
		}
		e.mb, err = tx.CreateMailbox(e.ctx, e.tenant.ID, store.Mailbox{Kind: store.KindHosted, Address: "chef@makler.example", Active: true})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) clock() time.Time { return time.UnixMilli(e.now.Load()) }

func (e *env) endpoint(t *testing.T, url, secret string, events ...string) webhooks.Endpoint {
	t.Helper()
	sealed, err := e.box.SealString(webhooks.SecretContext(e.tenant.ID), secret)
	if err != nil {
		t.Fatal(err)
	}
	var ep webhooks.Endpoint
	err = e.db.InTx(e.ctx, func(tx *store.Tx) error {
		ep, err = webhooks.CreateEndpoint(e.ctx, tx, e.tenant.ID, webhooks.Endpoint{URL: url, Events: events, Active: true, SecretSealed: sealed})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

// deliverMail receives a message through the mailstore, in a transaction that commits
// unless rollback is set.
func (e *env) deliverMail(t *testing.T, msgID string, rollback bool) {
	t.Helper()
	errRollback := errors.New("roll back")
	err := e.db.InTx(e.ctx, func(tx *store.Tx) error {
		raw := "From: kunde@example.org\r\nTo: chef@makler.example\r\nSubject: Frage\r\nMessage-ID: <" + msgID + ">\r\n\r\nHallo\r\n"
		if _, err := mailstore.Deliver(e.ctx, tx, mailstore.Delivery{Source: "smtp", EnvelopeFrom: "kunde@example.org",
			Mailboxes: []store.Mailbox{e.mb}, Raw: []byte(raw), Hostname: "mx.test"}); err != nil {
			return err
		}
		if rollback {
			return errRollback
		}
		return nil
	})
	if err != nil && !(rollback && errors.Is(err, errRollback)) {
		t.Fatal(err)
	}
}

func (e *env) worker(policy netguard.Policy) *webhooks.Worker {
	return &webhooks.Worker{DB: e.db, Secrets: e.box, Policy: policy, Now: e.clock, Timeout: 5 * time.Second,
		Backoff: []time.Duration{time.Minute, 2 * time.Minute}, MaxAttempts: 3}
}

func (e *env) deliveries(t *testing.T, endpointID int64) []webhooks.Delivery {
	t.Helper()
	var out []webhooks.Delivery
	err := e.db.InTx(e.ctx, func(tx *store.Tx) error {
		var err error
		out, err = webhooks.ListDeliveries(e.ctx, tx, e.tenant.ID, endpointID, 100)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var loopback = netguard.Policy{AllowedPrefixes: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}

func TestReceivedMailIsDeliveredSigned(t *testing.T) {
	e := newEnv(t)
	r := newReceiver(t, "s3cret")
	ep := e.endpoint(t, r.srv.URL+"/hook", "s3cret", webhooks.EventReceived)
	other := newReceiver(t, "x")
	e.endpoint(t, other.srv.URL, "x", webhooks.EventSent) // not subscribed to received mail

	e.deliverMail(t, "m1@example.org", false)
	n, err := e.worker(loopback).RunOnce(e.ctx)
	if err != nil || n != 1 {
		t.Fatalf("RunOnce: %d, %v", n, err)
	}
	got := r.requests()
	if len(got) != 1 {
		t.Fatalf("%d requests", len(got))
	}
	g := got[0]
	if g.verifyErr != nil || g.event != webhooks.EventReceived || g.attempt != "1" || g.eventID == "" || g.envelope.ID != g.eventID {
		t.Fatalf("request %+v", g)
	}
	var data mailstore.ReceivedPayload
	if err := json.Unmarshal(g.envelope.Data, &data); err != nil {
		t.Fatal(err)
	}
	if data.HeaderID != "m1@example.org" || data.Subject != "Frage" || data.MessageID == 0 || len(data.Addresses) != 1 || data.Addresses[0] != "chef@makler.example" {
		t.Fatalf("payload %+v", data)
	}
	if d := e.deliveries(t, ep.ID); len(d) != 1 || d[0].State != webhooks.StateDelivered || d[0].LastStatus != 200 {
		t.Fatalf("deliveries %+v", d)
	}
	if len(other.requests()) != 0 {
		t.Fatal("an endpoint not subscribed to message.received got it")
	}
	// Nothing is due any more.
	if n, _ := e.worker(loopback).RunOnce(e.ctx); n != 0 {
		t.Fatalf("claimed %d after delivery", n)
	}
}

func TestRetriesAfterServerErrors(t *testing.T) {
	e := newEnv(t)
	r := newReceiver(t, "k", 500, 503)
	ep := e.endpoint(t, r.srv.URL, "k", webhooks.EventReceived)
	e.deliverMail(t, "retry@example.org", false)
	w := e.worker(loopback)

	for attempt := 1; attempt <= 3; attempt++ {
		if n, err := w.RunOnce(e.ctx); err != nil || n != 1 {
			t.Fatalf("attempt %d: claimed %d, %v", attempt, n, err)
		}
		// Before the backoff has passed the row is not due.
		if n, _ := w.RunOnce(e.ctx); n != 0 {
			t.Fatalf("attempt %d: retried before the backoff", attempt)
		}
		e.now.Add((3 * time.Minute).Milliseconds())
	}
	got := r.requests()
	if len(got) != 3 || got[0].eventID != got[2].eventID || got[2].attempt != "3" {
		t.Fatalf("requests %+v", got)
	}
	if d := e.deliveries(t, ep.ID); d[0].State != webhooks.StateDelivered || d[0].Attempts != 3 {
		t.Fatalf("delivery %+v", d[0])
	}
}

func TestGivesUpAfterMaxAttempts(t *testing.T) {
	e := newEnv(t)
	r := newReceiver(t, "k", 500, 500, 500, 500)
	ep := e.endpoint(t, r.srv.URL, "k", webhooks.EventReceived)
	e.deliverMail(t, "dead@example.org", false)
	w := e.worker(loopback)
	for range 5 {
		w.RunOnce(e.ctx)
		e.now.Add((3 * time.Minute).Milliseconds())
	}
	if d := e.deliveries(t, ep.ID); d[0].State != webhooks.StateFailed || d[0].Attempts != 3 || d[0].LastStatus != 500 {
		t.Fatalf("delivery %+v", d[0])
	}
	if n := len(r.requests()); n != 3 {
		t.Fatalf("%d requests, want 3", n)
	}
}

func TestRolledBackDeliveryEmitsNothing(t *testing.T) {
	e := newEnv(t)
	r := newReceiver(t, "k")
	ep := e.endpoint(t, r.srv.URL, "k", webhooks.EventReceived)
	e.deliverMail(t, "never@example.org", true)
	if d := e.deliveries(t, ep.ID); len(d) != 0 {
		t.Fatalf("rolled-back delivery left events %+v", d)
	}
	if n, _ := e.worker(loopback).RunOnce(e.ctx); n != 0 || len(r.requests()) != 0 {
		t.Fatal("an event of a rolled-back transaction was sent")
	}
}

func TestDefaultPolicyRefusesLoopback(t *testing.T) {
	e := newEnv(t)
	r := newReceiver(t, "k")
	ep := e.endpoint(t, r.srv.URL, "k", webhooks.EventReceived)
	e.deliverMail(t, "ssrf@example.org", false)
	if n, err := e.worker(netguard.Policy{}).RunOnce(e.ctx); err != nil || n != 1 {
		t.Fatalf("RunOnce: %d, %v", n, err)
	}
	if len(r.requests()) != 0 {
		t.Fatal("the default policy let a request reach loopback")
	}
	d := e.deliveries(t, ep.ID)
	if d[0].State != webhooks.StatePending || !strings.Contains(d[0].LastError, "loopback") {
		t.Fatalf("delivery %+v", d[0])
	}
}

func TestWorkersShareTheOutboxWithoutDoubleSends(t *testing.T) {
	e := newEnv(t)
	r := newReceiver(t, "k")
	e.endpoint(t, r.srv.URL, "k", webhooks.EventReceived)
	const events = 30
	for i := range events {
		e.deliverMail(t, "bulk"+string(rune('a'+i))+"@example.org", false)
	}
	var wg sync.WaitGroup
	for range 3 {
		w := e.worker(loopback)
		w.Batch = 4
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n, err := w.RunOnce(e.ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if n == 0 {
					return
				}
			}
		}()
	}
	wg.Wait()
	seen := map[string]int{}
	for _, g := range r.requests() {
		seen[g.eventID]++
	}
	if len(seen) != events {
		t.Fatalf("%d distinct events delivered, want %d", len(seen), events)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("event %s sent %d times", id, n)
		}
	}
}

func TestEnqueueRefusesUnknownEvent(t *testing.T) {
	e := newEnv(t)
	err := e.db.InTx(e.ctx, func(tx *store.Tx) error {
		return webhooks.Enqueue(e.ctx, tx, e.tenant.ID, "message.deleted", map[string]int{"id": 1})
	})
	if !errors.Is(err, webhooks.ErrUnknownEvent) {
		t.Fatalf("got %v", err)
	}
}
