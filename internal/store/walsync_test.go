package store

import (
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// watchedSyncer counts flushes and lets the test hold one open.
func watchedSyncer(t *testing.T) (*walSyncer, *atomic.Int32, chan chan error) {
	s := newWALSyncer(filepath.Join(t.TempDir(), "x.db"))
	var flushes atomic.Int32
	gate := make(chan chan error)
	s.flush = func() error {
		flushes.Add(1)
		reply := make(chan error)
		gate <- reply
		return <-reply
	}
	return s, &flushes, gate
}

func TestWALSyncerWaitsForAFlushThatBeganAfterTheTicket(t *testing.T) {
	s, flushes, gate := watchedSyncer(t)
	first := s.ticket()
	firstDone := make(chan error)
	go func() { firstDone <- s.wait(first) }()
	running := <-gate // the flush for the first ticket has begun
	second := s.ticket()
	secondDone := make(chan error)
	go func() { secondDone <- s.wait(second) }()
	running <- nil
	if err := <-firstDone; err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-secondDone:
		t.Fatalf("the second commit was acknowledged by a flush that began before it (%v)", err)
	case next := <-gate:
		next <- nil
	}
	if err := <-secondDone; err != nil {
		t.Fatal(err)
	}
	if n := flushes.Load(); n != 2 {
		t.Fatalf("%d flushes, want 2", n)
	}
}

func TestWALSyncerSharesOneFlush(t *testing.T) {
	s, flushes, gate := watchedSyncer(t)
	tickets := make([]uint64, 50)
	for i := range tickets {
		tickets[i] = s.ticket()
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(tickets))
	for _, tk := range tickets {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- s.wait(tk) }()
	}
	(<-gate) <- nil
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := flushes.Load(); n != 1 {
		t.Fatalf("%d flushes for 50 commits taken before it, want 1", n)
	}
}

func TestWALSyncerFailureReachesTheCommitsItCovered(t *testing.T) {
	s, _, gate := watchedSyncer(t)
	tk := s.ticket()
	done := make(chan error)
	go func() { done <- s.wait(tk) }()
	(<-gate) <- errors.New("disk gone")
	if err := <-done; err == nil {
		t.Fatal("a failed fsync acknowledged the commit")
	}
	later := s.ticket()
	go func() { done <- s.wait(later) }()
	(<-gate) <- nil
	if err := <-done; err != nil {
		t.Fatalf("a later commit with a good fsync: %v", err)
	}
}

// TestWALSyncerFlushesTheRealFile runs the real fsync against a database's WAL.
func TestWALSyncerFlushesTheRealFile(t *testing.T) {
	db := openGroupCommitDB(t)
	if err := db.group.wal.fsync(); err != nil {
		t.Fatal(err)
	}
	if db.group.wal.lastFile == nil {
		t.Fatal("the WAL file of an open database was not found")
	}
}
