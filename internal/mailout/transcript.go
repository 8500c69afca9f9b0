package mailout

import (
	"bytes"
	"fmt"
	"strings"
)

// transcript records one SMTP conversation for the queue's attempt log.
// It sees both directions as one byte stream (go-smtp's debug writer), so it
// tells them apart by shape: server replies are "ddd" followed by a space,
// a hyphen or the end of the line (RFC 5321 §4.2); anything else was sent by
// us. Credentials never reach the log: AUTH arguments and SASL responses are
// replaced by "***". The message body is summarised by its size.
type transcript struct {
	lines    []string
	dropped  int
	partial  []byte
	overlong bool // partial exceeded its cap; the line cannot be "."
	inBody   bool
	body     int
}

const (
	transcriptMaxLines = 400
	transcriptMaxLine  = 512
	// syntheticGreeting stands in for the greeting that go-smtp expects on a
	// connection we upgraded with STARTTLS ourselves; it is not logged.
	syntheticGreeting = "220 postfach continues after STARTTLS"
)

func (t *transcript) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			t.keep(b)
			break
		}
		t.keep(b[:i])
		t.line(t.partial, t.overlong)
		t.partial = t.partial[:0]
		t.overlong = false
		b = b[i+1:]
	}
	return n, nil
}

func (t *transcript) keep(b []byte) {
	room := 2*transcriptMaxLine - len(t.partial)
	if len(b) > room {
		b = b[:max(room, 0)]
		t.overlong = true
	}
	t.partial = append(t.partial, b...)
}

func (t *transcript) line(raw []byte, overlong bool) {
	raw = bytes.TrimSuffix(raw, []byte("\r"))
	if t.inBody {
		if !overlong && len(raw) == 1 && raw[0] == '.' {
			t.inBody = false
			t.add(fmt.Sprintf("C: <message, %d bytes>", t.body))
			t.add("C: .")
			return
		}
		t.body += len(raw) + 2
		return
	}
	s := string(raw)
	if s == syntheticGreeting {
		return
	}
	if isReplyLine(s) {
		t.add("S: " + s)
		if strings.HasPrefix(s, "354") {
			t.inBody, t.body = true, 0
		}
		return
	}
	verb, rest, _ := strings.Cut(s, " ")
	switch strings.ToUpper(verb) {
	case "AUTH":
		mech, ir, _ := strings.Cut(rest, " ")
		if ir != "" {
			mech += " ***"
		}
		t.add("C: AUTH " + mech)
	case "EHLO", "HELO", "MAIL", "RCPT", "DATA", "RSET", "QUIT", "NOOP", "STARTTLS":
		t.add("C: " + s)
	default:
		t.add("C: ***") // a SASL response
	}
}

func (t *transcript) add(s string) {
	if len(t.lines) >= transcriptMaxLines {
		t.dropped++
		return
	}
	if len(s) > transcriptMaxLine {
		s = s[:transcriptMaxLine] + "…"
	}
	t.lines = append(t.lines, s)
}

// take returns the lines recorded since the last take.
func (t *transcript) take() []string {
	out := t.lines
	if t.dropped > 0 {
		out = append(out, fmt.Sprintf("(%d more lines not logged)", t.dropped))
	}
	t.lines, t.dropped = nil, 0
	return out
}

func isReplyLine(s string) bool {
	if len(s) < 3 || s[0] < '2' || s[0] > '5' || !isDigit(s[1]) || !isDigit(s[2]) {
		return false
	}
	return len(s) == 3 || s[3] == ' ' || s[3] == '-'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
