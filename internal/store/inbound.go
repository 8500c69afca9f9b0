package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// Every mail account gets two addresses on the operator's inbound domain (seed 002: the
// "p14" and "p14.out" addresses): p<id>@domain receives the customer's forwarded replies,
// p<id>.out@domain is the envelope sender of mail sent through the system transport.
// After a merge (A7) the source's p-address keeps delivering to the target through a row
// in mailbox_aliases.

// InboundLocal is the local part of a mailbox's inbound address.
func InboundLocal(mailboxID int64) string { return "p" + strconv.FormatInt(mailboxID, 10) }

// InboundAddress is a mailbox's inbound address on domain.
func InboundAddress(mailboxID int64, domain string) string {
	return InboundLocal(mailboxID) + "@" + strings.ToLower(domain)
}

// OutboundAddress is a mailbox's envelope-sender address on domain.
func OutboundAddress(mailboxID int64, domain string) string {
	return InboundLocal(mailboxID) + ".out@" + strings.ToLower(domain)
}

// ParseInboundLocal returns the mailbox id named by a local part "p<id>" or "p<id>.out".
func ParseInboundLocal(local string) (id int64, outbound bool, ok bool) {
	local = strings.ToLower(local)
	if base, found := strings.CutSuffix(local, ".out"); found {
		local, outbound = base, true
	}
	if len(local) < 2 || local[0] != 'p' || local[1] == '0' {
		return 0, false, false
	}
	n, err := strconv.ParseInt(local[1:], 10, 64)
	if err != nil || n <= 0 {
		return 0, false, false
	}
	return n, outbound, true
}

// ResolveInboundLocal finds the mailbox that receives mail for a p-address local part, across
// tenants (the inbound domain is shared by all tenants; the id decides the tenant). Aliases
// left by a merge win over the plain id.
func (tx *Tx) ResolveInboundLocal(ctx context.Context, local string) (Mailbox, error) {
	id, _, ok := ParseInboundLocal(local)
	if !ok {
		return Mailbox{}, fmt.Errorf("inbound %q: %w", local, ErrNotFound)
	}
	// One statement for alias and mailbox: this runs for every RCPT of inbound mail.
	m, err := scanMailbox(tx.queryRow(ctx, `SELECT `+mailboxCols+` FROM mailboxes
		WHERE id = COALESCE((SELECT mailbox_id FROM mailbox_aliases WHERE local = ?), ?)`, InboundLocal(id), id))
	if err != nil {
		return m, fmt.Errorf("inbound %q: %w", local, err)
	}
	return m, nil
}

// AddInboundAlias makes local deliver to mailboxID (used when a merged account is deleted).
func (tx *Tx) AddInboundAlias(ctx context.Context, tenantID int64, local string, mailboxID int64) error {
	_, err := tx.exec(ctx, `INSERT INTO mailbox_aliases (tenant_id, local, mailbox_id, created_at) VALUES (?, ?, ?, ?)`, tenantID, strings.ToLower(local), mailboxID, tx.now)
	if err != nil {
		return fmt.Errorf("add alias: %w", err)
	}
	return nil
}

// RepointInboundAliases moves every alias of one mailbox to another (a merge into an account
// that is itself merged later keeps all old addresses working).
func (tx *Tx) RepointInboundAliases(ctx context.Context, tenantID, fromMailbox, toMailbox int64) error {
	_, err := tx.exec(ctx, `UPDATE mailbox_aliases SET mailbox_id = ? WHERE tenant_id = ? AND mailbox_id = ?`, toMailbox, tenantID, fromMailbox)
	if err != nil {
		return fmt.Errorf("repoint aliases: %w", err)
	}
	return nil
}
