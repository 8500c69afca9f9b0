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
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
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
	ReasonReplyTo      = "reply to <%s>"
	ReasonFromContact  = "from contact address"
	ReasonUnassigned   = "unassigned"
	ReasonFiledByHand  = "filed by hand by %s"
	maxReferencesQuery = 50
)

// Deliver stores a received message in tx: one row per tenant, threaded and filed, or the
// raw bytes in the quarantine when the header cannot be read. It never drops a message.
func Deliver(ctx context.Context, tx *store.Tx, d Delivery) (Stored, error) {
	var out Stored
	sum := sha256.Sum256(d.Raw)
	sha := hex.EncodeToString(sum[:])
	raw := make([]byte, 0, len(d.Trace)+len(d.Raw))
	raw = append(append(raw, d.Trace...), d.Raw...)

	parsed, err := ParseHeader(d.Raw)
	if err != nil {
		if !errors.Is(err, errUnparsable) {
			return out, fmt.Errorf("mailstore: parse: %w", err)
		}
		return quarantine(ctx, tx, d, raw, sha, err.Error())
	}
	for _, group := range byTenant(d.Mailboxes) {
		m, err := deliverToTenant(ctx, tx, d, parsed, group, raw, sha)
		if err != nil {
			return out, err
		}
		out.Messages = append(out.Messages, m)
		if m.Duplicate || d.NoAutoReply {
			continue
		}
		ids, err := autoReplies(ctx, tx, d, parsed, group, m.Message)
		if err != nil {
			return out, err
		}
		out.AutoReplies = append(out.AutoReplies, ids...)
	}
	return out, nil
}

func quarantine(ctx context.Context, tx *store.Tx, d Delivery, raw []byte, sha, reason string) (Stored, error) {
	var out Stored
	q := store.QuarantinedMessage{Source: d.Source, EnvelopeFrom: d.EnvelopeFrom, Recipients: strings.Join(d.Recipients, ", "),
		Reason: cleanText(reason, 500), SHA256: sha, Raw: raw}
	groups := byTenant(d.Mailboxes)
	if len(groups) == 0 {
		// No tenant could be told: the operator's quarantine keeps it.
		stored, err := tx.Quarantine(ctx, q)
		if err != nil {
			return out, fmt.Errorf("mailstore: %w", err)
		}
		return Stored{Quarantined: []int64{stored.ID}}, nil
	}
	for _, g := range groups {
		tid, mid := g[0].TenantID, g[0].ID
		q.TenantID, q.MailboxID = &tid, &mid
		stored, err := tx.Quarantine(ctx, q)
		if err != nil {
			return out, fmt.Errorf("mailstore: %w", err)
		}
		out.Quarantined = append(out.Quarantined, stored.ID)
	}
	return out, nil
}

// byTenant groups mailboxes by tenant in their first-seen order.
func byTenant(mbs []store.Mailbox) [][]store.Mailbox {
	var groups [][]store.Mailbox
	index := map[int64]int{}
	for _, m := range mbs {
		i, ok := index[m.TenantID]
		if !ok {
			i = len(groups)
			index[m.TenantID] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], m)
	}
	return groups
}

func deliverToTenant(ctx context.Context, tx *store.Tx, d Delivery, p Parsed, group []store.Mailbox, raw []byte, sha string) (StoredMessage, error) {
	tenantID, primary := group[0].TenantID, group[0].ID
	msgID := p.MessageID
	if msgID == "" {
		msgID = generateMessageID(d.Hostname)
	} else {
		// RFC 5321 §4.5.4.1: a client may retry a message whose 250 it never saw.
		dup, err := tx.FindDuplicate(ctx, tenantID, primary, msgID, sha)
		if err == nil {
			return StoredMessage{Message: store.Message{ID: dup, TenantID: tenantID, MessageID: msgID}, Duplicate: true}, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return StoredMessage{}, fmt.Errorf("mailstore: %w", err)
		}
	}
	m := store.Message{
		MailboxID: &primary, Direction: store.DirectionIn, Folder: "INBOX", MessageID: msgID,
		InReplyTo: idList(p.InReplyTo).first(), From: cleanText(p.FromText, 2000), To: cleanText(p.ToText, 4000),
		Cc: cleanText(p.CcText, 4000), Subject: p.Subject, Size: int64(len(raw)), SHA256: sha, Raw: raw,
		SentAt: tx.Now(),
	}
	if !p.Date.IsZero() {
		m.SentAt = p.Date.UnixMilli()
	}
	if err := threadAndFile(ctx, tx, tenantID, p, &m); err != nil {
		return StoredMessage{}, err
	}
	owner, err := privateOwner(ctx, tx, group)
	if err != nil {
		return StoredMessage{}, err
	}
	m.PrivateOwnerID = owner
	stored, err := tx.InsertMessage(ctx, tenantID, m)
	if err != nil {
		return StoredMessage{}, fmt.Errorf("mailstore: %w", err)
	}
	for _, mb := range group {
		for _, role := range roles(mb.Address, p) {
			if err := tx.LinkMessageMailbox(ctx, tenantID, stored.ID, mb.ID, role); err != nil {
				return StoredMessage{}, fmt.Errorf("mailstore: %w", err)
			}
		}
	}
	stored.Raw = nil
	return StoredMessage{Message: stored}, nil
}

// threadAndFile joins the conversation of the message that this one answers and files it
// (X3, A5): In-Reply-To first, then References from the newest to the oldest (RFC 5322
// §3.6.4 lists them oldest first). A reply to a filed message goes to that contact; other
// mail from a contact's address goes to the contact; the rest is unassigned.
func threadAndFile(ctx context.Context, tx *store.Tx, tenantID int64, p Parsed, m *store.Message) error {
	order := append([]string{}, p.InReplyTo...)
	for i := len(p.References) - 1; i >= 0; i-- {
		order = append(order, p.References[i])
	}
	order = uniqueNonEmpty(order)
	if len(order) > maxReferencesQuery {
		order = order[:maxReferencesQuery]
	}
	if len(order) > 0 {
		found, err := tx.MessagesByMessageID(ctx, tenantID, order)
		if err != nil {
			return fmt.Errorf("mailstore: %w", err)
		}
		if ref, ok := bestReference(order, found); ok {
			m.ThreadID = ref.ThreadID
			if ref.ContactID != nil {
				m.ContactID = ref.ContactID
				m.FiledReason = fmt.Sprintf(ReasonReplyTo, ref.MessageID)
				return nil
			}
		}
	}
	for _, from := range p.From {
		c, err := tx.ContactByEmail(ctx, tenantID, from)
		if err == nil {
			m.ContactID = &c.ID
			m.FiledReason = ReasonFromContact
			return nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("mailstore: %w", err)
		}
	}
	m.FiledReason = ReasonUnassigned
	return nil
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

// privateOwner returns the owner when every receiving mailbox of the tenant is the private
// account of the same user (C3); mail that also reached a shared mailbox is shared.
func privateOwner(ctx context.Context, tx *store.Tx, group []store.Mailbox) (*int64, error) {
	code := ""
	for i, mb := range group {
		s, err := ParseSettings(mb.Settings)
		if err != nil || s.PrivateOwner == "" {
			return nil, nil
		}
		if i > 0 && s.PrivateOwner != code {
			return nil, nil
		}
		code = s.PrivateOwner
	}
	id, err := tx.UserIDByShortCode(ctx, group[0].TenantID, code)
	if errors.Is(err, store.ErrNotFound) {
		// A short code that names nobody must not make private mail public: an owner id
		// that matches no user hides it until someone files it at a contact.
		none := int64(-1)
		return &none, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mailstore: %w", err)
	}
	return &id, nil
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

// generateMessageID makes a Message-ID (without brackets) for mail that came without one.
func generateMessageID(hostname string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	if hostname == "" {
		hostname = "postfach.invalid"
	}
	return fmt.Sprintf("%s.%s@%s", time.Now().UTC().Format("20060102150405"), hex.EncodeToString(b[:]), hostname)
}
