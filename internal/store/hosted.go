package store

import (
	"context"
	"fmt"
)

// HostedCredential is the password of a hosted mailbox (H11): sealed so that an admin can
// see it again after re-authentication, and hashed so that logins never unseal it.
type HostedCredential struct {
	MailboxID      int64
	TenantID       int64
	PasswordSealed []byte
	PasswordHash   string
	Generation     int64
	UpdatedAt      int64
}

// SetHostedCredential stores a new password for a hosted mailbox and bumps its generation;
// it returns the new generation.
func (tx *Tx) SetHostedCredential(ctx context.Context, tenantID, mailboxID int64, sealed []byte, hash string) (int64, error) {
	var gen int64
	err := tx.queryRow(ctx, `INSERT INTO hosted_credentials (mailbox_id, tenant_id, password_sealed, password_hash, generation, updated_at)
		VALUES (?, ?, ?, ?, 1, ?)
		ON CONFLICT (mailbox_id) DO UPDATE SET password_sealed = excluded.password_sealed, password_hash = excluded.password_hash,
			generation = hosted_credentials.generation + 1, updated_at = excluded.updated_at
		RETURNING generation`, mailboxID, tenantID, sealed, hash, tx.now).Scan(&gen)
	if err != nil {
		return 0, fmt.Errorf("set hosted credential: %w", mapErr(err))
	}
	return gen, nil
}

// HostedCredential reads the credential of one of tenantID's hosted mailboxes.
func (tx *Tx) HostedCredential(ctx context.Context, tenantID, mailboxID int64) (HostedCredential, error) {
	var c HostedCredential
	err := tx.queryRow(ctx, `SELECT mailbox_id, tenant_id, password_sealed, password_hash, generation, updated_at
		FROM hosted_credentials WHERE tenant_id = ? AND mailbox_id = ?`, tenantID, mailboxID).
		Scan(&c.MailboxID, &c.TenantID, &c.PasswordSealed, &c.PasswordHash, &c.Generation, &c.UpdatedAt)
	if err != nil {
		return c, fmt.Errorf("hosted credential %d: %w", mailboxID, mapErr(err))
	}
	return c, nil
}

// HostedLogin is what a mail-protocol login needs: the mailbox with its hash and generation.
type HostedLogin struct {
	Mailbox      Mailbox
	PasswordHash string
	Generation   int64
}

// HostedLoginByAddress finds the hosted mailbox whose full address is the user name (H10),
// of any tenant: addresses of hosted mailboxes are unique across tenants because a domain
// belongs to one tenant.
func (tx *Tx) HostedLoginByAddress(ctx context.Context, address string) (HostedLogin, error) {
	var l HostedLogin
	row := tx.queryRow(ctx, `SELECT `+prefixed("mb.", mailboxCols)+`, c.password_hash, c.generation
		FROM mailboxes mb JOIN hosted_credentials c ON c.mailbox_id = mb.id
		WHERE mb.address = ? AND mb.kind = ? ORDER BY mb.id LIMIT 1`, NormalizeAddress(address), KindHosted)
	var extra struct {
		hash string
		gen  int64
	}
	m, err := scanMailboxWith(row, &extra.hash, &extra.gen)
	if err != nil {
		return l, fmt.Errorf("hosted login %s: %w", address, err)
	}
	return HostedLogin{Mailbox: m, PasswordHash: extra.hash, Generation: extra.gen}, nil
}

// HostedGeneration reads the current password generation of a hosted mailbox.
func (tx *Tx) HostedGeneration(ctx context.Context, mailboxID int64) (int64, error) {
	var gen int64
	err := tx.queryRow(ctx, `SELECT generation FROM hosted_credentials WHERE mailbox_id = ?`, mailboxID).Scan(&gen)
	if err != nil {
		return 0, fmt.Errorf("hosted generation: %w", mapErr(err))
	}
	return gen, nil
}

func scanMailboxWith(s interface{ Scan(...any) error }, extra ...any) (Mailbox, error) {
	var m Mailbox
	dest := []any{&m.ID, &m.TenantID, &m.Kind, &m.Address, &m.DisplayName, &m.Reply, &m.Sender, &m.Global, &m.WithAuth, &m.Restricted, &m.VIP, &m.Active,
		&m.SMTP.Host, &m.SMTP.Port, &m.SMTP.Security, &m.SMTP.Auth, &m.SMTP.Username, &m.SMTP.PasswordEncrypted, &m.Settings, &m.CreatedAt, &m.UpdatedAt}
	err := s.Scan(append(dest, extra...)...)
	m.SMTP.HasPassword = len(m.SMTP.PasswordEncrypted) > 0
	return m, mapErr(err)
}

// Outcomes of an authentication attempt.
const (
	AuthOK        = "ok"
	AuthFailed    = "failed"
	AuthThrottled = "throttled" // refused before the password was checked
)

// AuthAttempt is one login attempt on IMAP, POP3 or submission.
type AuthAttempt struct {
	ID        int64  `json:"id"`
	Protocol  string `json:"protocol"`
	Username  string `json:"username"`
	RemoteIP  string `json:"remote_ip"`
	Prefix    string `json:"prefix"`
	Outcome   string `json:"outcome"`
	MailboxID *int64 `json:"mailbox_id,omitempty"`
	CreatedAt int64  `json:"created_at"`
}

// LogAuthAttempt appends an attempt to the log.
func (tx *Tx) LogAuthAttempt(ctx context.Context, a AuthAttempt) error {
	_, err := tx.exec(ctx, `INSERT INTO auth_attempts (protocol, username, remote_ip, prefix, outcome, mailbox_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		a.Protocol, a.Username, a.RemoteIP, a.Prefix, a.Outcome, a.MailboxID, tx.now)
	if err != nil {
		return fmt.Errorf("log auth attempt: %w", err)
	}
	return nil
}

// FailedAuthSince counts failed (not throttled) attempts from one address and from its
// prefix since a time: the throttle's input, shared by every instance on one database.
func (tx *Tx) FailedAuthSince(ctx context.Context, remoteIP, prefix string, since int64) (byIP, byPrefix int, err error) {
	err = tx.queryRow(ctx, `SELECT
		(SELECT COUNT(*) FROM auth_attempts WHERE remote_ip = ? AND created_at >= ? AND outcome = ?),
		(SELECT COUNT(*) FROM auth_attempts WHERE prefix = ? AND created_at >= ? AND outcome = ?)`,
		remoteIP, since, AuthFailed, prefix, since, AuthFailed).Scan(&byIP, &byPrefix)
	if err != nil {
		return 0, 0, fmt.Errorf("failed auth count: %w", mapErr(err))
	}
	return byIP, byPrefix, nil
}

// AuthAttempts lists the latest attempts on a tenant's mailbox, newest first.
func (tx *Tx) AuthAttempts(ctx context.Context, tenantID, mailboxID int64, limit int) ([]AuthAttempt, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	rows, err := tx.query(ctx, `SELECT a.id, a.protocol, a.username, a.remote_ip, a.prefix, a.outcome, a.mailbox_id, a.created_at
		FROM auth_attempts a JOIN mailboxes mb ON mb.id = a.mailbox_id
		WHERE mb.tenant_id = ? AND a.mailbox_id = ? ORDER BY a.id DESC LIMIT `+fmt.Sprint(limit), tenantID, mailboxID)
	if err != nil {
		return nil, fmt.Errorf("auth attempts: %w", err)
	}
	return collect(rows, func(s interface{ Scan(...any) error }) (AuthAttempt, error) {
		var a AuthAttempt
		err := s.Scan(&a.ID, &a.Protocol, &a.Username, &a.RemoteIP, &a.Prefix, &a.Outcome, &a.MailboxID, &a.CreatedAt)
		return a, mapErr(err)
	})
}

// AssignedUserIDs lists the active users assigned to a mailbox now, directly or through a
// group (Zugeordnete Benutzer): whose sending rights a login with the mailbox's password has.
func (tx *Tx) AssignedUserIDs(ctx context.Context, tenantID, mailboxID int64) ([]int64, error) {
	rows, err := tx.query(ctx, `SELECT DISTINCT u.id FROM users u WHERE u.tenant_id = ? AND u.active = TRUE AND u.id IN (
			SELECT g.user_id FROM mailbox_grants g WHERE g.tenant_id = ? AND g.mailbox_id = ? AND g.valid_until IS NULL AND g.user_id IS NOT NULL
			UNION SELECT gm.user_id FROM mailbox_grants g JOIN group_members gm ON gm.group_id = g.group_id
				WHERE g.tenant_id = ? AND g.mailbox_id = ? AND g.valid_until IS NULL)
		ORDER BY u.id`, tenantID, tenantID, mailboxID, tenantID, mailboxID)
	if err != nil {
		return nil, fmt.Errorf("assigned users: %w", err)
	}
	return collect(rows, func(s interface{ Scan(...any) error }) (int64, error) {
		var id int64
		return id, mapErr(s.Scan(&id))
	})
}

// HostedDeleteCounts is what deleting a hosted mailbox does to the messages whose home
// (messages.mailbox_id) it is.
type HostedDeleteCounts struct {
	Deleted int `json:"deleted"`
	// Kept are filed in a contact's journal: they stay readable at the contact (A6, C7).
	Kept int `json:"kept"`
	// Shared were also delivered to another mailbox of the tenant: they stay there.
	Shared int `json:"shared"`
}

// sharedWithOther is true for a message (alias m) also linked to a mailbox other than the
// first placeholder's.
const sharedWithOther = `EXISTS (SELECT 1 FROM message_mailboxes l WHERE l.message_id = m.id AND l.mailbox_id <> ?)`

// HostedDeleteCounts counts what deleting a hosted mailbox would delete and keep.
func (tx *Tx) HostedDeleteCounts(ctx context.Context, tenantID, mailboxID int64) (HostedDeleteCounts, error) {
	var c HostedDeleteCounts
	var total int
	err := tx.queryRow(ctx, `SELECT COUNT(*),
			COALESCE(SUM(CASE WHEN `+sharedWithOther+` THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN NOT `+sharedWithOther+` AND `+journalFiled+` THEN 1 ELSE 0 END), 0)
		FROM messages m WHERE m.tenant_id = ? AND m.mailbox_id = ?`, mailboxID, mailboxID, tenantID, mailboxID).Scan(&total, &c.Shared, &c.Kept)
	if err != nil {
		return c, fmt.Errorf("count hosted messages: %w", mapErr(err))
	}
	c.Deleted = total - c.Shared - c.Kept
	return c, nil
}

// HandOverSharedMessages makes another mailbox the home of those of mailboxID's messages
// that were also delivered to it (the lowest such mailbox id), so that deleting mailboxID
// does not take them from the other mailbox. It returns how many moved.
func (tx *Tx) HandOverSharedMessages(ctx context.Context, tenantID, mailboxID int64) (int, error) {
	res, err := tx.exec(ctx, `UPDATE messages SET mailbox_id =
			(SELECT MIN(l.mailbox_id) FROM message_mailboxes l WHERE l.message_id = messages.id AND l.mailbox_id <> ?)
		WHERE tenant_id = ? AND mailbox_id = ?
			AND EXISTS (SELECT 1 FROM message_mailboxes l WHERE l.message_id = messages.id AND l.mailbox_id <> ?)`,
		mailboxID, tenantID, mailboxID, mailboxID)
	if err != nil {
		return 0, fmt.Errorf("hand over shared messages: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
