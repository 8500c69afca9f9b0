package pop3

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// errLineTooLong is returned when a peer sends a line longer than allowed.
var errLineTooLong = errors.New("pop3: line too long")

// readLine reads one line terminated by CRLF (or a bare LF, which some
// servers send) and returns it without the terminator. Lines longer than max
// octets (without terminator) fail with errLineTooLong; the rest of such a
// line is left unread, so the caller must give up on the connection.
func readLine(r *bufio.Reader, max int) (string, error) {
	var long []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if err == nil {
			if long != nil {
				long = append(long, chunk...)
				chunk = long
			}
			line := trimEOL(chunk)
			if len(line) > max {
				return "", errLineTooLong
			}
			return string(line), nil
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(long)+len(chunk) > max+2 {
				return "", errLineTooLong
			}
			long = append(long, chunk...)
			continue
		}
		if errors.Is(err, io.EOF) {
			if len(chunk) > 0 || long != nil {
				return "", io.ErrUnexpectedEOF
			}
			return "", io.EOF
		}
		return "", err
	}
}

func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

// status is a parsed first line of a server response.
type status struct {
	ok   bool   // "+OK"
	cont bool   // "+ " SASL continuation, RFC 5034 §4
	code string // RFC 2449 §8 extended response code, without brackets
	text string
}

// parseStatus parses "+OK text", "-ERR [CODE] text" or a SASL continuation
// "+ base64". Status indicators are matched case-insensitively because some
// servers send "+Ok".
func parseStatus(line string) (status, error) {
	switch {
	case line == "+" || strings.HasPrefix(line, "+ "):
		return status{cont: true, text: strings.TrimPrefix(strings.TrimPrefix(line, "+"), " ")}, nil
	case hasIndicator(line, "+OK"):
		return status{ok: true, text: strings.TrimLeft(line[3:], " ")}, nil
	case hasIndicator(line, "-ERR"):
		code, text := parseRespCode(strings.TrimLeft(line[4:], " "))
		return status{code: code, text: text}, nil
	}
	return status{}, fmt.Errorf("pop3: malformed response %q", truncate(line, 64))
}

func hasIndicator(line, ind string) bool {
	if len(line) < len(ind) || !strings.EqualFold(line[:len(ind)], ind) {
		return false
	}
	return len(line) == len(ind) || line[len(ind)] == ' ' || line[len(ind)] == '\t'
}

// parseRespCode splits "[SYS/TEMP] text" into its RFC 2449 §8 response code
// and text. A code is a bracketed sequence of printable non-space characters;
// anything else is left in the text.
func parseRespCode(s string) (code, text string) {
	if !strings.HasPrefix(s, "[") {
		return "", s
	}
	end := strings.IndexByte(s, ']')
	if end < 2 || end > 64 {
		return "", s
	}
	c := s[1:end]
	for i := 0; i < len(c); i++ {
		if c[i] <= ' ' || c[i] > '~' || c[i] == '[' {
			return "", s
		}
	}
	return strings.ToUpper(c), strings.TrimLeft(s[end+1:], " ")
}

// readDotBody reads a multi-line response body up to the terminating "."
// line, undoing the byte-stuffing of RFC 1939 §3 while keeping the line
// endings exactly as sent. It fails with ErrTooLarge once the body exceeds max
// octets, without reading further.
func readDotBody(r *bufio.Reader, max int64) ([]byte, error) {
	var out bytes.Buffer
	lineStart := true
	for {
		chunk, err := r.ReadSlice('\n')
		complete := err == nil
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if lineStart && len(chunk) > 0 && chunk[0] == '.' {
			if complete && (len(chunk) == 2 || (len(chunk) == 3 && chunk[1] == '\r')) {
				return out.Bytes(), nil
			}
			chunk = chunk[1:]
		}
		if int64(out.Len())+int64(len(chunk)) > max {
			return nil, ErrTooLarge
		}
		out.Write(chunk)
		lineStart = complete
	}
}

// readDotLines reads a multi-line listing (CAPA, LIST, UIDL) as lines without
// terminators, each at most maxLine octets, in total at most maxTotal octets.
func readDotLines(r *bufio.Reader, maxLine int, maxTotal int64) ([]string, error) {
	var lines []string
	var total int64
	for {
		line, err := readLine(r, maxLine)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if line == "." {
			return lines, nil
		}
		line = strings.TrimPrefix(line, ".")
		total += int64(len(line)) + 2
		if total > maxTotal {
			return nil, ErrTooLarge
		}
		lines = append(lines, line)
	}
}

// dotWriter byte-stuffs a message for a multi-line response (RFC 1939 §3):
// a line starting with "." gets another "." in front. Line endings pass
// through unchanged; Close adds a CRLF if the message did not end with a line
// ending, then the terminating ".".
type dotWriter struct {
	w         io.Writer
	lineStart bool
}

func newDotWriter(w io.Writer) *dotWriter { return &dotWriter{w: w, lineStart: true} }

func (d *dotWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if d.lineStart && p[0] == '.' {
			if _, err := d.w.Write([]byte{'.'}); err != nil {
				return written, err
			}
		}
		n := bytes.IndexByte(p, '\n') + 1
		if n == 0 {
			n = len(p)
		}
		m, err := d.w.Write(p[:n])
		written += m
		if err != nil {
			return written, err
		}
		d.lineStart = p[n-1] == '\n'
		p = p[n:]
	}
	return written, nil
}

func (d *dotWriter) Close() error {
	end := ".\r\n"
	if !d.lineStart {
		end = "\r\n.\r\n"
	}
	_, err := io.WriteString(d.w, end)
	return err
}

// copyTop copies the header of a message, the blank line after it, and the
// first n body lines (RFC 1939 §7, TOP). Lines of any length are streamed.
func copyTop(dst io.Writer, src io.Reader, n int) error {
	r := bufio.NewReader(src)
	inHeader, lineStart := true, true
	bodyLines := 0
	for {
		if !inHeader && lineStart && bodyLines >= n {
			return nil
		}
		chunk, err := r.ReadSlice('\n')
		complete := err == nil
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) {
				_, werr := dst.Write(chunk)
				return werr
			}
			return err
		}
		if _, err := dst.Write(chunk); err != nil {
			return err
		}
		if complete {
			if inHeader && lineStart && len(trimEOL(chunk)) == 0 {
				inHeader = false
			} else if !inHeader {
				bodyLines++
			}
		}
		lineStart = complete
	}
}

// command is a parsed client command line.
type command struct {
	name string // upper-cased keyword
	args string // everything after the first space, unparsed
}

// parseCommand splits a command line into its keyword and argument string.
// RFC 1939 §3: keywords are case-insensitive, three or four characters (RFC
// 2449 extensions too), separated from the arguments by a single space.
func parseCommand(line string) (command, error) {
	name, args, _ := strings.Cut(line, " ")
	if len(name) < 3 || len(name) > 8 {
		return command{}, errors.New("unknown command")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return command{}, errors.New("unknown command")
		}
	}
	return command{name: strings.ToUpper(name), args: args}, nil
}

// splitArgs splits space-separated arguments and checks their count.
func splitArgs(args string, min, max int) ([]string, error) {
	fields := strings.Fields(args)
	if len(fields) < min || len(fields) > max {
		return nil, errors.New("wrong number of arguments")
	}
	return fields, nil
}

// parseNumber parses a non-negative decimal argument without sign or spaces.
func parseNumber(s string) (int, error) {
	if s == "" || len(s) > 9 {
		return 0, errors.New("invalid number")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("invalid number")
		}
	}
	return strconv.Atoi(s)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
