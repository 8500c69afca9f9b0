// Package conntest owns the connection test of external account settings
// (IMAP, POP3, SMTP; feature C1): it walks through the steps a real session
// takes — DNS, TCP, TLS, greeting, STARTTLS, login, folder — and reports the
// first one that fails, with a message key the UI shows in German or English
// and a detail that is safe to show: certificate problems and response codes,
// never the server's free text (a hostile server must not be able to put
// words into our UI).
//
// Every connection goes through a netguard.Dialer, so a test cannot be used
// to probe loopback, private or metadata addresses. Tests are rate-limited
// per user.
package conntest

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"postfach/internal/netguard"
)

// Protocol is the account's protocol.
type Protocol string

// Protocols.
const (
	ProtocolIMAP Protocol = "imap"
	ProtocolPOP3 Protocol = "pop3"
	ProtocolSMTP Protocol = "smtp"
)

// Security is the account's transport security (C5).
type Security string

// Security modes.
const (
	SecurityNone     Security = "none"
	SecurityTLS      Security = "tls" // implicit TLS ("SSL/TLS")
	SecuritySTARTTLS Security = "starttls"
)

// Settings are the connection settings under test.
type Settings struct {
	Protocol Protocol
	Host     string
	Port     int
	Security Security
	// AuthEnabled switches SMTP login on (C6). IMAP and POP3 always log in.
	AuthEnabled bool
	Username    string
	Password    string
	// OAuth2Token, when set, is used instead of Password (XOAUTH2).
	OAuth2Token string
	// OAuth2Problem, when set, says why an OAuth2 account has no token to sign
	// in with. The steps up to the login run; the login fails with that
	// reason and sends nothing.
	OAuth2Problem OAuth2Problem
	// Folder is the IMAP folder to open read-only; default INBOX.
	Folder string
}

// OAuth2Problem is why no OAuth2 access token could be had for the test.
type OAuth2Problem string

// OAuth2 problems.
const (
	// OAuth2Reauthorize: the grant is missing, expired or revoked; a user
	// must sign in at the provider again.
	OAuth2Reauthorize OAuth2Problem = "reauthorize"
	// OAuth2TokenUnavailable: the token could not be fetched (the provider
	// did not answer, or the operator has not set up the provider).
	OAuth2TokenUnavailable OAuth2Problem = "token_unavailable"
)

// Step is one stage of a connection test.
type Step string

// Steps, in the order they run.
const (
	StepDNS      Step = "dns"
	StepTCP      Step = "tcp"
	StepTLS      Step = "tls"
	StepGreeting Step = "greeting"
	StepSTARTTLS Step = "starttls"
	StepAuth     Step = "auth"
	StepFolder   Step = "folder"
)

// StepResult is the outcome of one step. Steps that do not apply (TLS on an
// unencrypted connection, login for SMTP without authentication) are not
// listed.
type StepResult struct {
	Step       Step
	OK         bool
	MessageKey string // set when the step failed
	Detail     string // safe detail: addresses, certificate problem, response code
	Elapsed    time.Duration
}

// Result is the outcome of a connection test.
type Result struct {
	OK         bool
	Steps      []StepResult
	FailedStep Step   // empty when OK, or when the test did not start
	MessageKey string // KeyOK, or the failure's key
	Detail     string
	// Warnings are message keys for things that worked but should not
	// (a password sent without encryption).
	Warnings []string
}

// DefaultTimeout bounds a whole test when Tester.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// Tester runs connection tests. Dialer must be set; the other fields have
// defaults.
type Tester struct {
	Dialer  *netguard.Dialer
	RootCAs *x509.CertPool // nil: the system roots
	Timeout time.Duration  // whole test; 0: DefaultTimeout
	// Limiter limits tests per user key; nil means no limit, so production
	// wiring must set one (NewLimiter(10, time.Minute, nil)).
	Limiter *Limiter
	// HeloName is the name given in SMTP EHLO; default "localhost".
	HeloName string
	// Now is the clock for certificate validity messages; default time.Now.
	Now func() time.Time
}

// Test runs the connection test for settings s on behalf of userKey (the
// rate-limit key). It never returns an error: every failure is a Result.
func (t *Tester) Test(ctx context.Context, userKey string, s Settings) Result {
	if err := s.validate(); err != nil {
		return Result{MessageKey: KeyInvalid, Detail: err.Error()}
	}
	if t.Limiter != nil {
		if ok, wait := t.Limiter.Allow(userKey); !ok {
			return Result{MessageKey: KeyRateLimited, Detail: fmt.Sprintf("retry in %ds", int(wait.Round(time.Second)/time.Second)+1)}
		}
	}
	timeout := t.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r := &run{tester: t, settings: s, ctx: ctx}
	r.execute()
	return r.result
}

func (s Settings) validate() error {
	switch s.Protocol {
	case ProtocolIMAP, ProtocolPOP3, ProtocolSMTP:
	default:
		return fmt.Errorf("unknown protocol %q", s.Protocol)
	}
	switch s.Security {
	case SecurityNone, SecurityTLS, SecuritySTARTTLS:
	default:
		return fmt.Errorf("unknown security %q", s.Security)
	}
	if s.Port < 1 || s.Port > 65535 {
		return fmt.Errorf("port %d out of range", s.Port)
	}
	if strings.TrimSpace(s.Host) == "" {
		return fmt.Errorf("host missing")
	}
	switch s.OAuth2Problem {
	case "", OAuth2Reauthorize, OAuth2TokenUnavailable:
	default:
		return fmt.Errorf("unknown OAuth2 problem %q", s.OAuth2Problem)
	}
	for _, v := range []string{s.Username, s.Password, s.OAuth2Token, s.Folder} {
		// Credentials travel inside protocol lines and SASL messages where
		// these bytes are separators.
		if strings.ContainsAny(v, "\r\n\x00\x01") {
			return fmt.Errorf("control characters in credentials or folder")
		}
	}
	return nil
}

// run is the state of one test.
type run struct {
	tester   *Tester
	settings Settings
	ctx      context.Context
	host     string // normalised host, for TLS server name
	result   Result
	started  time.Time
	tls      bool // the connection is encrypted now
}

func (r *run) now() time.Time {
	if r.tester.Now != nil {
		return r.tester.Now()
	}
	return time.Now()
}

func (r *run) begin() { r.started = time.Now() }

func (r *run) pass(step Step, detail string) {
	r.result.Steps = append(r.result.Steps, StepResult{Step: step, OK: true, Detail: detail, Elapsed: time.Since(r.started)})
	r.begin()
}

func (r *run) fail(step Step, o outcome) {
	r.result.Steps = append(r.result.Steps, StepResult{Step: step, MessageKey: o.key, Detail: o.detail, Elapsed: time.Since(r.started)})
	r.result.FailedStep = step
	r.result.MessageKey = o.key
	r.result.Detail = o.detail
}

// failIO records a failure of step caused by err: a TLS problem, our
// deadline, or the peer going away.
func (r *run) failIO(step Step, err error) {
	if o, ok := classifyTLS(err, r.now()); ok {
		r.fail(step, o)
		return
	}
	r.fail(step, classifyIO(r.ctx, err))
}

func (r *run) execute() {
	s := r.settings
	dialer := r.tester.Dialer
	if dialer == nil {
		dialer = &netguard.Dialer{}
	}

	r.begin()
	addrs, err := dialer.Resolve(r.ctx, "tcp", s.Host)
	if err != nil {
		r.fail(StepDNS, classifyDNS(err))
		return
	}
	r.host, _ = netguard.NormalizeHost(s.Host)
	r.host = strings.TrimSuffix(r.host, ".")
	r.pass(StepDNS, joinAddrs(addrs))

	conn, err := dialer.DialAddrs(r.ctx, "tcp", addrs, uint16(s.Port))
	if err != nil {
		r.fail(StepTCP, classifyTCP(err))
		return
	}
	defer conn.Close()
	// Our deadline ends every blocking read or write below, whichever
	// client library is doing it.
	stop := context.AfterFunc(r.ctx, func() { conn.Close() })
	defer stop()
	r.pass(StepTCP, conn.RemoteAddr().String())

	var c net.Conn = conn
	if s.Security == SecurityTLS {
		tc := tls.Client(conn, r.tlsConfig())
		if err := tc.HandshakeContext(r.ctx); err != nil {
			r.failIO(StepTLS, err)
			return
		}
		r.tls = true
		r.pass(StepTLS, tlsDetail(tc.ConnectionState()))
		c = tc
	}

	br := bufio.NewReader(c)
	g, err := readGreeting(br, s.Protocol)
	if err != nil {
		r.failIO(StepGreeting, err)
		return
	}
	switch g.verdict {
	case greetingRejected:
		r.fail(StepGreeting, outcome{key: KeyGreetingRejected})
		return
	case greetingForeign:
		r.fail(StepGreeting, outcome{key: KeyGreetingWrongProtocol, detail: "the server greets like " + article(g.family) + " server"})
		return
	case greetingGarbage:
		r.fail(StepGreeting, outcome{key: KeyGreetingUnexpected})
		return
	}

	// The client libraries read the greeting again from the replayed
	// bytes; should one of them still choke on it, that shows up as a
	// protocol error of the step it was starting.
	switch s.Protocol {
	case ProtocolIMAP:
		r.pass(StepGreeting, "")
		r.imap(newReplayConn(c, g.raw, br), g)
	case ProtocolPOP3:
		r.pass(StepGreeting, "")
		r.pop3(newReplayConn(c, g.raw, br))
	case ProtocolSMTP:
		r.smtp(c, br, g.raw)
	}
	if r.result.FailedStep == "" {
		r.result.OK = true
		r.result.MessageKey = KeyOK
	}
}

func (r *run) tlsConfig() *tls.Config {
	return &tls.Config{
		ServerName: r.host,
		RootCAs:    r.tester.RootCAs,
		MinVersion: tls.VersionTLS12,
		Time:       r.tester.Now,
	}
}

// credentialsSent notes that a secret went over the wire, for the
// plaintext warning.
func (r *run) credentialsSent() {
	if !r.tls {
		r.result.Warnings = append(r.result.Warnings, KeyWarnPlaintext)
	}
}

func (r *run) requireCredentials() bool {
	s := r.settings
	switch s.OAuth2Problem {
	case OAuth2Reauthorize:
		r.fail(StepAuth, outcome{key: KeyAuthReauthorize})
		return false
	case OAuth2TokenUnavailable:
		r.fail(StepAuth, outcome{key: KeyAuthTokenUnavailable})
		return false
	}
	if s.OAuth2Token == "" && (s.Username == "" || s.Password == "") {
		r.fail(StepAuth, outcome{key: KeyAuthMissing})
		return false
	}
	return true
}

func joinAddrs(addrs []netip.Addr) string {
	parts := make([]string, len(addrs))
	for i, a := range addrs {
		parts[i] = a.String()
	}
	return strings.Join(parts, ", ")
}

func tlsDetail(cs tls.ConnectionState) string {
	return tls.VersionName(cs.Version) + ", " + tls.CipherSuiteName(cs.CipherSuite)
}

func article(family string) string {
	switch family {
	case "IMAP", "SMTP", "SSH", "HTTP", "FTP":
		return "an " + family
	}
	return "a " + family
}
