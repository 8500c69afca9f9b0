package store

import (
	"context"
	"fmt"
)

// Mail-account lifecycle in SQL: the counts a deletion would lose or keep, the deletion that
// keeps journal-filed mail, and the merge of one account into another. The callers in core
// run these inside one transaction together with the audit record.

// journalFiled is the condition for a message that is filed in a contact's journal and
// therefore survives the deletion of its account (seed 004: "E-Mails mit Journalzuordnung
// werden nicht mit entfernt"): explicitly put into a journal, or filed at a contact.
const journalFiled = `(journal = TRUE OR contact_id IS NOT NULL)`

// AccountMessageCounts is what deleting an account would do to its messages.
type AccountMessageCounts struct {
	Total   int `json:"total"`
	Deleted int `json:"deleted"` // gone with the account
	Kept    int `json:"kept"`    // filed in a contact's journal; stay readable at the contact
}

// AccountMessageCounts counts a mailbox's messages by their fate on deletion.
func (tx *Tx) AccountMessageCounts(ctx context.Context, tenantID, mailboxID int64) (AccountMessageCounts, error) {
	var c AccountMessageCounts
	err := tx.queryRow(ctx, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN `+journalFiled+` THEN 1 ELSE 0 END), 0)
		FROM messages WHERE tenant_id = ? AND mailbox_id = ?`, tenantID, mailboxID).Scan(&c.Total, &c.Kept)
	if err != nil {
		return c, fmt.Errorf("count account messages: %w", mapErr(err))
	}
	c.Deleted = c.Total - c.Kept
	return c, nil
}

// MessageCountsByMailbox counts the messages of every mailbox of a tenant (the account list).
func (tx *Tx) MessageCountsByMailbox(ctx context.Context, tenantID int64) (map[int64]int, error) {
	rows, err := tx.query(ctx, `SELECT mailbox_id, COUNT(*) FROM messages WHERE tenant_id = ? AND mailbox_id IS NOT NULL GROUP BY mailbox_id`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("count messages: %w", err)
	}
	defer rows.Close()
	out := map[int64]int{}
	for rows.Next() {
		var id int64
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("count messages: %w", mapErr(err))
		}
		out[id] = n
	}
	return out, mapErr(rows.Err())
}

// DeleteAccountMessages deletes a mailbox's messages except the journal-filed ones, which
// are detached from the mailbox (mailbox_id NULL) and stay readable at their contact.
// Queue rows of deleted messages go with them (ON DELETE CASCADE).
func (tx *Tx) DeleteAccountMessages(ctx context.Context, tenantID, mailboxID int64) (AccountMessageCounts, error) {
	var c AccountMessageCounts
	res, err := tx.exec(ctx, `DELETE FROM messages WHERE tenant_id = ? AND mailbox_id = ? AND NOT `+journalFiled, tenantID, mailboxID)
	if err != nil {
		return c, fmt.Errorf("delete account messages: %w", err)
	}
	n, _ := res.RowsAffected()
	c.Deleted = int(n)
	res, err = tx.exec(ctx, `UPDATE messages SET mailbox_id = NULL WHERE tenant_id = ? AND mailbox_id = ?`, tenantID, mailboxID)
	if err != nil {
		return c, fmt.Errorf("detach journal messages: %w", err)
	}
	n, _ = res.RowsAffected()
	c.Kept = int(n)
	c.Total = c.Deleted + c.Kept
	return c, nil
}

// MergeResult says what a merge moved.
type MergeResult struct {
	Messages    int `json:"messages"`
	QueueRows   int `json:"queue_rows"`
	Aliases     int `json:"aliases"` // inbound addresses now delivering to the target, the source's own included
	GrantsEnded int `json:"grants_ended"`
}

// MergeAccounts moves everything of mailbox source to mailbox target (A7) and deletes the
// source: messages (with their thread ids and contact filings, which are columns of the
// message and therefore move with it), queued outbound rows, and the inbound addresses —
// the source's own p-address becomes an alias of the target, and aliases that pointed at the
// source are repointed. Message rows are moved, never copied, so nothing is duplicated; the
// caller runs this in one transaction, so a crash leaves the state before or after.
func (tx *Tx) MergeAccounts(ctx context.Context, tenantID, source, target int64) (MergeResult, error) {
	var r MergeResult
	if source == target {
		return r, fmt.Errorf("merge: source and target are the same mailbox: %w", ErrConflict)
	}
	// Both must belong to the tenant; reading them also fails early on a foreign id.
	if _, err := tx.Mailbox(ctx, tenantID, source); err != nil {
		return r, err
	}
	if _, err := tx.Mailbox(ctx, tenantID, target); err != nil {
		return r, err
	}
	res, err := tx.exec(ctx, `UPDATE messages SET mailbox_id = ? WHERE tenant_id = ? AND mailbox_id = ?`, target, tenantID, source)
	if err != nil {
		return r, fmt.Errorf("merge messages: %w", err)
	}
	n, _ := res.RowsAffected()
	r.Messages = int(n)
	res, err = tx.exec(ctx, `UPDATE outbound_queue SET mailbox_id = ? WHERE tenant_id = ? AND mailbox_id = ?`, target, tenantID, source)
	if err != nil {
		return r, fmt.Errorf("merge queue: %w", err)
	}
	n, _ = res.RowsAffected()
	r.QueueRows = int(n)
	if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM mailbox_aliases WHERE tenant_id = ? AND mailbox_id = ?`, tenantID, source).Scan(&r.Aliases); err != nil {
		return r, fmt.Errorf("merge aliases: %w", mapErr(err))
	}
	if err := tx.RepointInboundAliases(ctx, tenantID, source, target); err != nil {
		return r, err
	}
	if err := tx.AddInboundAlias(ctx, tenantID, InboundLocal(source), target); err != nil {
		return r, err
	}
	r.Aliases++
	if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM mailbox_grants WHERE tenant_id = ? AND mailbox_id = ? AND valid_until IS NULL`, tenantID, source).Scan(&r.GrantsEnded); err != nil {
		return r, fmt.Errorf("merge grants: %w", mapErr(err))
	}
	if err := tx.DeleteMailbox(ctx, tenantID, source); err != nil {
		return r, err
	}
	return r, nil
}

// AccountMailboxes lists every mail account of every tenant (the domain-check loop).
func (tx *Tx) AccountMailboxes(ctx context.Context) ([]Mailbox, error) {
	rows, err := tx.query(ctx, `SELECT `+mailboxCols+` FROM mailboxes WHERE kind = ? ORDER BY tenant_id, id`, KindAccount)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	return collect(rows, scanMailbox)
}
