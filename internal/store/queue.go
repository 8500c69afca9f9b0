package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
)

// Outbound queue states. A row moves queued → sending → sent, or → deferred → sending … on
// temporary failures, and ends in sent, failed (permanent failure or given up: a bounce was
// queued) or refused (the policy no longer allows the sender at dequeue).
const (
	QueueQueued   = "queued"
	QueueSending  = "sending"
	QueueSent     = "sent"
	QueueDeferred = "deferred"
	QueueFailed   = "failed"
	QueueRefused  = "refused"
)

// Queue row kinds: a user's message, or a delivery status notification to a sender.
const (
	QueueKindMessage = "message"
	QueueKindDSN     = "dsn"
)

// QueueRecipient is the delivery state of one envelope recipient.
type QueueRecipient struct {
	Address        string `json:"address"`
	State          string `json:"state"` // queued, sent, deferred, failed
	Code           int    `json:"code,omitempty"`
	Enhanced       string `json:"enhanced,omitempty"`
	Text           string `json:"text,omitempty"`
	MaybeDelivered bool   `json:"maybe_delivered,omitempty"`
}

// QueueEntry is one outbound_queue row, with the stored message's Message-ID and subject.
type QueueEntry struct {
	ID                 int64            `json:"id"`
	TenantID           int64            `json:"tenant_id"`
	MessageID          int64            `json:"message_id"`
	MailboxID          *int64           `json:"mailbox_id,omitempty"`
	UserID             *int64           `json:"user_id,omitempty"`
	Kind               string           `json:"kind"`
	SenderKey          string           `json:"sender_key"`
	ReplyKey           string           `json:"reply_key,omitempty"`
	Transport          string           `json:"transport"`
	TransportMailboxID *int64           `json:"transport_mailbox_id,omitempty"`
	EnvelopeFrom       string           `json:"envelope_from"`
	Recipients         []QueueRecipient `json:"recipients"`
	State              string           `json:"state"`
	Attempts           int              `json:"attempts"`
	NextAttemptAt      int64            `json:"next_attempt_at"`
	FirstAttemptAt     int64            `json:"first_attempt_at"`
	LeaseOwner         string           `json:"-"`
	LeaseUntil         int64            `json:"-"`
	LastError          string           `json:"last_error,omitempty"`
	RefusedRule        string           `json:"refused_rule,omitempty"`
	SentCopy           string           `json:"sent_copy,omitempty"`
	CreatedAt          int64            `json:"created_at"`
	UpdatedAt          int64            `json:"updated_at"`
	// From the messages row.
	HeaderMessageID string `json:"header_message_id"`
	Subject         string `json:"subject"`
	Raw             []byte `json:"-"` // loaded by ClaimOutbound only
}

const queueCols = `q.id, q.tenant_id, q.message_id, q.mailbox_id, q.user_id, q.kind, q.sender_key, q.reply_key, q.transport,
	q.transport_mailbox_id, q.envelope_from, q.recipients, q.state, q.attempts, q.next_attempt_at, q.first_attempt_at,
	q.lease_owner, q.lease_until, q.last_error, q.refused_rule, q.sent_copy, q.created_at, q.updated_at, m.message_id, m.subject`

func scanQueue(s interface{ Scan(...any) error }, extra ...any) (QueueEntry, error) {
	var e QueueEntry
	var rcpts string
	dst := []any{&e.ID, &e.TenantID, &e.MessageID, &e.MailboxID, &e.UserID, &e.Kind, &e.SenderKey, &e.ReplyKey, &e.Transport,
		&e.TransportMailboxID, &e.EnvelopeFrom, &rcpts, &e.State, &e.Attempts, &e.NextAttemptAt, &e.FirstAttemptAt,
		&e.LeaseOwner, &e.LeaseUntil, &e.LastError, &e.RefusedRule, &e.SentCopy, &e.CreatedAt, &e.UpdatedAt, &e.HeaderMessageID, &e.Subject}
	if err := s.Scan(append(dst, extra...)...); err != nil {
		return e, mapErr(err)
	}
	if err := json.Unmarshal([]byte(rcpts), &e.Recipients); err != nil {
		return e, fmt.Errorf("queue %d recipients: %w", e.ID, err)
	}
	return e, nil
}

func encodeRecipients(r []QueueRecipient) string {
	if r == nil {
		r = []QueueRecipient{}
	}
	b, _ := json.Marshal(r) // plain strings and ints cannot fail
	return string(b)
}

// EnqueueOutbound adds a queue row for a stored message in the caller's transaction, so the
// message and its row commit together (the API answers 202 only after that commit). A row
// may be written already claimed: state "sending" with its lease, attempt count and first
// attempt set (a send handed straight to this instance's workers, see core.Intake).
func (tx *Tx) EnqueueOutbound(ctx context.Context, tenantID int64, e QueueEntry) (QueueEntry, error) {
	e.TenantID = tenantID
	if e.State == "" {
		e.State = QueueQueued
	}
	if e.Kind == "" {
		e.Kind = QueueKindMessage
	}
	if e.Transport == "" {
		e.Transport = "system"
	}
	if e.NextAttemptAt == 0 {
		e.NextAttemptAt = tx.now
	}
	e.CreatedAt, e.UpdatedAt = tx.now, tx.now
	id, err := tx.insertID(ctx, `INSERT INTO outbound_queue (tenant_id, message_id, mailbox_id, user_id, kind, sender_key, reply_key, transport,
		transport_mailbox_id, envelope_from, recipients, state, attempts, next_attempt_at, first_attempt_at, lease_owner, lease_until,
		created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		tenantID, e.MessageID, e.MailboxID, e.UserID, e.Kind, e.SenderKey, e.ReplyKey, e.Transport,
		e.TransportMailboxID, e.EnvelopeFrom, encodeRecipients(e.Recipients), e.State, e.Attempts, e.NextAttemptAt, e.FirstAttemptAt,
		e.LeaseOwner, e.LeaseUntil, e.CreatedAt, e.UpdatedAt)
	if err != nil {
		return e, fmt.Errorf("enqueue outbound: %w", err)
	}
	e.ID = id
	return e, nil
}

// MessageIDByIdempotencyKey finds the message a key created before.
func (tx *Tx) MessageIDByIdempotencyKey(ctx context.Context, tenantID int64, key string) (int64, error) {
	var id int64
	err := tx.queryRow(ctx, `SELECT id FROM messages WHERE tenant_id = ? AND idempotency_key = ?`, tenantID, key).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("message by idempotency key: %w", mapErr(err))
	}
	return id, nil
}

// SystemMailboxID is the id of the tenant's Systemmail-Box.
func (tx *Tx) SystemMailboxID(ctx context.Context, tenantID int64) (int64, error) {
	var id int64
	err := tx.queryRow(ctx, `SELECT id FROM mailboxes WHERE tenant_id = ? AND kind = ? ORDER BY id LIMIT 1`, tenantID, KindSystem).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("system mailbox: %w", mapErr(err))
	}
	return id, nil
}

// ClaimOutbound leases up to limit due rows of every tenant for owner: rows queued or
// deferred whose next attempt is due, and rows left "sending" by an instance whose lease
// ran out (it died). Each claimed row counts one more attempt. On PostgreSQL concurrent
// claimers skip each other's rows (FOR UPDATE SKIP LOCKED); on SQLite the immediate
// transaction makes the claim the only writer. The rows come back with the raw message.
func (tx *Tx) ClaimOutbound(ctx context.Context, owner string, leaseUntil int64, limit int) ([]QueueEntry, error) {
	lock := ""
	if tx.dialect == Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	var ids []int64
	for _, q := range []string{
		`SELECT id FROM outbound_queue WHERE state = 'sending' AND lease_until <= ? LIMIT ?` + lock,
		`SELECT id FROM outbound_queue WHERE state IN ('queued', 'deferred') AND next_attempt_at <= ? LIMIT ?` + lock,
	} {
		if len(ids) >= limit {
			break
		}
		rows, err := tx.query(ctx, q, tx.now, limit-len(ids))
		if err != nil {
			return nil, fmt.Errorf("claim outbound: %w", err)
		}
		got, err := collect(rows, func(s interface{ Scan(...any) error }) (int64, error) {
			var id int64
			return id, s.Scan(&id)
		})
		if err != nil {
			return nil, fmt.Errorf("claim outbound: %w", err)
		}
		ids = append(ids, got...)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	args := append([]any{owner, leaseUntil, tx.now, tx.now}, int64Args(ids)...)
	if _, err := tx.exec(ctx, `UPDATE outbound_queue SET state = 'sending', attempts = attempts + 1, lease_owner = ?, lease_until = ?,
		first_attempt_at = CASE WHEN first_attempt_at = 0 THEN ? ELSE first_attempt_at END, updated_at = ?
		WHERE id IN (`+placeholders(len(ids))+`)`, args...); err != nil {
		return nil, fmt.Errorf("claim outbound: %w", err)
	}
	rows, err := tx.query(ctx, `SELECT `+queueCols+`, b.raw FROM outbound_queue q JOIN messages m ON m.id = q.message_id
		JOIN message_bodies b ON b.message_id = q.message_id AND b.tenant_id = q.tenant_id
		WHERE q.id IN (`+placeholders(len(ids))+`) ORDER BY q.id`, int64Args(ids)...)
	if err != nil {
		return nil, fmt.Errorf("claim outbound: %w", err)
	}
	return collect(rows, func(s interface{ Scan(...any) error }) (QueueEntry, error) {
		var raw []byte
		e, err := scanQueue(s, &raw)
		e.Raw = raw
		return e, err
	})
}

// StartOutboundAttempt records "attempt N started, next attempt at T" for a claimed row
// before anything is dialled, so that a crash during the attempt leaves the plan behind.
func (tx *Tx) StartOutboundAttempt(ctx context.Context, e QueueEntry, nextAttemptAt int64) (int64, error) {
	if _, err := tx.exec(ctx, `UPDATE outbound_queue SET next_attempt_at = ? WHERE id = ? AND lease_owner = ?`,
		nextAttemptAt, e.ID, e.LeaseOwner); err != nil {
		return 0, fmt.Errorf("start attempt: %w", err)
	}
	return tx.LogOutboundAttempt(ctx, e, nextAttemptAt)
}

// LogOutboundAttempt writes the "attempt N started" log row of a claimed row whose next
// attempt time is already stored (StartOutboundAttempt, or a row enqueued claimed).
func (tx *Tx) LogOutboundAttempt(ctx context.Context, e QueueEntry, nextAttemptAt int64) (int64, error) {
	id, err := tx.insertID(ctx, `INSERT INTO outbound_attempts (tenant_id, queue_id, attempt, started_at, detail) VALUES (?, ?, ?, ?, ?)`,
		e.TenantID, e.ID, e.Attempts, tx.now, fmt.Sprintf("next attempt at %d", nextAttemptAt))
	if err != nil {
		return 0, fmt.Errorf("start attempt: %w", err)
	}
	return id, nil
}

// RenewOutboundLease extends owner's lease on rows still being delivered.
func (tx *Tx) RenewOutboundLease(ctx context.Context, owner string, ids []int64, until int64) error {
	if len(ids) == 0 {
		return nil
	}
	args := append([]any{until, owner}, int64Args(ids)...)
	_, err := tx.exec(ctx, `UPDATE outbound_queue SET lease_until = ? WHERE lease_owner = ? AND state = 'sending' AND id IN (`+
		placeholders(len(ids))+`)`, args...)
	if err != nil {
		return fmt.Errorf("renew lease: %w", err)
	}
	return nil
}

// OutboundOutcome is what one attempt decided for a claimed row.
type OutboundOutcome struct {
	Entry         QueueEntry // as claimed: ID, TenantID, MessageID and LeaseOwner are used
	State         string
	Recipients    []QueueRecipient
	NextAttemptAt int64
	LastError     string
	RefusedRule   string
	SentCopy      string
	AttemptID     int64
	AttemptResult string // short summary for the attempt log
	AttemptDetail string // the server's answers and the transcript
}

// FinishOutbound stores an attempt's outcome. It changes the row only while owner still
// holds the lease; ErrNotFound means another instance took the row over (our lease ran out),
// and its outcome wins.
func (tx *Tx) FinishOutbound(ctx context.Context, o OutboundOutcome) error {
	e := o.Entry
	res, err := tx.exec(ctx, `UPDATE outbound_queue SET state = ?, recipients = ?, next_attempt_at = ?, last_error = ?, refused_rule = ?,
		sent_copy = ?, lease_owner = '', lease_until = 0, updated_at = ? WHERE id = ? AND lease_owner = ? AND state = 'sending'`,
		o.State, encodeRecipients(o.Recipients), o.NextAttemptAt, o.LastError, o.RefusedRule, o.SentCopy, tx.now, e.ID, e.LeaseOwner)
	if err := affected(res, err, "finish outbound"); err != nil {
		return err
	}
	if o.AttemptID != 0 {
		if _, err := tx.exec(ctx, `UPDATE outbound_attempts SET finished_at = ?, result = ?, detail = ? WHERE id = ?`,
			tx.now, o.AttemptResult, o.AttemptDetail, o.AttemptID); err != nil {
			return fmt.Errorf("finish attempt: %w", err)
		}
	}
	if _, err := tx.exec(ctx, `UPDATE messages SET status = ? WHERE tenant_id = ? AND id = ?`, o.State, e.TenantID, e.MessageID); err != nil {
		return fmt.Errorf("finish outbound message: %w", err)
	}
	return nil
}

// SetSentCopy records the outcome of the copy into the Sent folder (C9).
func (tx *Tx) SetSentCopy(ctx context.Context, tenantID, queueID int64, state string) error {
	_, err := tx.exec(ctx, `UPDATE outbound_queue SET sent_copy = ? WHERE tenant_id = ? AND id = ?`, state, tenantID, queueID)
	if err != nil {
		return fmt.Errorf("sent copy: %w", err)
	}
	return nil
}

// QueueFilter narrows OutboundQueue.
type QueueFilter struct {
	State  string // empty: every state
	UserID int64  // 0: every user's sends
	Limit  int
}

// OutboundQueue lists a tenant's queue rows, newest first.
func (tx *Tx) OutboundQueue(ctx context.Context, tenantID int64, f QueueFilter) ([]QueueEntry, error) {
	q := `SELECT ` + queueCols + ` FROM outbound_queue q JOIN messages m ON m.id = q.message_id WHERE q.tenant_id = ?`
	args := []any{tenantID}
	if f.State != "" {
		q += ` AND q.state = ?`
		args = append(args, f.State)
	}
	if f.UserID != 0 {
		q += ` AND q.user_id = ?`
		args = append(args, f.UserID)
	}
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 200
	}
	q += ` ORDER BY q.id DESC LIMIT ?`
	args = append(args, f.Limit)
	rows, err := tx.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("outbound queue: %w", err)
	}
	return collect(rows, func(s interface{ Scan(...any) error }) (QueueEntry, error) { return scanQueue(s) })
}

// OutboundByMessage is the queue row of a tenant's sent message.
func (tx *Tx) OutboundByMessage(ctx context.Context, tenantID, messageID int64) (QueueEntry, error) {
	e, err := scanQueue(tx.queryRow(ctx, `SELECT `+queueCols+` FROM outbound_queue q JOIN messages m ON m.id = q.message_id
		WHERE q.tenant_id = ? AND q.message_id = ? ORDER BY q.id DESC LIMIT 1`, tenantID, messageID))
	if err != nil {
		return e, fmt.Errorf("outbound by message: %w", err)
	}
	return e, nil
}

// OutboundAttempt is one line of a queue row's attempt log.
type OutboundAttempt struct {
	Attempt    int    `json:"attempt"`
	StartedAt  int64  `json:"started_at"`
	FinishedAt int64  `json:"finished_at"`
	Result     string `json:"result"`
	Detail     string `json:"detail"`
}

// OutboundAttempts lists the attempts of a tenant's queue row, oldest first.
func (tx *Tx) OutboundAttempts(ctx context.Context, tenantID, queueID int64) ([]OutboundAttempt, error) {
	rows, err := tx.query(ctx, `SELECT attempt, started_at, finished_at, result, detail FROM outbound_attempts
		WHERE tenant_id = ? AND queue_id = ? ORDER BY id`, tenantID, queueID)
	if err != nil {
		return nil, fmt.Errorf("outbound attempts: %w", err)
	}
	return collect(rows, func(s interface{ Scan(...any) error }) (OutboundAttempt, error) {
		var a OutboundAttempt
		return a, s.Scan(&a.Attempt, &a.StartedAt, &a.FinishedAt, &a.Result, &a.Detail)
	})
}

// OutboundStateCounts counts every tenant's queue rows by state (metrics, tests, the drain
// check of the crash test).
func (tx *Tx) OutboundStateCounts(ctx context.Context) (map[string]int, error) {
	rows, err := tx.query(ctx, `SELECT state, COUNT(*) FROM outbound_queue GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("outbound counts: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, mapErr(err)
		}
		out[s] = n
	}
	return out, mapErr(rows.Err())
}

// NextOutboundDue is the earliest time a queued or deferred row becomes due, or a lease
// runs out; ok is false when nothing is waiting.
func (tx *Tx) NextOutboundDue(ctx context.Context) (at int64, ok bool, err error) {
	var v sql.NullInt64
	err = tx.queryRow(ctx, `SELECT MIN(t) FROM (
		SELECT MIN(next_attempt_at) AS t FROM outbound_queue WHERE state IN ('queued', 'deferred')
		UNION ALL SELECT MIN(lease_until) AS t FROM outbound_queue WHERE state = 'sending') x`).Scan(&v)
	if err != nil {
		return 0, false, fmt.Errorf("next outbound due: %w", mapErr(err))
	}
	return v.Int64, v.Valid, nil
}

// DKIMKey is a domain's signing key, sealed by the secrets box.
type DKIMKey struct {
	Domain     string
	Selector   string
	PrivateKey []byte // sealed PEM
	CreatedAt  int64
}

// DKIMKeyFor loads the signing key of domain (lower case).
func (tx *Tx) DKIMKeyFor(ctx context.Context, domain string) (DKIMKey, error) {
	k := DKIMKey{}
	err := tx.queryRow(ctx, `SELECT domain, selector, private_key, created_at FROM dkim_keys WHERE domain = ?`,
		strings.ToLower(domain)).Scan(&k.Domain, &k.Selector, &k.PrivateKey, &k.CreatedAt)
	if err != nil {
		return k, fmt.Errorf("dkim key %s: %w", domain, mapErr(err))
	}
	return k, nil
}

// PutDKIMKey stores a domain's key unless one exists; the existing key wins so that the DNS
// record published for it stays valid when two instances generate at once.
func (tx *Tx) PutDKIMKey(ctx context.Context, k DKIMKey) error {
	_, err := tx.exec(ctx, `INSERT INTO dkim_keys (domain, selector, private_key, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (domain) DO NOTHING`, strings.ToLower(k.Domain), k.Selector, k.PrivateKey, tx.now)
	if err != nil {
		return fmt.Errorf("put dkim key: %w", err)
	}
	return nil
}

// ReplaceDKIMKey swaps a domain's key for a new one, only if the stored key is still old
// (a domain that changed owner; two instances replacing at once keep the first new key).
func (tx *Tx) ReplaceDKIMKey(ctx context.Context, old, k DKIMKey) error {
	_, err := tx.exec(ctx, `UPDATE dkim_keys SET selector = ?, private_key = ?, created_at = ? WHERE domain = ? AND private_key = ?`,
		k.Selector, k.PrivateKey, tx.now, strings.ToLower(old.Domain), old.PrivateKey)
	if err != nil {
		return fmt.Errorf("replace dkim key: %w", err)
	}
	return nil
}
