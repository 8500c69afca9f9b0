package mailstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"

	"postfach/internal/policy"
	"postfach/internal/store"
)

// autoReplies records the out-of-office replies (H3) that a delivered message triggers and
// queues them for sending, all in the delivery's transaction: a reply is decided, noted for
// the once-per-period rule and queued together or not at all.
func autoReplies(ctx context.Context, tx *store.Tx, d Delivery, p Parsed, group []store.Mailbox, m store.Message) ([]int64, error) {
	now := time.UnixMilli(tx.Now())
	var ids []int64
	for _, mb := range group {
		if mb.Kind != store.KindHosted && mb.Kind != store.KindAccount {
			continue
		}
		s, err := ParseSettings(mb.Settings)
		if err != nil || !s.OutOfOffice.ActiveAt(now) {
			continue
		}
		if why := AutoReplyBlocked(p.Header, d.EnvelopeFrom); why != "" {
			continue
		}
		// RFC 3834 §2: answer only mail that names the mailbox as a recipient, so that
		// Bcc'd bulk mail and list traffic without list headers stay unanswered.
		if !addressedTo(mb.Address, p) {
			continue
		}
		last, err := tx.LastAutoReply(ctx, mb.TenantID, mb.ID, d.EnvelopeFrom)
		if err != nil {
			return nil, fmt.Errorf("mailstore: %w", err)
		}
		if last != 0 && now.Sub(time.UnixMilli(last)) < s.OutOfOffice.Period() {
			continue
		}
		replyID := generateMessageID(d.Hostname)
		raw, err := ComposeAutoReply(mb, s.OutOfOffice, p, d.EnvelopeFrom, replyID, now)
		if err != nil {
			continue // an unencodable reply must not fail the delivery
		}
		msgID := m.ID
		r, err := tx.RecordAutoReply(ctx, store.AutoReply{TenantID: mb.TenantID, MailboxID: mb.ID, InReplyToMessage: &msgID,
			Recipient: d.EnvelopeFrom, Raw: raw})
		if err != nil {
			return nil, fmt.Errorf("mailstore: %w", err)
		}
		if _, err := tx.QueueAutoReply(ctx, r.ID, autoReplyMessage(mb, s.OutOfOffice, p, m, r, replyID, now), autoReplyEntry(mb, r)); err != nil {
			return nil, fmt.Errorf("mailstore: %w", err)
		}
		ids = append(ids, r.ID)
	}
	return ids, nil
}

// autoReplyMessage is the stored outgoing copy of a reply, filed in the mailbox's Sent folder
// so that the user sees what was answered. It joins the received message's conversation and
// contact and keeps its private owner (C3): whoever may not read the message may not read
// the reply either.
func autoReplyMessage(mb store.Mailbox, o *OutOfOffice, p Parsed, received store.Message, r store.AutoReply, replyID string, now time.Time) store.Message {
	sum := sha256.Sum256(r.Raw)
	mbID := mb.ID
	thread := received.ThreadID
	if thread == 0 {
		thread = received.ID // the received message started its conversation
	}
	return store.Message{TenantID: mb.TenantID, MailboxID: &mbID, Direction: store.DirectionOut, Folder: "Sent",
		MessageID: replyID, InReplyTo: p.MessageID, ThreadID: thread, ContactID: received.ContactID,
		PrivateOwnerID: received.PrivateOwnerID, From: mb.Address, To: r.Recipient, Subject: autoReplySubject(o, p),
		SentAt: now.UnixMilli(), Size: int64(len(r.Raw)), SHA256: hex.EncodeToString(sum[:]), Raw: r.Raw,
		Status: store.QueueQueued, FiledReason: "out-of-office reply"}
}

// autoReplyEntry is the queue row of a reply. A hosted mailbox answers through the system
// transport with the null reverse path, as RFC 3834 §3.3 recommends: a reply that cannot be
// delivered then bounces nowhere and cannot start a loop. A fetched account with its own
// SMTP server answers through that server, which commonly insists that the envelope sender
// is the authenticated address, so there the mailbox's own address is the reverse path.
func autoReplyEntry(mb store.Mailbox, r store.AutoReply) store.QueueEntry {
	mbID := mb.ID
	e := store.QueueEntry{MailboxID: &mbID, Transport: "system", SenderKey: autoReplySenderPrefix + strconv.FormatInt(mb.ID, 10),
		Recipients: []store.QueueRecipient{{Address: r.Recipient, State: store.QueueQueued}}}
	if mb.Kind == store.KindAccount && mb.SMTP.Host != "" {
		e.Transport, e.TransportMailboxID, e.EnvelopeFrom = string(policy.TransportMailbox), &mbID, mb.Address
	}
	return e
}

// autoReplySenderPrefix starts the sender key of a reply's queue row; the key names the
// mailbox that answered.
const autoReplySenderPrefix = "auto-reply:mailbox:"

func autoReplySubject(o *OutOfOffice, p Parsed) string {
	subject := o.Subject
	if subject == "" {
		subject = "Auto: " + p.Subject
	}
	return cleanText(subject, 900)
}

func addressedTo(address string, p Parsed) bool {
	address = store.NormalizeAddress(address)
	for _, list := range [][]string{p.To, p.Cc} {
		for _, a := range list {
			if a == address {
				return true
			}
		}
	}
	return false
}

// AutoReplyBlocked says why RFC 3834 forbids an automatic reply to a message, or "" when a
// reply is allowed.
func AutoReplyBlocked(h mail.Header, envelopeFrom string) string {
	// §2: never answer bounces (null reverse path) or mail daemons.
	if strings.TrimSpace(envelopeFrom) == "" {
		return "bounce (empty reverse path)"
	}
	local := strings.ToLower(envelopeFrom)
	if at := strings.LastIndexByte(local, '@'); at >= 0 {
		local = local[:at]
	}
	switch {
	case local == "mailer-daemon" || local == "postmaster":
		return "mail system sender"
	case strings.HasPrefix(local, "owner-") || strings.HasSuffix(local, "-request") || strings.HasSuffix(local, "-owner"):
		return "list administrative sender"
	case strings.HasPrefix(local, "noreply") || strings.HasPrefix(local, "no-reply") || strings.HasPrefix(local, "donotreply"):
		return "no-reply sender"
	}
	// §5: Auto-Submitted other than "no" marks automatic mail.
	if v := h.Get("Auto-Submitted"); v != "" {
		kw := strings.ToLower(strings.TrimSpace(strings.SplitN(v, ";", 2)[0]))
		if i := strings.IndexAny(kw, " \t("); i >= 0 {
			kw = kw[:i]
		}
		if kw != "no" {
			return "auto-submitted"
		}
	}
	// RFC 2369 / RFC 2919 list fields.
	for _, k := range []string{"List-Id", "List-Unsubscribe", "List-Post", "List-Help", "List-Owner"} {
		if h.Has(k) {
			return "mailing list"
		}
	}
	switch strings.ToLower(strings.TrimSpace(h.Get("Precedence"))) {
	case "bulk", "junk", "list":
		return "bulk precedence"
	}
	// Microsoft's suppression header, honoured by most responders.
	if v := strings.ToLower(h.Get("X-Auto-Response-Suppress")); strings.Contains(v, "oof") || strings.Contains(v, "all") {
		return "suppressed by sender"
	}
	return ""
}

// ComposeAutoReply builds the reply per RFC 3834 §3: From the mailbox, to the reverse path,
// "Auto:" subject, In-Reply-To/References, Auto-Submitted: auto-replied.
// messageID is the reply's own Message-ID, without angle brackets.
func ComposeAutoReply(mb store.Mailbox, o *OutOfOffice, p Parsed, to, messageID string, now time.Time) ([]byte, error) {
	var h mail.Header
	h.SetDate(now)
	h.SetAddressList("From", []*mail.Address{{Name: mb.DisplayName, Address: mb.Address}})
	h.SetAddressList("To", []*mail.Address{{Address: to}})
	h.SetSubject(autoReplySubject(o, p))
	h.SetMessageID(messageID)
	if p.MessageID != "" {
		h.SetMsgIDList("In-Reply-To", []string{p.MessageID})
		refs := append(append([]string{}, p.References...), p.MessageID)
		if len(refs) > 20 {
			refs = refs[len(refs)-20:]
		}
		h.SetMsgIDList("References", refs)
	}
	h.Set("Auto-Submitted", "auto-replied")
	h.Set("X-Auto-Response-Suppress", "All")
	h.Set("Precedence", "bulk")
	h.Set("MIME-Version", "1.0")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Transfer-Encoding", "quoted-printable")
	var buf bytes.Buffer
	w, err := mail.CreateSingleInlineWriter(&buf, h)
	if err != nil {
		return nil, fmt.Errorf("mailstore: auto reply: %w", err)
	}
	text := strings.ReplaceAll(strings.ReplaceAll(o.Text, "\r\n", "\n"), "\n", "\r\n")
	if _, err := w.Write([]byte(text)); err != nil {
		return nil, fmt.Errorf("mailstore: auto reply: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("mailstore: auto reply: %w", err)
	}
	return buf.Bytes(), nil
}
