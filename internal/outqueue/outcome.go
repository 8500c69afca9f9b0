package outqueue

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"postfach/internal/core"
	"postfach/internal/mailout"
	"postfach/internal/store"
)

// mailboxRoute builds the route through a mailbox's own SMTP server (M4 mit
// Authentifizierung; C5 encryption, C6 login on/off). An OAuth2 account logs in with a
// fresh access token of its grant (C2).
func (w *worker) mailboxRoute(ctx context.Context, e store.QueueEntry) (mailout.Route, error) {
	m, err := w.q.db.Read().MailboxVisible(ctx, e.TenantID, *e.TransportMailboxID)
	if err != nil {
		return mailout.Route{}, fmt.Errorf("transport mailbox: %w", err)
	}
	r := mailout.Route{Host: m.SMTP.Host, Port: m.SMTP.Port, Security: mailout.Security(m.SMTP.Security)}
	if r.Security == "" {
		r.Security = mailout.SecurityStartTLS
	}
	if !m.SMTP.Auth {
		return r, nil
	}
	login := smtpLoginOf(m)
	r.Auth, r.Username = login.method, login.username
	if login.method == mailout.AuthXOAuth2 {
		if r.OAuth2Token, err = w.q.core.AccountAccessToken(ctx, m, login.provider); err != nil {
			return mailout.Route{}, w.tokenError(ctx, e, m, err)
		}
		return r, nil
	}
	if m.SMTP.HasPassword {
		if r.Password, err = w.q.core.SMTPPassword(m); err != nil {
			return mailout.Route{}, fmt.Errorf("open smtp password: %w", err)
		}
	}
	return r, nil
}

// smtpLogin is how the queue logs in to a mailbox's own server.
type smtpLogin struct {
	method   mailout.AuthMethod
	username string
	provider string // the OAuth2 provider for XOAUTH2
}

// smtpLoginOf decides the login by core's rule (core.SMTPLogin). The user name is the SMTP
// user (core fills in the receive user for OAuth2 types), else the address.
func smtpLoginOf(m store.Mailbox) smtpLogin {
	l := smtpLogin{username: m.SMTP.Username}
	l.method, l.provider = core.SMTPLogin(m)
	if l.username == "" {
		l.username = m.Address
	}
	return l
}

// reasonError is a failure whose text is written for the sender in their language; it ends
// up as the queue row's last error, which the delivery view shows as it is.
type reasonError struct {
	text string
	err  error
}

func (e *reasonError) Error() string { return e.text }
func (e *reasonError) Unwrap() error { return e.err }

// tokenError explains why an OAuth2 account has no access token. Every case is retried (the
// queue defers a message whose route cannot be built): a revoked grant waits for a user to
// sign in again, a provider that cannot be reached for its next answer.
func (w *worker) tokenError(ctx context.Context, e store.QueueEntry, m store.Mailbox, err error) error {
	lang := w.senderLang(ctx, e)
	params := map[string]string{"address": m.Address}
	var ce *core.Error
	switch {
	case errors.Is(err, core.ErrReauthorize):
		return &reasonError{text: w.q.core.Text.T(lang, "error.send.oauth_reauthorize", params), err: err}
	case errors.As(err, &ce):
		return &reasonError{text: w.q.core.Text.T(lang, ce.Key, ce.Params), err: err}
	}
	params["detail"] = err.Error()
	return &reasonError{text: w.q.core.Text.T(lang, "error.send.oauth_refresh", params), err: err}
}

// senderLang is the language of the user who sent a queued message; German (the default)
// for mail no user sent.
func (w *worker) senderLang(ctx context.Context, e store.QueueEntry) string {
	if e.UserID == nil {
		return ""
	}
	u, err := w.q.db.Read().User(ctx, e.TenantID, *e.UserID)
	if err != nil {
		return ""
	}
	return u.Lang
}

// senderMailbox loads the From mailbox of a job (for the Sent copy), once per batch.
func (w *worker) senderMailbox(ctx context.Context, e store.QueueEntry, cache map[int64]*store.Mailbox) *store.Mailbox {
	if e.MailboxID == nil {
		return nil
	}
	if m, ok := cache[*e.MailboxID]; ok {
		return m
	}
	var mp *store.Mailbox
	if m, err := w.q.db.Read().MailboxVisible(ctx, e.TenantID, *e.MailboxID); err == nil {
		mp = &m
	}
	cache[*e.MailboxID] = mp
	return mp
}

// wantsSentCopy reports whether a mailbox asks for a copy of sent mail in its Sent folder
// (C9): IMAP receive settings, a mapped Sent folder and the option switched on.
func wantsSentCopy(m *store.Mailbox) bool {
	if m == nil {
		return false
	}
	as, err := core.ParseAccountSettings(m.Settings)
	if err != nil {
		return false
	}
	t := as.Receive.Type
	return as.Folders.CopyToSent && as.Folders.Sent != "" && (t == core.ReceiveIMAP || t == core.ReceiveIMAPO365)
}

func (w *worker) copyToSent(ctx context.Context, jobs []*job) {
	q := w.q
	for _, j := range jobs {
		if ctx.Err() != nil || j.sender == nil {
			return
		}
		state := "done"
		if _, err := q.cfg.SentCopy.CopyToSent(ctx, *j.sender, j.e.Raw); err != nil {
			state = "failed: " + err.Error()
			q.cfg.Log.Warn("outbound queue: copy to Sent failed", "mailbox", j.sender.ID, "err", err)
		}
		err := q.db.InTx(ctx, func(tx *store.Tx) error { return tx.SetSentCopy(ctx, j.e.TenantID, j.e.ID, state) })
		if err != nil {
			q.cfg.Log.Warn("outbound queue: record Sent copy", "err", err)
		}
	}
}

func smtpCode(err error) int {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

// afterFinish runs in the transaction that records an outcome: webhook events, and for a
// final failure the bounce to the sender.
func (q *Queue) afterFinish(ctx context.Context, tx *store.Tx, j *job, now time.Time) error {
	e, o := j.e, j.outcome
	if e.Kind != store.QueueKindMessage {
		return nil
	}
	var failed []store.QueueRecipient
	var delivered []string
	for _, r := range o.Recipients {
		switch r.State {
		case store.QueueFailed:
			failed = append(failed, r)
		case store.QueueSent:
			delivered = append(delivered, r.Address)
		}
	}
	event := q.cfg.Event
	if event == nil {
		event = func(context.Context, *store.Tx, int64, string, any) error { return nil }
	}
	switch o.State {
	case store.QueueSent:
		return event(ctx, tx, e.TenantID, "message.sent", map[string]any{
			"message_id": e.MessageID, "header_message_id": e.HeaderMessageID, "recipients": delivered})
	case store.QueueFailed:
		if err := q.queueBounce(ctx, tx, j, failed, now); err != nil {
			return err
		}
		return event(ctx, tx, e.TenantID, "message.bounced", map[string]any{
			"message_id": e.MessageID, "header_message_id": e.HeaderMessageID, "failed": failed, "delivered": delivered})
	}
	return nil
}

// queueBounce builds a delivery status notification (RFC 3464) for the failed recipients and
// queues it to the sender — the sending user's own address, else the From address — with an
// empty envelope sender so that it can never bounce itself (RFC 5321 §4.5.5).
func (q *Queue) queueBounce(ctx context.Context, tx *store.Tx, j *job, failed []store.QueueRecipient, now time.Time) error {
	e := j.e
	to := ""
	if e.UserID != nil {
		if u, err := tx.User(ctx, e.TenantID, *e.UserID); err == nil && u.Email != "" {
			to = u.Email
		}
	}
	if to == "" {
		if msg, err := mail.ReadMessage(bytes.NewReader(e.Raw)); err == nil {
			if a, err := mail.ParseAddress(msg.Header.Get("From")); err == nil {
				to = a.Address
			}
		}
	}
	if to == "" {
		q.cfg.Log.Warn("outbound queue: no address for the bounce", "queue_id", e.ID)
		return nil
	}
	var recs []mailout.DSNRecipient
	for _, r := range failed {
		rec := mailout.DSNRecipient{FinalRecipient: r.Address, Action: mailout.ActionFailed, Status: r.Enhanced,
			RemoteMTA: j.host, LastAttempt: now}
		if r.Code != 0 {
			rec.DiagnosticCode = strings.TrimSpace(fmt.Sprintf("%d %s %s", r.Code, r.Enhanced, r.Text))
		} else if r.Text != "" {
			rec.DiagnosticCode = r.Text
		}
		if !strings.HasPrefix(rec.Status, "5.") {
			rec.Status = "4.4.7" // RFC 3463 §3.5: delivery time expired
		}
		recs = append(recs, rec)
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	dsnID := hex.EncodeToString(b[:]) + "@" + q.cfg.Hostname
	raw, err := mailout.BuildDSN(mailout.DSNParams{ReportingMTA: q.cfg.Hostname, From: "MAILER-DAEMON@" + q.cfg.Hostname, To: to,
		MessageID: dsnID, Date: now, ArrivalDate: time.UnixMilli(e.CreatedAt), Recipients: recs, Original: e.Raw})
	if err != nil {
		q.cfg.Log.Warn("outbound queue: build bounce", "queue_id", e.ID, "err", err)
		return nil
	}
	sum := sha256.Sum256(raw)
	m, err := tx.InsertMessage(ctx, e.TenantID, store.Message{Direction: store.DirectionOut, Folder: "Sent", MailboxID: e.MailboxID,
		MessageID: dsnID, InReplyTo: e.HeaderMessageID, From: "MAILER-DAEMON@" + q.cfg.Hostname, To: to,
		Subject: "Undelivered Mail Returned to Sender", SentAt: now.UnixMilli(), Size: int64(len(raw)),
		SHA256: hex.EncodeToString(sum[:]), Raw: raw, Status: store.QueueQueued})
	if err != nil {
		return err
	}
	_, err = tx.EnqueueOutbound(ctx, e.TenantID, store.QueueEntry{MessageID: m.ID, MailboxID: e.MailboxID, Kind: store.QueueKindDSN,
		Transport: "system", EnvelopeFrom: "", Recipients: []store.QueueRecipient{{Address: to, State: store.QueueQueued}}})
	return err
}
