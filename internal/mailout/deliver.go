// Package mailout owns outbound mail: composing RFC 5322 messages, DKIM
// signing, SMTP delivery through a route (smarthost or a mailbox's own
// server) or directly to the recipient domain's MX hosts, classifying every
// answer per recipient, delivery status notifications (RFC 3464) and the
// retry schedule.
//
// Nothing in this package touches the database. The durable queue calls
// Deliverer with a message that was committed before, logs the transcript of
// every attempt, and uses Schedule to decide the next attempt. A delivery
// can end three ways per recipient: accepted (2xx), temporary failure (4xx,
// network trouble, timeouts: retry), permanent failure (5xx: bounce). A
// connection lost after the final "." is a temporary failure flagged
// MaybeDelivered: the server may have taken the message, so a retry can
// duplicate it; the Message-ID fixed at enqueue lets recipients discard
// the copy.
package mailout

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
)

// Envelope is the SMTP envelope of one delivery. From may be empty: the
// null reverse-path of bounces (RFC 5321 §4.5.5).
type Envelope struct {
	From string
	To   []string
}

// Result is the outcome for one recipient.
type Result struct {
	Recipient string
	// Code is the server's reply code; 0 when no server answered (network
	// trouble, or a failure decided locally).
	Code int
	// Enhanced is the RFC 3463 status code "c.s.d", from the server when it
	// sent one, else derived.
	Enhanced string
	// Text is the server's reply text.
	Text string
	// Temporary failures are retried; permanent ones bounce.
	Temporary bool
	// MaybeDelivered marks a failure after the message was completely sent:
	// the server may have accepted it.
	MaybeDelivered bool
	// Err is nil when the recipient was accepted.
	Err error
}

// Delivered reports whether the server accepted the message for this
// recipient.
func (r Result) Delivered() bool { return r.Err == nil }

// Attempt is everything one delivery attempt learned, for the queue's log.
type Attempt struct {
	// Host is the host name that answered last ("" if none answered).
	Host string
	// TLS is the negotiated TLS version ("" for cleartext).
	TLS string
	// Results has one entry per envelope recipient, in envelope order.
	Results []Result
	// Transcript is the SMTP conversation, credentials and body elided.
	Transcript []string
}

// Failed reports whether any recipient was not delivered.
func (a *Attempt) Failed() bool {
	for _, r := range a.Results {
		if r.Err != nil {
			return true
		}
	}
	return false
}

// PermanentError is a failure decided locally that retrying cannot fix,
// such as a domain that publishes a null MX.
type PermanentError struct {
	Enhanced string // RFC 3463 status code
	Reason   string
}

func (e *PermanentError) Error() string { return "mailout: " + e.Reason }

// Timeouts bound each phase of a session. Zero values take the defaults of
// RFC 5321 §4.5.3.2 (shortened for connecting, which a queue retries anyway).
type Timeouts struct {
	Connect time.Duration // TCP connect and TLS handshake; default 30s
	Command time.Duration // each command's reply; default 5m
	Data    time.Duration // sending the body and waiting for the final reply; default 10m
}

func (t Timeouts) withDefaults() Timeouts {
	if t.Connect <= 0 {
		t.Connect = 30 * time.Second
	}
	if t.Command <= 0 {
		t.Command = 5 * time.Minute
	}
	if t.Data <= 0 {
		t.Data = 10 * time.Minute
	}
	return t
}

// Deliverer sends messages. The zero value is usable for routes; DeliverMX
// needs a Resolver. A Deliverer is safe for concurrent use.
type Deliverer struct {
	// Dial opens TCP connections. Inject the guarded dialer that refuses
	// private addresses for user-supplied hosts; nil uses net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Resolver looks up MX and address records for DeliverMX.
	Resolver MXResolver
	Timeouts Timeouts
	// HeloName is our host name in EHLO when the route has none.
	HeloName string
	// MXPort is the port for direct delivery; 0 means 25. Tests override it.
	MXPort int
	Logger *slog.Logger
}

func (d *Deliverer) dial(ctx context.Context, addr string) (net.Conn, error) {
	if d.Dial != nil {
		return d.Dial(ctx, "tcp", addr)
	}
	var nd net.Dialer
	return nd.DialContext(ctx, "tcp", addr)
}

func (d *Deliverer) logger() *slog.Logger {
	if d.Logger != nil {
		return d.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// validateEnvelope refuses envelopes that would corrupt the SMTP dialogue.
func validateEnvelope(env Envelope) error {
	if len(env.To) == 0 {
		return errors.New("mailout: envelope has no recipients")
	}
	if err := checkEnvelopeAddress(env.From, true); err != nil {
		return fmt.Errorf("mailout: envelope sender: %w", err)
	}
	for _, rcpt := range env.To {
		if err := checkEnvelopeAddress(rcpt, false); err != nil {
			return fmt.Errorf("mailout: envelope recipient: %w", err)
		}
	}
	return nil
}

func checkEnvelopeAddress(addr string, emptyOK bool) error {
	if addr == "" {
		if emptyOK {
			return nil
		}
		return errors.New("empty address")
	}
	if strings.ContainsAny(addr, "\r\n\x00<> \t") {
		return fmt.Errorf("address %q contains characters not allowed in a path", addr)
	}
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 {
		return fmt.Errorf("address %q has no local part or domain", addr)
	}
	return nil
}

// Deliver sends msg to every envelope recipient through the route, on a
// connection of its own. The returned error is non-nil with a nil Attempt
// only for caller mistakes (bad envelope or route), when nothing was sent.
// Otherwise the Attempt holds one Result per recipient, and the error
// repeats a failure that hit the whole transaction (connect, TLS, login,
// MAIL, DATA) for the log.
func (d *Deliverer) Deliver(ctx context.Context, r Route, env Envelope, msg []byte) (*Attempt, error) {
	if err := validateEnvelope(env); err != nil {
		return nil, err
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	s, err := d.Open(ctx, r)
	if err != nil {
		return openFailure(r.Host, env, err), err
	}
	defer s.Close()
	return s.Send(ctx, env, msg)
}

// openFailure turns a failed Open into an Attempt with one result per
// recipient.
func openFailure(host string, env Envelope, err error) *Attempt {
	a := &Attempt{Host: host}
	var oe *OpenError
	if errors.As(err, &oe) {
		a.Transcript = oe.Transcript
	}
	for _, rcpt := range env.To {
		a.Results = append(a.Results, failure(rcpt, err, false))
	}
	return a
}

// failure classifies err for one recipient: a 5xx reply or a local
// PermanentError is permanent, everything else (4xx, network, timeouts,
// TLS trouble) temporary.
func failure(rcpt string, err error, maybeDelivered bool) Result {
	res := Result{Recipient: rcpt, Temporary: true, MaybeDelivered: maybeDelivered, Err: err}
	var se *smtp.SMTPError
	var pe *PermanentError
	switch {
	case errors.As(err, &se):
		res.Code = se.Code
		res.Text = se.Message
		res.Enhanced = formatEnhanced(se.EnhancedCode)
		res.Temporary = se.Code/100 != 5
		if res.Enhanced == "" {
			res.Enhanced = fmt.Sprintf("%d.0.0", min(max(se.Code/100, 4), 5))
		}
	case errors.As(err, &pe):
		res.Enhanced = pe.Enhanced
		res.Text = pe.Reason
		res.Temporary = false
	default:
		res.Enhanced = "4.4.1" // no answer from host (RFC 3463 §3.5)
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			res.Enhanced = "4.4.2" // bad connection
		}
		res.Text = err.Error()
	}
	return res
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func formatEnhanced(c smtp.EnhancedCode) string {
	if c[0] < 2 || c[0] > 5 {
		return ""
	}
	return fmt.Sprintf("%d.%d.%d", c[0], c[1], c[2])
}

// parseReplyText splits "2.0.0 Ok: queued" into its enhanced code and text.
func parseReplyText(s string) (enhanced, text string) {
	code, rest, ok := strings.Cut(s, " ")
	if !ok {
		return "", s
	}
	parts := strings.Split(code, ".")
	if len(parts) != 3 {
		return "", s
	}
	for _, p := range parts {
		if _, err := strconv.Atoi(p); err != nil {
			return "", s
		}
	}
	return code, rest
}

// OpenError is a failure before any mail transaction: connect, greeting,
// EHLO, TLS or login. DeliverMX moves on to the next MX host after one.
type OpenError struct {
	Host       string
	Stage      string // "connect", "greeting", "tls", "auth"
	Transcript []string
	Err        error
}

func (e *OpenError) Error() string {
	return fmt.Sprintf("mailout: %s %s: %v", e.Host, e.Stage, e.Err)
}

func (e *OpenError) Unwrap() error { return e.Err }

// Session is one SMTP connection that can carry several messages in turn
// (RFC 5321 §3.3 allows any number of transactions per session); reusing it
// saves the connect, TLS and login round trips. A Session is not safe for
// concurrent use.
type Session struct {
	d         *Deliverer
	host      string
	raw       net.Conn // the TCP connection, closed to abort
	conn      net.Conn // the outermost connection (TLS or TCP)
	client    *smtp.Client
	tr        *transcript
	tlsVer    string
	timeouts  Timeouts
	needReset bool
	broken    error
}

// Open connects, negotiates TLS and logs in as the route says.
func (d *Deliverer) Open(ctx context.Context, r Route) (*Session, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	s, err := d.open(ctx, r)
	if err != nil && r.Security == SecurityOpportunistic {
		var oe *OpenError
		if errors.As(err, &oe) && oe.Stage == "tls" {
			// RFC 7435 §6: a failed opportunistic handshake falls back to
			// cleartext rather than failing the delivery.
			d.logger().Info("mailout: STARTTLS failed, retrying in cleartext", "host", r.Host, "err", oe.Err)
			plain := r
			plain.Security = SecurityNone
			s, err2 := d.open(ctx, plain)
			if err2 != nil {
				return nil, err2
			}
			s.tr.lines = append(oe.Transcript, s.tr.lines...)
			return s, nil
		}
	}
	return s, err
}

func (d *Deliverer) open(ctx context.Context, r Route) (*Session, error) {
	t := d.Timeouts.withDefaults()
	host := strings.TrimSuffix(r.Host, ".")
	helo := r.HeloName
	if helo == "" {
		helo = d.HeloName
	}
	if helo == "" {
		helo = "localhost"
	}
	tr := &transcript{}
	fail := func(stage string, err error) error {
		return &OpenError{Host: host, Stage: stage, Transcript: tr.take(), Err: err}
	}

	dctx, cancel := context.WithTimeout(ctx, t.Connect)
	conn, err := d.dial(dctx, net.JoinHostPort(host, strconv.Itoa(r.Port)))
	cancel()
	if err != nil {
		return nil, fail("connect", err)
	}
	// Closing the connection is the only way to interrupt go-smtp, which
	// sets its own deadlines per command.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	s := &Session{d: d, host: host, raw: conn, conn: conn, tr: tr, timeouts: t}
	var smtpConn net.Conn = conn
	switch r.Security {
	case SecurityTLS:
		tc := tls.Client(conn, r.tlsConfig())
		hctx, cancel := context.WithTimeout(ctx, t.Connect)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			conn.Close()
			return nil, fail("tls", ctxErr(ctx, err))
		}
		smtpConn, s.conn = tc, tc
		s.tlsVer = tls.VersionName(tc.ConnectionState().Version)
	case SecurityStartTLS, SecurityOpportunistic:
		upgraded, tc, stage, err := startTLSPreamble(ctx, conn, r, helo, tr, t)
		if err != nil {
			conn.Close()
			return nil, fail(stage, ctxErr(ctx, err))
		}
		smtpConn = upgraded
		if tc != nil {
			s.conn = tc
			s.tlsVer = tls.VersionName(tc.ConnectionState().Version)
		}
	}

	c := smtp.NewClient(smtpConn)
	c.CommandTimeout = t.Command
	c.SubmissionTimeout = t.Data
	c.DebugWriter = tr
	s.client = c
	if err := c.Hello(helo); err != nil {
		c.Close()
		return nil, fail("greeting", ctxErr(ctx, err))
	}
	if r.Auth != AuthNone {
		if ok, _ := c.Extension("AUTH"); !ok {
			c.Close()
			return nil, fail("auth", errors.New("server offers no AUTH"))
		}
		if err := c.Auth(r.saslClient()); err != nil {
			c.Close()
			return nil, fail("auth", ctxErr(ctx, err))
		}
	}
	return s, nil
}

// startTLSPreamble speaks greeting, EHLO and STARTTLS itself, because
// go-smtp's client cannot send our EHLO name before STARTTLS. It returns a
// connection that replays a greeting so go-smtp can take over (and send
// EHLO again, as RFC 3207 §4.2 requires after TLS). In opportunistic mode a
// server without STARTTLS is used in cleartext.
func startTLSPreamble(ctx context.Context, conn net.Conn, r Route, helo string, tr *transcript, t Timeouts) (net.Conn, *tls.Conn, string, error) {
	conn.SetDeadline(time.Now().Add(t.Command))
	defer conn.SetDeadline(time.Time{})
	text := textproto.NewConn(struct {
		io.Reader
		io.Writer
		io.Closer
	}{io.TeeReader(conn, tr), io.MultiWriter(conn, tr), conn})

	if _, _, err := readReply(text, 220); err != nil {
		return nil, nil, "greeting", err
	}
	if err := text.PrintfLine("EHLO %s", helo); err != nil {
		return nil, nil, "greeting", err
	}
	_, ehlo, err := readReply(text, 250)
	offered := false
	if err == nil {
		for _, line := range strings.Split(ehlo, "\n")[1:] {
			if strings.EqualFold(strings.TrimSpace(line), "STARTTLS") {
				offered = true
			}
		}
	}
	plain := &greetingConn{Conn: conn, greeting: []byte(syntheticGreeting + "\r\n")}
	if !offered {
		if r.Security == SecurityOpportunistic {
			if err != nil && isConnError(err) {
				return nil, nil, "greeting", err
			}
			return plain, nil, "", nil
		}
		if err != nil {
			return nil, nil, "greeting", err
		}
		return nil, nil, "tls", errors.New("server does not offer STARTTLS")
	}
	if err := text.PrintfLine("STARTTLS"); err != nil {
		return nil, nil, "tls", err
	}
	if _, _, err := readReply(text, 220); err != nil {
		if r.Security == SecurityOpportunistic && !isConnError(err) {
			return plain, nil, "", nil
		}
		return nil, nil, "tls", err
	}
	tc := tls.Client(conn, r.tlsConfig())
	hctx, cancel := context.WithTimeout(ctx, t.Connect)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		return nil, nil, "tls", err
	}
	return &greetingConn{Conn: tc, greeting: []byte(syntheticGreeting + "\r\n")}, tc, "", nil
}

// readReply reads one reply and converts a textproto error into the
// *smtp.SMTPError the rest of the package classifies.
func readReply(text *textproto.Conn, expect int) (int, string, error) {
	code, msg, err := text.ReadResponse(expect)
	var te *textproto.Error
	if errors.As(err, &te) {
		se := &smtp.SMTPError{Code: te.Code, Message: te.Msg}
		if enh, rest := parseReplyText(te.Msg); enh != "" {
			parts := strings.Split(enh, ".")
			for i, p := range parts {
				se.EnhancedCode[i], _ = strconv.Atoi(p)
			}
			se.Message = rest
		}
		return code, msg, se
	}
	return code, msg, err
}

func isConnError(err error) bool {
	var se *smtp.SMTPError
	return !errors.As(err, &se)
}

// greetingConn replays a greeting before the connection's own bytes.
type greetingConn struct {
	net.Conn
	greeting []byte
}

func (g *greetingConn) Read(p []byte) (int, error) {
	if len(g.greeting) > 0 {
		n := copy(p, g.greeting)
		g.greeting = g.greeting[n:]
		return n, nil
	}
	return g.Conn.Read(p)
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

// Send runs one mail transaction on the session. The Attempt has one Result
// per recipient; the error repeats a failure of the whole transaction.
// After a network failure the session is unusable and Send fails fast.
func (s *Session) Send(ctx context.Context, env Envelope, msg []byte) (*Attempt, error) {
	if err := validateEnvelope(env); err != nil {
		return nil, err
	}
	a := &Attempt{Host: s.host, TLS: s.tlsVer, Results: make([]Result, len(env.To))}
	for i, rcpt := range env.To {
		a.Results[i].Recipient = rcpt
	}
	err := s.send(ctx, env, msg, a)
	a.Transcript = s.tr.take()
	if err != nil {
		s.d.logger().Debug("mailout: transaction failed", "host", s.host, "err", err)
	}
	return a, err
}

func (s *Session) send(ctx context.Context, env Envelope, msg []byte, a *Attempt) error {
	failAll := func(from int, err error, maybe bool) error {
		for i := from; i < len(a.Results); i++ {
			a.Results[i] = failure(a.Results[i].Recipient, err, maybe)
		}
		return err
	}
	if s.broken != nil {
		return failAll(0, fmt.Errorf("mailout: session unusable: %w", s.broken), false)
	}
	stop := context.AfterFunc(ctx, func() { s.raw.Close() })
	defer stop()
	netFail := func(from int, err error, maybe bool) error {
		err = ctxErr(ctx, err)
		s.broken = err
		return failAll(from, err, maybe)
	}

	c := s.client
	if s.needReset {
		if err := c.Reset(); err != nil {
			return netFail(0, err, false)
		}
	}
	s.needReset = true

	opts := &smtp.MailOptions{Size: int64(len(msg))}
	if !isASCII(env.From) || !allASCII(env.To) {
		// RFC 6531 §3.4: without SMTPUTF8 there is no way to send these
		// addresses; retrying cannot help.
		if ok, _ := c.Extension("SMTPUTF8"); !ok {
			return failAll(0, &PermanentError{Enhanced: "5.6.7", Reason: "non-ASCII address and the server does not offer SMTPUTF8"}, false)
		}
		opts.UTF8 = true
	}
	if limit, ok := c.MaxMessageSize(); ok && limit > 0 && len(msg) > limit {
		return failAll(0, &PermanentError{Enhanced: "5.3.4", Reason: fmt.Sprintf("message of %d bytes exceeds the server's limit of %d (RFC 1870)", len(msg), limit)}, false)
	}
	if err := c.Mail(env.From, opts); err != nil {
		if isConnError(err) {
			return netFail(0, err, false)
		}
		return failAll(0, err, false)
	}

	accepted := make([]int, 0, len(env.To))
	for i, rcpt := range env.To {
		if err := c.Rcpt(rcpt, nil); err != nil {
			if isConnError(err) {
				return netFail(i, err, false)
			}
			a.Results[i] = failure(rcpt, err, false)
			continue
		}
		accepted = append(accepted, i)
	}
	if len(accepted) == 0 {
		return nil // every recipient has its own answer; RSET before the next MAIL
	}
	failAccepted := func(err error, maybe bool) error {
		for _, i := range accepted {
			a.Results[i] = failure(a.Results[i].Recipient, err, maybe)
		}
		if isConnError(err) {
			s.broken = err
		}
		return err
	}

	w, err := c.Data()
	if err != nil {
		return failAccepted(ctxErr(ctx, err), false)
	}
	// go-smtp sets no deadline while the body is written; bound it here.
	dctx, cancel := context.WithTimeout(ctx, s.timeouts.Data)
	defer cancel()
	stopData := context.AfterFunc(dctx, func() { s.raw.Close() })
	defer stopData()
	if _, err := w.Write(msg); err != nil {
		return failAccepted(ctxErr(dctx, err), false)
	}
	if len(msg) > 0 && !bytes.HasSuffix(msg, []byte("\n")) {
		if _, err := w.Write([]byte("\r\n")); err != nil {
			return failAccepted(ctxErr(dctx, err), false)
		}
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		// A reply is a definite answer. Anything else happened after (or
		// while) the final "." went out: the server may have the message.
		if !isConnError(err) {
			s.needReset = false
			return failAccepted(err, false)
		}
		return failAccepted(ctxErr(dctx, err), true)
	}
	s.needReset = false
	enhanced, text := parseReplyText(resp.StatusText)
	if enhanced == "" {
		enhanced = "2.0.0"
	}
	for _, i := range accepted {
		a.Results[i] = Result{Recipient: a.Results[i].Recipient, Code: 250, Enhanced: enhanced, Text: text}
	}
	return nil
}

// Close ends the session politely (QUIT) when it is still healthy.
func (s *Session) Close() error {
	if s.broken == nil {
		s.conn.SetDeadline(time.Now().Add(10 * time.Second))
		if err := s.client.Quit(); err == nil {
			return nil
		}
	}
	return s.client.Close()
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func allASCII(ss []string) bool {
	for _, s := range ss {
		if !isASCII(s) {
			return false
		}
	}
	return true
}
