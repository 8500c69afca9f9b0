package store

import (
	"context"
	"fmt"
	"strings"
)

// DomainCheck is the stored result of the health check of one sending domain of a tenant
// (A8). Report is the check's JSON as the dnscheck package produced it, so that it can be
// rendered later in the reader's language.
type DomainCheck struct {
	ID          int64  `json:"id"`
	TenantID    int64  `json:"tenant_id"`
	Domain      string `json:"domain"`
	Outcome     string `json:"outcome"` // empty until the first check
	Report      string `json:"-"`
	CheckedAt   int64  `json:"checked_at"`
	NextCheckAt int64  `json:"next_check_at"`
}

const domainCheckCols = `id, tenant_id, domain, outcome, report, checked_at, next_check_at`

func scanDomainCheck(s interface{ Scan(...any) error }) (DomainCheck, error) {
	var d DomainCheck
	err := s.Scan(&d.ID, &d.TenantID, &d.Domain, &d.Outcome, &d.Report, &d.CheckedAt, &d.NextCheckAt)
	return d, mapErr(err)
}

// EnsureDomainCheck makes sure a row exists for a tenant's domain; a new one is due at once.
func (tx *Tx) EnsureDomainCheck(ctx context.Context, tenantID int64, domain string) error {
	domain = strings.ToLower(strings.TrimSpace(domain))
	// ON CONFLICT instead of catching the error: on PostgreSQL a failed statement aborts the
	// caller's whole transaction.
	_, err := tx.exec(ctx, `INSERT INTO domain_checks (tenant_id, domain, next_check_at) VALUES (?, ?, 0)
		ON CONFLICT (tenant_id, domain) DO NOTHING`, tenantID, domain)
	if err != nil {
		return fmt.Errorf("ensure domain check: %w", err)
	}
	return nil
}

// DomainCheck reads the stored check of a tenant's domain.
func (tx *Tx) DomainCheck(ctx context.Context, tenantID int64, domain string) (DomainCheck, error) {
	d, err := scanDomainCheck(tx.queryRow(ctx, `SELECT `+domainCheckCols+` FROM domain_checks WHERE tenant_id = ? AND domain = ?`,
		tenantID, strings.ToLower(domain)))
	if err != nil {
		return d, fmt.Errorf("domain check %s: %w", domain, err)
	}
	return d, nil
}

// DomainChecks lists a tenant's stored checks.
func (tx *Tx) DomainChecks(ctx context.Context, tenantID int64) ([]DomainCheck, error) {
	rows, err := tx.query(ctx, `SELECT `+domainCheckCols+` FROM domain_checks WHERE tenant_id = ? ORDER BY domain`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list domain checks: %w", err)
	}
	return collect(rows, scanDomainCheck)
}

// RequestDomainCheck makes a tenant's domain due now (the "check again" button).
func (tx *Tx) RequestDomainCheck(ctx context.Context, tenantID int64, domain string) error {
	res, err := tx.exec(ctx, `UPDATE domain_checks SET next_check_at = 0, lease_until = 0 WHERE tenant_id = ? AND domain = ?`, tenantID, strings.ToLower(domain))
	return affected(res, err, "request domain check")
}

// ClaimDueDomainChecks leases up to limit due checks for leaseMillis, so that among several
// instances on one database exactly one checks each domain. The caller commits the claim
// before it starts the (slow) DNS work.
func (tx *Tx) ClaimDueDomainChecks(ctx context.Context, limit int, leaseMillis int64) ([]DomainCheck, error) {
	q := `SELECT ` + domainCheckCols + ` FROM domain_checks WHERE next_check_at <= ? AND lease_until <= ? ORDER BY next_check_at, id LIMIT ?`
	if tx.dialect == Postgres {
		q += ` FOR UPDATE SKIP LOCKED`
	}
	rows, err := tx.query(ctx, q, tx.now, tx.now, limit)
	if err != nil {
		return nil, fmt.Errorf("claim domain checks: %w", err)
	}
	due, err := collect(rows, scanDomainCheck)
	if err != nil {
		return nil, fmt.Errorf("claim domain checks: %w", err)
	}
	for _, d := range due {
		if _, err := tx.exec(ctx, `UPDATE domain_checks SET lease_until = ? WHERE id = ?`, tx.now+leaseMillis, d.ID); err != nil {
			return nil, fmt.Errorf("claim domain checks: %w", err)
		}
	}
	return due, nil
}

// SaveDomainCheck stores a check's result and when to check again.
func (tx *Tx) SaveDomainCheck(ctx context.Context, id int64, outcome, report string, nextAt int64) error {
	res, err := tx.exec(ctx, `UPDATE domain_checks SET outcome = ?, report = ?, checked_at = ?, next_check_at = ?, lease_until = 0 WHERE id = ?`,
		outcome, report, tx.now, nextAt, id)
	return affected(res, err, "save domain check")
}

// PruneDomainChecks deletes the checks of domains no account of the tenant uses any more.
// inUse maps tenant ids to their domains.
func (tx *Tx) PruneDomainChecks(ctx context.Context, inUse map[int64]map[string]bool) (int, error) {
	rows, err := tx.query(ctx, `SELECT id, tenant_id, domain FROM domain_checks`)
	if err != nil {
		return 0, fmt.Errorf("prune domain checks: %w", err)
	}
	var stale []int64
	for rows.Next() {
		var id, tid int64
		var domain string
		if err := rows.Scan(&id, &tid, &domain); err != nil {
			rows.Close()
			return 0, fmt.Errorf("prune domain checks: %w", mapErr(err))
		}
		if !inUse[tid][domain] {
			stale = append(stale, id)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("prune domain checks: %w", mapErr(err))
	}
	for _, id := range stale {
		if _, err := tx.exec(ctx, `DELETE FROM domain_checks WHERE id = ?`, id); err != nil {
			return 0, fmt.Errorf("prune domain checks: %w", err)
		}
	}
	return len(stale), nil
}

// ConnTestLog is one connection test (C1), kept for the rate limit and for support.
type ConnTestLog struct {
	TenantID   int64
	MailboxID  *int64
	UserKey    string
	Protocol   string
	Host       string
	Port       int
	OK         bool
	FailedStep string
	MessageKey string
	Detail     string
}

// CountConnTests counts a user's connection tests since a time (Unix ms).
func (tx *Tx) CountConnTests(ctx context.Context, userKey string, since int64) (int, error) {
	var n int
	err := tx.queryRow(ctx, `SELECT COUNT(*) FROM connection_tests WHERE user_key = ? AND created_at >= ?`, userKey, since).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count connection tests: %w", mapErr(err))
	}
	return n, nil
}

// OldestConnTestSince is the time of the user's oldest test since a time (for "retry in").
func (tx *Tx) OldestConnTestSince(ctx context.Context, userKey string, since int64) (int64, error) {
	var at int64
	err := tx.queryRow(ctx, `SELECT COALESCE(MIN(created_at), 0) FROM connection_tests WHERE user_key = ? AND created_at >= ?`, userKey, since).Scan(&at)
	return at, mapErr(err)
}

// AddConnTest records a connection test (before it runs: the record is the rate-limit token).
func (tx *Tx) AddConnTest(ctx context.Context, l ConnTestLog) (int64, error) {
	id, err := tx.insertID(ctx, `INSERT INTO connection_tests (tenant_id, mailbox_id, user_key, protocol, host, port, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		l.TenantID, l.MailboxID, l.UserKey, l.Protocol, l.Host, l.Port, tx.now)
	if err != nil {
		return 0, fmt.Errorf("add connection test: %w", err)
	}
	return id, nil
}

// FinishConnTest stores a connection test's outcome.
func (tx *Tx) FinishConnTest(ctx context.Context, id int64, l ConnTestLog) error {
	res, err := tx.exec(ctx, `UPDATE connection_tests SET ok = ?, failed_step = ?, message_key = ?, detail = ? WHERE id = ?`,
		l.OK, l.FailedStep, l.MessageKey, l.Detail, id)
	return affected(res, err, "finish connection test")
}
