package mailout

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	netmail "net/mail"
	"path"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/microcosm-cc/bluemonday"
	"golang.org/x/net/html"
)

// HeaderError reports an input that would corrupt or inject header fields.
// Field names the offending field ("Subject", "To", "Attachment
// filename", ...).
type HeaderError struct {
	Field  string
	Reason string
}

func (e *HeaderError) Error() string {
	return "mailout: header " + e.Field + ": " + e.Reason
}

// Address is a mailbox with an optional display name.
type Address struct {
	Name    string
	Address string
}

// Attachment is a file part. Inline parts (pictures in HTML) are referenced
// from the HTML as "cid:" + ContentID.
type Attachment struct {
	Filename    string
	ContentType string // empty: derived from the file name
	ContentID   string // inline parts only, without angle brackets
	Data        []byte
}

// Outgoing is the structured input of BuildMessage.
type Outgoing struct {
	From    Address
	ReplyTo []Address
	To      []Address
	Cc      []Address
	// Bcc recipients get the message through the envelope only; they never
	// appear in the header.
	Bcc        []Address
	Subject    string
	Date       time.Time
	MessageID  string // fixed at enqueue, without angle brackets
	InReplyTo  string
	References []string
	// Text is the plain-text body. When empty and HTML is set, it is derived
	// from the HTML.
	Text string
	// HTML is sanitised before it is written.
	HTML        string
	Inline      []Attachment
	Attachments []Attachment
}

// Recipients returns the envelope recipients: To, Cc and Bcc without
// duplicates (compared case-insensitively).
func (o Outgoing) Recipients() []string {
	seen := map[string]bool{}
	var out []string
	for _, list := range [][]Address{o.To, o.Cc, o.Bcc} {
		for _, a := range list {
			k := strings.ToLower(a.Address)
			if !seen[k] {
				seen[k] = true
				out = append(out, a.Address)
			}
		}
	}
	return out
}

// BuildMessage composes an RFC 5322 message with MIME structure
//
//	multipart/mixed                 (only with attachments)
//	  multipart/alternative         (only with HTML)
//	    text/plain
//	    multipart/related           (only with inline parts)
//	      text/html
//	      inline parts (Content-ID)
//	  attachments
//
// Text is quoted-printable, binary parts base64, so no line exceeds 76
// characters in bodies and 998 anywhere (RFC 5322 §2.1.1); every line ends
// in CRLF. Non-ASCII names and subjects are RFC 2047 encoded words, file
// names RFC 2231 parameters. Any CR, LF or NUL in a header value, or a
// malformed address or message id, is refused with a *HeaderError.
func BuildMessage(o Outgoing) ([]byte, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	root, err := o.body()
	if err != nil {
		return nil, err
	}
	// go-message writes fields in reverse order of insertion: start with the
	// content fields so that Date and From come first.
	h := mail.Header{Header: root.header}
	if len(o.References) > 0 {
		h.SetMsgIDList("References", o.References)
	}
	if o.InReplyTo != "" {
		h.SetMsgIDList("In-Reply-To", []string{o.InReplyTo})
	}
	h.SetMessageID(o.MessageID)
	// Readers trim the unfolded value, so surrounding blanks cannot
	// survive; drop them here rather than have the subject change in transit.
	if subject := strings.Trim(o.Subject, " \t"); subject != "" {
		h.Set("Subject", encodeText(subject))
	}
	if len(o.Cc) > 0 {
		h.Set("Cc", formatAddresses(o.Cc))
	}
	if len(o.To) > 0 {
		h.Set("To", formatAddresses(o.To))
	}
	if len(o.To) == 0 && len(o.Cc) == 0 {
		h.Set("To", "undisclosed-recipients:;") // RFC 5322 §3.6.3, only Bcc
	}
	if len(o.ReplyTo) > 0 {
		h.Set("Reply-To", formatAddresses(o.ReplyTo))
	}
	h.Set("From", formatAddresses([]Address{o.From}))
	h.SetDate(o.Date)
	h.Set("MIME-Version", "1.0")
	root.header = h.Header
	if err := checkHeaderValues(h.Header); err != nil {
		return nil, err
	}

	var buf bytes.Buffer
	w, err := message.CreateWriter(&buf, root.header)
	if err != nil {
		return nil, fmt.Errorf("mailout: compose: %w", err)
	}
	if err := root.writeTo(w); err != nil {
		return nil, fmt.Errorf("mailout: compose: %w", err)
	}
	return buf.Bytes(), nil
}

// entity is a MIME part under construction.
type entity struct {
	header   message.Header
	body     []byte
	children []*entity
}

func (e *entity) writeTo(w *message.Writer) error {
	if e.children == nil {
		if _, err := w.Write(e.body); err != nil {
			return err
		}
		return w.Close()
	}
	for _, c := range e.children {
		cw, err := w.CreatePart(c.header)
		if err != nil {
			return err
		}
		if err := c.writeTo(cw); err != nil {
			return err
		}
	}
	return w.Close()
}

func multipart(subtype string, params map[string]string, children ...*entity) *entity {
	e := &entity{children: children}
	if params == nil {
		params = map[string]string{}
	}
	e.header.SetContentType("multipart/"+subtype, params)
	return e
}

func textEntity(mediaType, text string) *entity {
	e := &entity{body: []byte(text)}
	e.header.SetContentType(mediaType, map[string]string{"charset": "utf-8"})
	e.header.Set("Content-Transfer-Encoding", "quoted-printable")
	return e
}

func fileEntity(a Attachment, disposition string) *entity {
	e := &entity{body: a.Data}
	ct := a.ContentType
	if ct == "" {
		ct = mime.TypeByExtension(path.Ext(a.Filename))
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt == "" {
		mt, params = "application/octet-stream", nil
	}
	delete(params, "boundary")
	e.header.SetContentType(mt, params)
	e.header.Set("Content-Transfer-Encoding", "base64")
	dparams := map[string]string{}
	if a.Filename != "" {
		dparams["filename"] = cleanFilename(a.Filename)
	}
	e.header.SetContentDisposition(disposition, dparams)
	if a.ContentID != "" {
		e.header.Set("Content-Id", "<"+a.ContentID+">")
	}
	return e
}

func (o Outgoing) body() (*entity, error) {
	text := o.Text
	var htmlPart *entity
	if o.HTML != "" {
		clean := SanitizeHTML(o.HTML)
		if text == "" {
			text = HTMLToText(clean)
		}
		htmlPart = textEntity("text/html", clean)
		if len(o.Inline) > 0 {
			parts := []*entity{htmlPart}
			for _, a := range o.Inline {
				parts = append(parts, fileEntity(a, "inline"))
			}
			htmlPart = multipart("related", map[string]string{"type": "text/html"}, parts...)
		}
	} else if len(o.Inline) > 0 {
		return nil, errors.New("mailout: inline parts need an HTML body")
	}
	body := textEntity("text/plain", text)
	if htmlPart != nil {
		body = multipart("alternative", nil, body, htmlPart)
	}
	if len(o.Attachments) == 0 {
		return body, nil
	}
	parts := []*entity{body}
	for _, a := range o.Attachments {
		parts = append(parts, fileEntity(a, "attachment"))
	}
	return multipart("mixed", nil, parts...), nil
}

func (o Outgoing) validate() error {
	if o.From.Address == "" {
		return &HeaderError{Field: "From", Reason: "no address"}
	}
	if len(o.To)+len(o.Cc)+len(o.Bcc) == 0 {
		return errors.New("mailout: message has no recipients")
	}
	if o.Date.IsZero() {
		return &HeaderError{Field: "Date", Reason: "missing"}
	}
	if err := checkAddress("From", o.From); err != nil {
		return err
	}
	for _, l := range []struct {
		field string
		list  []Address
	}{{"Reply-To", o.ReplyTo}, {"To", o.To}, {"Cc", o.Cc}, {"Bcc", o.Bcc}} {
		for _, a := range l.list {
			if err := checkAddress(l.field, a); err != nil {
				return err
			}
		}
	}
	if err := checkText("Subject", o.Subject); err != nil {
		return err
	}
	if err := checkMsgID("Message-ID", o.MessageID); err != nil {
		return err
	}
	if o.InReplyTo != "" {
		if err := checkMsgID("In-Reply-To", o.InReplyTo); err != nil {
			return err
		}
	}
	for _, id := range o.References {
		if err := checkMsgID("References", id); err != nil {
			return err
		}
	}
	for _, group := range []struct {
		field string
		list  []Attachment
	}{{"Inline", o.Inline}, {"Attachment", o.Attachments}} {
		for _, a := range group.list {
			if err := checkText(group.field+" filename", a.Filename); err != nil {
				return err
			}
			if err := checkText(group.field+" content type", a.ContentType); err != nil {
				return err
			}
			if a.ContentID != "" {
				if err := checkMsgID(group.field+" content id", a.ContentID); err != nil {
					return err
				}
			} else if group.field == "Inline" {
				return &HeaderError{Field: "Inline content id", Reason: "missing"}
			}
		}
	}
	return nil
}

// checkText refuses header text that could break out of its field.
func checkText(field, s string) error {
	if strings.ContainsAny(s, "\r\n\x00") {
		return &HeaderError{Field: field, Reason: "contains CR, LF or NUL"}
	}
	if !utf8.ValidString(s) {
		return &HeaderError{Field: field, Reason: "is not valid UTF-8"}
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r != '\t' && unicode.IsControl(r) }) {
		return &HeaderError{Field: field, Reason: "contains control characters"}
	}
	return nil
}

// checkAddress accepts an RFC 5322 addr-spec (RFC 6532 allows UTF-8) and a
// display name of any text without line breaks.
func checkAddress(field string, a Address) error {
	if err := checkText(field, a.Name); err != nil {
		return err
	}
	if err := checkText(field, a.Address); err != nil {
		return err
	}
	parsed, err := netmail.ParseAddress("<" + a.Address + ">")
	if err != nil || parsed.Address != a.Address || strings.ContainsAny(a.Address, " \t<>") {
		return &HeaderError{Field: field, Reason: fmt.Sprintf("%q is not an e-mail address", a.Address)}
	}
	return nil
}

// checkMsgID accepts the inside of an RFC 5322 §3.6.4 msg-id.
func checkMsgID(field, id string) error {
	if err := checkText(field, id); err != nil {
		return err
	}
	left, right, ok := strings.Cut(id, "@")
	if !ok || left == "" || right == "" || strings.ContainsAny(id, " \t<>\"()[]\\,;:") || strings.Count(id, "@") != 1 || len(id) > 250 {
		return &HeaderError{Field: field, Reason: fmt.Sprintf("%q is not a message id", id)}
	}
	for _, r := range id {
		if r < 0x21 || r > 0x7e {
			return &HeaderError{Field: field, Reason: fmt.Sprintf("%q is not a message id", id)}
		}
	}
	return nil
}

// formatAddresses writes an address list. ASCII display names are quoted
// by net/mail as needed. Others become base64 encoded words: net/mail's
// Q encoding lets characters through that are not allowed in a phrase
// (RFC 2047 §5(3)), such as a backslash. Names containing "=?" are encoded
// too, or readers would decode them as if they were encoded words.
func formatAddresses(as []Address) string {
	parts := make([]string, len(as))
	for i, a := range as {
		name := collapseBlanks(a.Name)
		if strings.Contains(name, "=?") || !isASCII(name) || longestWord(name) > 60 {
			parts[i] = encodeWords(name) + " <" + a.Address + ">"
		} else {
			parts[i] = (&netmail.Address{Name: name, Address: a.Address}).String()
		}
	}
	return strings.Join(parts, ", ")
}

// encodeText encodes unstructured header text (RFC 2047 §5(1)).
func encodeText(s string) string {
	// A word longer than a line cannot be folded; go-message would cut it
	// and the reader would see an extra space. Encoded words can be split.
	if strings.Contains(s, "=?") || longestWord(s) > 70 {
		return encodeWords(s)
	}
	return mime.QEncoding.Encode("utf-8", s)
}

func longestWord(s string) int {
	longest := 0
	for _, w := range strings.Fields(s) {
		longest = max(longest, len(w))
	}
	return longest
}

// maxFilename bounds file names: go-message writes parameters without
// RFC 2231 continuations, so a longer name could not be folded.
const maxFilename = 120

// cleanFilename collapses blanks to single spaces (header folding may
// swallow them otherwise), keeps the extension and cuts the stem on a rune
// boundary.
func cleanFilename(name string) string {
	name = collapseBlanks(name)
	if len(name) <= maxFilename {
		return name
	}
	ext := path.Ext(name)
	if len(ext) > 20 {
		ext = ""
	}
	stem := name[:maxFilename-len(ext)]
	for len(stem) > 0 && !utf8.ValidString(stem) {
		stem = stem[:len(stem)-1]
	}
	return stem + ext
}

// encodeWords always encodes s as base64 encoded words of at most 75
// characters, split on rune boundaries (RFC 2047 §2, §5(3)).
func encodeWords(s string) string {
	const maxChunk = 45 // 60 base64 characters plus "=?utf-8?b?" and "?="
	var words []string
	for len(s) > 0 {
		n := min(len(s), maxChunk)
		for n < len(s) && !utf8.RuneStart(s[n]) {
			n--
		}
		words = append(words, "=?utf-8?b?"+base64.StdEncoding.EncodeToString([]byte(s[:n]))+"?=")
		s = s[n:]
	}
	return strings.Join(words, " ")
}

// SanitizeHTML keeps formatting, links, tables and images (http, https,
// cid: and data: sources) and removes scripts, event handlers, forms and
// anything else that executes.
func SanitizeHTML(s string) string {
	p := bluemonday.UGCPolicy()
	p.AllowURLSchemes("http", "https", "mailto", "cid")
	p.AllowDataURIImages()
	p.AllowAttrs("width", "height", "align", "valign", "bgcolor", "border", "cellpadding", "cellspacing").Globally()
	p.AllowStyles("color", "background-color", "font-family", "font-size", "font-weight", "font-style",
		"text-align", "text-decoration", "margin", "margin-top", "margin-bottom", "margin-left", "margin-right",
		"padding", "border", "width", "height", "line-height", "vertical-align").Globally()
	p.RequireNoFollowOnLinks(false)
	return p.Sanitize(s)
}

// HTMLToText derives the plain-text alternative: text content, line breaks
// for block elements, link targets in angle brackets.
func HTMLToText(s string) string {
	z := html.NewTokenizer(strings.NewReader(s))
	var b strings.Builder
	skip := 0
	var href string
	newline := func() {
		if b.Len() > 0 && !strings.HasSuffix(b.String(), "\n") {
			b.WriteString("\n")
		}
	}
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			if z.Err() != io.EOF {
				return b.String()
			}
			return tidyText(b.String())
		case html.TextToken:
			if skip > 0 {
				continue
			}
			text := string(z.Text())
			words := strings.Fields(text)
			if len(words) == 0 {
				if text != "" {
					b.WriteString(" ")
				}
				continue
			}
			if strings.TrimLeftFunc(text, unicode.IsSpace) != text {
				b.WriteString(" ")
			}
			b.WriteString(strings.Join(words, " "))
			if strings.TrimRightFunc(text, unicode.IsSpace) != text {
				b.WriteString(" ")
			}
		case html.StartTagToken, html.EndTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			tag := string(name)
			switch tag {
			case "script", "style", "head", "title":
				if tt == html.StartTagToken {
					skip++
				} else if tt == html.EndTagToken && skip > 0 {
					skip--
				}
			case "br":
				b.WriteString("\n")
			case "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "blockquote":
				newline()
				if tag == "p" && tt == html.EndTagToken {
					b.WriteString("\n")
				}
			case "a":
				if tt == html.StartTagToken && hasAttr {
					for {
						k, v, more := z.TagAttr()
						if string(k) == "href" {
							href = string(v)
						}
						if !more {
							break
						}
					}
				} else if tt == html.EndTagToken && href != "" {
					if !strings.HasPrefix(href, "mailto:") {
						fmt.Fprintf(&b, " <%s>", href)
					}
					href = ""
				}
			}
		}
	}
}

// tidyText trims every line and keeps at most one empty line in a row.
func tidyText(s string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		line = strings.Join(strings.Fields(line), " ")
		if line == "" && (len(out) == 0 || out[len(out)-1] == "") {
			continue
		}
		out = append(out, line)
	}
	return strings.TrimSpace(strings.Join(out, "\n")) + "\n"
}

// collapseBlanks trims spaces and tabs and turns runs of them into one
// space: header folding inside quoted display names and parameters does not
// preserve them.
func collapseBlanks(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' }), " ")
}
