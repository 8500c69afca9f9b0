package store

import (
	"context"
	"fmt"
)

// Session is a web login. Only the SHA-256 of the cookie token is stored, so a database
// leak does not hand out logins.
type Session struct {
	TokenHash  string
	TenantID   *int64
	UserID     *int64
	OperatorID *int64
	CreatedAt  int64
	LastSeen   int64
	ExpiresAt  int64
	ReauthAt   int64 // last time the password was entered again (for showing credentials)
}

// CreateSession stores a new session.
func (tx *Tx) CreateSession(ctx context.Context, s Session) error {
	_, err := tx.exec(ctx, `INSERT INTO sessions (token_hash, tenant_id, user_id, operator_id, created_at, last_seen, expires_at, reauth_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		s.TokenHash, s.TenantID, s.UserID, s.OperatorID, s.CreatedAt, s.LastSeen, s.ExpiresAt, s.ReauthAt)
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// SessionByHash reads a session that has not expired at now.
func (tx *Tx) SessionByHash(ctx context.Context, hash string, now int64) (Session, error) {
	var s Session
	err := tx.queryRow(ctx, `SELECT token_hash, tenant_id, user_id, operator_id, created_at, last_seen, expires_at, reauth_at FROM sessions WHERE token_hash = ? AND expires_at > ?`, hash, now).
		Scan(&s.TokenHash, &s.TenantID, &s.UserID, &s.OperatorID, &s.CreatedAt, &s.LastSeen, &s.ExpiresAt, &s.ReauthAt)
	if err != nil {
		return s, fmt.Errorf("session: %w", mapErr(err))
	}
	return s, nil
}

// TouchSession slides the expiry of an active session.
func (tx *Tx) TouchSession(ctx context.Context, hash string, lastSeen, expiresAt int64) error {
	_, err := tx.exec(ctx, `UPDATE sessions SET last_seen = ?, expires_at = ? WHERE token_hash = ?`, lastSeen, expiresAt, hash)
	if err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return nil
}

// MarkReauth records that the session's user entered the password again.
func (tx *Tx) MarkReauth(ctx context.Context, hash string) error {
	_, err := tx.exec(ctx, `UPDATE sessions SET reauth_at = ? WHERE token_hash = ?`, tx.now, hash)
	if err != nil {
		return fmt.Errorf("mark reauth: %w", err)
	}
	return nil
}

// DeleteSession ends a session (logout).
func (tx *Tx) DeleteSession(ctx context.Context, hash string) error {
	_, err := tx.exec(ctx, `DELETE FROM sessions WHERE token_hash = ?`, hash)
	if err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// DeleteExpiredSessions removes sessions that ended before now.
func (tx *Tx) DeleteExpiredSessions(ctx context.Context, now int64) (int64, error) {
	res, err := tx.exec(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, now)
	if err != nil {
		return 0, fmt.Errorf("expire sessions: %w", err)
	}
	return res.RowsAffected()
}

// APIToken lets the host application call the API for one tenant.
type APIToken struct {
	ID         int64  `json:"id"`
	TenantID   int64  `json:"tenant_id"`
	Name       string `json:"name"`
	CreatedAt  int64  `json:"created_at"`
	LastUsedAt int64  `json:"last_used_at"`
}

// CreateAPIToken stores the hash of a new token.
func (tx *Tx) CreateAPIToken(ctx context.Context, tenantID int64, name, hash string) (APIToken, error) {
	id, err := tx.insertID(ctx, `INSERT INTO api_tokens (tenant_id, name, token_hash, created_at) VALUES (?, ?, ?, ?)`, tenantID, name, hash, tx.now)
	if err != nil {
		return APIToken{}, fmt.Errorf("create api token: %w", err)
	}
	return APIToken{ID: id, TenantID: tenantID, Name: name, CreatedAt: tx.now}, nil
}

// APITokenByHash finds a token by the hash of its secret.
func (tx *Tx) APITokenByHash(ctx context.Context, hash string) (APIToken, error) {
	var t APIToken
	err := tx.queryRow(ctx, `SELECT id, tenant_id, name, created_at, last_used_at FROM api_tokens WHERE token_hash = ?`, hash).
		Scan(&t.ID, &t.TenantID, &t.Name, &t.CreatedAt, &t.LastUsedAt)
	if err != nil {
		return t, fmt.Errorf("api token: %w", mapErr(err))
	}
	return t, nil
}

// APITokens lists a tenant's tokens (never the secrets).
func (tx *Tx) APITokens(ctx context.Context, tenantID int64) ([]APIToken, error) {
	rows, err := tx.query(ctx, `SELECT id, tenant_id, name, created_at, last_used_at FROM api_tokens WHERE tenant_id = ? ORDER BY id`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list api tokens: %w", err)
	}
	return collect(rows, func(s interface{ Scan(...any) error }) (APIToken, error) {
		var t APIToken
		err := s.Scan(&t.ID, &t.TenantID, &t.Name, &t.CreatedAt, &t.LastUsedAt)
		return t, mapErr(err)
	})
}

// DeleteAPIToken revokes a token.
func (tx *Tx) DeleteAPIToken(ctx context.Context, tenantID, id int64) error {
	res, err := tx.exec(ctx, `DELETE FROM api_tokens WHERE tenant_id = ? AND id = ?`, tenantID, id)
	return affected(res, err, "delete api token")
}

// AuditEntry is one line of the append-only audit log (X4).
type AuditEntry struct {
	ID        int64  `json:"id"`
	TenantID  *int64 `json:"tenant_id,omitempty"`
	Actor     string `json:"actor"`
	Action    string `json:"action"`
	Target    string `json:"target"`
	Detail    string `json:"detail"`
	RemoteIP  string `json:"remote_ip"`
	CreatedAt int64  `json:"created_at"`
}

// Audit appends an entry. There is deliberately no update or delete for this table.
func (tx *Tx) Audit(ctx context.Context, e AuditEntry) error {
	_, err := tx.exec(ctx, `INSERT INTO audit_log (tenant_id, actor, action, target, detail, remote_ip, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		e.TenantID, e.Actor, e.Action, e.Target, e.Detail, e.RemoteIP, tx.now)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// AuditFilter narrows AuditLog.
type AuditFilter struct {
	Action string
	Actor  string
	Limit  int
}

// AuditLog lists a tenant's entries, newest first.
func (tx *Tx) AuditLog(ctx context.Context, tenantID int64, f AuditFilter) ([]AuditEntry, error) {
	q := `SELECT id, tenant_id, actor, action, target, detail, remote_ip, created_at FROM audit_log WHERE tenant_id = ?`
	args := []any{tenantID}
	if f.Action != "" {
		q += ` AND action = ?`
		args = append(args, f.Action)
	}
	if f.Actor != "" {
		q += ` AND actor = ?`
		args = append(args, f.Actor)
	}
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 200
	}
	q += fmt.Sprintf(` ORDER BY id DESC LIMIT %d`, f.Limit)
	rows, err := tx.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return collect(rows, func(s interface{ Scan(...any) error }) (AuditEntry, error) {
		var e AuditEntry
		err := s.Scan(&e.ID, &e.TenantID, &e.Actor, &e.Action, &e.Target, &e.Detail, &e.RemoteIP, &e.CreatedAt)
		return e, mapErr(err)
	})
}

// Contact is a customer record of the host application, matched by e-mail address.
type Contact struct {
	ID          int64  `json:"id"`
	TenantID    int64  `json:"tenant_id"`
	Email       string `json:"email"`
	Name        string `json:"name"`
	ExternalRef string `json:"external_ref"`
	CreatedAt   int64  `json:"created_at"`
}

const contactCols = `id, tenant_id, email, name, external_ref, created_at`

func scanContact(s interface{ Scan(...any) error }) (Contact, error) {
	var c Contact
	err := s.Scan(&c.ID, &c.TenantID, &c.Email, &c.Name, &c.ExternalRef, &c.CreatedAt)
	return c, mapErr(err)
}

// CreateContact inserts a contact.
func (tx *Tx) CreateContact(ctx context.Context, tenantID int64, c Contact) (Contact, error) {
	c.TenantID, c.CreatedAt, c.Email = tenantID, tx.now, NormalizeAddress(c.Email)
	id, err := tx.insertID(ctx, `INSERT INTO contacts (tenant_id, email, name, external_ref, created_at) VALUES (?, ?, ?, ?, ?)`, tenantID, c.Email, c.Name, c.ExternalRef, c.CreatedAt)
	if err != nil {
		return c, fmt.Errorf("create contact: %w", err)
	}
	c.ID = id
	return c, nil
}

// UpdateContact writes a contact.
func (tx *Tx) UpdateContact(ctx context.Context, tenantID int64, c Contact) error {
	res, err := tx.exec(ctx, `UPDATE contacts SET email = ?, name = ?, external_ref = ? WHERE tenant_id = ? AND id = ?`, NormalizeAddress(c.Email), c.Name, c.ExternalRef, tenantID, c.ID)
	return affected(res, err, "update contact")
}

// Contact reads one contact.
func (tx *Tx) Contact(ctx context.Context, tenantID, id int64) (Contact, error) {
	c, err := scanContact(tx.queryRow(ctx, `SELECT `+contactCols+` FROM contacts WHERE tenant_id = ? AND id = ?`, tenantID, id))
	if err != nil {
		return c, fmt.Errorf("contact %d: %w", id, err)
	}
	return c, nil
}

// ContactByEmail finds the contact with an address.
func (tx *Tx) ContactByEmail(ctx context.Context, tenantID int64, email string) (Contact, error) {
	c, err := scanContact(tx.queryRow(ctx, `SELECT `+contactCols+` FROM contacts WHERE tenant_id = ? AND email = ?`, tenantID, NormalizeAddress(email)))
	if err != nil {
		return c, fmt.Errorf("contact %q: %w", email, err)
	}
	return c, nil
}

// Contacts lists a tenant's contacts.
func (tx *Tx) Contacts(ctx context.Context, tenantID int64) ([]Contact, error) {
	rows, err := tx.query(ctx, `SELECT `+contactCols+` FROM contacts WHERE tenant_id = ? ORDER BY email`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list contacts: %w", err)
	}
	return collect(rows, scanContact)
}

// DeleteContact removes a contact; its filed messages stay and lose the link.
func (tx *Tx) DeleteContact(ctx context.Context, tenantID, id int64) error {
	res, err := tx.exec(ctx, `DELETE FROM contacts WHERE tenant_id = ? AND id = ?`, tenantID, id)
	return affected(res, err, "delete contact")
}
