package mailstore

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // RFC 2047 words in declared charsets; never guessed
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// maxHeaderBytes bounds the header block we parse; a larger one goes to the quarantine.
const maxHeaderBytes = 1 << 20

// Parsed is what the store keeps of a message's header.
type Parsed struct {
	MessageID  string   // without angle brackets; empty when missing or malformed
	InReplyTo  []string // without angle brackets
	References []string
	From       []string // addr-specs, lower case
	To         []string
	Cc         []string
	FromText   string // as shown to users: "Name <addr>", decoded
	ToText     string
	CcText     string
	Subject    string // RFC 2047 decoded
	Date       time.Time
	Header     mail.Header
}

// errUnparsable marks messages that go to the quarantine.
var errUnparsable = errors.New("unparsable message")

// ParseHeader reads the header block of a raw message. Only a header that cannot be read at
// all fails (the message is quarantined); a malformed field degrades to a lenient reading of
// that field, because losing the message over one bad address would be worse.
func ParseHeader(raw []byte) (Parsed, error) {
	var p Parsed
	if len(raw) == 0 {
		return p, fmt.Errorf("%w: empty message", errUnparsable)
	}
	lr := io.LimitReader(bytes.NewReader(raw), maxHeaderBytes)
	// A small buffer is enough: the header reader joins lines longer than it. A 64 KB
	// buffer per message was a third of the parse time.
	th, err := textproto.ReadHeader(bufio.NewReaderSize(lr, min(len(raw), 4<<10)))
	if err != nil && !errors.Is(err, io.EOF) {
		return p, fmt.Errorf("%w: %v", errUnparsable, err)
	}
	if th.Len() == 0 {
		return p, fmt.Errorf("%w: no header fields", errUnparsable)
	}
	h := mail.Header{Header: messageHeader(th)}
	p.Header = h

	if id, err := h.MessageID(); err == nil {
		p.MessageID = id
	} else {
		p.MessageID = looseMsgIDs(h.Get("Message-Id")).first()
	}
	p.InReplyTo = msgIDList(h, "In-Reply-To")
	p.References = msgIDList(h, "References")
	p.From, p.FromText = addressList(h, "From")
	p.To, p.ToText = addressList(h, "To")
	p.Cc, p.CcText = addressList(h, "Cc")
	if s, err := h.Subject(); err == nil {
		p.Subject = s
	} else {
		p.Subject = h.Get("Subject") // undecodable words stay as they came
	}
	p.Subject = cleanText(p.Subject, 998)
	if d, err := h.Date(); err == nil {
		p.Date = d
	}
	return p, nil
}

func msgIDList(h mail.Header, key string) []string {
	ids, err := h.MsgIDList(key)
	if err == nil {
		return ids
	}
	return looseMsgIDs(h.Get(key))
}

type idList []string

func (l idList) first() string {
	if len(l) == 0 {
		return ""
	}
	return l[0]
}

// looseMsgIDs extracts "<…>" tokens from a malformed Message-ID, In-Reply-To or References
// field (RFC 5322 §3.6.4 allows only msg-id lists there, but real mailers add comments or
// unbracketed ids).
func looseMsgIDs(v string) idList {
	var out idList
	for {
		i := strings.IndexByte(v, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(v[i+1:], '>')
		if j < 0 {
			break
		}
		id := strings.TrimSpace(v[i+1 : i+1+j])
		if id != "" && !strings.ContainsAny(id, " \t\r\n<") && len(id) <= 500 {
			out = append(out, id)
		}
		v = v[i+2+j:]
	}
	if len(out) == 0 {
		if f := strings.Fields(v); len(f) == 1 && strings.Contains(f[0], "@") && len(f[0]) <= 500 {
			out = append(out, f[0])
		}
	}
	return out
}

// addressList returns the addr-specs of a field (lower case) and its display text.
func addressList(h mail.Header, key string) (addrs []string, text string) {
	list, err := h.AddressList(key)
	if err == nil {
		parts := make([]string, 0, len(list))
		for _, a := range list {
			addrs = append(addrs, strings.ToLower(a.Address))
			if a.Name != "" {
				parts = append(parts, fmt.Sprintf("%s <%s>", cleanText(a.Name, 200), a.Address))
			} else {
				parts = append(parts, a.Address)
			}
		}
		return addrs, strings.Join(parts, ", ")
	}
	raw := h.Get(key)
	decoded, derr := h.Text(key)
	if derr != nil {
		decoded = raw
	}
	return LooseAddresses(raw), cleanText(decoded, 2000)
}

// LooseAddresses finds addr-specs in a field the strict RFC 5322 parser refused: every
// "<local@domain>" token, or else every whitespace/comma separated word with one "@".
// Results are lower case and free of control characters.
func LooseAddresses(v string) []string {
	var out []string
	seen := map[string]bool{}
	add := func(a string) {
		a = strings.ToLower(strings.Trim(a, " \t\"'<>;,()"))
		at := strings.LastIndexByte(a, '@')
		if at <= 0 || at == len(a)-1 || len(a) > 320 || strings.ContainsFunc(a, isSpaceOrControl) ||
			strings.ContainsAny(a, `<>()[],;:\"`) || seen[a] {
			return
		}
		seen[a] = true
		out = append(out, a)
	}
	rest := v
	for {
		i := strings.IndexByte(rest, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '>')
		if j < 0 {
			break
		}
		add(rest[i+1 : i+j])
		rest = rest[i+j+1:]
	}
	if len(out) > 0 {
		return out
	}
	for _, w := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ';' || isSpaceOrControl(r) }) {
		if strings.Count(w, "@") == 1 {
			add(w)
		}
	}
	return out
}

func isSpaceOrControl(r rune) bool { return r <= ' ' || r == 0x7f }

// cleanText removes control characters (a decoded word may carry CR, LF or NUL) and bounds
// the length, so a header value is always safe to show and store.
func cleanText(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\r' || r == '\n':
			return ' '
		case r < ' ' || r == 0x7f:
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8Start(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

func messageHeader(th textproto.Header) message.Header { return message.Header{Header: th} }
