package core

import (
	"context"
	"sync"

	"postfach/internal/store"
)

// sendBatcher is the group commit of concurrent sends: while one transaction commits, the
// sends that arrive queue up and then commit together in the next one, so many API
// requests share one fsync (SQLite's single writer would otherwise serialise one commit
// per message). A send still answers only after the transaction holding its message and
// queue row has committed. When a batch fails (an idempotency key repeated inside it, a
// conflict), each of its sends is retried in a transaction of its own, so one bad send
// never fails another. The zero value is ready; a goroutine runs only while sends wait.
// On PostgreSQL several batches commit in parallel (committers).
type sendBatcher struct {
	mu      sync.Mutex
	pending []*pendingSend
	running int // committing goroutines
}

type pendingSend struct {
	ctx   context.Context
	write func(tx *store.Tx) error
	err   error
	done  chan struct{}
}

// maxSendBatch bounds one transaction: large enough to share the fsync, small enough that
// the writer lock is not held long.
const maxSendBatch = 64

// committers is how many batches commit at once: SQLite has one writer, so one; PostgreSQL
// runs transactions in parallel and pays a network round trip per statement, so several
// smaller batches in parallel beat one long one.
func committers(db *store.DB) int {
	if db.Dialect() == store.Postgres {
		return 8
	}
	return 1
}

// commit runs write in a transaction shared with other concurrent sends and returns when
// that transaction has committed or failed. write may run more than once (a batch retried
// one by one, a busy database) and must set its results on every run.
func (b *sendBatcher) commit(ctx context.Context, db *store.DB, write func(tx *store.Tx) error) error {
	p := &pendingSend{ctx: context.WithoutCancel(ctx), write: write, done: make(chan struct{})}
	b.mu.Lock()
	b.pending = append(b.pending, p)
	start := b.running < committers(db)
	if start {
		b.running++
	}
	b.mu.Unlock()
	if start {
		go b.run(db)
	}
	<-p.done
	return p.err
}

func (b *sendBatcher) run(db *store.DB) {
	for {
		b.mu.Lock()
		n := min(len(b.pending), maxSendBatch)
		if n == 0 {
			b.running--
			b.mu.Unlock()
			return
		}
		batch := append([]*pendingSend(nil), b.pending[:n]...)
		b.pending = append(b.pending[:0], b.pending[n:]...)
		b.mu.Unlock()
		commitSends(db, batch)
	}
}

func commitSends(db *store.DB, batch []*pendingSend) {
	defer func() {
		for _, p := range batch {
			close(p.done)
		}
	}()
	if len(batch) > 1 {
		err := db.InTx(batch[0].ctx, func(tx *store.Tx) error {
			for _, p := range batch {
				if err := p.write(tx); err != nil {
					return err
				}
			}
			return nil
		})
		if err == nil {
			return
		}
	}
	for _, p := range batch {
		p.err = db.InTx(p.ctx, p.write)
	}
}
