package core

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"postfach/internal/policy"
	"postfach/internal/store"
)

// submittedPrefix starts the sender key of a queue row from SMTP submission (or the
// credentials mail): such rows carry no user, and the key names the mailbox that logged in.
const submittedPrefix = "submitted-by:mailbox:"

// SubmittedSenderKey is the sender key of mail submitted by a hosted mailbox.
func SubmittedSenderKey(mailboxID int64) string {
	return submittedPrefix + strconv.FormatInt(mailboxID, 10)
}

// IsSubmitted reports whether a queue row came from SMTP submission.
func IsSubmitted(e store.QueueEntry) bool { return strings.HasPrefix(e.SenderKey, submittedPrefix) }

// RecheckSubmitted runs the submission policy again at dequeue (M1): the envelope sender
// and every From: address must still be allowed for the mailbox that logged in, through its
// own address or a user it is assigned to. A nil Decision means the mail may go; a mailbox
// deleted meanwhile refuses it.
func (s *Service) RecheckSubmitted(ctx context.Context, e store.QueueEntry) (*policy.Decision, error) {
	id, err := strconv.ParseInt(strings.TrimPrefix(e.SenderKey, submittedPrefix), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("core: recheck submitted: sender key %q: %w", e.SenderKey, err)
	}
	mb, err := s.DB.Read().Mailbox(ctx, e.TenantID, id)
	if errors.Is(err, store.ErrNotFound) {
		return &policy.Decision{Rule: "policy.not_a_mailbox", Params: map[string]string{"address": e.EnvelopeFrom}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("core: recheck submitted: %w", err)
	}
	addrs := []string{}
	if e.EnvelopeFrom != "" {
		addrs = append(addrs, e.EnvelopeFrom)
	}
	if msg, err := mail.ReadMessage(bytes.NewReader(e.Raw)); err == nil {
		if list, err := msg.Header.AddressList("From"); err == nil {
			for _, a := range list {
				addrs = append(addrs, a.Address)
			}
		}
	}
	p := HostedPrincipal{Mailbox: mb}
	seen := map[string]bool{}
	for _, a := range addrs {
		a = store.NormalizeAddress(a)
		if seen[a] {
			continue
		}
		seen[a] = true
		d, err := s.CheckSubmissionSender(ctx, p, a)
		if err != nil {
			return nil, err
		}
		if !d.Allowed {
			return &d, nil
		}
	}
	return nil, nil
}

// EnqueueHosted stores mail submitted by a hosted mailbox (SMTP submission, or the
// credentials mail) as a sent message of that mailbox and queues it for delivery, in one
// transaction: when it returns nil the mail will be sent. The caller has checked the
// senders against the policy.
func (s *Service) EnqueueHosted(ctx context.Context, p HostedPrincipal, envelopeFrom string, recipients []string, raw []byte) (int64, error) {
	mb := p.Mailbox
	msg, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		return 0, fmt.Errorf("core: enqueue hosted: %w", err)
	}
	h := msg.Header
	msgID := strings.Trim(strings.TrimSpace(h.Get("Message-Id")), "<>")
	if msgID == "" {
		// RFC 6409 §8.3: the submission server may add a missing Message-ID.
		var b [12]byte
		_, _ = rand.Read(b[:])
		_, domain, _ := strings.Cut(mb.Address, "@")
		msgID = hex.EncodeToString(b[:]) + "@" + domain
		raw = append([]byte("Message-ID: <"+msgID+">\r\n"), raw...)
	}
	sentAt := time.Now()
	if d, err := h.Date(); err == nil {
		sentAt = d
	}
	dec := new(mime.WordDecoder)
	subject, err := dec.DecodeHeader(h.Get("Subject"))
	if err != nil {
		subject = h.Get("Subject")
	}
	sum := sha256.Sum256(raw)
	var id int64
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		// A4: submitted mail is filed at the recipients' contacts like mail sent in the UI.
		contacts, err := tx.ContactIDsByEmails(ctx, mb.TenantID, recipients)
		if err != nil {
			return err
		}
		m := store.Message{Direction: store.DirectionOut, Folder: "Sent", MailboxID: &mb.ID, MessageID: msgID,
			InReplyTo: strings.Trim(strings.TrimSpace(h.Get("In-Reply-To")), "<>"), From: h.Get("From"), To: h.Get("To"), Cc: h.Get("Cc"),
			Subject: subject, SentAt: sentAt.UnixMilli(), Size: int64(len(raw)), SHA256: hex.EncodeToString(sum[:]), Raw: raw,
			Status: store.QueueQueued, FiledReason: "submitted by " + mb.Address}
		if len(contacts) > 0 {
			m.ContactID = &contacts[0]
		}
		m, err = tx.InsertMessage(ctx, mb.TenantID, m)
		if err != nil {
			return err
		}
		if err := tx.LinkMessageContacts(ctx, mb.TenantID, m.ID, contacts); err != nil {
			return err
		}
		if err := tx.LinkMessageMailbox(ctx, mb.TenantID, m.ID, mb.ID, store.RoleFrom); err != nil {
			return err
		}
		qr := make([]store.QueueRecipient, len(recipients))
		for i, r := range recipients {
			qr[i] = store.QueueRecipient{Address: r, State: store.QueueQueued}
		}
		// The row names the authenticated mailbox, so that the queue asks the policy again
		// at dequeue (RecheckSubmitted): a grant ended while the mail waited stops it.
		e := store.QueueEntry{MessageID: m.ID, MailboxID: &mb.ID, Kind: store.QueueKindMessage, Transport: "system",
			SenderKey: SubmittedSenderKey(mb.ID), EnvelopeFrom: envelopeFrom, Recipients: qr}
		if _, err := tx.EnqueueOutbound(ctx, mb.TenantID, e); err != nil {
			return err
		}
		id = m.ID
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("core: enqueue hosted: %w", err)
	}
	return id, nil
}

// QueueCredentialMailer sends the credentials mail (H9) from the hosted mailbox itself
// through the outbound queue.
type QueueCredentialMailer struct{ Service *Service }

// SendCredentials implements CredentialMailer.
func (q QueueCredentialMailer) SendCredentials(ctx context.Context, tenantID, mailboxID int64, to, subject, body string) error {
	s := q.Service
	mb, err := s.DB.Read().Mailbox(ctx, tenantID, mailboxID)
	if err != nil {
		return fmt.Errorf("core: credentials mail: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\nAuto-Submitted: auto-generated\r\n\r\n%s",
		(&mail.Address{Name: mb.DisplayName, Address: mb.Address}).String(), to, mime.QEncoding.Encode("utf-8", subject),
		time.Now().Format(time.RFC1123Z), body)
	_, err = s.EnqueueHosted(ctx, HostedPrincipal{Mailbox: mb}, mb.Address, []string{to}, []byte(b.String()))
	return err
}
