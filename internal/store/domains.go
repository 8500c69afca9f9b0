package store

import (
	"context"
	"fmt"
	"strings"
)

// TenantDomain is a domain a tenant claims for hosted mailboxes (H1). It may carry
// mailboxes only once VerifiedAt is set, which happens when the TXT record
// "postfach-verify=<VerifyToken>" is seen at the domain.
type TenantDomain struct {
	ID          int64  `json:"id"`
	TenantID    int64  `json:"tenant_id"`
	Domain      string `json:"domain"`
	VerifyToken string `json:"verify_token"`
	VerifiedAt  int64  `json:"verified_at"`
	CheckedAt   int64  `json:"checked_at"`
	CheckError  string `json:"check_error,omitempty"`
	CreatedAt   int64  `json:"created_at"`
}

// Verified reports whether the domain passed the TXT check.
func (d TenantDomain) Verified() bool { return d.VerifiedAt != 0 }

const tenantDomainCols = `id, tenant_id, domain, verify_token, verified_at, checked_at, check_error, created_at`

func scanTenantDomain(s interface{ Scan(...any) error }) (TenantDomain, error) {
	var d TenantDomain
	err := s.Scan(&d.ID, &d.TenantID, &d.Domain, &d.VerifyToken, &d.VerifiedAt, &d.CheckedAt, &d.CheckError, &d.CreatedAt)
	return d, mapErr(err)
}

// CreateTenantDomain claims a domain for a tenant. A domain belongs to at most one tenant:
// a second claim is ErrConflict.
func (tx *Tx) CreateTenantDomain(ctx context.Context, tenantID int64, domain, token string) (TenantDomain, error) {
	d := TenantDomain{TenantID: tenantID, Domain: strings.ToLower(strings.TrimSpace(domain)), VerifyToken: token, CreatedAt: tx.now}
	id, err := tx.insertID(ctx, `INSERT INTO tenant_domains (tenant_id, domain, verify_token, created_at) VALUES (?, ?, ?, ?)`,
		tenantID, d.Domain, d.VerifyToken, d.CreatedAt)
	if err != nil {
		return d, fmt.Errorf("create tenant domain: %w", err)
	}
	d.ID = id
	return d, nil
}

// TenantDomain reads one of a tenant's domains by id.
func (tx *Tx) TenantDomain(ctx context.Context, tenantID, id int64) (TenantDomain, error) {
	d, err := scanTenantDomain(tx.queryRow(ctx, `SELECT `+tenantDomainCols+` FROM tenant_domains WHERE tenant_id = ? AND id = ?`, tenantID, id))
	if err != nil {
		return d, fmt.Errorf("tenant domain %d: %w", id, err)
	}
	return d, nil
}

// TenantDomainByName reads a tenant's domain by name.
func (tx *Tx) TenantDomainByName(ctx context.Context, tenantID int64, domain string) (TenantDomain, error) {
	d, err := scanTenantDomain(tx.queryRow(ctx, `SELECT `+tenantDomainCols+` FROM tenant_domains WHERE tenant_id = ? AND domain = ?`,
		tenantID, strings.ToLower(strings.TrimSpace(domain))))
	if err != nil {
		return d, fmt.Errorf("tenant domain %s: %w", domain, err)
	}
	return d, nil
}

// TenantDomains lists a tenant's domains.
func (tx *Tx) TenantDomains(ctx context.Context, tenantID int64) ([]TenantDomain, error) {
	rows, err := tx.query(ctx, `SELECT `+tenantDomainCols+` FROM tenant_domains WHERE tenant_id = ? ORDER BY domain`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list tenant domains: %w", err)
	}
	return collect(rows, scanTenantDomain)
}

// RecordDomainCheck stores the outcome of a TXT verification; verified sets VerifiedAt
// once (a later failed check does not take a verification back, the mailboxes keep working).
func (tx *Tx) RecordDomainCheck(ctx context.Context, tenantID, id int64, verified bool, checkError string) error {
	res, err := tx.exec(ctx, `UPDATE tenant_domains SET checked_at = ?, check_error = ?,
		verified_at = CASE WHEN verified_at = 0 AND ? THEN ? ELSE verified_at END WHERE tenant_id = ? AND id = ?`,
		tx.now, checkError, verified, tx.now, tenantID, id)
	return affected(res, err, "record domain check")
}

// DeleteTenantDomain removes a domain of a tenant.
func (tx *Tx) DeleteTenantDomain(ctx context.Context, tenantID, id int64) error {
	res, err := tx.exec(ctx, `DELETE FROM tenant_domains WHERE tenant_id = ? AND id = ?`, tenantID, id)
	return affected(res, err, "delete tenant domain")
}

// CountHostedOnDomain counts a tenant's hosted mailboxes on a domain.
func (tx *Tx) CountHostedOnDomain(ctx context.Context, tenantID int64, domain string) (int, error) {
	var n int
	err := tx.queryRow(ctx, `SELECT COUNT(*) FROM mailboxes WHERE tenant_id = ? AND kind = ? AND address LIKE ? ESCAPE '\'`,
		tenantID, KindHosted, "%@"+likeEscape(strings.ToLower(domain))).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count hosted on domain: %w", mapErr(err))
	}
	return n, nil
}
