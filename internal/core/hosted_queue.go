package core

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"mime"
	"net/mail"
	"strings"
	"time"

	"postfach/internal/store"
)

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
		m := store.Message{Direction: store.DirectionOut, Folder: "Sent", MailboxID: &mb.ID, MessageID: msgID,
			InReplyTo: strings.Trim(strings.TrimSpace(h.Get("In-Reply-To")), "<>"), From: h.Get("From"), To: h.Get("To"), Cc: h.Get("Cc"),
			Subject: subject, SentAt: sentAt.UnixMilli(), Size: int64(len(raw)), SHA256: hex.EncodeToString(sum[:]), Raw: raw,
			Status: store.QueueQueued, FiledReason: "submitted by " + mb.Address}
		m, err := tx.InsertMessage(ctx, mb.TenantID, m)
		if err != nil {
			return err
		}
		if err := tx.LinkMessageMailbox(ctx, mb.TenantID, m.ID, mb.ID, store.RoleFrom); err != nil {
			return err
		}
		qr := make([]store.QueueRecipient, len(recipients))
		for i, r := range recipients {
			qr[i] = store.QueueRecipient{Address: r, State: store.QueueQueued}
		}
		e := store.QueueEntry{MessageID: m.ID, MailboxID: &mb.ID, Kind: store.QueueKindMessage, Transport: "system",
			EnvelopeFrom: envelopeFrom, Recipients: qr}
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
