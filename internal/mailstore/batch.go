package mailstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"postfach/internal/store"
	"postfach/internal/webhooks"
)

// Prepared is a delivery with everything computed that needs no database: the content
// hash, the stored bytes, the parsed header, the receiving mailboxes grouped by tenant with
// their roles and settings. Prepare runs in the caller's goroutine (an SMTP session), so
// that the group-commit goroutine, which bounds ingest, only runs statements.
type Prepared struct {
	d         Delivery
	sha       string
	raw       []byte // trace fields + message
	parsed    Parsed
	parseErr  error // errUnparsable: the message goes to the quarantine
	tenants   []tenantDelivery
	generated string // Message-ID made up for mail without one
}

// tenantDelivery is the part of a delivery that becomes one row of one tenant.
type tenantDelivery struct {
	mailboxes    []store.Mailbox
	roles        [][]string // per mailbox
	privateCode  string     // short code when every mailbox is the same user's private account (C3)
	outOfOffice  bool       // some mailbox has an out-of-office reply switched on
	settingsBad  bool
	privateMixed bool
}

// Prepare does the database-free part of a delivery. It never fails: a message whose
// header cannot be read is marked for the quarantine.
func Prepare(d Delivery) *Prepared {
	sum := sha256.Sum256(d.Raw)
	p := &Prepared{d: d, sha: hex.EncodeToString(sum[:])}
	p.raw = make([]byte, 0, len(d.Trace)+len(d.Raw))
	p.raw = append(append(p.raw, d.Trace...), d.Raw...)
	p.parsed, p.parseErr = ParseHeader(d.Raw)
	if p.parseErr != nil {
		return p
	}
	if p.parsed.MessageID == "" {
		p.generated = contentMessageID(p.sha)
	}
	for _, group := range byTenant(d.Mailboxes) {
		td := tenantDelivery{mailboxes: group}
		for i, mb := range group {
			td.roles = append(td.roles, roles(mb.Address, p.parsed))
			s, err := ParseSettings(mb.Settings)
			if err != nil {
				td.settingsBad = true
				continue
			}
			if s.OutOfOffice != nil && s.OutOfOffice.Enabled {
				td.outOfOffice = true
			}
			switch {
			case s.PrivateOwner == "" || (i > 0 && s.PrivateOwner != td.privateCode):
				td.privateMixed = true
			case i == 0:
				td.privateCode = s.PrivateOwner
			}
		}
		if td.settingsBad || td.privateMixed {
			// Mail that also reached a shared mailbox (or one whose settings cannot be
			// read) is shared.
			td.privateCode = ""
		}
		p.tenants = append(p.tenants, td)
	}
	return p
}

// Batch delivers prepared messages inside one transaction. Look-ups that many messages of
// a batch repeat (the contact of a sender, the owner of a private account, whether a tenant
// wants webhooks) are asked once per batch; the store runs its statements prepared.
// A Batch lives as long as its transaction and is not safe for concurrent use.
type Batch struct {
	tx       *store.Tx
	contacts map[tenantKey]int64 // 0: no contact
	owners   map[tenantKey]int64
	hooks    map[int64]bool
}

type tenantKey struct {
	tenantID int64
	key      string
}

// NewBatch starts a batch in tx.
func NewBatch(tx *store.Tx) *Batch {
	return &Batch{tx: tx, contacts: map[tenantKey]int64{}, owners: map[tenantKey]int64{}, hooks: map[int64]bool{}}
}

// Deliver stores one prepared message: one row per tenant, threaded and filed, or the raw
// bytes in the quarantine. A message_received webhook event is written for every new row
// in the same transaction.
func (b *Batch) Deliver(ctx context.Context, p *Prepared) (Stored, error) {
	var out Stored
	if p.parseErr != nil {
		if !errors.Is(p.parseErr, errUnparsable) {
			return out, fmt.Errorf("mailstore: parse: %w", p.parseErr)
		}
		return quarantine(ctx, b.tx, p.d, p.raw, p.sha, p.parseErr.Error())
	}
	for _, td := range p.tenants {
		m, err := b.deliverToTenant(ctx, p, td)
		if err != nil {
			return out, err
		}
		out.Messages = append(out.Messages, m)
		if m.Duplicate {
			continue
		}
		if err := b.emitReceived(ctx, p, td, m.Message); err != nil {
			return out, err
		}
		if p.d.NoAutoReply || !td.outOfOffice {
			continue
		}
		ids, err := autoReplies(ctx, b.tx, p.d, p.parsed, td.mailboxes, m.Message)
		if err != nil {
			return out, err
		}
		out.AutoReplies = append(out.AutoReplies, ids...)
	}
	return out, nil
}

func (b *Batch) deliverToTenant(ctx context.Context, p *Prepared, td tenantDelivery) (StoredMessage, error) {
	tenantID, primary := td.mailboxes[0].TenantID, td.mailboxes[0].ID
	pr := p.parsed
	msgID := p.MessageID()
	// RFC 5321 §4.5.4.1: a client may retry a message whose 250 it never saw; mail without a
	// Message-ID has one made from its hash, so its retry is recognised too.
	dup, err := b.tx.FindDuplicate(ctx, tenantID, primary, msgID, p.sha)
	if sm, found, err := earlier(tenantID, msgID, dup, err); err != nil || found {
		return sm, err
	}
	m := b.message(p, primary, msgID)
	m.Direction, m.Folder = store.DirectionIn, "INBOX"
	if err := b.threadAndFile(ctx, tenantID, pr, &m); err != nil {
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
	var links []store.MailboxLink
	for i, mb := range td.mailboxes {
		for _, role := range td.roles[i] {
			links = append(links, store.MailboxLink{MessageID: stored.ID, MailboxID: mb.ID, Role: role})
		}
	}
	if err := b.tx.LinkMessageMailboxes(ctx, tenantID, links); err != nil {
		return StoredMessage{}, fmt.Errorf("mailstore: %w", err)
	}
	stored.Raw = nil
	return StoredMessage{Message: stored}, nil
}

// earlier turns the result of a duplicate look-up into the message stored before (found),
// or nothing when there is none.
func earlier(tenantID int64, msgID string, dup int64, err error) (StoredMessage, bool, error) {
	switch {
	case err == nil:
		return StoredMessage{Message: store.Message{ID: dup, TenantID: tenantID, MessageID: msgID}, Duplicate: true}, true, nil
	case errors.Is(err, store.ErrNotFound):
		return StoredMessage{}, false, nil
	default:
		return StoredMessage{}, false, fmt.Errorf("mailstore: %w", err)
	}
}

// message is the row of a delivery as its header describes it, for one mailbox; the caller
// sets direction, folder and filing.
func (b *Batch) message(p *Prepared, mailboxID int64, msgID string) store.Message {
	pr := p.parsed
	m := store.Message{
		MailboxID: &mailboxID, MessageID: msgID,
		InReplyTo: idList(pr.InReplyTo).first(), From: cleanText(pr.FromText, 2000), To: cleanText(pr.ToText, 4000),
		Cc: cleanText(pr.CcText, 4000), Subject: pr.Subject, Size: int64(len(p.raw)), SHA256: p.sha, Raw: p.raw,
		SentAt: b.tx.Now(),
	}
	if !pr.Date.IsZero() {
		m.SentAt = pr.Date.UnixMilli()
	}
	return m
}

// setPrivateOwner marks mail of a private account (C3) with its owner.
func (b *Batch) setPrivateOwner(ctx context.Context, tenantID int64, td tenantDelivery, m *store.Message) error {
	if td.privateCode == "" {
		return nil
	}
	owner, err := b.privateOwner(ctx, tenantID, td.privateCode)
	if err != nil {
		return err
	}
	m.PrivateOwnerID = &owner
	return nil
}

// contactID returns the id of the tenant's contact with an address, 0 when there is none.
func (b *Batch) contactID(ctx context.Context, tenantID int64, address string) (int64, error) {
	k := tenantKey{tenantID, address}
	if id, ok := b.contacts[k]; ok {
		return id, nil
	}
	id, err := b.tx.ContactIDByEmail(ctx, tenantID, address)
	if errors.Is(err, store.ErrNotFound) {
		id, err = 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("mailstore: %w", err)
	}
	b.contacts[k] = id
	return id, nil
}

// privateOwner returns the user id behind a private account's short code (C3).
func (b *Batch) privateOwner(ctx context.Context, tenantID int64, code string) (int64, error) {
	k := tenantKey{tenantID, code}
	if id, ok := b.owners[k]; ok {
		return id, nil
	}
	id, err := b.tx.UserIDByShortCode(ctx, tenantID, code)
	if errors.Is(err, store.ErrNotFound) {
		// A short code that names nobody must not make private mail public: an owner id
		// that matches no user hides it until someone files it at a contact.
		id, err = -1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("mailstore: %w", err)
	}
	b.owners[k] = id
	return id, nil
}

// ReceivedPayload is the body of a message.received webhook event. Mail of a private
// account (C3) carries no sender or subject: the receiver reads it through the API, which
// applies the visibility filter.
type ReceivedPayload struct {
	MessageID   int64    `json:"message_id"`
	Mailboxes   []int64  `json:"mailbox_ids"`
	Addresses   []string `json:"mailbox_addresses"`
	Source      string   `json:"source"`
	HeaderID    string   `json:"message_id_header"`
	ThreadID    int64    `json:"thread_id"`
	ContactID   *int64   `json:"contact_id,omitempty"`
	FiledReason string   `json:"filed_reason"`
	Private     bool     `json:"private"`
	From        string   `json:"from,omitempty"`
	To          string   `json:"to,omitempty"`
	Subject     string   `json:"subject,omitempty"`
	SentAt      int64    `json:"sent_at"`
	Size        int64    `json:"size"`
}

func (b *Batch) emitReceived(ctx context.Context, p *Prepared, td tenantDelivery, m store.Message) error {
	tenantID := td.mailboxes[0].TenantID
	wants, ok := b.hooks[tenantID]
	if !ok {
		var err error
		wants, err = webhooks.Subscribed(ctx, b.tx, tenantID, webhooks.EventReceived)
		if err != nil {
			return fmt.Errorf("mailstore: %w", err)
		}
		b.hooks[tenantID] = wants
	}
	if !wants {
		return nil
	}
	pl := ReceivedPayload{MessageID: m.ID, Source: p.d.Source, HeaderID: m.MessageID, ThreadID: m.ThreadID, ContactID: m.ContactID,
		FiledReason: m.FiledReason, Private: m.PrivateOwnerID != nil, SentAt: m.SentAt, Size: m.Size}
	for _, mb := range td.mailboxes {
		pl.Mailboxes = append(pl.Mailboxes, mb.ID)
		pl.Addresses = append(pl.Addresses, strings.ToLower(mb.Address))
	}
	if !pl.Private || pl.ContactID != nil {
		pl.From, pl.To, pl.Subject = m.From, m.To, m.Subject
	}
	if err := webhooks.Enqueue(ctx, b.tx, tenantID, webhooks.EventReceived, pl); err != nil {
		return fmt.Errorf("mailstore: %w", err)
	}
	return nil
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
