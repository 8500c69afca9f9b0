package pop3

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Client limits. RFC 2449 §4 caps response lines at 512 octets; we allow
// more because real servers exceed it (long SASL challenges, UIDs).
const (
	defaultMaxMessageSize = 64 << 20
	defaultMaxListingSize = 16 << 20
	clientMaxLine         = 16 << 10
	// RFC 5034 §4: an AUTH command with initial response must fit in 255
	// octets including CRLF, otherwise the response goes on its own line.
	maxAuthCommandLine = 255
)

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithMaxMessageSize bounds the octets Retr and Top accept (default 64 MiB).
// A larger message fails with ErrTooLarge and leaves the client unusable;
// check sizes with List before retrieving when messages may be big.
func WithMaxMessageSize(n int64) ClientOption {
	return func(c *Client) { c.maxMessageSize = n }
}

// WithMaxListingSize bounds the octets of CAPA, LIST and UIDL listings
// (default 16 MiB, about 200,000 UIDL entries).
func WithMaxListingSize(n int64) ClientOption {
	return func(c *Client) { c.maxListingSize = n }
}

// Client is a POP3 client connection. Its methods are safe for use by one
// goroutine at a time; a mutex serialises accidental concurrent calls.
//
// After a network or protocol error, or a cancelled context, the
// connection's state is unknown: every later call fails, and the caller
// should Close (never Quit) so that the server rolls back deletions.
type Client struct {
	mu             sync.Mutex
	conn           net.Conn
	br             *bufio.Reader
	bw             *bufio.Writer
	greeting       string
	apopTimestamp  string
	maxMessageSize int64
	maxListingSize int64
	broken         error
}

// NewClient reads the server greeting from conn. Set a deadline on conn
// first to bound the wait. The greeting's APOP timestamp (RFC 1939 §7) is
// kept for APOP.
func NewClient(conn net.Conn, opts ...ClientOption) (*Client, error) {
	c := &Client{
		conn:           conn,
		br:             bufio.NewReader(conn),
		bw:             bufio.NewWriter(conn),
		maxMessageSize: defaultMaxMessageSize,
		maxListingSize: defaultMaxListingSize,
	}
	for _, o := range opts {
		o(c)
	}
	line, err := readLine(c.br, clientMaxLine)
	if err != nil {
		return nil, fmt.Errorf("pop3: reading greeting: %w", err)
	}
	st, err := parseStatus(line)
	if err != nil {
		return nil, fmt.Errorf("pop3: greeting: %w", err)
	}
	if !st.ok {
		return nil, &ResponseError{Command: "greeting", Code: st.code, Text: st.text}
	}
	c.greeting = st.text
	c.apopTimestamp = apopTimestamp(st.text)
	return c, nil
}

// apopTimestamp returns the "<...@...>" msg-id of a greeting, RFC 1939 §7.
func apopTimestamp(greeting string) string {
	start := strings.LastIndexByte(greeting, '<')
	if start < 0 {
		return ""
	}
	end := strings.IndexByte(greeting[start:], '>')
	if end < 0 {
		return ""
	}
	ts := greeting[start : start+end+1]
	if !strings.Contains(ts, "@") {
		return ""
	}
	return ts
}

// Greeting returns the text of the server's greeting after "+OK".
func (c *Client) Greeting() string { return c.greeting }

// begin applies ctx to the connection for one command. The returned
// function must be called when the command is done.
func (c *Client) begin(ctx context.Context) (func(), error) {
	c.mu.Lock()
	if c.broken != nil {
		c.mu.Unlock()
		return nil, fmt.Errorf("pop3: connection unusable after earlier error: %w", c.broken)
	}
	if err := ctx.Err(); err != nil {
		c.mu.Unlock()
		return nil, fmt.Errorf("pop3: %w", err)
	}
	deadline, _ := ctx.Deadline() // zero clears an earlier deadline
	if err := c.conn.SetDeadline(deadline); err != nil {
		c.mu.Unlock()
		return nil, fmt.Errorf("pop3: setting deadline: %w", err)
	}
	// A cancelled context without deadline must still interrupt blocking I/O.
	conn := c.conn
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	return func() {
		stop()
		c.mu.Unlock()
	}, nil
}

// fail marks the connection unusable and returns err, annotated with the
// context's error when that is what interrupted the I/O.
func (c *Client) fail(ctx context.Context, cmd string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		err = fmt.Errorf("pop3: %s: %w: %w", cmd, ctxErr, err)
	} else {
		err = fmt.Errorf("pop3: %s: %w", cmd, err)
	}
	c.broken = err
	return err
}

// send writes one command line. Arguments must not contain CR, LF or NUL,
// which would let a user name inject further commands.
func (c *Client) send(line string) error {
	if strings.ContainsAny(line, "\r\n\x00") {
		return errors.New("argument contains CR, LF or NUL")
	}
	if _, err := c.bw.WriteString(line + "\r\n"); err != nil {
		return err
	}
	return c.bw.Flush()
}

// readStatus reads a single-line response.
func (c *Client) readStatus() (status, error) {
	line, err := readLine(c.br, clientMaxLine)
	if err != nil {
		return status{}, err
	}
	return parseStatus(line)
}

// simple runs a command with a single-line answer and returns the text
// after +OK. The keyword is the first word of line; only it appears in errors.
func (c *Client) simple(ctx context.Context, line string) (string, error) {
	end, err := c.begin(ctx)
	if err != nil {
		return "", err
	}
	defer end()
	return c.simpleLocked(ctx, line)
}

func (c *Client) simpleLocked(ctx context.Context, line string) (string, error) {
	keyword, _, _ := strings.Cut(line, " ")
	if err := c.send(line); err != nil {
		if strings.ContainsAny(line, "\r\n\x00") {
			return "", fmt.Errorf("pop3: %s: %w", keyword, err)
		}
		return "", c.fail(ctx, keyword, err)
	}
	st, err := c.readStatus()
	if err != nil {
		return "", c.fail(ctx, keyword, err)
	}
	if st.cont {
		return "", c.fail(ctx, keyword, errors.New("unexpected continuation"))
	}
	if !st.ok {
		return "", &ResponseError{Command: keyword, Code: st.code, Text: st.text}
	}
	return st.text, nil
}

// multi runs a command whose +OK answer is followed by a multi-line body.
func (c *Client) multi(ctx context.Context, line string, body func() error) error {
	end, err := c.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	keyword, _, _ := strings.Cut(line, " ")
	if _, err := c.simpleLocked(ctx, line); err != nil {
		return err
	}
	if err := body(); err != nil {
		return c.fail(ctx, keyword, err)
	}
	return nil
}

// Capabilities issues CAPA (RFC 2449 §5) and returns the capabilities by
// upper-cased name with their arguments. A server without CAPA yields a
// *ResponseError.
func (c *Client) Capabilities(ctx context.Context) (map[string][]string, error) {
	var lines []string
	err := c.multi(ctx, "CAPA", func() (err error) {
		lines, err = readDotLines(c.br, clientMaxLine, c.maxListingSize)
		return err
	})
	if err != nil {
		return nil, err
	}
	caps := make(map[string][]string, len(lines))
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		caps[strings.ToUpper(f[0])] = f[1:]
	}
	return caps, nil
}

// StartTLS issues STLS (RFC 2595 §4) and performs the TLS handshake. cfg
// must name the server (ServerName) so its certificate can be verified.
// Capabilities must be asked again afterwards (RFC 2595 §4).
func (c *Client) StartTLS(ctx context.Context, cfg *tls.Config) error {
	if cfg == nil {
		return errors.New("pop3: STLS: no TLS configuration")
	}
	end, err := c.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	if _, ok := c.conn.(*tls.Conn); ok {
		return errors.New("pop3: STLS: TLS already active")
	}
	if _, err := c.simpleLocked(ctx, "STLS"); err != nil {
		return err
	}
	// Bytes the server sent after its +OK arrived in plaintext and could
	// have been injected by an attacker on the path; refuse them.
	if c.br.Buffered() > 0 {
		return c.fail(ctx, "STLS", errors.New("server sent data before TLS handshake"))
	}
	tc := tls.Client(c.conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return c.fail(ctx, "STLS", fmt.Errorf("TLS handshake: %w", err))
	}
	c.conn = tc
	c.br = bufio.NewReader(tc)
	c.bw = bufio.NewWriter(tc)
	return nil
}

// Login authenticates with USER and PASS (RFC 1939 §7).
func (c *Client) Login(ctx context.Context, user, pass string) error {
	end, err := c.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	if _, err := c.simpleLocked(ctx, "USER "+user); err != nil {
		return err
	}
	if strings.ContainsAny(pass, "\r\n\x00") {
		return errors.New("pop3: PASS: password contains CR, LF or NUL")
	}
	_, err = c.simpleLocked(ctx, "PASS "+pass)
	return err
}

// APOP authenticates with the APOP command (RFC 1939 §7) using the
// greeting's timestamp. It fails without contacting the server when the
// greeting had none.
func (c *Client) APOP(ctx context.Context, user, pass string) error {
	if c.apopTimestamp == "" {
		return errors.New("pop3: APOP: server greeting has no timestamp")
	}
	sum := md5.Sum([]byte(c.apopTimestamp + pass))
	_, err := c.simple(ctx, "APOP "+user+" "+hex.EncodeToString(sum[:]))
	return err
}

// AuthPlain authenticates with SASL PLAIN (RFC 5034, RFC 4616).
func (c *Client) AuthPlain(ctx context.Context, user, pass string) error {
	if strings.ContainsRune(user, 0) || strings.ContainsRune(pass, 0) {
		return errors.New("pop3: AUTH: user or password contains NUL")
	}
	ir := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
	return c.authenticate(ctx, "PLAIN", ir, nil)
}

// AuthXOAUTH2 authenticates with an OAuth2 bearer token using the XOAUTH2
// mechanism of Office 365 and Gmail.
func (c *Client) AuthXOAUTH2(ctx context.Context, user, token string) error {
	if strings.ContainsAny(user, "\x01") || strings.ContainsAny(token, "\x01") {
		return errors.New("pop3: AUTH: user or token contains ^A")
	}
	ir := base64.StdEncoding.EncodeToString([]byte("user=" + user + "\x01auth=Bearer " + token + "\x01\x01"))
	// On failure the server sends a JSON error as a challenge; the client
	// answers with an empty line and then gets the -ERR.
	var detail string
	onChallenge := func(challenge string) (string, bool) {
		if b, err := base64.StdEncoding.DecodeString(challenge); err == nil {
			var e struct {
				Status string `json:"status"`
			}
			if json.Unmarshal(b, &e) == nil && e.Status != "" {
				detail = "status " + e.Status
			}
		}
		return "", true
	}
	err := c.authenticate(ctx, "XOAUTH2", ir, onChallenge)
	var re *ResponseError
	if detail != "" && errors.As(err, &re) {
		re.Text = strings.TrimSpace(re.Text + " (" + detail + ")")
	}
	return err
}

// authenticate runs one SASL exchange (RFC 5034 §4) for a mechanism that
// sends everything in its initial response. onChallenge answers a further
// server challenge; without it, the exchange is cancelled with "*".
func (c *Client) authenticate(ctx context.Context, mech, initial string, onChallenge func(string) (string, bool)) error {
	end, err := c.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	pending := initial
	if len("AUTH "+mech+" "+initial)+2 <= maxAuthCommandLine {
		err = c.send("AUTH " + mech + " " + initial)
		pending = ""
	} else {
		err = c.send("AUTH " + mech)
	}
	if err != nil {
		return c.fail(ctx, "AUTH", err)
	}
	answered := false
	for {
		st, err := c.readStatus()
		if err != nil {
			return c.fail(ctx, "AUTH", err)
		}
		switch {
		case st.ok:
			return nil
		case !st.cont:
			return &ResponseError{Command: "AUTH", Code: st.code, Text: st.text}
		}
		var reply string
		switch {
		case pending != "":
			reply, pending = pending, ""
		case onChallenge != nil && !answered:
			r, ok := onChallenge(st.text)
			if !ok {
				reply = "*"
			} else {
				reply = r
			}
			answered = true
		default:
			reply = "*" // RFC 5034 §4: cancel an exchange we cannot continue
		}
		if err := c.send(reply); err != nil {
			return c.fail(ctx, "AUTH", err)
		}
	}
}

// Stat issues STAT (RFC 1939 §5).
func (c *Client) Stat(ctx context.Context) (count int, size int64, err error) {
	text, err := c.simple(ctx, "STAT")
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(text)
	if len(f) < 2 {
		return 0, 0, fmt.Errorf("pop3: STAT: malformed answer %q", truncate(text, 64))
	}
	count, err1 := strconv.Atoi(f[0])
	size, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil || count < 0 || size < 0 {
		return 0, 0, fmt.Errorf("pop3: STAT: malformed answer %q", truncate(text, 64))
	}
	return count, size, nil
}

// UIDL lists the unique-ids of all messages (RFC 1939 §7).
func (c *Client) UIDL(ctx context.Context) ([]UIDLEntry, error) {
	var lines []string
	err := c.multi(ctx, "UIDL", func() (err error) {
		lines, err = readDotLines(c.br, clientMaxLine, c.maxListingSize)
		return err
	})
	if err != nil {
		return nil, err
	}
	entries := make([]UIDLEntry, 0, len(lines))
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) != 2 {
			return nil, fmt.Errorf("pop3: UIDL: malformed line %q", truncate(l, 64))
		}
		n, err := strconv.Atoi(f[0])
		// Be lenient about the 70-octet limit, strict about the charset:
		// the UID becomes a key in our fetch state.
		if err != nil || n <= 0 || len(f[1]) > 255 || !validUID(f[1][:min(len(f[1]), 70)]) {
			return nil, fmt.Errorf("pop3: UIDL: malformed line %q", truncate(l, 64))
		}
		entries = append(entries, UIDLEntry{Num: n, UID: f[1]})
	}
	return entries, nil
}

// List lists the sizes of all messages (RFC 1939 §5).
func (c *Client) List(ctx context.Context) ([]ListEntry, error) {
	var lines []string
	err := c.multi(ctx, "LIST", func() (err error) {
		lines, err = readDotLines(c.br, clientMaxLine, c.maxListingSize)
		return err
	})
	if err != nil {
		return nil, err
	}
	entries := make([]ListEntry, 0, len(lines))
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 2 {
			return nil, fmt.Errorf("pop3: LIST: malformed line %q", truncate(l, 64))
		}
		n, err1 := strconv.Atoi(f[0])
		size, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil || n <= 0 || size < 0 {
			return nil, fmt.Errorf("pop3: LIST: malformed line %q", truncate(l, 64))
		}
		entries = append(entries, ListEntry{Num: n, Size: size})
	}
	return entries, nil
}

// Retr retrieves message n (RFC 1939 §5), dot-unstuffed with its line
// endings as sent.
func (c *Client) Retr(ctx context.Context, n int) ([]byte, error) {
	var msg []byte
	err := c.multi(ctx, "RETR "+strconv.Itoa(n), func() (err error) {
		msg, err = readDotBody(c.br, c.maxMessageSize)
		return err
	})
	return msg, err
}

// Top retrieves the header and the first lines body lines of message n
// (RFC 1939 §7).
func (c *Client) Top(ctx context.Context, n, lines int) ([]byte, error) {
	var msg []byte
	err := c.multi(ctx, "TOP "+strconv.Itoa(n)+" "+strconv.Itoa(lines), func() (err error) {
		msg, err = readDotBody(c.br, c.maxMessageSize)
		return err
	})
	return msg, err
}

// Dele marks message n as deleted (RFC 1939 §5); the server removes it only
// when Quit succeeds.
func (c *Client) Dele(ctx context.Context, n int) error {
	_, err := c.simple(ctx, "DELE "+strconv.Itoa(n))
	return err
}

// Noop issues NOOP (RFC 1939 §5).
func (c *Client) Noop(ctx context.Context) error {
	_, err := c.simple(ctx, "NOOP")
	return err
}

// Rset unmarks all messages marked as deleted (RFC 1939 §5).
func (c *Client) Rset(ctx context.Context) error {
	_, err := c.simple(ctx, "RSET")
	return err
}

// Quit issues QUIT, which commits deletions (RFC 1939 §6), and closes the
// connection. An error means the deletions may not have been committed.
func (c *Client) Quit(ctx context.Context) error {
	_, err := c.simple(ctx, "QUIT")
	if cerr := c.conn.Close(); err == nil && cerr != nil && !errors.Is(cerr, net.ErrClosed) {
		err = fmt.Errorf("pop3: closing: %w", cerr)
	}
	return err
}

// Close drops the connection without QUIT, so the server deletes nothing.
func (c *Client) Close() error {
	err := c.conn.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
