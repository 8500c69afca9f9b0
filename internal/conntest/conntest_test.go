package conntest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/foxcpp/go-mockdns"
)

type expect struct {
	ok         bool
	failedStep Step
	key        string
	steps      []Step // executed steps in order, when checked
	detail     string // substring of Result.Detail, when checked
}

func check(t *testing.T, name string, got Result, want expect) {
	t.Helper()
	t.Logf("%s: %+v", name, got)
	if got.OK != want.ok || got.FailedStep != want.failedStep || (want.key != "" && got.MessageKey != want.key) {
		t.Errorf("%s: got OK=%v failed=%q key=%q detail=%q steps=%+v; want OK=%v failed=%q key=%q",
			name, got.OK, got.FailedStep, got.MessageKey, got.Detail, got.Steps, want.ok, want.failedStep, want.key)
		return
	}
	if want.steps != nil {
		var steps []Step
		for _, s := range got.Steps {
			steps = append(steps, s.Step)
		}
		if !slices.Equal(steps, want.steps) {
			t.Errorf("%s: steps %v, want %v", name, steps, want.steps)
		}
	}
	if want.detail != "" && !strings.Contains(got.Detail, want.detail) {
		t.Errorf("%s: detail %q does not contain %q", name, got.Detail, want.detail)
	}
	for i, s := range got.Steps {
		if last := i == len(got.Steps)-1; s.OK == (last && !got.OK) {
			t.Errorf("%s: step %d (%s) OK=%v inconsistent with result", name, i, s.Step, s.OK)
		}
	}
}

var (
	stepsIMAPPlain    = []Step{StepDNS, StepTCP, StepGreeting, StepAuth, StepFolder}
	stepsIMAPTLS      = []Step{StepDNS, StepTCP, StepTLS, StepGreeting, StepAuth, StepFolder}
	stepsIMAPSTARTTLS = []Step{StepDNS, StepTCP, StepGreeting, StepSTARTTLS, StepAuth, StepFolder}
)

func TestIMAP(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "Test CA")
	otherCA := newTestCA(t, "Other CA")
	good := ca.serverTLS(t, "127.0.0.1", "mail.test")
	plainPort := startIMAP(t, good, false)
	tlsPort := startIMAP(t, good, true)
	expiredPort := startIMAP(t, ca.expiredTLS(t, "127.0.0.1"), true)
	wrongNamePort := startIMAP(t, ca.serverTLS(t, "mail.other.example"), true)
	noTLSPort := startIMAP(t, nil, false)
	smtpPort := startSMTP(t, good, false, false)

	resolver := newMockDNS(t, map[string]mockdns.Zone{"mail.test.": {A: []string{"127.0.0.1"}}})
	tester := loopbackTester(ca, resolver)
	untrusting := loopbackTester(otherCA, resolver)
	imap := func(host string, port int, sec Security, pass, folder string) Settings {
		return Settings{Protocol: ProtocolIMAP, Host: host, Port: port, Security: sec, Username: "alice", Password: pass, Folder: folder}
	}
	tests := []struct {
		name   string
		tester *Tester
		s      Settings
		want   expect
	}{
		{"plain ok", tester, imap("127.0.0.1", plainPort, SecurityNone, "secret", ""), expect{ok: true, key: KeyOK, steps: stepsIMAPPlain}},
		{"implicit tls ok", tester, imap("127.0.0.1", tlsPort, SecurityTLS, "secret", ""), expect{ok: true, key: KeyOK, steps: stepsIMAPTLS}},
		{"implicit tls by name", tester, imap("mail.test", tlsPort, SecurityTLS, "secret", "INBOX"), expect{ok: true, steps: stepsIMAPTLS}},
		{"starttls ok", tester, imap("127.0.0.1", plainPort, SecuritySTARTTLS, "secret", ""), expect{ok: true, steps: stepsIMAPSTARTTLS}},
		{"wrong password", tester, imap("127.0.0.1", tlsPort, SecurityTLS, "wrong", ""), expect{failedStep: StepAuth, key: KeyAuthFailed, detail: "IMAP NO"}},
		{"missing folder", tester, imap("127.0.0.1", tlsPort, SecurityTLS, "secret", "Archiv/2019"), expect{failedStep: StepFolder, key: KeyFolderNotFound}},
		{"missing password", tester, imap("127.0.0.1", tlsPort, SecurityTLS, "", ""), expect{failedStep: StepAuth, key: KeyAuthMissing}},
		{"wrong CA", untrusting, imap("127.0.0.1", tlsPort, SecurityTLS, "secret", ""), expect{failedStep: StepTLS, key: KeyTLSUnknownAuthority, detail: "unknown authority"}},
		{"wrong CA starttls", untrusting, imap("127.0.0.1", plainPort, SecuritySTARTTLS, "secret", ""), expect{failedStep: StepSTARTTLS, key: KeyTLSUnknownAuthority}},
		{"expired", tester, imap("127.0.0.1", expiredPort, SecurityTLS, "secret", ""), expect{failedStep: StepTLS, key: KeyTLSExpired, detail: "expired"}},
		{"name mismatch", tester, imap("127.0.0.1", wrongNamePort, SecurityTLS, "secret", ""), expect{failedStep: StepTLS, key: KeyTLSNameMismatch, detail: "mail.other.example"}},
		{"tls on plaintext port", tester, imap("127.0.0.1", plainPort, SecurityTLS, "secret", ""), expect{failedStep: StepTLS, key: KeyTLSNotTLS}},
		{"starttls not offered", tester, imap("127.0.0.1", noTLSPort, SecuritySTARTTLS, "secret", ""), expect{failedStep: StepSTARTTLS, key: KeySTARTTLSUnsupported}},
		{"smtp port", tester, imap("127.0.0.1", smtpPort, SecurityNone, "secret", ""), expect{failedStep: StepGreeting, key: KeyGreetingWrongProtocol, detail: "an SMTP server"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			check(t, tt.name, tt.tester.Test(t.Context(), "u1", tt.s), tt.want)
		})
	}
}

func TestIMAPPlaintextWarning(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "Test CA")
	p := startIMAP(t, ca.serverTLS(t, "127.0.0.1"), false)
	tester := loopbackTester(ca, nil)
	s := Settings{Protocol: ProtocolIMAP, Host: "127.0.0.1", Port: p, Username: "alice", Password: "secret"}
	s.Security = SecurityNone
	if r := tester.Test(t.Context(), "u", s); !slices.Contains(r.Warnings, KeyWarnPlaintext) {
		t.Errorf("plaintext login without warning: %+v", r)
	}
	s.Security = SecuritySTARTTLS
	if r := tester.Test(t.Context(), "u", s); !r.OK || len(r.Warnings) != 0 {
		t.Errorf("STARTTLS login: %+v", r)
	}
}

func TestSMTP(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "Test CA")
	otherCA := newTestCA(t, "Other CA")
	good := ca.serverTLS(t, "127.0.0.1")
	starttlsPort := startSMTP(t, good, false, false)
	implicitPort := startSMTP(t, good, true, false)
	noTLSPort := startSMTP(t, nil, false, true)
	expiredPort := startSMTP(t, ca.expiredTLS(t, "127.0.0.1"), false, false)
	imapPort := startIMAP(t, good, false)
	tester := loopbackTester(ca, nil)
	untrusting := loopbackTester(otherCA, nil)
	smtpSettings := func(port int, sec Security, auth bool, pass string) Settings {
		return Settings{Protocol: ProtocolSMTP, Host: "127.0.0.1", Port: port, Security: sec, AuthEnabled: auth, Username: "alice", Password: pass}
	}
	oauth := func(port int, token string) Settings {
		s := smtpSettings(port, SecuritySTARTTLS, true, "")
		s.OAuth2Token = token
		return s
	}
	tests := []struct {
		name   string
		tester *Tester
		s      Settings
		want   expect
	}{
		{"greeting only", tester, smtpSettings(starttlsPort, SecurityNone, false, ""), expect{ok: true, steps: []Step{StepDNS, StepTCP, StepGreeting}}},
		{"starttls auth", tester, smtpSettings(starttlsPort, SecuritySTARTTLS, true, "secret"), expect{ok: true, steps: []Step{StepDNS, StepTCP, StepGreeting, StepSTARTTLS, StepAuth}}},
		{"starttls without auth", tester, smtpSettings(starttlsPort, SecuritySTARTTLS, false, ""), expect{ok: true, steps: []Step{StepDNS, StepTCP, StepGreeting, StepSTARTTLS}}},
		{"implicit tls auth", tester, smtpSettings(implicitPort, SecurityTLS, true, "secret"), expect{ok: true, steps: []Step{StepDNS, StepTCP, StepTLS, StepGreeting, StepAuth}}},
		{"wrong password", tester, smtpSettings(starttlsPort, SecuritySTARTTLS, true, "wrong"), expect{failedStep: StepAuth, key: KeyAuthFailed, detail: "SMTP 535 5.7.8"}},
		{"plaintext auth ok", tester, smtpSettings(noTLSPort, SecurityNone, true, "secret"), expect{ok: true}},
		{"no auth before tls", tester, smtpSettings(starttlsPort, SecurityNone, true, "secret"), expect{failedStep: StepAuth, key: KeyAuthUnsupported}},
		{"starttls not offered", tester, smtpSettings(noTLSPort, SecuritySTARTTLS, true, "secret"), expect{failedStep: StepSTARTTLS, key: KeySTARTTLSUnsupported}},
		{"starttls wrong CA", untrusting, smtpSettings(starttlsPort, SecuritySTARTTLS, true, "secret"), expect{failedStep: StepSTARTTLS, key: KeyTLSUnknownAuthority}},
		{"starttls expired", tester, smtpSettings(expiredPort, SecuritySTARTTLS, true, "secret"), expect{failedStep: StepSTARTTLS, key: KeyTLSExpired}},
		{"implicit tls wrong CA", untrusting, smtpSettings(implicitPort, SecurityTLS, false, ""), expect{failedStep: StepTLS, key: KeyTLSUnknownAuthority}},
		{"xoauth2 ok", tester, oauth(starttlsPort, "good-token"), expect{ok: true}},
		{"xoauth2 rejected", tester, oauth(starttlsPort, "expired-token"), expect{failedStep: StepAuth, key: KeyAuthOAuthFailed, detail: "SMTP 535"}},
		{"imap port", tester, smtpSettings(imapPort, SecurityNone, false, ""), expect{failedStep: StepGreeting, key: KeyGreetingWrongProtocol, detail: "an IMAP server"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			check(t, tt.name, tt.tester.Test(t.Context(), "u1", tt.s), tt.want)
		})
	}
}

// TestBannerNeverShown: what a server says in free text must not reach the
// result, so a hostile server cannot put words into the UI.
func TestBannerNeverShown(t *testing.T) {
	t.Parallel()
	const secret = "CALL-0900-123456"
	ca := newTestCA(t, "Test CA")
	tester := loopbackTester(ca, nil)
	tests := []struct {
		p        Protocol
		greeting string
		key      string
	}{
		{ProtocolSMTP, "554-" + secret + "\r\n554 " + secret + "\r\n", KeyGreetingRejected},
		{ProtocolIMAP, "* BYE " + secret + "\r\n", KeyGreetingRejected},
		{ProtocolPOP3, "-ERR " + secret + "\r\n", KeyGreetingRejected},
		{ProtocolIMAP, "HELLO " + secret + "\r\n", KeyGreetingUnexpected},
		{ProtocolPOP3, "SSH-2.0-" + secret + "\r\n", KeyGreetingWrongProtocol},
		{ProtocolSMTP, strings.Repeat("x", 5000) + "\r\n", KeyProtocol},
	}
	for _, tt := range tests {
		p := startScripted(t, tt.greeting)
		r := tester.Test(t.Context(), "u", Settings{Protocol: tt.p, Host: "127.0.0.1", Port: p, Security: SecurityNone})
		check(t, string(tt.p)+" "+tt.key, r, expect{failedStep: StepGreeting, key: tt.key})
		for _, s := range r.Steps {
			if strings.Contains(s.Detail, secret) || strings.Contains(r.Detail, secret) {
				t.Errorf("%s: banner text leaked: %+v", tt.p, r)
			}
		}
	}
}

func TestNetworkFailures(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "Test CA")
	resolver := newMockDNS(t, map[string]mockdns.Zone{})
	tester := loopbackTester(ca, resolver)

	closed := listenLoopback(t)
	closedPort := port(closed)
	closed.Close()
	silentPort := startScripted(t, "")

	quick := loopbackTester(ca, resolver)
	quick.Timeout = 300 * time.Millisecond
	s := func(host string, port int) Settings {
		return Settings{Protocol: ProtocolIMAP, Host: host, Port: port, Security: SecurityNone, Username: "a", Password: "b"}
	}
	tests := []struct {
		name   string
		tester *Tester
		s      Settings
		want   expect
	}{
		{"nxdomain", tester, s("missing.test", 143), expect{failedStep: StepDNS, key: KeyDNSNotFound, steps: []Step{StepDNS}}},
		{"numeric host", tester, s("2130706433", 143), expect{failedStep: StepDNS, key: KeyDNSNumericHost}},
		{"invalid host", tester, s("mail example", 143), expect{failedStep: StepDNS, key: KeyDNSInvalidHost}},
		{"refused", tester, s("127.0.0.1", closedPort), expect{failedStep: StepTCP, key: KeyTCPRefused}},
		{"silent server", quick, s("127.0.0.1", silentPort), expect{failedStep: StepGreeting, key: KeyTimeout}},
		{"bad protocol", tester, Settings{Protocol: "nntp", Host: "127.0.0.1", Port: 119, Security: SecurityNone}, expect{key: KeyInvalid}},
		{"bad port", tester, Settings{Protocol: ProtocolIMAP, Host: "127.0.0.1", Port: 70000, Security: SecurityNone}, expect{key: KeyInvalid}},
		{"injection", tester, Settings{Protocol: ProtocolIMAP, Host: "127.0.0.1", Port: 143, Security: SecurityNone, Username: "a\r\nx"}, expect{key: KeyInvalid}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			check(t, tt.name, tt.tester.Test(t.Context(), "u", tt.s), tt.want)
		})
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	tester := &Tester{Limiter: NewLimiter(2, time.Minute, clock)}
	// Invalid host: the test stops at DNS without touching the network.
	s := Settings{Protocol: ProtocolIMAP, Host: "0x7f.1", Port: 143, Security: SecurityNone}
	for i := range 2 {
		if r := tester.Test(t.Context(), "alice", s); r.MessageKey == KeyRateLimited {
			t.Fatalf("test %d limited", i)
		}
	}
	if r := tester.Test(t.Context(), "alice", s); r.MessageKey != KeyRateLimited || r.FailedStep != "" || len(r.Steps) != 0 {
		t.Fatalf("third test: %+v, want rate limited", r)
	}
	if r := tester.Test(t.Context(), "bob", s); r.MessageKey == KeyRateLimited {
		t.Fatal("another user is limited too")
	}
	now = now.Add(30 * time.Second)
	if r := tester.Test(t.Context(), "alice", s); r.MessageKey == KeyRateLimited {
		t.Fatal("not refilled after 30 s")
	}
	if r := tester.Test(t.Context(), "alice", s); r.MessageKey != KeyRateLimited {
		t.Fatal("refilled more than one token in 30 s")
	}
}

func TestLimiterPrunesFullBuckets(t *testing.T) {
	t.Parallel()
	now := time.Unix(0, 0)
	l := NewLimiter(1, time.Second, func() time.Time { return now })
	for i := range maxIdleBuckets {
		l.Allow(itoa(i))
	}
	now = now.Add(2 * time.Second)
	l.Allow("new")
	if n := len(l.buckets); n != 1 {
		t.Fatalf("%d buckets after pruning, want 1", n)
	}
}
