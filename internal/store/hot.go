package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// stmtCache keeps prepared statements of the hot read paths (the sender options are asked on
// every compose page and every send): preparing the four-part UNION on each call cost more
// than running it.
type stmtCache struct {
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

// prepared returns q prepared on the pool, from the cache when it was prepared before.
func (db *DB) prepared(ctx context.Context, q string) (*sql.Stmt, error) {
	return db.prepareCached(ctx, q, false)
}

// maxCachedStmts bounds the statements Tx keeps prepared; SQL built with a variable number
// of placeholders could otherwise grow the cache without end. Beyond it, statements run
// unprepared.
const maxCachedStmts = 2048

// cachedStmt returns q prepared on the pool, or nil when the cache is full or q does not
// prepare (running it unprepared then reports the error).
func (db *DB) cachedStmt(ctx context.Context, q string) *sql.Stmt {
	st, _ := db.prepareCached(ctx, q, true)
	return st
}

// prepareCached looks q up in the cache and prepares it when missing; bounded gives nil
// instead once the cache is full. It prepares without holding the lock: preparing waits for
// a pool connection, and a goroutine holding one may be waiting for the lock.
func (db *DB) prepareCached(ctx context.Context, q string, bounded bool) (*sql.Stmt, error) {
	db.cache.mu.Lock()
	st, ok := db.cache.stmts[q]
	full := len(db.cache.stmts) >= maxCachedStmts
	db.cache.mu.Unlock()
	if ok {
		return st, nil
	}
	if bounded && full {
		return nil, nil
	}
	st, err := db.sql.PrepareContext(ctx, db.Rebind(q))
	if err != nil {
		return nil, mapErr(err)
	}
	db.cache.mu.Lock()
	defer db.cache.mu.Unlock()
	if have, ok := db.cache.stmts[q]; ok {
		st.Close()
		return have, nil
	}
	if db.cache.stmts == nil {
		db.cache.stmts = map[string]*sql.Stmt{}
	}
	db.cache.stmts[q] = st
	return st, nil
}

// SenderCandidates returns the mailboxes a user could use by grants and flags: the tenant's
// own and global mailboxes with the Absender or Antwort flag that are unrestricted or granted
// to the user directly or through one of their groups. Inactive ones are included so the
// policy engine can explain why they are not offered. Four indexed parts instead of one
// OR-heavy query, so a tenant with thousands of restricted mailboxes is never scanned in
// full; only the columns the policy needs (no settings, no secrets); a prepared statement.
// A mailbox granted twice appears twice: the caller removes duplicates.
func (db *DB) SenderCandidates(ctx context.Context, tenantID, userID int64) ([]Mailbox, error) {
	const cols = `id, tenant_id, kind, address, display_name, flag_reply, flag_sender, flag_global, with_auth, restricted, active, smtp_host`
	q := `SELECT ` + cols + ` FROM mailboxes WHERE tenant_id = ? AND restricted = FALSE AND (flag_sender = TRUE OR flag_reply = TRUE)
	UNION ALL
	SELECT ` + cols + ` FROM mailboxes WHERE flag_global = TRUE AND restricted = FALSE AND (flag_sender = TRUE OR flag_reply = TRUE)
	UNION ALL
	SELECT ` + prefixed("m.", cols) + ` FROM mailbox_grants g JOIN mailboxes m ON m.id = g.mailbox_id
		WHERE g.user_id = ? AND g.valid_until IS NULL AND g.tenant_id = ? AND (m.tenant_id = ? OR m.flag_global = TRUE)
	UNION ALL
	SELECT ` + prefixed("m.", cols) + ` FROM group_members gm JOIN mailbox_grants g ON g.group_id = gm.group_id JOIN mailboxes m ON m.id = g.mailbox_id
		WHERE gm.user_id = ? AND gm.tenant_id = ? AND g.valid_until IS NULL AND (m.tenant_id = ? OR m.flag_global = TRUE)`
	st, err := db.prepared(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("sender candidates: %w", err)
	}
	rows, err := st.QueryContext(ctx, tenantID, userID, tenantID, tenantID, userID, tenantID, tenantID)
	if err != nil {
		return nil, fmt.Errorf("sender candidates: %w", mapErr(err))
	}
	defer rows.Close()
	out := make([]Mailbox, 0, 64)
	for rows.Next() {
		var m Mailbox
		if err := rows.Scan(&m.ID, &m.TenantID, &m.Kind, &m.Address, &m.DisplayName, &m.Reply, &m.Sender, &m.Global, &m.WithAuth, &m.Restricted, &m.Active, &m.SMTP.Host); err != nil {
			return nil, fmt.Errorf("sender candidates: %w", mapErr(err))
		}
		out = append(out, m)
	}
	return out, mapErr(rows.Err())
}

// TenantAndUser reads a user together with their tenant in one round trip.
func (db *DB) TenantAndUser(ctx context.Context, tenantID, userID int64) (Tenant, User, error) {
	q := `SELECT t.id, t.name, t.slug, t.mailbox_quota, t.allow_own_address, t.duplicate_policy, t.vip_no_cc_bcc, t.created_at,
		u.id, u.tenant_id, u.login, u.display_name, u.email, u.short_code, u.role, u.lang, u.active
		FROM users u JOIN tenants t ON t.id = u.tenant_id WHERE u.tenant_id = ? AND u.id = ?`
	st, err := db.prepared(ctx, q)
	if err != nil {
		return Tenant{}, User{}, fmt.Errorf("tenant and user: %w", err)
	}
	var t Tenant
	var u User
	err = st.QueryRowContext(ctx, tenantID, userID).Scan(&t.ID, &t.Name, &t.Slug, &t.MailboxQuota, &t.AllowOwnAddress, &t.DuplicatePolicy, &t.VIPNoCcBcc, &t.CreatedAt,
		&u.ID, &u.TenantID, &u.Login, &u.DisplayName, &u.Email, &u.ShortCode, &u.Role, &u.Lang, &u.Active)
	if err != nil {
		return t, u, fmt.Errorf("user %d: %w", userID, mapErr(err))
	}
	return t, u, nil
}

// SessionWithUser resolves a live session and its user in one prepared query; every
// authenticated request asks this. For operator sessions the user is empty.
func (db *DB) SessionWithUser(ctx context.Context, hash string, now int64) (Session, User, error) {
	q := `SELECT s.token_hash, s.tenant_id, s.user_id, s.operator_id, s.created_at, s.last_seen, s.expires_at, s.reauth_at,
		COALESCE(u.id, 0), COALESCE(u.tenant_id, 0), COALESCE(u.login, ''), COALESCE(u.role, ''), COALESCE(u.lang, ''), COALESCE(u.active, FALSE)
		FROM sessions s LEFT JOIN users u ON u.id = s.user_id AND u.tenant_id = s.tenant_id
		WHERE s.token_hash = ? AND s.expires_at > ?`
	st, err := db.prepared(ctx, q)
	if err != nil {
		return Session{}, User{}, fmt.Errorf("session: %w", err)
	}
	var s Session
	var u User
	err = st.QueryRowContext(ctx, hash, now).Scan(&s.TokenHash, &s.TenantID, &s.UserID, &s.OperatorID, &s.CreatedAt, &s.LastSeen, &s.ExpiresAt, &s.ReauthAt,
		&u.ID, &u.TenantID, &u.Login, &u.Role, &u.Lang, &u.Active)
	if err != nil {
		return s, u, fmt.Errorf("session: %w", mapErr(err))
	}
	return s, u, nil
}
