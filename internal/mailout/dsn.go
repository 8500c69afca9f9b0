package mailout

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	gmtextproto "github.com/emersion/go-message/textproto"
)

// DSNAction is the per-recipient Action field of RFC 3464 §2.3.3, limited
// to the two notifications the queue sends.
type DSNAction string

const (
	ActionFailed  DSNAction = "failed"
	ActionDelayed DSNAction = "delayed"
)

// DSNRecipient is one recipient's block in a delivery status notification.
type DSNRecipient struct {
	FinalRecipient    string
	OriginalRecipient string // ORCPT, if the submission carried one
	Action            DSNAction
	Status            string // RFC 3463 code, e.g. "5.1.1"
	// DiagnosticCode is the remote server's reply ("550 5.1.1 no such
	// user"); empty when no server answered.
	DiagnosticCode string
	RemoteMTA      string
	LastAttempt    time.Time
	WillRetryUntil time.Time // only for ActionDelayed
}

// RecipientFromResult fills a DSNRecipient from the last attempt's result.
func RecipientFromResult(r Result, remoteMTA string, lastAttempt time.Time) DSNRecipient {
	rec := DSNRecipient{
		FinalRecipient: r.Recipient,
		Action:         ActionFailed,
		Status:         r.Enhanced,
		RemoteMTA:      remoteMTA,
		LastAttempt:    lastAttempt,
	}
	if r.Temporary {
		rec.Action = ActionDelayed
	}
	if rec.Status == "" {
		rec.Status = "5.0.0"
		if r.Temporary {
			rec.Status = "4.0.0"
		}
	}
	switch {
	case r.Code != 0:
		rec.DiagnosticCode = fmt.Sprintf("%d %s %s", r.Code, r.Enhanced, r.Text)
	case r.Err != nil:
		rec.DiagnosticCode = r.Err.Error()
	}
	return rec
}

// DSNParams describes one delivery status notification.
type DSNParams struct {
	// ReportingMTA is our host name.
	ReportingMTA string
	// From is the DSN's author, e.g. "MAILER-DAEMON@out.example.org"; it is
	// shown as "Mail Delivery System".
	From string
	// To is the envelope sender of the original message.
	To        string
	MessageID string // of the DSN, without angle brackets
	Date      time.Time
	// EnvelopeID is the original ENVID (RFC 3461 §4.4), if any.
	EnvelopeID  string
	ArrivalDate time.Time
	Recipients  []DSNRecipient
	// Original is the original message; only its header is returned.
	Original []byte
}

var statusPattern = regexp.MustCompile(`^[245]\.[0-9]{1,3}\.[0-9]{1,3}$`)

// BuildDSN writes a delivery status notification (RFC 3464): a
// multipart/report with a German and English explanation, the
// machine-readable message/delivery-status part, and the original header
// as text/rfc822-headers. Send it with an empty envelope sender (MAIL
// FROM:<>, RFC 5321 §4.5.5) so that it can never cause another bounce.
func BuildDSN(p DSNParams) ([]byte, error) {
	if len(p.Recipients) == 0 {
		return nil, errors.New("dsn: no recipients")
	}
	for field, v := range map[string]string{"reporting MTA": p.ReportingMTA, "from": p.From, "to": p.To, "message id": p.MessageID} {
		if v == "" {
			return nil, fmt.Errorf("dsn: %s is required", field)
		}
	}
	if err := checkAddress("From", Address{Address: p.From}); err != nil {
		return nil, err
	}
	if err := checkAddress("To", Address{Address: p.To}); err != nil {
		return nil, err
	}
	if err := checkMsgID("Message-ID", p.MessageID); err != nil {
		return nil, err
	}
	for _, r := range p.Recipients {
		if r.Action != ActionFailed && r.Action != ActionDelayed {
			return nil, fmt.Errorf("dsn: unknown action %q", r.Action)
		}
		if !statusPattern.MatchString(r.Status) {
			return nil, fmt.Errorf("dsn: status %q is not an RFC 3463 code", r.Status)
		}
		if r.FinalRecipient == "" {
			return nil, errors.New("dsn: recipient without address")
		}
	}
	date := p.Date
	if date.IsZero() {
		date = time.Now()
	}
	orig := originalHeader(p.Original)

	failed := false
	for _, r := range p.Recipients {
		failed = failed || r.Action == ActionFailed
	}
	subjectPrefix := "Zustellung verzögert / Delivery delayed"
	if failed {
		subjectPrefix = "Unzustellbar / Undeliverable"
	}
	origSubject, _ := orig.Text("Subject")

	var h mail.Header
	h.SetAddressList("From", []*mail.Address{{Name: "Mail Delivery System", Address: p.From}})
	h.SetAddressList("To", []*mail.Address{{Address: p.To}})
	h.SetSubject(strings.TrimSuffix(subjectPrefix+": "+origSubject, ": "))
	h.SetDate(date)
	h.SetMessageID(p.MessageID)
	if ids, err := orig.MsgIDList("Message-Id"); err == nil && len(ids) == 1 {
		h.SetMsgIDList("In-Reply-To", ids)
		h.SetMsgIDList("References", ids)
	}
	// RFC 3834 §5: marks the DSN as automatic so responders stay quiet.
	h.Set("Auto-Submitted", "auto-replied")
	if err := checkHeaderValues(h.Header); err != nil {
		return nil, fmt.Errorf("dsn: %w", err)
	}

	global := !isASCII(p.To) // RFC 6533: UTF-8 addresses need the global types
	for _, r := range p.Recipients {
		global = global || !isASCII(r.FinalRecipient) || !isASCII(r.OriginalRecipient)
	}
	statusType := "message/delivery-status"
	if global {
		statusType = "message/global-delivery-status"
	}
	h.SetContentType("multipart/report", map[string]string{"report-type": "delivery-status"})

	var buf bytes.Buffer
	w, err := message.CreateWriter(&buf, h.Header)
	if err != nil {
		return nil, fmt.Errorf("dsn: %w", err)
	}
	var th message.Header
	th.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	th.Set("Content-Transfer-Encoding", "quoted-printable")
	th.Set("Content-Description", "Notification")
	if err := writePart(w, th, []byte(dsnText(p, origSubject))); err != nil {
		return nil, err
	}

	var sh message.Header
	sh.SetContentType(statusType, nil)
	sh.Set("Content-Description", "Delivery report")
	if global {
		sh.Set("Content-Transfer-Encoding", "8bit")
	}
	if err := writePart(w, sh, deliveryStatus(p, global)); err != nil {
		return nil, err
	}

	if p.Original != nil {
		var oh message.Header
		oh.SetContentType("text/rfc822-headers", nil)
		oh.Set("Content-Description", "Undelivered message header")
		raw := rawHeader(p.Original)
		if !isASCII(string(raw)) {
			oh.Set("Content-Transfer-Encoding", "8bit")
		}
		if err := writePart(w, oh, raw); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("dsn: %w", err)
	}
	return buf.Bytes(), nil
}

func writePart(w *message.Writer, h message.Header, body []byte) error {
	pw, err := w.CreatePart(h)
	if err != nil {
		return fmt.Errorf("dsn: create part: %w", err)
	}
	if _, err := pw.Write(body); err != nil {
		return fmt.Errorf("dsn: write part: %w", err)
	}
	if err := pw.Close(); err != nil {
		return fmt.Errorf("dsn: close part: %w", err)
	}
	return nil
}

// deliveryStatus renders the per-message and per-recipient field groups
// (RFC 3464 §2.2, §2.3).
func deliveryStatus(p DSNParams, global bool) []byte {
	addrType := "rfc822"
	if global {
		addrType = "utf-8"
	}
	var b strings.Builder
	field := func(name, value string) {
		if value != "" {
			fmt.Fprintf(&b, "%s: %s\r\n", name, oneLine(value))
		}
	}
	field("Reporting-MTA", "dns; "+p.ReportingMTA)
	field("Original-Envelope-Id", p.EnvelopeID)
	if !p.ArrivalDate.IsZero() {
		field("Arrival-Date", p.ArrivalDate.Format(time.RFC1123Z))
	}
	for _, r := range p.Recipients {
		b.WriteString("\r\n")
		if r.OriginalRecipient != "" {
			field("Original-Recipient", addrType+"; "+r.OriginalRecipient)
		}
		field("Final-Recipient", addrType+"; "+r.FinalRecipient)
		field("Action", string(r.Action))
		field("Status", r.Status)
		if r.RemoteMTA != "" {
			field("Remote-MTA", "dns; "+r.RemoteMTA)
		}
		if r.DiagnosticCode != "" {
			field("Diagnostic-Code", "smtp; "+r.DiagnosticCode)
		}
		if !r.LastAttempt.IsZero() {
			field("Last-Attempt-Date", r.LastAttempt.Format(time.RFC1123Z))
		}
		if r.Action == ActionDelayed && !r.WillRetryUntil.IsZero() {
			field("Will-Retry-Until", r.WillRetryUntil.Format(time.RFC1123Z))
		}
	}
	return []byte(b.String())
}

// oneLine keeps a remote server's text from breaking the field structure.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == 0 {
			return ' '
		}
		return r
	}, s)
	if len(s) > 900 {
		s = s[:900]
	}
	return s
}

func dsnText(p DSNParams, subject string) string {
	var failed, delayed []DSNRecipient
	for _, r := range p.Recipients {
		if r.Action == ActionFailed {
			failed = append(failed, r)
		} else {
			delayed = append(delayed, r)
		}
	}
	list := func(b *strings.Builder, rs []DSNRecipient) {
		for _, r := range rs {
			fmt.Fprintf(b, "  %s\r\n", r.FinalRecipient)
			if r.DiagnosticCode != "" {
				fmt.Fprintf(b, "    %s\r\n", oneLine(r.DiagnosticCode))
			}
		}
		b.WriteString("\r\n")
	}
	var b strings.Builder
	if subject == "" {
		subject = "(ohne Betreff / no subject)"
	}
	fmt.Fprintf(&b, "Dies ist eine automatisch erzeugte Nachricht von %s.\r\n\r\n", p.ReportingMTA)
	if len(failed) > 0 {
		fmt.Fprintf(&b, "Ihre Nachricht „%s“ konnte an folgende Empfänger nicht zugestellt werden:\r\n\r\n", subject)
		list(&b, failed)
	}
	if len(delayed) > 0 {
		fmt.Fprintf(&b, "Ihre Nachricht „%s“ konnte an folgende Empfänger noch nicht zugestellt werden. Wir versuchen es weiter; Sie müssen nichts tun:\r\n\r\n", subject)
		list(&b, delayed)
	}
	b.WriteString("-- \r\n\r\n")
	fmt.Fprintf(&b, "This is an automatically generated message from %s.\r\n\r\n", p.ReportingMTA)
	if len(failed) > 0 {
		fmt.Fprintf(&b, "Your message \"%s\" could not be delivered to these recipients:\r\n\r\n", subject)
		list(&b, failed)
	}
	if len(delayed) > 0 {
		fmt.Fprintf(&b, "Your message \"%s\" has not yet been delivered to these recipients. Delivery will be retried; no action is needed:\r\n\r\n", subject)
		list(&b, delayed)
	}
	return b.String()
}

// rawHeader returns the header section of msg including the blank line.
func rawHeader(msg []byte) []byte {
	for _, sep := range [][]byte{[]byte("\r\n\r\n"), []byte("\n\n")} {
		if i := bytes.Index(msg, sep); i >= 0 {
			return msg[:i+len(sep)]
		}
	}
	return msg
}

func originalHeader(msg []byte) mail.Header {
	if msg == nil {
		return mail.Header{}
	}
	h, err := gmtextproto.ReadHeader(bufio.NewReader(bytes.NewReader(rawHeader(msg))))
	if err != nil {
		return mail.Header{}
	}
	return mail.Header{Header: message.Header{Header: h}}
}

// checkHeaderValues refuses CR, LF and NUL in header values that came
// from callers; go-message would otherwise write them through.
func checkHeaderValues(h message.Header) error {
	fields := h.Fields()
	for fields.Next() {
		if strings.ContainsAny(fields.Value(), "\r\n\x00") {
			return &HeaderError{Field: fields.Key(), Reason: "contains CR, LF or NUL"}
		}
	}
	return nil
}
