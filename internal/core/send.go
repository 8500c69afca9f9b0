package core

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"postfach/internal/mailout"
	"postfach/internal/mailstore"
	"postfach/internal/policy"
	"postfach/internal/store"
)

// Sending (M1, M3, A3, A4, C8, X2): Send checks the input, asks the policy engine whether the
// user may use the chosen sender and reply-to, composes the message with a Message-ID fixed
// now, and commits the message and its queue row in one transaction. Delivery happens later
// in the queue (package outqueue), which asks the policy engine again before dialling.

// Limits of one message.
const (
	// MaxSendSize is the largest composed message; most providers refuse more than 25 MB.
	MaxSendSize = 25 << 20
	// MaxSendRecipients bounds To+Cc+Bcc of one message.
	MaxSendRecipients = 500
	maxIdempotencyKey = 200
)

// SendAddress is a recipient with an optional display name.
type SendAddress struct {
	Name    string `json:"name,omitempty"`
	Address string `json:"address"`
}

// SendAttachment is a file of a message; Data is base64 in JSON.
type SendAttachment struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type,omitempty"`
	Data        []byte `json:"data"`
}

// SendInput is a message to send.
type SendInput struct {
	// UserID names the user on whose behalf an API token or an admin sends; users send as
	// themselves and may leave it empty.
	UserID int64 `json:"user_id,omitempty"`
	// Sender and ReplyTo are option keys of the user's dropdowns ("system", "mailbox:12",
	// "own") or addresses. Empty Sender takes the template's; empty ReplyTo means none.
	Sender     string `json:"sender,omitempty"`
	ReplyTo    string `json:"reply_to,omitempty"`
	TemplateID int64  `json:"template_id,omitempty"`

	To         []SendAddress    `json:"to"`
	Cc         []SendAddress    `json:"cc,omitempty"`
	Bcc        []SendAddress    `json:"bcc,omitempty"`
	Subject    string           `json:"subject"`
	Text       string           `json:"text,omitempty"`
	HTML       string           `json:"html,omitempty"`
	InReplyTo  string           `json:"in_reply_to,omitempty"`
	References []string         `json:"references,omitempty"`
	Files      []SendAttachment `json:"attachments,omitempty"`
	// NoSignature leaves the signature out (C8 appends it by default).
	NoSignature bool `json:"no_signature,omitempty"`
	// IdempotencyKey makes a repeated request return the first one's message instead of
	// sending twice; the API takes it from the Idempotency-Key header.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// SendResult is the answer to a send: the message is stored and queued.
type SendResult struct {
	ID        int64  `json:"id"`         // the stored message
	MessageID string `json:"message_id"` // its Message-ID header, without angle brackets
	State     string `json:"state"`      // queued, or the current state for a repeated key
	// Repeated is true when the idempotency key was seen before and nothing new was queued.
	Repeated bool `json:"repeated"`
}

// senderOf is the user a send is on behalf of.
func senderOf(a Actor, in SendInput) (tid, uid int64, err error) {
	tid, err = tenantOf(a)
	if err != nil {
		return 0, 0, err
	}
	switch {
	case a.Kind == ActorUser:
		if in.UserID != 0 && in.UserID != a.UserID {
			return 0, 0, errForbidden
		}
		return tid, a.UserID, nil
	case in.UserID != 0 && (a.isTenantAdmin() || a.isOperator()):
		return tid, in.UserID, nil
	case a.UserID != 0:
		return tid, a.UserID, nil
	}
	return 0, 0, invalid("user_id", "error.required", nil)
}

// Send validates, checks the policy and queues a message. Nothing is stored when any check
// fails; the answer names every wrong field.
func (s *Service) Send(ctx context.Context, a Actor, in SendInput) (SendResult, error) {
	tid, uid, err := senderOf(a, in)
	if err != nil {
		return SendResult{}, err
	}
	key := strings.TrimSpace(in.IdempotencyKey)
	if len(key) > maxIdempotencyKey || strings.IndexFunc(key, func(r rune) bool { return r < 0x21 || r > 0x7e }) >= 0 {
		return SendResult{}, invalid("idempotency_key", "error.send.idempotency_key", nil)
	}
	if key != "" {
		if res, ok, err := s.repeatedSend(ctx, tid, key); err != nil || ok {
			return res, err
		}
	}
	tx := s.DB.Read()
	if in.TemplateID != 0 {
		t, err := tx.Template(ctx, tid, in.TemplateID)
		if err != nil {
			return SendResult{}, invalidFrom(err, "template_id")
		}
		// M3: the template preselects; what the user chose wins.
		if in.Sender == "" {
			in.Sender = t.SenderKey
		}
		if in.ReplyTo == "" {
			in.ReplyTo = t.ReplyKey
		}
		if in.Subject == "" {
			in.Subject = t.Subject
		}
		if in.Text == "" && in.HTML == "" {
			in.Text, in.HTML = t.BodyText, t.BodyHTML
		}
	}

	v := &validator{}
	out := mailout.Outgoing{}
	out.To = sendAddresses(v, "to", in.To)
	out.Cc = sendAddresses(v, "cc", in.Cc)
	out.Bcc = sendAddresses(v, "bcc", in.Bcc)
	n := len(out.To) + len(out.Cc) + len(out.Bcc)
	switch {
	case n == 0 && len(in.To)+len(in.Cc)+len(in.Bcc) == 0:
		v.add(invalid("to", "error.send.no_recipients", nil))
	case n > MaxSendRecipients:
		v.add(invalid("to", "error.send.too_many_recipients", map[string]string{"max": strconv.Itoa(MaxSendRecipients)}))
	}
	out.Subject = v.text("subject", in.Subject, false, 998)
	if in.InReplyTo != "" {
		out.InReplyTo = v.text("in_reply_to", strings.Trim(in.InReplyTo, "<> "), false, 900)
	}
	for _, r := range in.References {
		out.References = append(out.References, v.text("references", strings.Trim(r, "<> "), false, 900))
	}
	if strings.TrimSpace(in.Sender) == "" {
		v.add(invalid("sender", "error.required", nil))
	}
	if err := v.err(); err != nil {
		return SendResult{}, err
	}

	// M1: the policy engine decides; every refusal names its rule.
	from, d, err := s.Policy.Resolve(ctx, tid, uid, in.Sender, policy.RoleSender)
	if err != nil {
		return SendResult{}, fromStore(err, "", "")
	}
	if d != nil {
		return SendResult{}, refused("sender", d)
	}
	var reply *policy.Option
	if in.ReplyTo != "" {
		o, d, err := s.Policy.Resolve(ctx, tid, uid, in.ReplyTo, policy.RoleReply)
		if err != nil {
			return SendResult{}, fromStore(err, "", "")
		}
		if d != nil {
			return SendResult{}, refused("reply_to", d)
		}
		reply = &o
	}
	route, err := s.sendRoute(ctx, tid, from)
	if err != nil {
		return SendResult{}, err
	}
	out.From = mailout.Address{Name: from.DisplayName, Address: from.Address}
	switch {
	case reply != nil:
		out.ReplyTo = []mailout.Address{{Name: reply.DisplayName, Address: reply.Address}}
	case route.replyTo != "":
		// A3: through the system transport replies must come back to Postfach.
		out.ReplyTo = []mailout.Address{{Name: from.DisplayName, Address: route.replyTo}}
	}
	out.Date = s.Now()
	out.MessageID = newMessageID(from.Address)
	out.Text, out.HTML = in.Text, in.HTML
	for _, f := range in.Files {
		out.Attachments = append(out.Attachments, mailout.Attachment{Filename: f.Filename, ContentType: f.ContentType, Data: f.Data})
	}
	if !in.NoSignature {
		if err := s.appendSignature(ctx, tid, uid, &out); err != nil {
			return SendResult{}, err
		}
	}
	raw, err := mailout.BuildMessage(out)
	if err != nil {
		var he *mailout.HeaderError
		if errors.As(err, &he) {
			return SendResult{}, &Error{Status: http.StatusUnprocessableEntity, Key: "error.send.header", Field: fieldOfHeader(he.Field),
				Params: map[string]string{"field": he.Field, "reason": he.Reason}, Err: err}
		}
		return SendResult{}, fmt.Errorf("core: compose: %w", err)
	}
	if len(raw) > MaxSendSize {
		return SendResult{}, &Error{Status: http.StatusRequestEntityTooLarge, Key: "error.send.too_large", Field: "body",
			Params: map[string]string{"max": strconv.Itoa(MaxSendSize >> 20), "size": strconv.Itoa(len(raw) >> 20)}}
	}

	rcpts := out.Recipients()
	var res SendResult
	// Handed straight to a delivery worker of this process when one has room (intake.go).
	intake := s.currentIntake()
	var claim IntakeClaim
	if intake != nil {
		var ok bool
		if claim, ok = intake.Claim(); !ok {
			intake = nil
		}
	}
	handed := false
	defer func() {
		if intake != nil && !handed {
			intake.Unclaim() // the row did not commit (or the write panicked)
		}
	}()
	var queued store.QueueEntry
	var attemptID int64
	// Hashed outside the write: the database's writer lane waits for nobody's hashing.
	sum := sha256.Sum256(raw)
	ctx = context.WithoutCancel(ctx) // the write may run in a batch after the caller left
	err = s.sends.commit(ctx, s.DB, func(tx *store.Tx) error {
		// A4: filed at the contact of each recipient; contact_id keeps the first one.
		contacts, err := tx.ContactIDsByEmails(ctx, tid, rcpts)
		if err != nil {
			return err
		}
		var contactID *int64
		if len(contacts) > 0 {
			contactID = &contacts[0]
		}
		m := store.Message{Direction: store.DirectionOut, Folder: "Sent", MessageID: out.MessageID, InReplyTo: out.InReplyTo,
			ContactID: contactID, SenderUserID: &uid, From: from.Address, To: joinAddresses(out.To), Cc: joinAddresses(out.Cc),
			Subject: out.Subject, SentAt: out.Date.UnixMilli(), Size: int64(len(raw)), SHA256: hex.EncodeToString(sum[:]),
			Raw: raw, Status: store.QueueQueued, IdempotencyKey: key}
		if contactID != nil {
			m.FiledReason = "recipient"
		}
		if from.MailboxID != 0 {
			m.MailboxID = &from.MailboxID
		}
		if out.InReplyTo != "" {
			if prev, err := tx.MessagesByMessageID(ctx, tid, []string{out.InReplyTo}); err == nil && len(prev) > 0 {
				m.ThreadID = prev[0].ThreadID
			}
		}
		m, err = tx.InsertMessage(ctx, tid, m)
		if err != nil {
			return err
		}
		if err := tx.LinkMessageContacts(ctx, tid, m.ID, contacts); err != nil {
			return err
		}
		if from.MailboxID != 0 {
			if err := tx.LinkMessageMailbox(ctx, tid, m.ID, from.MailboxID, store.RoleFrom); err != nil {
				return err
			}
		}
		qr := make([]store.QueueRecipient, len(rcpts))
		for i, r := range rcpts {
			qr[i] = store.QueueRecipient{Address: r, State: store.QueueQueued}
		}
		e := store.QueueEntry{MessageID: m.ID, UserID: &uid, Kind: store.QueueKindMessage, SenderKey: in.Sender, ReplyKey: in.ReplyTo,
			Transport: string(from.Transport), EnvelopeFrom: route.envelopeFrom, Recipients: qr}
		if from.MailboxID != 0 {
			e.MailboxID = &from.MailboxID
		}
		if from.Transport == policy.TransportMailbox {
			e.TransportMailboxID = &from.TransportMailboxID
		}
		if intake != nil {
			claim.claimed(&e, tx.Now())
		}
		e, err = tx.EnqueueOutbound(ctx, tid, e)
		if err != nil {
			return err
		}
		if intake != nil {
			if attemptID, err = tx.LogOutboundAttempt(ctx, e, e.NextAttemptAt); err != nil {
				return err
			}
		}
		queued = e
		res = SendResult{ID: m.ID, MessageID: out.MessageID, State: store.QueueQueued}
		detail := fmt.Sprintf("user %d, mailbox %d, envelope sender %s, Message-ID <%s>, %d recipients",
			uid, from.MailboxID, route.envelopeFrom, out.MessageID, len(rcpts))
		return s.audit(ctx, tx, a, tid, "send", idStr("message", m.ID), detail)
	})
	if intake != nil && err == nil {
		queued.HeaderMessageID, queued.Subject, queued.Raw = out.MessageID, out.Subject, raw
		intake.Hand(queued, attemptID)
		handed = true
	}
	if errors.Is(err, store.ErrConflict) && key != "" {
		// Two requests with one key raced; the other one committed first.
		if res, ok, err := s.repeatedSend(ctx, tid, key); err != nil || ok {
			return res, err
		}
	}
	if err != nil {
		return SendResult{}, fromStore(err, "", "")
	}
	return res, nil
}

// repeatedSend answers a request whose idempotency key created a message before.
func (s *Service) repeatedSend(ctx context.Context, tid int64, key string) (SendResult, bool, error) {
	tx := s.DB.Read()
	id, err := tx.MessageIDByIdempotencyKey(ctx, tid, key)
	if errors.Is(err, store.ErrNotFound) {
		return SendResult{}, false, nil
	}
	if err != nil {
		return SendResult{}, false, fromStore(err, "", "")
	}
	e, err := tx.OutboundByMessage(ctx, tid, id)
	if err != nil {
		return SendResult{}, false, fromStore(err, "", "")
	}
	return SendResult{ID: id, MessageID: e.HeaderMessageID, State: e.State, Repeated: true}, true, nil
}

// sendRoute is the envelope of a message: who bounces go to, and the Reply-To that brings
// replies back when the user chose none.
type sendRouteInfo struct {
	envelopeFrom string
	replyTo      string
}

func (s *Service) sendRoute(ctx context.Context, tid int64, from policy.Option) (sendRouteInfo, error) {
	if from.Transport == policy.TransportMailbox {
		// The mailbox's own server: its address is the login and the envelope sender.
		return sendRouteInfo{envelopeFrom: from.Address}, nil
	}
	switch from.Kind {
	case store.KindHosted:
		// Our own domain: bounces come straight back to the hosted mailbox.
		return sendRouteInfo{envelopeFrom: from.Address}, nil
	case store.KindAccount:
		// A3, seed 002: "p14.out" as envelope sender, "p14" as Reply-To.
		return sendRouteInfo{envelopeFrom: store.OutboundAddress(from.MailboxID, s.InboundDomain),
			replyTo: store.InboundAddress(from.MailboxID, s.InboundDomain)}, nil
	}
	id := from.MailboxID
	if id == 0 {
		// The user's own address (M2) has no mailbox; the tenant's system mailbox receives its bounces.
		sys, err := s.DB.Read().SystemMailboxID(ctx, tid)
		if err != nil {
			return sendRouteInfo{}, fromStore(err, "", "")
		}
		id = sys
	}
	return sendRouteInfo{envelopeFrom: store.OutboundAddress(id, s.InboundDomain)}, nil
}

// appendSignature adds the user's signature (C8: per-user wins over the general one) to both
// bodies, with its pictures as inline parts.
func (s *Service) appendSignature(ctx context.Context, tid, uid int64, out *mailout.Outgoing) error {
	// Most tenants have no signature; rendering builds a sanitiser policy, so look first.
	has, err := s.DB.Read().HasSignature(ctx, tid, uid)
	if err != nil {
		return fmt.Errorf("core: signature: %w", err)
	}
	if !has {
		return nil
	}
	sig, err := s.RenderSignature(ctx, tid, uid)
	if err != nil {
		return err
	}
	if strings.TrimSpace(sig.HTML) == "" && strings.TrimSpace(sig.Text) == "" {
		return nil
	}
	if out.HTML != "" || len(sig.Inline) > 0 {
		if out.HTML == "" {
			out.HTML = "<p>" + htmlEscapeLines(out.Text) + "</p>"
		}
		out.HTML += "<br>\n<div class=\"signature\">" + sig.HTML + "</div>"
		if out.Text != "" {
			out.Text += "\r\n\r\n-- \r\n" + sig.Text
		}
	} else {
		out.Text += "\r\n\r\n-- \r\n" + sig.Text // RFC 3676 §4.3 signature separator
	}
	for _, p := range sig.Inline {
		out.Inline = append(out.Inline, mailout.Attachment{ContentID: p.ContentID, ContentType: p.ContentType, Data: p.Data,
			Filename: p.ContentID})
	}
	return nil
}

func htmlEscapeLines(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "\"", "&quot;", "\r\n", "<br>", "\n", "<br>")
	return r.Replace(s)
}

func sendAddresses(v *validator, field string, list []SendAddress) []mailout.Address {
	var out []mailout.Address
	for _, a := range list {
		name := v.text(field, a.Name, false, 200)
		addr := v.address(field, a.Address, true)
		out = append(out, mailout.Address{Name: name, Address: addr})
	}
	return out
}

func joinAddresses(list []mailout.Address) string {
	parts := make([]string, len(list))
	for i, a := range list {
		parts[i] = a.Address
	}
	return strings.Join(parts, ", ")
}

// newMessageID makes a Message-ID on the sender's domain (RFC 5322 §3.6.4): the time in
// microseconds (base 36) and 96 random bits. Starting with the time, the ids of consecutive
// sends sort together, so the Message-ID index takes them on the same leaf pages instead of
// one random page per message.
func newMessageID(from string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	domain := "postfach.localhost"
	if _, d, ok := strings.Cut(from, "@"); ok && d != "" {
		domain = d
	}
	return strconv.FormatInt(time.Now().UnixMicro(), 36) + "." + hex.EncodeToString(b[:]) + "@" + domain
}

// fieldOfHeader maps a header name from mailout to the input field.
func fieldOfHeader(h string) string {
	switch strings.ToLower(h) {
	case "from":
		return "sender"
	case "reply-to":
		return "reply_to"
	case "to", "cc", "bcc", "subject", "references":
		return strings.ToLower(h)
	case "in-reply-to":
		return "in_reply_to"
	}
	if strings.HasPrefix(strings.ToLower(h), "attachment") {
		return "attachments"
	}
	return strings.ToLower(h)
}

// refused turns a policy refusal into the error for a field; the Decision's rule is the
// message key, so the user reads why.
func refused(field string, d *policy.Decision) *Error {
	params := map[string]string{}
	for k, v := range d.Params {
		params[k] = v
	}
	params["field"] = field
	return &Error{Status: http.StatusForbidden, Key: d.Rule, Field: field, Params: params}
}

func invalidFrom(err error, field string) error {
	if errors.Is(err, store.ErrNotFound) {
		return invalid(field, "error.not_found", nil)
	}
	return fromStore(err, "", "")
}

// QueueItem is one queued message as the UI and the API show it.
type QueueItem struct {
	store.QueueEntry
	// StateText is the state in the caller's language, with the next attempt and the last
	// error for deferred messages and the policy's reason for refused ones.
	StateText string `json:"state_text"`
}

// QueueInput filters the queue listing.
type QueueInput struct {
	State string `json:"state,omitempty"`
	Limit int    `json:"limit,omitempty"`
}

// Queue lists the tenant's outbound queue, newest first. Admins and API tokens see every
// send of the tenant, users their own.
func (s *Service) Queue(ctx context.Context, a Actor, in QueueInput) ([]QueueItem, error) {
	tid, err := tenantOf(a)
	if err != nil {
		return nil, err
	}
	f := store.QueueFilter{State: in.State, Limit: in.Limit}
	switch {
	case a.isTenantAdmin() || a.isOperator():
	case a.Kind == ActorUser:
		f.UserID = a.UserID
	default:
		return nil, errForbidden
	}
	if in.State != "" {
		v := &validator{}
		v.oneOf("state", in.State, store.QueueQueued, store.QueueSending, store.QueueSent, store.QueueDeferred, store.QueueFailed, store.QueueRefused)
		if err := v.err(); err != nil {
			return nil, err
		}
	}
	list, err := s.DB.Read().OutboundQueue(ctx, tid, f)
	if err != nil {
		return nil, fromStore(err, "", "")
	}
	out := make([]QueueItem, 0, len(list))
	for _, e := range list {
		out = append(out, s.queueItem(e, a.Lang))
	}
	return out, nil
}

// Delivery is the delivery state of one sent message with its attempt log.
type Delivery struct {
	QueueItem
	AttemptLog []store.OutboundAttempt `json:"attempt_log"`
}

// MessageDelivery shows how a sent message the actor may read is getting on.
func (s *Service) MessageDelivery(ctx context.Context, a Actor, messageID int64) (Delivery, error) {
	tid, err := tenantOf(a)
	if err != nil {
		return Delivery{}, err
	}
	tx := s.DB.Read()
	if !a.isOperator() {
		// Whoever may read the message may follow its delivery.
		v, err := viewer(a)
		if err != nil {
			return Delivery{}, err
		}
		if _, err := mailstore.Read(ctx, tx, v, messageID); err != nil {
			return Delivery{}, fromStore(err, "", "")
		}
	}
	e, err := tx.OutboundByMessage(ctx, tid, messageID)
	if err != nil {
		return Delivery{}, fromStore(err, "", "")
	}
	log, err := tx.OutboundAttempts(ctx, tid, e.ID)
	if err != nil {
		return Delivery{}, fromStore(err, "", "")
	}
	if log == nil {
		log = []store.OutboundAttempt{}
	}
	return Delivery{QueueItem: s.queueItem(e, a.Lang), AttemptLog: log}, nil
}

func (s *Service) queueItem(e store.QueueEntry, lang string) QueueItem {
	if e.Recipients == nil {
		e.Recipients = []store.QueueRecipient{}
	}
	params := map[string]string{"attempts": strconv.Itoa(e.Attempts), "error": e.LastError,
		"next": s.formatTime(e.NextAttemptAt)}
	text := s.Text.T(lang, "send.state."+e.State, params)
	if e.State == store.QueueRefused && e.RefusedRule != "" {
		// The queue stores the refused address in LastError (see outqueue).
		p := map[string]string{"address": e.LastError, "label": e.LastError, "mailbox": e.LastError}
		text += " " + s.Text.T(lang, e.RefusedRule, p)
	}
	return QueueItem{QueueEntry: e, StateText: text}
}

func (s *Service) formatTime(ms int64) string {
	if ms == 0 {
		return ""
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04:05 UTC")
}
