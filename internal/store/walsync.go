package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// walSyncer makes committed SQLite transactions durable outside the writer lock.
//
// With synchronous=FULL, SQLite fsyncs the WAL inside COMMIT, while it still holds the one
// write lock: the next batch of writers cannot even start its statements until the disk
// has answered. Postfach runs SQLite with synchronous=NORMAL (COMMIT writes its WAL frames
// to the file but does not fsync) and fsyncs the WAL itself after the commit returned and
// the lock is free; a writer hears "done" only after an fsync that began after its commit.
// So an acknowledged transaction is exactly as durable as under FULL, and the next batch
// runs its statements while the previous one waits for the disk. One fsync covers every
// commit made before it started, so concurrent commits share it.
//
// Other connections may read a committed transaction before that fsync returns; after a
// power loss such a transaction can be gone, but nobody was told it was done. (SQLite
// itself fsyncs the WAL before every checkpoint and the database file after it, so nothing
// already checkpointed depends on this.)
type walSyncer struct {
	path  string       // the database's -wal file
	flush func() error // fsync; tests watch it

	mu        sync.Mutex
	cond      *sync.Cond
	requested uint64 // tickets handed out
	synced    uint64 // every ticket up to here is on disk
	running   bool
	failedTo  uint64 // tickets up to here saw a failed fsync
	failure   error
	lastFile  os.FileInfo // the WAL file the directory entry was synced for
}

func newWALSyncer(dbPath string) *walSyncer {
	s := &walSyncer{path: dbPath + "-wal"}
	s.flush = s.fsync
	s.cond = sync.NewCond(&s.mu)
	return s
}

// ticket is taken right after a commit returned: its frames are in the file by then.
func (s *walSyncer) ticket() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requested++
	return s.requested
}

// wait returns once an fsync that began after ticket t was taken has completed. The first
// waiter that finds no fsync running runs one for everybody.
func (s *walSyncer) wait(t uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.synced < t {
		if t <= s.failedTo {
			return s.failure
		}
		if s.running {
			s.cond.Wait()
			continue
		}
		s.running = true
		target := s.requested
		s.mu.Unlock()
		err := s.flush()
		s.mu.Lock()
		s.running = false
		if err != nil {
			s.failedTo, s.failure = target, fmt.Errorf("store: fsync %s: %w", filepath.Base(s.path), err)
		} else {
			s.synced = max(s.synced, target)
		}
		s.cond.Broadcast()
	}
	return nil
}

// fsync flushes the WAL file, and its directory entry when the file is new. A missing WAL
// means SQLite checkpointed everything into the database file (and synced it) and removed
// the WAL when its last connection closed.
func (s *walSyncer) fsync() error {
	f, err := os.OpenFile(s.path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return err
	}
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if s.lastFile != nil && os.SameFile(s.lastFile, info) {
		return nil
	}
	// A WAL file created since the last look: its name must survive a power loss too.
	dir, err := os.Open(filepath.Dir(s.path))
	if err != nil {
		return err
	}
	defer dir.Close()
	if err := dir.Sync(); err != nil {
		return err
	}
	s.lastFile = info
	return nil
}
