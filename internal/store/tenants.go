package store

import (
	"context"
	"fmt"
)

// Duplicate-address policies of a tenant (feature M7).
const (
	DuplicateUserName = "user_name" // one entry, under the user's name, sent through the mailbox
	DuplicateBoth     = "both"      // both entries
	DuplicateMailbox  = "mailbox"   // one entry, the mailbox under its own display name
)

// Tenant is a Mandant: the unit of isolation.
type Tenant struct {
	ID              int64  `json:"id"`
	Name            string `json:"name"`
	Slug            string `json:"slug"`
	MailboxQuota    int    `json:"mailbox_quota"`
	AllowOwnAddress bool   `json:"allow_own_address"`
	DuplicatePolicy string `json:"duplicate_policy"`
	VIPNoCcBcc      bool   `json:"vip_no_cc_bcc"`
	CreatedAt       int64  `json:"created_at"`
}

const tenantCols = `id, name, slug, mailbox_quota, allow_own_address, duplicate_policy, vip_no_cc_bcc, created_at`

func scanTenant(s interface{ Scan(...any) error }) (Tenant, error) {
	var t Tenant
	err := s.Scan(&t.ID, &t.Name, &t.Slug, &t.MailboxQuota, &t.AllowOwnAddress, &t.DuplicatePolicy, &t.VIPNoCcBcc, &t.CreatedAt)
	return t, mapErr(err)
}

// CreateTenant inserts a tenant and returns it with its id.
func (tx *Tx) CreateTenant(ctx context.Context, t Tenant) (Tenant, error) {
	if t.DuplicatePolicy == "" {
		t.DuplicatePolicy = DuplicateUserName
	}
	t.CreatedAt = tx.now
	id, err := tx.insertID(ctx, `INSERT INTO tenants (name, slug, mailbox_quota, allow_own_address, duplicate_policy, vip_no_cc_bcc, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, t.Name, t.Slug, t.MailboxQuota, t.AllowOwnAddress, t.DuplicatePolicy, t.VIPNoCcBcc, t.CreatedAt)
	if err != nil {
		return Tenant{}, fmt.Errorf("create tenant: %w", err)
	}
	t.ID = id
	return t, nil
}

// UpdateTenant changes the operator-controlled fields of a tenant.
func (tx *Tx) UpdateTenant(ctx context.Context, t Tenant) error {
	res, err := tx.exec(ctx, `UPDATE tenants SET name = ?, mailbox_quota = ?, allow_own_address = ?, duplicate_policy = ?, vip_no_cc_bcc = ? WHERE id = ?`,
		t.Name, t.MailboxQuota, t.AllowOwnAddress, t.DuplicatePolicy, t.VIPNoCcBcc, t.ID)
	return affected(res, err, "update tenant")
}

// Tenant reads one tenant.
func (tx *Tx) Tenant(ctx context.Context, id int64) (Tenant, error) {
	t, err := scanTenant(tx.queryRow(ctx, `SELECT `+tenantCols+` FROM tenants WHERE id = ?`, id))
	if err != nil {
		return t, fmt.Errorf("tenant %d: %w", id, err)
	}
	return t, nil
}

// TenantBySlug reads one tenant by its short name.
func (tx *Tx) TenantBySlug(ctx context.Context, slug string) (Tenant, error) {
	t, err := scanTenant(tx.queryRow(ctx, `SELECT `+tenantCols+` FROM tenants WHERE slug = ?`, slug))
	if err != nil {
		return t, fmt.Errorf("tenant %q: %w", slug, err)
	}
	return t, nil
}

// Tenants lists all tenants (operator view).
func (tx *Tx) Tenants(ctx context.Context) ([]Tenant, error) {
	rows, err := tx.query(ctx, `SELECT `+tenantCols+` FROM tenants ORDER BY name, id`)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	return collect(rows, scanTenant)
}

// DeleteTenant removes a tenant and, by cascade, everything it owns.
func (tx *Tx) DeleteTenant(ctx context.Context, id int64) error {
	res, err := tx.exec(ctx, `DELETE FROM tenants WHERE id = ?`, id)
	return affected(res, err, "delete tenant")
}
