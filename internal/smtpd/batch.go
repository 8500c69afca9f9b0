package smtpd

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"postfach/internal/mailstore"
	"postfach/internal/store"
)

// Committer is the group commit: it puts the deliveries of many concurrent SMTP sessions
// into one transaction, so that one fsync acknowledges them all. A session's 250 waits for
// the commit of the batch its message is in; a crash before that commit leaves the client
// without 250, and it retries (RFC 5321 §4.5.4.1).
//
// Batches form naturally: while one transaction commits, the next deliveries queue up and
// go into the following transaction together. Linger optionally waits a little longer for
// more deliveries when a batch is not full.
//
// The commit goroutine is the one serial part of ingest, so it does nothing a session can
// do: messages arrive parsed and hashed (mailstore.Prepare, in the session goroutine), and
// a transaction's deliveries share one mailstore.Batch (statements prepared once per
// connection, look-ups asked once per batch).
type Committer struct {
	db       *store.DB
	maxBatch int
	linger   time.Duration
	queue    chan *job
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once

	mu    sync.Mutex
	stats CommitStats
}

// CommitStats counts what the committer did, for benchmarks and metrics.
type CommitStats struct {
	Transactions int64
	Deliveries   int64
	Fallbacks    int64 // batches that failed and were retried one delivery at a time
}

type job struct {
	ctx      context.Context
	prepared *mailstore.Prepared
	done     chan error
}

// NewCommitter starts the commit loop. maxBatch bounds a transaction's size; linger is how
// long a partly filled batch waits for more (0: not at all).
func NewCommitter(db *store.DB, maxBatch int, linger time.Duration) *Committer {
	if maxBatch <= 0 {
		maxBatch = 64
	}
	c := &Committer{db: db, maxBatch: maxBatch, linger: linger, queue: make(chan *job, 4*maxBatch),
		stop: make(chan struct{}), done: make(chan struct{})}
	go c.loop()
	return c
}

// errCommitterClosed is returned to deliveries submitted after Close.
var errCommitterClosed = errors.New("smtpd: committer closed")

// Deliver stores a prepared message in a shared transaction and returns once that
// transaction is committed (nil) or rolled back (the delivery's error, or the commit's).
// When a batch fails, each of its deliveries is retried in a transaction of its own.
func (c *Committer) Deliver(ctx context.Context, p *mailstore.Prepared) error {
	j := &job{ctx: ctx, prepared: p, done: make(chan error, 1)}
	select {
	case c.queue <- j:
	case <-c.stop:
		return errCommitterClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-j.done:
		return err
	case <-ctx.Done():
		// The job may still commit; the client gets no 250 and retries, and the content
		// hash makes the retry a duplicate that is not stored twice.
		return ctx.Err()
	}
}

// Stats returns the counters.
func (c *Committer) Stats() CommitStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Close stops accepting work, finishes the queued jobs and returns.
func (c *Committer) Close() {
	c.once.Do(func() { close(c.stop) })
	<-c.done
}

func (c *Committer) loop() {
	defer close(c.done)
	for {
		var first *job
		select {
		case first = <-c.queue:
		case <-c.stop:
			c.drain()
			return
		}
		batch := c.collect(first)
		c.commit(batch)
	}
}

// collect takes whatever is queued, up to maxBatch, waiting at most linger for more.
func (c *Committer) collect(first *job) []*job {
	batch := []*job{first}
	var timeout <-chan time.Time
	if c.linger > 0 {
		t := time.NewTimer(c.linger)
		defer t.Stop()
		timeout = t.C
	}
gather:
	for len(batch) < c.maxBatch {
		select {
		case j := <-c.queue:
			batch = append(batch, j)
			continue
		default:
		}
		if timeout == nil {
			break gather
		}
		select {
		case j := <-c.queue:
			batch = append(batch, j)
		case <-timeout:
			break gather
		}
	}
	return batch
}

func (c *Committer) drain() {
	for {
		select {
		case j := <-c.queue:
			c.commit([]*job{j})
		default:
			return
		}
	}
}

func (c *Committer) commit(batch []*job) {
	live := batch[:0]
	for _, j := range batch {
		if err := j.ctx.Err(); err != nil {
			j.done <- err
			continue
		}
		live = append(live, j)
	}
	if len(live) == 0 {
		return
	}
	err := c.db.InTx(context.Background(), func(tx *store.Tx) error {
		b := mailstore.NewBatch(tx)
		for _, j := range live {
			if _, err := b.Deliver(context.Background(), j.prepared); err != nil {
				return err
			}
		}
		return nil
	})
	c.mu.Lock()
	c.stats.Transactions++
	c.stats.Deliveries += int64(len(live))
	c.mu.Unlock()
	if err == nil || len(live) == 1 {
		for _, j := range live {
			j.done <- err
		}
		return
	}
	// One delivery's failure must not fail the others: retry each alone.
	c.mu.Lock()
	c.stats.Fallbacks++
	c.mu.Unlock()
	for _, j := range live {
		j.done <- c.db.InTx(context.Background(), func(tx *store.Tx) error {
			if _, err := mailstore.NewBatch(tx).Deliver(context.Background(), j.prepared); err != nil {
				return fmt.Errorf("delivery: %w", err)
			}
			return nil
		})
	}
}
