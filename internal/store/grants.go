package store

import (
	"context"
	"fmt"
)

// Grant gives a user or a group the use of a mailbox (Benutzerrechte, Zugeordnete Benutzer).
// Grants are never deleted, only ended (ValidUntil set), because visibility of VIP mail (H7)
// depends on who was assigned when a message was written or received.
type Grant struct {
	ID         int64  `json:"id"`
	TenantID   int64  `json:"tenant_id"`
	MailboxID  int64  `json:"mailbox_id"`
	UserID     *int64 `json:"user_id,omitempty"`
	GroupID    *int64 `json:"group_id,omitempty"`
	ValidFrom  int64  `json:"valid_from"`
	ValidUntil *int64 `json:"valid_until,omitempty"`
	GrantedBy  string `json:"granted_by"`
	RevokedBy  string `json:"revoked_by,omitempty"`
}

const grantCols = `id, tenant_id, mailbox_id, user_id, group_id, valid_from, valid_until, granted_by, revoked_by`

func scanGrant(s interface{ Scan(...any) error }) (Grant, error) {
	var g Grant
	err := s.Scan(&g.ID, &g.TenantID, &g.MailboxID, &g.UserID, &g.GroupID, &g.ValidFrom, &g.ValidUntil, &g.GrantedBy, &g.RevokedBy)
	return g, mapErr(err)
}

// AddGrant starts a grant unless an open one for the same subject exists (then it is returned).
// tenantID is the grantee's tenant; the mailbox may be a global one of another tenant.
func (tx *Tx) AddGrant(ctx context.Context, tenantID int64, g Grant) (Grant, error) {
	existing, err := tx.OpenGrants(ctx, tenantID, g.MailboxID)
	if err != nil {
		return g, err
	}
	for _, e := range existing {
		if sameSubject(e, g) {
			return e, nil
		}
	}
	g.TenantID = tenantID
	g.ValidFrom = tx.now
	id, err := tx.insertID(ctx, `INSERT INTO mailbox_grants (tenant_id, mailbox_id, user_id, group_id, valid_from, granted_by) VALUES (?, ?, ?, ?, ?, ?)`,
		tenantID, g.MailboxID, g.UserID, g.GroupID, g.ValidFrom, g.GrantedBy)
	if err != nil {
		return g, fmt.Errorf("add grant: %w", err)
	}
	g.ID = id
	return g, nil
}

func sameSubject(a, b Grant) bool {
	eq := func(x, y *int64) bool { return (x == nil && y == nil) || (x != nil && y != nil && *x == *y) }
	return eq(a.UserID, b.UserID) && eq(a.GroupID, b.GroupID)
}

// EndGrant closes an open grant now.
func (tx *Tx) EndGrant(ctx context.Context, tenantID, grantID int64, by string) error {
	res, err := tx.exec(ctx, `UPDATE mailbox_grants SET valid_until = ?, revoked_by = ? WHERE tenant_id = ? AND id = ? AND valid_until IS NULL`,
		tx.now, by, tenantID, grantID)
	return affected(res, err, "end grant")
}

// OpenGrants lists the current grants of tenantID's users and groups on a mailbox.
func (tx *Tx) OpenGrants(ctx context.Context, tenantID, mailboxID int64) ([]Grant, error) {
	rows, err := tx.query(ctx, `SELECT `+grantCols+` FROM mailbox_grants WHERE tenant_id = ? AND mailbox_id = ? AND valid_until IS NULL ORDER BY id`, tenantID, mailboxID)
	if err != nil {
		return nil, fmt.Errorf("open grants: %w", err)
	}
	return collect(rows, scanGrant)
}

// GrantHistory lists every grant, open and ended, of tenantID on a mailbox.
func (tx *Tx) GrantHistory(ctx context.Context, tenantID, mailboxID int64) ([]Grant, error) {
	rows, err := tx.query(ctx, `SELECT `+grantCols+` FROM mailbox_grants WHERE tenant_id = ? AND mailbox_id = ? ORDER BY valid_from, id`, tenantID, mailboxID)
	if err != nil {
		return nil, fmt.Errorf("grant history: %w", err)
	}
	return collect(rows, scanGrant)
}

// Grant reads one grant.
func (tx *Tx) Grant(ctx context.Context, tenantID, id int64) (Grant, error) {
	g, err := scanGrant(tx.queryRow(ctx, `SELECT `+grantCols+` FROM mailbox_grants WHERE tenant_id = ? AND id = ?`, tenantID, id))
	if err != nil {
		return g, fmt.Errorf("grant %d: %w", id, err)
	}
	return g, nil
}

// EndGrantsOfMailbox closes every open grant of tenantID on a mailbox (rights switched off).
func (tx *Tx) EndGrantsOfMailbox(ctx context.Context, tenantID, mailboxID int64, by string) error {
	_, err := tx.exec(ctx, `UPDATE mailbox_grants SET valid_until = ?, revoked_by = ? WHERE tenant_id = ? AND mailbox_id = ? AND valid_until IS NULL`,
		tx.now, by, tenantID, mailboxID)
	if err != nil {
		return fmt.Errorf("end grants: %w", err)
	}
	return nil
}

// WasAssigned reports whether the user held a grant on the mailbox (directly or through a
// group they are in now) at time at. Used by the VIP visibility rule (H7).
func (tx *Tx) WasAssigned(ctx context.Context, tenantID, mailboxID, userID, at int64) (bool, error) {
	var n int
	err := tx.queryRow(ctx, `SELECT COUNT(*) FROM mailbox_grants g WHERE g.tenant_id = ? AND g.mailbox_id = ? AND g.valid_from <= ? AND (g.valid_until IS NULL OR g.valid_until > ?)
		AND (g.user_id = ? OR g.group_id IN (SELECT group_id FROM group_members WHERE tenant_id = ? AND user_id = ?))`,
		tenantID, mailboxID, at, at, userID, tenantID, userID).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("was assigned: %w", mapErr(err))
	}
	return n > 0, nil
}
