package core

import (
	"context"
	"fmt"

	"postfach/internal/store"
)

// RestoredAccount is an account whose "E-Mails auf dem Server löschen" a restore switched off.
type RestoredAccount struct {
	TenantID int64
	ID       int64
	Address  string
}

// DisableDeleteOnServer switches "E-Mails auf dem Server löschen" off on every mailbox that
// has it on (C4, seed 004): a restored copy — a test installation, say — must never delete
// mail on the customers' servers that the real installation has not fetched yet. It runs in
// the restore's transaction and writes one audit entry per changed account.
func DisableDeleteOnServer(ctx context.Context, tx *store.Tx) ([]RestoredAccount, error) {
	rows, err := tx.Query(ctx, `SELECT id, tenant_id, address, settings FROM mailboxes ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("core: restore: %w", err)
	}
	type row struct {
		id, tenant int64
		address    string
		settings   string
	}
	var all []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.tenant, &r.address, &r.settings); err != nil {
			rows.Close()
			return nil, fmt.Errorf("core: restore: %w", err)
		}
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("core: restore: %w", err)
	}
	var changed []RestoredAccount
	for _, r := range all {
		as, err := ParseAccountSettings(r.settings)
		if err != nil || !as.Receive.DeleteOnServer {
			continue
		}
		as.Receive.DeleteOnServer = false
		settings, err := mergeAccountSettings(r.settings, as)
		if err != nil {
			return nil, fmt.Errorf("core: restore: mailbox %d: %w", r.id, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE mailboxes SET settings = ?, updated_at = ? WHERE id = ?`, settings, tx.Now(), r.id); err != nil {
			return nil, fmt.Errorf("core: restore: mailbox %d: %w", r.id, err)
		}
		tid := r.tenant
		if err := tx.Audit(ctx, store.AuditEntry{TenantID: &tid, Actor: "system", Action: "account.restore",
			Target: idStr("mailbox", r.id), Detail: r.address + " delete_on_server=false (restored from a backup)"}); err != nil {
			return nil, err
		}
		changed = append(changed, RestoredAccount{TenantID: r.tenant, ID: r.id, Address: r.address})
	}
	return changed, nil
}
