package store

import (
	"context"
	"errors"
	"fmt"
)

// QuarantinedMessage is a message that could not be parsed. It is kept raw, never dropped,
// and listed for the tenant's admins (or the operator when no tenant could be told).
type QuarantinedMessage struct {
	ID           int64  `json:"id"`
	TenantID     *int64 `json:"tenant_id,omitempty"`
	MailboxID    *int64 `json:"mailbox_id,omitempty"`
	Source       string `json:"source"` // smtp, imap, pop3
	EnvelopeFrom string `json:"envelope_from"`
	Recipients   string `json:"recipients"`
	Reason       string `json:"reason"`
	Size         int64  `json:"size"`
	SHA256       string `json:"sha256"`
	CreatedAt    int64  `json:"created_at"`
	Raw          []byte `json:"-"`
}

const quarantineCols = `id, tenant_id, mailbox_id, source, envelope_from, recipients, reason, size, sha256, created_at`

func scanQuarantined(s interface{ Scan(...any) error }) (QuarantinedMessage, error) {
	var q QuarantinedMessage
	err := s.Scan(&q.ID, &q.TenantID, &q.MailboxID, &q.Source, &q.EnvelopeFrom, &q.Recipients, &q.Reason, &q.Size, &q.SHA256, &q.CreatedAt)
	return q, mapErr(err)
}

// Quarantine stores an unparsable message. The same bytes (SHA-256 of the message as the
// sender delivered it) already quarantined for the same tenant and mailbox are not stored
// again: a rescan after a changed UIDVALIDITY, a re-fetch or a sender's retry brings them
// back, exactly as parsed mail is recognised by its hash. The row found is returned instead.
func (tx *Tx) Quarantine(ctx context.Context, q QuarantinedMessage) (QuarantinedMessage, error) {
	if found, err := tx.QuarantinedByHash(ctx, q.TenantID, q.MailboxID, q.SHA256); err == nil {
		return found, nil
	} else if !errors.Is(err, ErrNotFound) {
		return q, err
	}
	q.CreatedAt = tx.now
	q.Size = int64(len(q.Raw))
	id, err := tx.insertID(ctx, `INSERT INTO quarantine (tenant_id, mailbox_id, source, envelope_from, recipients, reason, size, sha256, raw, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, q.TenantID, q.MailboxID, q.Source, q.EnvelopeFrom, q.Recipients, q.Reason, q.Size, q.SHA256, q.Raw, q.CreatedAt)
	if err != nil {
		return q, fmt.Errorf("quarantine: %w", err)
	}
	q.ID = id
	return q, nil
}

// QuarantinedByHash finds the quarantined message of a tenant and mailbox with a content
// hash (nil tenant: the operator's quarantine; nil mailbox: none was named); ErrNotFound
// when there is none.
func (tx *Tx) QuarantinedByHash(ctx context.Context, tenantID, mailboxID *int64, sha string) (QuarantinedMessage, error) {
	q := `SELECT ` + quarantineCols + ` FROM quarantine WHERE sha256 = ?`
	args := []any{sha}
	if tenantID == nil {
		q += ` AND tenant_id IS NULL`
	} else {
		q += ` AND tenant_id = ?`
		args = append(args, *tenantID)
	}
	if mailboxID == nil {
		q += ` AND mailbox_id IS NULL`
	} else {
		q += ` AND mailbox_id = ?`
		args = append(args, *mailboxID)
	}
	found, err := scanQuarantined(tx.queryRow(ctx, q+` ORDER BY id LIMIT 1`, args...))
	if err != nil {
		return found, fmt.Errorf("quarantined by hash: %w", err)
	}
	return found, nil
}

// QuarantineList lists a tenant's quarantined messages, newest first, without raw bytes.
func (tx *Tx) QuarantineList(ctx context.Context, tenantID int64, limit int) ([]QuarantinedMessage, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	rows, err := tx.query(ctx, `SELECT `+quarantineCols+` FROM quarantine WHERE tenant_id = ? ORDER BY id DESC LIMIT `+fmt.Sprint(limit), tenantID)
	if err != nil {
		return nil, fmt.Errorf("quarantine list: %w", err)
	}
	return collect(rows, scanQuarantined)
}

// QuarantinedRaw reads one quarantined message with its bytes.
func (tx *Tx) QuarantinedRaw(ctx context.Context, tenantID, id int64) (QuarantinedMessage, error) {
	var q QuarantinedMessage
	err := tx.queryRow(ctx, `SELECT `+quarantineCols+`, raw FROM quarantine WHERE tenant_id = ? AND id = ?`, tenantID, id).Scan(
		&q.ID, &q.TenantID, &q.MailboxID, &q.Source, &q.EnvelopeFrom, &q.Recipients, &q.Reason, &q.Size, &q.SHA256, &q.CreatedAt, &q.Raw)
	if err != nil {
		return q, fmt.Errorf("quarantined %d: %w", id, mapErr(err))
	}
	return q, nil
}

// LastAutoReply reports when a mailbox last sent an out-of-office reply to sender (0: never).
func (tx *Tx) LastAutoReply(ctx context.Context, tenantID, mailboxID int64, sender string) (int64, error) {
	var at int64
	err := tx.queryRow(ctx, `SELECT last_sent_at FROM auto_reply_log WHERE tenant_id = ? AND mailbox_id = ? AND sender = ?`,
		tenantID, mailboxID, NormalizeAddress(sender)).Scan(&at)
	if err = mapErr(err); err == ErrNotFound {
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("last auto reply: %w", err)
	}
	return at, nil
}

// AutoReply is an out-of-office reply waiting for the outbound queue.
type AutoReply struct {
	ID               int64  `json:"id"`
	TenantID         int64  `json:"tenant_id"`
	MailboxID        int64  `json:"mailbox_id"`
	InReplyToMessage *int64 `json:"in_reply_to_message,omitempty"`
	Recipient        string `json:"recipient"`
	State            string `json:"state"`
	CreatedAt        int64  `json:"created_at"`
	Raw              []byte `json:"-"`
}

// RecordAutoReply stores a composed reply as pending and notes the time per sender, in the
// delivery's transaction: the reply and the "answered" mark commit together.
func (tx *Tx) RecordAutoReply(ctx context.Context, r AutoReply) (AutoReply, error) {
	r.CreatedAt, r.State = tx.now, "pending"
	r.Recipient = NormalizeAddress(r.Recipient)
	id, err := tx.insertID(ctx, `INSERT INTO auto_replies (tenant_id, mailbox_id, in_reply_to_message, recipient, raw, state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		r.TenantID, r.MailboxID, r.InReplyToMessage, r.Recipient, r.Raw, r.State, r.CreatedAt)
	if err != nil {
		return r, fmt.Errorf("record auto reply: %w", err)
	}
	r.ID = id
	_, err = tx.exec(ctx, `INSERT INTO auto_reply_log (tenant_id, mailbox_id, sender, last_sent_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (mailbox_id, sender) DO UPDATE SET last_sent_at = excluded.last_sent_at`, r.TenantID, r.MailboxID, r.Recipient, r.CreatedAt)
	if err != nil {
		return r, fmt.Errorf("record auto reply time: %w", err)
	}
	return r, nil
}

// PendingAutoReplies lists replies not yet handed to the outbound queue, oldest first.
func (tx *Tx) PendingAutoReplies(ctx context.Context, limit int) ([]AutoReply, error) {
	rows, err := tx.query(ctx, `SELECT id, tenant_id, mailbox_id, in_reply_to_message, recipient, state, created_at, raw FROM auto_replies
		WHERE state = 'pending' ORDER BY id LIMIT `+fmt.Sprint(max(limit, 1)))
	if err != nil {
		return nil, fmt.Errorf("pending auto replies: %w", err)
	}
	return collect(rows, func(s interface{ Scan(...any) error }) (AutoReply, error) {
		var r AutoReply
		err := s.Scan(&r.ID, &r.TenantID, &r.MailboxID, &r.InReplyToMessage, &r.Recipient, &r.State, &r.CreatedAt, &r.Raw)
		return r, mapErr(err)
	})
}

// schemaQuarantineDedup indexes the quarantine by content hash: every quarantined message is
// first looked up by it (QuarantinedByHash).
const schemaQuarantineDedup = `CREATE INDEX quarantine_sha ON quarantine (sha256)`
