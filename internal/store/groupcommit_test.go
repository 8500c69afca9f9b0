package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// openGroupCommitDB opens a fresh SQLite database with a scratch table. Group commit is
// SQLite's mechanism, so these tests use SQLite whatever the suite's database is.
func openGroupCommitDB(t testing.TB) *DB {
	t.Helper()
	ctx := context.Background()
	db, err := Open(ctx, "", filepath.Join(t.TempDir(), "gc.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.sql.ExecContext(ctx, `CREATE TABLE gc_rows (writer TEXT PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	return db
}

func gcRows(t testing.TB, db *DB) map[string]bool {
	t.Helper()
	rows, err := db.sql.Query(`SELECT writer FROM gc_rows`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]bool{}
	for rows.Next() {
		var w string
		if err := rows.Scan(&w); err != nil {
			t.Fatal(err)
		}
		got[w] = true
	}
	return got
}

// queueBehind runs writers that all queue while the first one holds the turn, so that the
// rest share the transaction the first one opened. fail names writers whose function
// inserts its row and then returns an error. It returns each writer's InTx result.
func queueBehind(t *testing.T, db *DB, writers int, fail map[int]bool) []error {
	t.Helper()
	ctx := context.Background()
	results := make([]error, writers)
	release, holding := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	insert := func(i int) func(tx *Tx) error {
		return func(tx *Tx) error {
			if _, err := tx.exec(ctx, `INSERT INTO gc_rows (writer) VALUES (?)`, fmt.Sprint(i)); err != nil {
				return err
			}
			if fail[i] {
				return fmt.Errorf("writer %d refuses", i)
			}
			return nil
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		results[0] = db.InTx(ctx, func(tx *Tx) error {
			close(holding)
			<-release // hold the turn until everybody else is queued
			return insert(0)(tx)
		})
	}()
	<-holding
	for i := 1; i < writers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = db.InTx(ctx, insert(i))
		}()
	}
	for db.group.waiting.Load() != int32(writers-1) {
		// The writers are goroutines that have not reached the turn yet.
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	return results
}

func TestGroupCommitSharesOneCommit(t *testing.T) {
	db := openGroupCommitDB(t)
	before := db.GroupCommitStats()
	results := queueBehind(t, db, 21, nil)
	for i, err := range results {
		if err != nil {
			t.Fatalf("writer %d: %v", i, err)
		}
	}
	if got := gcRows(t, db); len(got) != 21 {
		t.Fatalf("rows: %d, want 21", len(got))
	}
	after := db.GroupCommitStats()
	if commits, writers := after.Commits-before.Commits, after.Writers-before.Writers; commits != 1 || writers != 21 {
		t.Fatalf("commits %d for %d writers, want 1 for 21", commits, writers)
	}
}

func TestGroupCommitFailingWriterLeavesOthersDurable(t *testing.T) {
	db := openGroupCommitDB(t)
	results := queueBehind(t, db, 10, map[int]bool{0: true, 4: true, 9: true})
	rows := gcRows(t, db)
	for i, err := range results {
		failed := i == 0 || i == 4 || i == 9
		if failed != (err != nil) {
			t.Fatalf("writer %d: err %v", i, err)
		}
		if rows[fmt.Sprint(i)] == failed {
			t.Fatalf("writer %d: row present %v, failed %v", i, rows[fmt.Sprint(i)], failed)
		}
	}
}

func TestGroupCommitConflictIsTheWritersOwn(t *testing.T) {
	db := openGroupCommitDB(t)
	ctx := context.Background()
	if err := db.InTx(ctx, func(tx *Tx) error {
		_, err := tx.exec(ctx, `INSERT INTO gc_rows (writer) VALUES ('taken')`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	err := db.InTx(ctx, func(tx *Tx) error {
		_, err := tx.exec(ctx, `INSERT INTO gc_rows (writer) VALUES ('taken')`)
		return err
	})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate key: %v, want ErrConflict", err)
	}
	// The database still takes writes afterwards.
	if err := db.InTx(ctx, func(tx *Tx) error {
		_, err := tx.exec(ctx, `INSERT INTO gc_rows (writer) VALUES ('next')`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if rows := gcRows(t, db); !rows["taken"] || !rows["next"] || len(rows) != 2 {
		t.Fatalf("rows %v", rows)
	}
}

func TestGroupCommitCancelledWriterDoesNotAbortTheBatch(t *testing.T) {
	db := openGroupCommitDB(t)
	ctx := context.Background()
	cancelled, cancel := context.WithCancel(ctx)
	release := make(chan struct{})
	var wg sync.WaitGroup
	var first, second error
	holding := make(chan struct{})
	wg.Add(2)
	go func() {
		defer wg.Done()
		first = db.InTx(ctx, func(tx *Tx) error {
			close(holding)
			<-release
			_, err := tx.exec(ctx, `INSERT INTO gc_rows (writer) VALUES ('first')`)
			return err
		})
	}()
	<-holding
	go func() {
		defer wg.Done()
		second = db.InTx(ctx, func(tx *Tx) error {
			cancel() // the caller gives up while its statement is still to run
			_, err := tx.exec(cancelled, `INSERT INTO gc_rows (writer) VALUES ('second')`)
			return err
		})
	}()
	for db.group.waiting.Load() != 1 {
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	if first != nil || second != nil {
		t.Fatalf("first %v, second %v", first, second)
	}
	if rows := gcRows(t, db); !rows["first"] || !rows["second"] {
		t.Fatalf("rows %v", rows)
	}
}

// TestGroupCommitWaiterThatGivesUpDoesNotStrandTheBatch: the holder leaves the transaction
// open because a writer is queued, and that writer gives up instead of taking its turn;
// the holder's work must still be committed.
func TestGroupCommitWaiterThatGivesUpDoesNotStrandTheBatch(t *testing.T) {
	for range 20 { // the waiter's select picks the turn or the cancellation at random
		db := openGroupCommitDB(t)
		ctx := context.Background()
		release, holding := make(chan struct{}), make(chan struct{})
		holderDone := make(chan error, 1)
		go func() {
			holderDone <- db.InTx(ctx, func(tx *Tx) error {
				close(holding)
				<-release
				_, err := tx.exec(ctx, `INSERT INTO gc_rows (writer) VALUES ('holder')`)
				return err
			})
		}()
		<-holding
		gaveUp, cancel := context.WithCancel(ctx)
		waiterDone := make(chan error, 1)
		go func() {
			waiterDone <- db.InTx(gaveUp, func(tx *Tx) error {
				_, err := tx.exec(ctx, `INSERT INTO gc_rows (writer) VALUES ('waiter')`)
				return err
			})
		}()
		for db.group.waiting.Load() != 1 {
			runtime.Gosched()
		}
		cancel()
		close(release)
		if err := <-holderDone; err != nil {
			t.Fatalf("holder: %v", err)
		}
		werr := <-waiterDone
		rows := gcRows(t, db)
		if !rows["holder"] {
			t.Fatal("the holder's row is not committed")
		}
		if (werr == nil) != rows["waiter"] {
			t.Fatalf("waiter returned %v, its row present %v", werr, rows["waiter"])
		}
	}
}

// TestGroupCommitSurvivesAPanickingWriter: the panic reaches its caller, and the store keeps
// taking writes afterwards (the turn is not lost with the writer).
func TestGroupCommitSurvivesAPanickingWriter(t *testing.T) {
	db := openGroupCommitDB(t)
	ctx := context.Background()
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the writer's panic did not reach its caller")
			}
		}()
		_ = db.InTx(ctx, func(tx *Tx) error {
			if _, err := tx.exec(ctx, `INSERT INTO gc_rows (writer) VALUES ('panicked')`); err != nil {
				return err
			}
			panic("writer bug")
		})
	}()
	if err := db.InTx(ctx, func(tx *Tx) error {
		_, err := tx.exec(ctx, `INSERT INTO gc_rows (writer) VALUES ('after')`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if rows := gcRows(t, db); rows["panicked"] || !rows["after"] {
		t.Fatalf("rows %v", rows)
	}
}
