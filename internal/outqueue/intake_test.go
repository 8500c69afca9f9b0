package outqueue_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"postfach/internal/core"
	"postfach/internal/mailout"
	"postfach/internal/outqueue"
	"postfach/internal/store"
)

// runQueue runs q as the service's intake until the test ends, and returns once the queue
// takes handed rows.
func runQueue(t *testing.T, f *fixture, q *outqueue.Queue) (stop func()) {
	t.Helper()
	f.svc.SetIntake(q)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { q.Run(ctx) })
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, ok := q.Claim(); ok {
			q.Unclaim()
			return stop
		}
		if time.Now().After(deadline) {
			t.Fatal("the queue does not take handed rows")
		}
	}
}

func waitState(t *testing.T, f *fixture, id int64, state string) core.Delivery {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		d := f.delivery(t, id)
		if d.State == state {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %d: state %q, want %q", id, d.State, state)
		}
	}
}

func leaseOf(t *testing.T, f *fixture, id int64) (owner string, until int64) {
	t.Helper()
	err := f.db.SQL().QueryRow(store.Rebind(f.db.Dialect(), `SELECT lease_owner, lease_until FROM outbound_queue WHERE message_id = ?`), id).Scan(&owner, &until)
	if err != nil {
		t.Fatal(err)
	}
	return owner, until
}

// TestSendHandedToTheWorkers: with the queue as the service's intake, a send goes out at
// once although the workers poll the database only once an hour: the row was written
// claimed, attempt 1 logged, and the worker got it with its body in memory.
func TestSendHandedToTheWorkers(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ts := startServer(t, plain, nil, nil)
	q := f.queue(ts.route(mailout.SecurityNone), func(c *outqueue.Config) { c.Poll = time.Hour })
	runQueue(t, f, q)

	res := f.send(t, core.SendInput{To: to("kunde@example.org"), Subject: "Direkt"})
	d := waitState(t, f, res.ID, store.QueueSent)
	if d.Attempts != 1 || len(d.AttemptLog) != 1 || d.AttemptLog[0].FinishedAt == 0 || d.AttemptLog[0].Result == "" {
		t.Fatalf("attempts %d, log %+v", d.Attempts, d.AttemptLog)
	}
	if owner, until := leaseOf(t, f, res.ID); owner != "" || until != 0 {
		t.Fatalf("lease left behind: %q until %d", owner, until)
	}
	msgs := ts.messages()
	if len(msgs) != 1 || header(msgs[0].data, "message-id") != "<"+res.MessageID+">" || header(msgs[0].data, "subject") != "Direkt" {
		t.Fatalf("peer got %d messages", len(msgs))
	}
}

// TestFullIntakeQueuesForAClaim: when the workers' room is taken, a send writes its row
// queued and unleased, and a claim from the database delivers it.
func TestFullIntakeQueuesForAClaim(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ts := startServer(t, plain, nil, nil)
	q := f.queue(ts.route(mailout.SecurityNone), func(c *outqueue.Config) {
		c.Poll = time.Hour
		c.Workers, c.Batch = 1, 1 // room for one row
	})
	runQueue(t, f, q)
	if _, ok := q.Claim(); !ok { // the room is now taken
		t.Fatal("no room in an idle queue")
	}
	res := f.send(t, core.SendInput{To: to("kunde@example.org")})
	if d := f.delivery(t, res.ID); d.State != store.QueueQueued || d.Attempts != 0 {
		t.Fatalf("with a full intake: state %q, %d attempts", d.State, d.Attempts)
	}
	if owner, _ := leaseOf(t, f, res.ID); owner != "" {
		t.Fatalf("queued row leased to %q", owner)
	}
	q.Unclaim()
	q.Wake() // as the next poll would
	d := waitState(t, f, res.ID, store.QueueSent)
	if d.Attempts != 1 || len(ts.messages()) != 1 {
		t.Fatalf("attempts %d, peer got %d", d.Attempts, len(ts.messages()))
	}
}

// TestStoppingQueueReleasesHandedRows: a row handed over but not reached when the queue
// stops is recorded as not attempted and deferred to its retry, not left leased for a
// restart to wait out; and a send after the stop is queued for a claim.
func TestStoppingQueueReleasesHandedRows(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	ts := startServer(t, plain, nil, func(s *smtpServer) {
		s.onData = func(n int, _ received) error {
			if n == 1 {
				entered <- struct{}{}
				<-release // the only worker hangs in the first delivery
			}
			return nil
		}
	})
	q := f.queue(ts.route(mailout.SecurityNone), func(c *outqueue.Config) {
		c.Poll = time.Hour
		c.Workers, c.Batch = 1, 2
	})
	stop := runQueue(t, f, q)
	first := f.send(t, core.SendInput{To: to("eins@example.org")})
	<-entered
	second := f.send(t, core.SendInput{To: to("zwei@example.org")})
	if owner, _ := leaseOf(t, f, second.ID); owner != q.Owner() {
		t.Fatalf("second row not handed over (lease owner %q)", owner)
	}
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	time.Sleep(50 * time.Millisecond) // the stop is under way while the worker still hangs
	close(release)
	<-stopped

	if d := f.delivery(t, first.ID); d.State == store.QueueSending {
		t.Fatalf("first still %q after the stop", d.State)
	}
	d := f.delivery(t, second.ID)
	if d.State != store.QueueDeferred || len(d.AttemptLog) != 1 || d.AttemptLog[0].FinishedAt == 0 {
		t.Fatalf("second after the stop: state %q, log %+v", d.State, d.AttemptLog)
	}
	if owner, _ := leaseOf(t, f, second.ID); owner != "" {
		t.Fatalf("second still leased to %q", owner)
	}
	third := f.send(t, core.SendInput{To: to("drei@example.org")})
	if d := f.delivery(t, third.ID); d.State != store.QueueQueued {
		t.Fatalf("send after the stop: %q", d.State)
	}
}
