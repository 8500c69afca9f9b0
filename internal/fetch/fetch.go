// Package fetch owns fetching the mail of external accounts over IMAP and POP3 (C1, C2, C4,
// C5, C10, X6): the background loop, the protocol sessions and the import rules.
//
// Import rules, which every change here must keep:
//   - What was imported is remembered per (folder, UIDVALIDITY) and UID, or per POP3 UIDL,
//     in the same transaction that stores the message; never by \Seen or by date.
//   - A changed UIDVALIDITY rescans the folder; a message whose content hash the account
//     already has is recorded, not stored again.
//   - Mail is deleted on the server (C4) only after the transaction that stored it
//     committed, and only our own UIDs: UID EXPUNGE (RFC 4315) where offered; else STORE
//     \Deleted on our UIDs and EXPUNGE only when no other message is \Deleted.
//   - The user's sent mail (the Sent folder, any folder marked \Sent) is never deleted.
//   - After any POP3 error the connection is dropped without QUIT, so the server rolls back
//     DELEs of that session (RFC 1939 §6: deletions happen only in the UPDATE state).
//   - One instance fetches a source at a time: a lease row, renewed by every commit, which
//     also fences a stalled holder out of committing.
package fetch

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"postfach/internal/core"
	"postfach/internal/netguard"
	"postfach/internal/store"
)

// Fetcher runs fetch sources. The zero values of the optional fields are production defaults.
type Fetcher struct {
	DB   *store.DB
	Core *core.Service
	Log  *slog.Logger

	// Holder names this instance in lease rows; empty: host name, pid and a random suffix.
	// A stable name (one per instance) lets a restarted instance take back its sources at
	// once instead of waiting for their leases to expire.
	Holder string
	// Network is what user-supplied mail hosts may be (the operator's allowed private ranges).
	Network netguard.Policy
	// RootCAs verifies servers' certificates (C5); nil: the system's roots.
	RootCAs *x509.CertPool
	// Hostname is ours, for generated Message-IDs.
	Hostname string

	Lease        time.Duration // lease length; renewed at every commit; default 2 min
	PollInterval time.Duration // next run of a source without IDLE; default 5 min
	RetryAfter   time.Duration // next run after a failure (doubles up to PollInterval); default 1 min
	Tick         time.Duration // how often the loop looks for due sources; default 2 s
	MaxWorkers   int           // sources fetched at once by this instance; default 16
	// BatchBytes and BatchMessages bound one transaction of imported mail.
	BatchBytes    int64
	BatchMessages int
	// MaxMessageBytes is the largest message fetched; larger ones stay on the server and the
	// source's error says so. Default 64 MiB.
	MaxMessageBytes int64
	// IdleFor is how long one IMAP IDLE lasts before the source is looked at again (new
	// folders, "fetch now"); 0: 25 min. NoIdle switches IDLE off (tests, the benchmark).
	IdleFor time.Duration
	NoIdle  bool

	once sync.Once
}

func (f *Fetcher) init() {
	f.once.Do(func() {
		if f.Log == nil {
			f.Log = slog.Default()
		}
		if f.Holder == "" {
			host, _ := os.Hostname()
			var b [4]byte
			_, _ = rand.Read(b[:])
			f.Holder = fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
		}
		def := func(d *time.Duration, v time.Duration) {
			if *d <= 0 {
				*d = v
			}
		}
		def(&f.Lease, 2*time.Minute)
		def(&f.PollInterval, 5*time.Minute)
		def(&f.RetryAfter, time.Minute)
		def(&f.Tick, 2*time.Second)
		def(&f.IdleFor, 25*time.Minute)
		if f.MaxWorkers <= 0 {
			f.MaxWorkers = 16
		}
		if f.BatchBytes <= 0 {
			f.BatchBytes = 16 << 20
		}
		if f.BatchMessages <= 0 {
			f.BatchMessages = 500
		}
		if f.MaxMessageBytes <= 0 {
			f.MaxMessageBytes = 64 << 20
		}
		if f.Hostname == "" {
			f.Hostname = "localhost"
		}
	})
}

// Run fetches due sources until ctx ends.
func (f *Fetcher) Run(ctx context.Context) {
	f.init()
	sem := make(chan struct{}, f.MaxWorkers)
	running := map[int64]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	defer wg.Wait()
	if err := f.DB.InTx(ctx, func(tx *store.Tx) error { return tx.ReleaseHolderLeases(ctx, f.Holder) }); err != nil && ctx.Err() == nil {
		f.Log.Warn("fetch: release leases of a previous run", "err", err)
	}
	tick := time.NewTicker(f.Tick)
	defer tick.Stop()
	var lastSync time.Time
	for {
		if time.Since(lastSync) > 30*time.Second {
			if err := f.DB.InTx(ctx, func(tx *store.Tx) error { return tx.SyncFetchSources(ctx) }); err != nil && ctx.Err() == nil {
				f.Log.Warn("fetch: sync sources", "err", err)
			}
			lastSync = time.Now()
		}
		ids, err := f.DB.Read().DueFetchSources(ctx, f.Holder, f.MaxWorkers)
		if err != nil && ctx.Err() == nil {
			f.Log.Warn("fetch: due sources", "err", err)
		}
		for _, id := range ids {
			mu.Lock()
			busy := running[id]
			mu.Unlock()
			if busy {
				continue
			}
			select {
			case sem <- struct{}{}:
			default:
				continue // all workers busy; the source stays due
			}
			mu.Lock()
			running[id] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				// A source in IDLE gives its worker slot back: waiting costs a connection,
				// not a turn of the sources that poll.
				release := sync.OnceFunc(func() { <-sem })
				defer func() { release(); mu.Lock(); delete(running, id); mu.Unlock() }()
				if _, err := f.runSource(ctx, id, release); err != nil && !errors.Is(err, errNotClaimed) && ctx.Err() == nil {
					f.Log.Info("fetch: source failed", "mailbox", id, "err", err)
				}
			}()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

var errNotClaimed = errors.New("fetch: source not due or leased elsewhere")

// Result is what one run of a source did.
type Result struct {
	Imported   int // messages stored
	Duplicates int // messages the account already had (rescan, same message in two folders)
	Deleted    int // messages deleted on the server after their commit
	Folders    int // folders synchronised (C10), when asked
}

// RunSource claims a due source, fetches it (and stays in IMAP IDLE where offered, unless
// NoIdle) and gives the lease back with the next due time.
func (f *Fetcher) RunSource(ctx context.Context, mailboxID int64) (Result, error) {
	return f.runSource(ctx, mailboxID, nil)
}

func (f *Fetcher) runSource(ctx context.Context, mailboxID int64, onIdle func()) (Result, error) {
	f.init()
	var src store.FetchSource
	err := f.DB.InTx(ctx, func(tx *store.Tx) error {
		var err error
		src, err = tx.ClaimFetchSource(ctx, mailboxID, f.Holder, tx.Now()+f.Lease.Milliseconds())
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return Result{}, errNotClaimed
	}
	if err != nil {
		return Result{}, fmt.Errorf("fetch: claim: %w", err)
	}
	run := &sourceRun{f: f, src: src, onIdle: onIdle}
	res, err := run.run(ctx)
	next := time.Now().Add(f.PollInterval)
	if run.idled {
		next = time.Now() // IDLE ended by its time limit: go straight back into it
	}
	outcome := store.FetchRunResult{Imported: int64(res.Imported), Idle: run.idled}
	if err != nil {
		outcome.Error = truncate(err.Error(), 500)
		backoff := f.RetryAfter << min(src.Failures, 6)
		if errors.Is(err, core.ErrReauthorize) || errors.Is(err, errNotConfigured) {
			backoff = f.PollInterval // waits for a user; a new grant marks the source due
		}
		next = time.Now().Add(min(backoff, f.PollInterval))
	}
	outcome.NextDue = next.UnixMilli()
	relCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if rerr := f.DB.InTx(relCtx, func(tx *store.Tx) error { return tx.ReleaseFetchSource(relCtx, mailboxID, f.Holder, outcome) }); rerr != nil && err == nil {
		err = rerr
	}
	return res, err
}

var errNotConfigured = errors.New("fetch: account has no usable receive settings")

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// tlsConfig verifies the server's certificate against its host name (C5).
func (f *Fetcher) tlsConfig(host string) *tls.Config {
	return &tls.Config{ServerName: host, RootCAs: f.RootCAs, MinVersion: tls.VersionTLS12}
}
