package mailstore

import (
	"context"
	"fmt"
	"strings"

	"postfach/internal/store"
)

// Viewer is whoever reads messages.
type Viewer struct {
	TenantID int64
	UserID   int64
	// Unfiltered is for the host application's API token, which acts for the whole tenant
	// and applies its own rules; people always get the filter.
	Unfiltered bool
}

// VisibleFilter is the one row filter on messages (alias m) that decides what a user may
// read; every list, count, search, export and protocol server ANDs it into its query.
//
//   - Private accounts (C3): unfiled mail of a private account is visible only to its owner;
//     once filed at a contact it is visible to everyone who may see the contact (contacts
//     are shared within the tenant).
//   - VIP mailboxes (H7): mail that involves a VIP mailbox is visible only to users who were
//     assigned (directly or through a group) to one of the mailboxes that sent or received
//     it at the moment it was stored. Grant history decides, not today's assignment: a user
//     assigned later does not see earlier mail; a user unassigned keeps the earlier mail.
//   - Tenant option "no VIP protection for CC/BCC recipients" (H8): then only a VIP mailbox
//     in To: or as sender protects the message.
func VisibleFilter(v Viewer) (where string, args []any) {
	if v.Unfiltered {
		return "", nil
	}
	const private = `(m.private_owner_id IS NULL OR m.contact_id IS NOT NULL OR m.private_owner_id = ?)`
	// A VIP mailbox protects the message when it took part as sender or To: recipient, or in
	// any role unless the tenant switched CC/BCC protection off. Sent mail without
	// message_mailboxes rows is protected by its sending mailbox.
	const vipProtected = `(EXISTS (SELECT 1 FROM message_mailboxes x JOIN mailboxes vb ON vb.id = x.mailbox_id
			WHERE x.message_id = m.id AND vb.vip = TRUE
			AND (x.role IN ('from', 'to') OR NOT (SELECT t.vip_no_cc_bcc FROM tenants t WHERE t.id = ?)))
		OR (m.direction = 'out' AND EXISTS (SELECT 1 FROM mailboxes vs WHERE vs.id = m.mailbox_id AND vs.vip = TRUE)))`
	const assignedThen = `EXISTS (SELECT 1 FROM mailbox_grants g WHERE g.tenant_id = ?
			AND g.valid_from <= m.created_at AND (g.valid_until IS NULL OR g.valid_until > m.created_at)
			AND (g.user_id = ? OR g.group_id IN (SELECT gm.group_id FROM group_members gm WHERE gm.tenant_id = ? AND gm.user_id = ?))
			AND (g.mailbox_id = m.mailbox_id OR g.mailbox_id IN (SELECT y.mailbox_id FROM message_mailboxes y WHERE y.message_id = m.id)))`
	where = private + ` AND (NOT ` + vipProtected + ` OR ` + assignedThen + `)`
	args = []any{v.UserID, v.TenantID, v.TenantID, v.UserID, v.TenantID, v.UserID}
	return where, args
}

// Query returns a message query of the viewer's tenant with the visibility filter applied.
func Query(v Viewer, f store.MessageFilter) store.MessageQuery {
	where, args := VisibleFilter(v)
	return store.MessageQuery{TenantID: v.TenantID, Filter: f, Where: where, WhereArgs: args}
}

// List lists the messages the viewer may read, newest first.
func List(ctx context.Context, tx *store.Tx, v Viewer, f store.MessageFilter) ([]store.Message, error) {
	list, err := tx.Messages(ctx, Query(v, f))
	if err != nil {
		return nil, fmt.Errorf("mailstore: %w", err)
	}
	return list, nil
}

// Count counts the messages the viewer may read.
func Count(ctx context.Context, tx *store.Tx, v Viewer, f store.MessageFilter) (int, error) {
	n, err := tx.CountMessages(ctx, Query(v, f))
	if err != nil {
		return 0, fmt.Errorf("mailstore: %w", err)
	}
	return n, nil
}

// Read returns one message with its raw bytes if the viewer may read it; otherwise
// store.ErrNotFound, so that callers cannot tell hidden from missing.
func Read(ctx context.Context, tx *store.Tx, v Viewer, id int64) (store.Message, error) {
	m, err := tx.MessageWhere(ctx, Query(v, store.MessageFilter{}), id)
	if err != nil {
		return m, fmt.Errorf("mailstore: %w", err)
	}
	return m, nil
}

// FileAtContact files a message the viewer may read at a contact by hand (A5).
func FileAtContact(ctx context.Context, tx *store.Tx, v Viewer, messageID, contactID int64, by string) (store.Message, error) {
	m, err := Read(ctx, tx, v, messageID)
	if err != nil {
		return m, err
	}
	if _, err := tx.Contact(ctx, v.TenantID, contactID); err != nil {
		return m, fmt.Errorf("mailstore: %w", err)
	}
	reason := fmt.Sprintf(ReasonFiledByHand, by)
	if err := tx.FileMessage(ctx, v.TenantID, messageID, &contactID, reason); err != nil {
		return m, fmt.Errorf("mailstore: %w", err)
	}
	m.ContactID, m.FiledReason, m.Raw = &contactID, reason, nil
	return m, nil
}

// MailboxNames names the mailboxes of messages the viewer may read: mailbox id → address,
// for the mailbox column of a list whose messages are messageIDs. Only the mailbox a
// readable message belongs to is named, and only one of the viewer's tenant or a global
// one: a user without the right to list the tenant's mailboxes learns no more than the
// messages they may read already tell.
func MailboxNames(ctx context.Context, tx *store.Tx, v Viewer, messageIDs []int64) (map[int64]string, error) {
	names := map[int64]string{}
	if len(messageIDs) == 0 {
		return names, nil
	}
	q := `SELECT DISTINCT mb.id, mb.address FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id
		WHERE m.tenant_id = ? AND (mb.tenant_id = ? OR mb.flag_global = TRUE) AND m.id IN (` + strings.TrimSuffix(strings.Repeat("?, ", len(messageIDs)), ", ") + `)`
	args := []any{v.TenantID, v.TenantID}
	for _, id := range messageIDs {
		args = append(args, id)
	}
	if where, wargs := VisibleFilter(v); where != "" {
		q += ` AND (` + where + `)`
		args = append(args, wargs...)
	}
	rows, err := tx.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("mailstore: mailbox names: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var address string
		if err := rows.Scan(&id, &address); err != nil {
			return nil, fmt.Errorf("mailstore: mailbox names: %w", err)
		}
		names[id] = address
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("mailstore: mailbox names: %w", err)
	}
	return names, nil
}
