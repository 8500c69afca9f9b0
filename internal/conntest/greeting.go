package conntest

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
)

// Limits for reading a greeting: generous for real servers, small enough
// that a hostile peer cannot make us buffer much.
const (
	maxGreetingLine  = 4096
	maxGreetingLines = 64
)

var errLineTooLong = errors.New("conntest: greeting line too long")

// greetingVerdict is what a greeting says about the server.
type greetingVerdict int

const (
	greetingOK       greetingVerdict = iota
	greetingPreauth                  // IMAP PREAUTH: already logged in
	greetingRejected                 // IMAP BYE, POP3 -ERR, SMTP 554 and other non-220
	greetingForeign                  // a different protocol answered
	greetingGarbage                  // nothing we recognise
)

// greeting is the outcome of reading a server's first reply. raw holds the
// exact bytes read, to be replayed to the protocol client.
type greeting struct {
	verdict greetingVerdict
	family  string // for greetingForeign: what answered ("IMAP", "SMTP", "SSH", ...)
	raw     []byte
	// imapCaps are the capabilities an IMAP greeting announced in a
	// CAPABILITY response code (RFC 9051 section 7.1), upper case; nil
	// when it announced none.
	imapCaps []string
}

// readGreeting reads the first reply of an IMAP, POP3 or SMTP server.
// The greeting's text is never shown to the user; only its verdict is.
func readGreeting(br *bufio.Reader, p Protocol) (greeting, error) {
	var raw []byte
	line, err := readLine(br)
	raw = append(raw, line...)
	if err != nil {
		return greeting{raw: raw}, err
	}
	if p == ProtocolSMTP {
		// RFC 5321 section 4.2: "220-" continues, "220 " or "220" ends.
		for n := 1; isSMTPContinuation(line); n++ {
			if n >= maxGreetingLines {
				return greeting{raw: raw}, errLineTooLong
			}
			line, err = readLine(br)
			raw = append(raw, line...)
			if err != nil {
				return greeting{raw: raw}, err
			}
		}
	}
	g := classifyGreeting(string(raw), p)
	g.raw = raw
	return g, nil
}

// readLine reads one line including its line ending, at most
// maxGreetingLine bytes.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxGreetingLine {
			return line, errLineTooLong
		}
		switch {
		case err == nil:
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			return line, io.ErrUnexpectedEOF
		default:
			return line, err
		}
	}
}

func isSMTPContinuation(line []byte) bool {
	return len(line) >= 4 && isDigits(string(line[:3])) && line[3] == '-'
}

// classifyGreeting judges the first reply (all lines for SMTP) against the
// protocol the user chose.
func classifyGreeting(reply string, p Protocol) greeting {
	first, _, _ := strings.Cut(reply, "\n")
	first = strings.TrimRight(first, "\r")
	upper := strings.ToUpper(first)
	switch p {
	case ProtocolIMAP:
		// RFC 9051 section 7.1: greeting is OK, PREAUTH or BYE.
		switch {
		case hasWord(upper, "* OK"):
			return greeting{verdict: greetingOK, imapCaps: greetingCaps(upper[len("* OK"):])}
		case hasWord(upper, "* PREAUTH"):
			return greeting{verdict: greetingPreauth, imapCaps: greetingCaps(upper[len("* PREAUTH"):])}
		case hasWord(upper, "* BYE"):
			return greeting{verdict: greetingRejected}
		}
	case ProtocolPOP3:
		// RFC 1939 section 4.
		switch {
		case hasWord(upper, "+OK"):
			return greeting{verdict: greetingOK}
		case hasWord(upper, "-ERR"):
			return greeting{verdict: greetingRejected}
		}
	case ProtocolSMTP:
		// RFC 5321 section 4.3.2: 220 on success, 554 (or another code)
		// when the server will not talk to us. All lines of a reply carry
		// the same code, so the first one decides.
		if code, ok := smtpCode(first); ok {
			if code == "220" {
				return greeting{verdict: greetingOK}
			}
			return greeting{verdict: greetingRejected}
		}
	}
	if family := foreignFamily(upper); family != "" && !strings.EqualFold(family, string(p)) {
		return greeting{verdict: greetingForeign, family: family}
	}
	return greeting{verdict: greetingGarbage}
}

// greetingCaps returns the capability list of a " [CAPABILITY ...]"
// response code at the start of rest, or nil.
func greetingCaps(rest string) []string {
	rest, ok := strings.CutPrefix(rest, " [CAPABILITY ")
	if !ok {
		return nil
	}
	list, _, ok := strings.Cut(rest, "]")
	if !ok {
		return nil
	}
	return append([]string{}, strings.Fields(list)...)
}

// foreignFamily guesses which protocol sent a greeting, so the user can be
// told "this port speaks SMTP" instead of "unexpected answer".
func foreignFamily(upper string) string {
	switch {
	case strings.HasPrefix(upper, "* OK"), strings.HasPrefix(upper, "* PREAUTH"), strings.HasPrefix(upper, "* BYE"):
		return "IMAP"
	case strings.HasPrefix(upper, "+OK"), strings.HasPrefix(upper, "-ERR"):
		return "POP3"
	case strings.HasPrefix(upper, "SSH-"):
		return "SSH"
	case strings.HasPrefix(upper, "HTTP/"):
		return "HTTP"
	case strings.HasPrefix(upper, "220") && strings.Contains(upper, "FTP"):
		return "FTP"
	}
	if _, ok := smtpCode(upper); ok {
		return "SMTP"
	}
	return ""
}

// smtpCode returns the three-digit code of a reply line "NNN", "NNN text"
// or "NNN-text".
func smtpCode(line string) (string, bool) {
	if len(line) < 3 || !isDigits(line[:3]) || line[0] < '2' || line[0] > '5' {
		return "", false
	}
	if len(line) > 3 && line[3] != ' ' && line[3] != '-' {
		return "", false
	}
	return line[:3], true
}

// hasWord reports whether s starts with prefix followed by the end or a space.
func hasWord(s, prefix string) bool {
	return strings.HasPrefix(s, prefix) && (len(s) == len(prefix) || s[len(prefix)] == ' ')
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// replayConn hands a protocol client a connection whose first bytes are the
// greeting we already read (and anything read past it), so the client
// starts in the state it expects.
type replayConn struct {
	net.Conn
	r io.Reader
}

func newReplayConn(conn net.Conn, greeting []byte, br *bufio.Reader) net.Conn {
	pending := append([]byte(nil), greeting...)
	if n := br.Buffered(); n > 0 {
		rest, _ := br.Peek(n)
		pending = append(pending, rest...)
	}
	return &replayConn{Conn: conn, r: io.MultiReader(bytes.NewReader(pending), conn)}
}

func (c *replayConn) Read(b []byte) (int, error) { return c.r.Read(b) }
