package store

import (
	"context"
	"fmt"
)

// QueueKindAutoReply marks an out-of-office reply (H3) in the outbound queue. Such a row is
// not a user's message: the policy is not asked again at dequeue (nobody chose a sender), a
// failure queues no bounce and no copy goes to a Sent folder on the mailbox's server.
const QueueKindAutoReply = "auto_reply"

// QueueAutoReply hands a recorded auto reply to the outbound queue in the caller's
// transaction (the delivery's): it stores m as the mailbox's outgoing message (linked to its
// mailbox as the sender), adds the queue row e for it and marks the reply "queued". Because the decision, the reply and the
// queue row commit together, a reply is neither lost nor queued twice.
func (tx *Tx) QueueAutoReply(ctx context.Context, replyID int64, m Message, e QueueEntry) (QueueEntry, error) {
	m.Direction = DirectionOut
	if m.Status == "" {
		m.Status = QueueQueued
	}
	m, err := tx.InsertMessage(ctx, m.TenantID, m)
	if err != nil {
		return e, fmt.Errorf("queue auto reply: %w", err)
	}
	if m.MailboxID != nil {
		// The answering mailbox is the sender: the VIP filter (H7) reads this link.
		if err := tx.LinkMessageMailbox(ctx, m.TenantID, m.ID, *m.MailboxID, RoleFrom); err != nil {
			return e, fmt.Errorf("queue auto reply: %w", err)
		}
	}
	e.MessageID, e.Kind = m.ID, QueueKindAutoReply
	e, err = tx.EnqueueOutbound(ctx, m.TenantID, e)
	if err != nil {
		return e, fmt.Errorf("queue auto reply: %w", err)
	}
	res, err := tx.exec(ctx, `UPDATE auto_replies SET state = 'queued' WHERE id = ? AND state = 'pending'`, replyID)
	if err != nil {
		return e, fmt.Errorf("queue auto reply: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n != 1 {
		return e, fmt.Errorf("queue auto reply %d: %w", replyID, ErrConflict)
	}
	return e, nil
}
