// Package mailstore owns received and sent messages once they are in the database: parsing
// their headers, threading (X3), filing at contacts (A5), the quarantine of unparsable mail,
// out-of-office replies (H3) and the one visibility filter (C3, H7, H8) that every list,
// count, search and protocol server applies.
//
// Storage rules: the raw bytes are kept exactly as received (CRLF line ends) behind our own
// trace header; sha256 is the hash of the bytes as the sender delivered them, so a retried
// delivery of the same message is recognised. Deliver works inside the caller's transaction
// and keeps no state, so a batcher can put many deliveries into one commit (group commit).
package mailstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"postfach/internal/store"
)

// Delivery is one received message for one or more of our mailboxes.
type Delivery struct {
	Source       string          // smtp, imap, pop3
	EnvelopeFrom string          // reverse path; empty for bounces
	Recipients   []string        // envelope recipients as given, kept with quarantined mail
	Mailboxes    []store.Mailbox // receiving mailboxes, already resolved and checked active
	Raw          []byte          // the message as received, CRLF line ends
	Trace        []byte          // trace fields to prepend (Received:), each ending in CRLF
	Hostname     string          // our host name, for generated Message-IDs and replies
	// NoAutoReply suppresses out-of-office replies (imports of old mail).
	NoAutoReply bool
}

// Stored reports what Deliver did.
type Stored struct {
	Messages    []StoredMessage // one per tenant among the receiving mailboxes
	Quarantined []int64         // quarantine ids when the message could not be parsed
	AutoReplies []int64         // out-of-office replies recorded as pending
}

// StoredMessage is a message row written (or found, for a retried delivery).
type StoredMessage struct {
	store.Message
	Duplicate bool `json:"duplicate"`
}

// Filing reasons shown to users beside a message (A5).
const (
	ReasonReplyTo     = "reply to <%s>"
	ReasonFromContact = "from contact address"
	ReasonUnassigned  = "unassigned"
	ReasonFiledByHand = "filed by hand by %s"
	// ReasonRecipient files sent mail at the contacts of its recipients (A4), as the
	// Kommunikationsmanager does.
	ReasonRecipient    = "recipient"
	maxReferencesQuery = 50
)

// Deliver stores a received message in tx: one row per tenant, threaded and filed, or the
// raw bytes in the quarantine when the header cannot be read. It never drops a message.
// It is Prepare followed by a one-message Batch; a group commit prepares outside its
// transaction and shares one Batch among the deliveries of a transaction instead.
func Deliver(ctx context.Context, tx *store.Tx, d Delivery) (Stored, error) {
	return NewBatch(tx).Deliver(ctx, Prepare(d))
}

// threadAndFile joins the conversation of the message that this one answers and files it
// (X3, A5). A reply to a filed message goes to that contact; other mail from a contact's
// address goes to the contact; the rest is unassigned.
func (b *Batch) threadAndFile(ctx context.Context, tenantID int64, p Parsed, m *store.Message) error {
	ref, ok, err := b.reference(ctx, tenantID, p)
	if err != nil {
		return err
	}
	if ok {
		m.ThreadID = ref.ThreadID
		if ref.ContactID != nil {
			m.ContactID = ref.ContactID
			m.FiledReason = fmt.Sprintf(ReasonReplyTo, ref.MessageID)
			return nil
		}
	}
	for _, from := range p.From {
		id, err := b.contactID(ctx, tenantID, from)
		if err != nil {
			return err
		}
		if id != 0 {
			m.ContactID = &id
			m.FiledReason = ReasonFromContact
			return nil
		}
	}
	m.FiledReason = ReasonUnassigned
	return nil
}

// adoptEarlierReplies joins replies that were stored before the message they answer to its
// conversation: a sent message fetched from the account's Sent folder after the customer's
// answer came into the inbox, or one of two received messages imported out of order. A reply
// that had started a conversation of its own moves with everything threaded to it; one that
// is unassigned is filed where the message is, with the reason a reply gets (X3, A5). Replies
// threaded by another reference and filing decisions made by hand stay as they are.
func (b *Batch) adoptEarlierReplies(ctx context.Context, p *Prepared, m store.Message) error {
	if !p.HasOwnMessageID() {
		return nil // nobody can have answered an id made up here
	}
	replies, err := b.tx.RepliesTo(ctx, m.TenantID, m.MessageID, m.ID)
	if err != nil {
		return fmt.Errorf("mailstore: %w", err)
	}
	for _, r := range replies {
		if r.ThreadID != r.ID || r.ThreadID == m.ThreadID {
			continue
		}
		if err := b.tx.MoveThread(ctx, m.TenantID, r.ID, m.ThreadID); err != nil {
			return fmt.Errorf("mailstore: %w", err)
		}
		if r.ContactID == nil && r.FiledReason == ReasonUnassigned && m.ContactID != nil {
			if err := b.tx.FileMessage(ctx, m.TenantID, r.ID, m.ContactID, fmt.Sprintf(ReasonReplyTo, m.MessageID)); err != nil {
				return fmt.Errorf("mailstore: %w", err)
			}
		}
	}
	return nil
}

// reference finds the stored message that this one answers: In-Reply-To first, then
// References from the newest to the oldest (RFC 5322 §3.6.4 lists them oldest first).
func (b *Batch) reference(ctx context.Context, tenantID int64, p Parsed) (store.Message, bool, error) {
	order := append([]string{}, p.InReplyTo...)
	for i := len(p.References) - 1; i >= 0; i-- {
		order = append(order, p.References[i])
	}
	order = uniqueNonEmpty(order)
	if len(order) > maxReferencesQuery {
		order = order[:maxReferencesQuery]
	}
	if len(order) == 0 {
		return store.Message{}, false, nil
	}
	found, err := b.tx.MessagesByMessageID(ctx, tenantID, order)
	if err != nil {
		return store.Message{}, false, fmt.Errorf("mailstore: %w", err)
	}
	ref, ok := bestReference(order, found)
	return ref, ok, nil
}

// bestReference picks the referenced message in order of preference; among several stored
// copies of one Message-ID, a filed one (the sent message) wins.
func bestReference(order []string, found []store.Message) (store.Message, bool) {
	for _, id := range order {
		var pick *store.Message
		for i := range found {
			if found[i].MessageID != id {
				continue
			}
			if pick == nil || (pick.ContactID == nil && found[i].ContactID != nil) {
				pick = &found[i]
			}
		}
		if pick != nil {
			return *pick, true
		}
	}
	return store.Message{}, false
}

func uniqueNonEmpty(ids []string) []string {
	seen := map[string]bool{}
	out := ids[:0]
	for _, id := range ids {
		if id != "" && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// roles says how a receiving mailbox takes part: by its address in From, To or Cc, or
// else as an envelope-only recipient (Bcc, or a forward to its inbound address).
func roles(address string, p Parsed) []string {
	address = store.NormalizeAddress(address)
	var out []string
	has := func(list []string) bool {
		for _, a := range list {
			if a == address {
				return true
			}
		}
		return false
	}
	if has(p.From) {
		out = append(out, store.RoleFrom)
	}
	if has(p.To) {
		out = append(out, store.RoleTo)
	}
	if has(p.Cc) {
		out = append(out, store.RoleCc)
	}
	if len(out) == 0 || (len(out) == 1 && out[0] == store.RoleFrom) {
		out = append(out, store.RoleBcc)
	}
	return out
}

// contentMessageID is the Message-ID (without brackets) of mail that came without one: made
// from its SHA-256, so that the same bytes get the same id and are found again by the
// Message-ID index (a retried delivery, a rescan of the account).
func contentMessageID(sha string) string {
	return sha[:32] + "@no-message-id.postfach.invalid"
}

// generateMessageID makes a new Message-ID (without brackets) for mail Postfach writes.
func generateMessageID(hostname string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	if hostname == "" {
		hostname = "postfach.invalid"
	}
	return fmt.Sprintf("%s.%s@%s", time.Now().UTC().Format("20060102150405"), hex.EncodeToString(b[:]), hostname)
}

// Unparsable reports whether a prepared message goes to the quarantine.
func (p *Prepared) Unparsable() bool { return p.parseErr != nil }

// SHA256 is the hash of the message as the sender delivered it.
func (p *Prepared) SHA256() string { return p.sha }

// MessageID is the Message-ID the message is stored under, without angle brackets: its own,
// or one made from its hash when it has none; "" when it cannot be parsed.
func (p *Prepared) MessageID() string {
	if p.generated != "" {
		return p.generated
	}
	return p.parsed.MessageID
}

// HasOwnMessageID reports whether the message carries a Message-ID of its own.
func (p *Prepared) HasOwnMessageID() bool { return p.parseErr == nil && p.generated == "" }

// DeliverSent stores a message from an account's Sent folder (C9): mail the user sent from
// another client (Outlook, a phone). It is stored the way Postfach stores the mail it sends
// itself: outgoing, in Sent, filed at the contact of every To and Cc recipient (A4) and
// joined to the conversation it answers (X3). A copy that Postfach itself put into the Sent
// folder is recognised by its Message-ID and not stored twice. Nothing was received, so no
// message.received event and no out-of-office reply; a header that cannot be read goes to
// the quarantine like any other.
func (b *Batch) DeliverSent(ctx context.Context, p *Prepared) (Stored, error) {
	if p.parseErr != nil {
		return b.Deliver(ctx, p)
	}
	var out Stored
	for _, td := range p.tenants {
		m, err := b.deliverSentToTenant(ctx, p, td)
		if err != nil {
			return out, err
		}
		out.Messages = append(out.Messages, m)
	}
	return out, nil
}

func (b *Batch) deliverSentToTenant(ctx context.Context, p *Prepared, td tenantDelivery) (StoredMessage, error) {
	tenantID, primary := td.mailboxes[0].TenantID, td.mailboxes[0].ID
	pr := p.parsed
	msgID := p.MessageID()
	if p.generated == "" {
		dup, err := b.tx.SentMessageByMessageID(ctx, tenantID, primary, msgID)
		if sm, found, err := earlier(tenantID, msgID, dup, err); err != nil || found {
			return sm, err
		}
	}
	m := b.message(p, primary, msgID)
	m.Direction, m.Folder, m.Status = store.DirectionOut, "Sent", store.QueueSent
	contacts, err := b.fileSent(ctx, tenantID, pr, &m)
	if err != nil {
		return StoredMessage{}, err
	}
	if err := b.setPrivateOwner(ctx, tenantID, td, &m); err != nil {
		return StoredMessage{}, err
	}
	stored, err := b.tx.InsertMessage(ctx, tenantID, m)
	if err != nil {
		return StoredMessage{}, fmt.Errorf("mailstore: %w", err)
	}
	if err := b.adoptEarlierReplies(ctx, p, stored); err != nil {
		return StoredMessage{}, err
	}
	if err := b.tx.LinkMessageContacts(ctx, tenantID, stored.ID, contacts); err != nil {
		return StoredMessage{}, fmt.Errorf("mailstore: %w", err)
	}
	// The account sent it: the VIP rule (H7) and the mailbox filter see it as its sender.
	links := []store.MailboxLink{{MessageID: stored.ID, MailboxID: primary, Role: store.RoleFrom}}
	if err := b.tx.LinkMessageMailboxes(ctx, tenantID, links); err != nil {
		return StoredMessage{}, fmt.Errorf("mailstore: %w", err)
	}
	stored.Raw = nil
	return StoredMessage{Message: stored}, nil
}

// fileSent threads a sent message to the conversation it answers and files it at the
// contacts of its To and Cc recipients (A4); the first is the message's contact. Without a
// recipient contact, a reply stays at the contact of the message it answers.
func (b *Batch) fileSent(ctx context.Context, tenantID int64, p Parsed, m *store.Message) ([]int64, error) {
	ref, ok, err := b.reference(ctx, tenantID, p)
	if err != nil {
		return nil, err
	}
	if ok {
		m.ThreadID = ref.ThreadID
	}
	contacts, err := b.tx.ContactIDsByEmails(ctx, tenantID, append(append([]string{}, p.To...), p.Cc...))
	if err != nil {
		return nil, fmt.Errorf("mailstore: %w", err)
	}
	switch {
	case len(contacts) > 0:
		m.ContactID, m.FiledReason = &contacts[0], ReasonRecipient
	case ok && ref.ContactID != nil:
		m.ContactID, m.FiledReason = ref.ContactID, fmt.Sprintf(ReasonReplyTo, ref.MessageID)
	default:
		m.FiledReason = ReasonUnassigned
	}
	return contacts, nil
}
