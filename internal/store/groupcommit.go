package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// groupCommit shares one SQLite write transaction among concurrent InTx calls, so that one
// commit (one WAL fsync) makes many callers' work durable.
//
// SQLite has a single writer. Before, every InTx began its own BEGIN IMMEDIATE on its own
// connection; concurrent writers (IMAP sessions storing flags, API sends, queue workers
// recording outcomes) found the lock taken and slept in the busy handler for 1–25 ms
// before trying again, and each of them paid a commit of its own. Here writers queue in Go
// instead: whoever holds the turn runs its function on the open transaction inside a
// savepoint, and the last of a run of queued writers commits for all of them. Nobody is
// told "done" before the commit that contains their work has returned, and a function that
// fails is rolled back to its savepoint without touching the others' work.
//
// Batches form by themselves: while one commit (and its fsync) runs, the next writers queue
// for the turn and then share the following transaction. A lone writer commits at once, so
// nothing waits for company.
type groupCommit struct {
	turn    chan struct{} // holding its one slot means running on the open transaction
	waiting atomic.Int32  // writers queued for the turn
	open    *writeBatch   // the transaction collecting writers; nil between batches (guarded by turn)
	max     int           // writers per transaction at most, so a long queue still commits

	commits atomic.Int64
	writers atomic.Int64
}

// writeBatch is one shared transaction.
type writeBatch struct {
	stx     *sql.Tx
	stmts   map[string]*sql.Stmt // prepared statements bound to stx, shared by its writers
	ran     int                  // writers whose function ran on it, failed ones included
	writers int
	done    chan struct{} // closed after the commit or rollback; err is final then
	err     error
}

// errBatchAborted is what the writers of a batch get when the transaction was lost under
// them (SQLite rolls a whole transaction back on some errors); their work is not durable.
var errBatchAborted = errors.New("store: the shared transaction was rolled back")

// errFirstWriterFailed says the transaction's only writer so far failed: it is rolled back
// whole, which touches nobody else.
var errFirstWriterFailed = errors.New("store: the first writer failed")

func newGroupCommit(max int) *groupCommit {
	return &groupCommit{turn: make(chan struct{}, 1), max: max}
}

// GroupCommitStats counts shared transactions and the InTx calls they carried.
type GroupCommitStats struct {
	Commits int64
	Writers int64
}

// GroupCommitStats reports the counters (zero on PostgreSQL, where every InTx is its own
// transaction and the server batches fsyncs itself).
func (db *DB) GroupCommitStats() GroupCommitStats {
	if db.group == nil {
		return GroupCommitStats{}
	}
	return GroupCommitStats{Commits: db.group.commits.Load(), Writers: db.group.writers.Load()}
}

// inSharedTx runs fn on the shared transaction and returns once that transaction has
// committed (nil), or at once with fn's error (fn's statements undone).
func (db *DB) inSharedTx(ctx context.Context, fn func(tx *Tx) error) error {
	g := db.group
	g.waiting.Add(1)
	select {
	case g.turn <- struct{}{}:
		g.waiting.Add(-1)
	case <-ctx.Done():
		g.waiting.Add(-1)
		// The holder may have left the batch open because it counted this writer; make
		// sure somebody commits it.
		go g.commitIfIdle(db)
		return ctx.Err()
	}
	b, err := g.begin(db)
	if err != nil {
		<-g.turn
		return err
	}
	var fnErr, lost error
	var panicked any
	func() {
		defer func() { panicked = recover() }()
		fnErr, lost = db.runWriter(ctx, b, fn)
	}()
	if panicked != nil {
		// The turn must not die with the writer (an HTTP handler's panic is recovered and
		// the server goes on): the transaction and everything in it is given up.
		g.abort(b, fmt.Errorf("%w: a writer panicked", errBatchAborted))
		<-g.turn
		panic(panicked)
	}
	switch {
	case errors.Is(lost, errFirstWriterFailed):
		g.abort(b, nil) // nobody else's work was in it
	case lost != nil:
		g.abort(b, lost)
	case fnErr == nil:
		b.writers++
		g.writers.Add(1)
		fallthrough
	default:
		if g.waiting.Load() == 0 || b.writers >= g.max {
			g.commit(b)
		}
	}
	<-g.turn
	if fnErr != nil {
		return fnErr
	}
	<-b.done
	return b.err
}

// begin returns the open batch or starts one. Called with the turn held.
func (g *groupCommit) begin(db *DB) (*writeBatch, error) {
	if g.open != nil {
		return g.open, nil
	}
	var stx *sql.Tx
	var err error
	for attempt := 0; ; attempt++ {
		// The transaction outlives the context of the writer that happened to open it.
		stx, err = db.sql.BeginTx(context.Background(), nil)
		if err == nil || !isBusy(err) || attempt == 4 {
			break
		}
		// Another process (an admin command) holds the lock beyond the busy timeout.
		time.Sleep(time.Duration(attempt+1) * 20 * time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("store: begin: %w", mapErr(err))
	}
	g.open = &writeBatch{stx: stx, stmts: map[string]*sql.Stmt{}, done: make(chan struct{})}
	return g.open, nil
}

// runWriter runs fn inside a savepoint of the batch. fnErr is fn's own error (its work is
// rolled back to the savepoint); lost says the whole transaction is gone.
func (db *DB) runWriter(ctx context.Context, b *writeBatch, fn func(tx *Tx) error) (fnErr, lost error) {
	// Statements run without the writer's cancellation: SQLite answers an interrupted
	// INSERT or UPDATE by rolling back the entire transaction, which holds other writers'
	// work. A writer that gives up still gets its answer after its statements finish.
	bg := context.WithoutCancel(ctx)
	tx := &Tx{q: b.stx, dialect: db.dialect, now: db.Now(), shared: true, db: db, stx: b.stx, bound: b.stmts}
	// The first writer of a transaction needs no savepoint: if it fails, the whole
	// transaction is rolled back (most batches have one writer: the inbound committer's).
	first := b.ran == 0
	b.ran++
	if !first {
		if _, err := b.stx.ExecContext(bg, "SAVEPOINT pf_writer"); err != nil {
			return err, fmt.Errorf("%w: savepoint: %v", errBatchAborted, err)
		}
	}
	fnErr = fn(tx)
	switch {
	case first && fnErr != nil:
		return fnErr, errFirstWriterFailed
	case first:
		return nil, nil
	case fnErr != nil:
		if _, err := b.stx.ExecContext(bg, "ROLLBACK TO pf_writer"); err != nil {
			return fnErr, fmt.Errorf("%w: %v", errBatchAborted, err)
		}
	}
	if _, err := b.stx.ExecContext(bg, "RELEASE pf_writer"); err != nil {
		return fnErr, fmt.Errorf("%w: %v", errBatchAborted, err)
	}
	return fnErr, nil
}

// commit ends the batch with COMMIT and tells its writers. Called with the turn held.
func (g *groupCommit) commit(b *writeBatch) {
	if err := b.stx.Commit(); err != nil {
		b.err = fmt.Errorf("store: commit: %w", mapErr(err))
	}
	g.commits.Add(1)
	g.open = nil
	close(b.done)
}

// abort ends a batch whose transaction is lost. Called with the turn held.
func (g *groupCommit) abort(b *writeBatch, err error) {
	_ = b.stx.Rollback()
	b.err = err
	g.open = nil
	close(b.done)
}

// commitIfIdle commits an open batch that no queued writer will reach.
func (g *groupCommit) commitIfIdle(db *DB) {
	g.turn <- struct{}{}
	if g.open != nil && g.waiting.Load() == 0 {
		g.commit(g.open)
	}
	<-g.turn
}

// checkpointEvery is how often the background checkpointer looks for new WAL frames.
const checkpointEvery = 250 * time.Millisecond

// startCheckpointer copies committed WAL frames into the database file in the background.
// SQLite's automatic checkpoint runs inside the commit that crosses the WAL size limit:
// that commit then also writes and fsyncs the database file while every writer of the
// group commit waits for it. A PASSIVE checkpoint on another connection never blocks
// writers or readers; it copies what no reader still needs, and the WAL starts over once
// everything was copied.
func (db *DB) startCheckpointer(every time.Duration) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		var seen int64
		for {
			select {
			case <-quit:
				return
			case <-t.C:
			}
			if n := db.group.commits.Load(); n != seen {
				seen = n
				// An error (a busy database file) only means the next tick tries again.
				_, _ = db.sql.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)")
			}
		}
	}()
	return func() { close(quit); <-done }
}
