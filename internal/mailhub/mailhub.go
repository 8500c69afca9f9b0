// Package mailhub carries "something changed" signals about hosted mailboxes between the
// protocol sessions of one process and, on PostgreSQL, of every instance: new or changed
// IMAP state (wakes IDLE and the next poll) and a new password (ends open sessions, H11).
//
// Signals are hints, never data: a session that receives one rereads the database, and a
// lost signal only delays an update until the session's next periodic look. On PostgreSQL
// the signals travel by LISTEN/NOTIFY on one channel; triggers on messages and
// message_mailboxes also signal mail that the inbound server stored.
package mailhub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/stdlib"

	"postfach/internal/store"
)

// Channel is the PostgreSQL notification channel.
const Channel = "postfach_hosted"

// Kinds of signal.
const (
	KindChanged     = 'm' // the mailbox's IMAP state changed
	KindNewMail     = 'n' // mail was stored for the mailbox that may have no UID yet
	KindCredentials = 'c' // the mailbox's password changed
)

// Hub fans signals out to subscribers.
type Hub struct {
	db  *store.DB
	log *slog.Logger

	mu     sync.Mutex
	subs   map[int64]map[*Sub]struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

// Sub is one session's subscription to a mailbox.
type Sub struct {
	hub       *Hub
	mailboxID int64
	// Changed receives a value when the mailbox changed; it holds at most one pending signal.
	Changed chan struct{}
	// Revoked is closed when the mailbox's password changed.
	Revoked chan struct{}
	once    sync.Once
	newMail atomic.Bool
}

// TakeNewMail reports (and clears) whether new mail was signalled since the last call.
func (s *Sub) TakeNewMail() bool { return s.newMail.Swap(false) }

// New makes a hub; call Start to listen on PostgreSQL.
func New(db *store.DB, log *slog.Logger) *Hub {
	if log == nil {
		log = slog.Default()
	}
	return &Hub{db: db, log: log, subs: map[int64]map[*Sub]struct{}{}}
}

// Subscribe starts receiving signals about a mailbox; Close ends it.
func (h *Hub) Subscribe(mailboxID int64) *Sub {
	s := &Sub{hub: h, mailboxID: mailboxID, Changed: make(chan struct{}, 1), Revoked: make(chan struct{})}
	h.mu.Lock()
	if h.subs[mailboxID] == nil {
		h.subs[mailboxID] = map[*Sub]struct{}{}
	}
	h.subs[mailboxID][s] = struct{}{}
	h.mu.Unlock()
	return s
}

// Close ends the subscription.
func (s *Sub) Close() {
	h := s.hub
	h.mu.Lock()
	delete(h.subs[s.mailboxID], s)
	if len(h.subs[s.mailboxID]) == 0 {
		delete(h.subs, s.mailboxID)
	}
	h.mu.Unlock()
}

func (s *Sub) revoke() { s.once.Do(func() { close(s.Revoked) }) }

// deliver fans a signal out in this process.
func (h *Hub) deliver(kind byte, mailboxID int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs[mailboxID] {
		switch kind {
		case KindCredentials:
			s.revoke()
		default:
			if kind == KindNewMail {
				s.newMail.Store(true)
			}
			select {
			case s.Changed <- struct{}{}:
			default: // one pending signal is enough
			}
		}
	}
}

// Publish signals a change to this process's subscribers at once and, on PostgreSQL, to
// every instance.
func (h *Hub) Publish(ctx context.Context, kind byte, mailboxID int64) {
	h.deliver(kind, mailboxID)
	if h.db.Dialect() != store.Postgres {
		return
	}
	payload := string(kind) + ":" + strconv.FormatInt(mailboxID, 10)
	if _, err := h.db.SQL().ExecContext(ctx, `SELECT pg_notify($1, $2)`, Channel, payload); err != nil {
		h.log.Warn("mailhub: notify", "err", err)
	}
}

// triggerSQL makes PostgreSQL itself signal mail stored by any writer (the inbound server
// knows nothing of IMAP). It is (re)created on start under a transaction-scoped advisory
// lock, because concurrent CREATE OR REPLACE FUNCTION statements conflict.
var triggerSQL = []string{
	`SELECT pg_advisory_xact_lock(7011007)`,
	`CREATE OR REPLACE FUNCTION postfach_hosted_notify() RETURNS trigger AS $$
BEGIN
	IF NEW.mailbox_id IS NOT NULL THEN
		PERFORM pg_notify('` + Channel + `', 'n:' || NEW.mailbox_id);
	END IF;
	RETURN NEW;
END $$ LANGUAGE plpgsql`,
	`DROP TRIGGER IF EXISTS postfach_hosted_messages ON messages`,
	`CREATE TRIGGER postfach_hosted_messages AFTER INSERT ON messages FOR EACH ROW EXECUTE FUNCTION postfach_hosted_notify()`,
	`DROP TRIGGER IF EXISTS postfach_hosted_links ON message_mailboxes`,
	`CREATE TRIGGER postfach_hosted_links AFTER INSERT ON message_mailboxes FOR EACH ROW EXECUTE FUNCTION postfach_hosted_notify()`,
}

// Start listens for other instances' signals on PostgreSQL; on SQLite (one process) it
// does nothing. Close stops it.
func (h *Hub) Start(ctx context.Context) error {
	if h.db.Dialect() != store.Postgres {
		return nil
	}
	tx, err := h.db.SQL().BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("mailhub: %w", err)
	}
	for _, q := range triggerSQL {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("mailhub: install trigger: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("mailhub: install trigger: %w", err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	h.cancel, h.done = cancel, make(chan struct{})
	go h.listen(ctx)
	return nil
}

func (h *Hub) listen(ctx context.Context) {
	defer close(h.done)
	for ctx.Err() == nil {
		err := h.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		h.log.Warn("mailhub: listen connection lost, retrying", "err", err)
		// Whatever was signalled while we were away: wake every session to look.
		h.wakeAll()
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (h *Hub) wakeAll() {
	h.mu.Lock()
	ids := make([]int64, 0, len(h.subs))
	for id := range h.subs {
		ids = append(ids, id)
	}
	h.mu.Unlock()
	for _, id := range ids {
		h.deliver(KindChanged, id)
	}
}

func (h *Hub) listenOnce(ctx context.Context) error {
	conn, err := h.db.SQL().Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(driverConn any) error {
		sc, ok := driverConn.(*stdlib.Conn)
		if !ok {
			return errors.New("not a pgx connection")
		}
		pc := sc.Conn()
		if _, err := pc.Exec(ctx, "LISTEN "+Channel); err != nil {
			return err
		}
		defer pc.Exec(context.WithoutCancel(ctx), "UNLISTEN "+Channel)
		for {
			n, err := pc.WaitForNotification(ctx)
			if err != nil {
				return err
			}
			kind, id, ok := ParsePayload(n.Payload)
			if ok {
				h.deliver(kind, id)
			}
		}
	})
}

// ParsePayload reads "m:<id>", "n:<id>" or "c:<id>".
func ParsePayload(p string) (kind byte, mailboxID int64, ok bool) {
	k, idText, found := strings.Cut(p, ":")
	if !found || len(k) != 1 || (k[0] != KindChanged && k[0] != KindNewMail && k[0] != KindCredentials) {
		return 0, 0, false
	}
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil || id <= 0 {
		return 0, 0, false
	}
	return k[0], id, true
}

// Close stops listening.
func (h *Hub) Close() {
	if h.cancel != nil {
		h.cancel()
		<-h.done
	}
}
