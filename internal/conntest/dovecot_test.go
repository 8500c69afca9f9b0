package conntest

import (
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"postfach/internal/netguard"
	"postfach/internal/testpeers"
)

// TestAgainstDovecot runs the connection test against a real Dovecot for
// IMAP and POP3 in every security mode, with a wrong password, and with an
// OAuth2 access token (XOAUTH2, which this Dovecot checks like a password): a
// good one, a refused one, and none because the grant must be renewed. It
// skips (or fails with CI=true) when Dovecot is not installed.
func TestAgainstDovecot(t *testing.T) {
	t.Parallel()
	d := testpeers.StartDovecot(t, map[string]string{"alice": "right one", "bob@kunde.example": "at-2"})
	d.Append(t, "alice", "INBOX", []byte("Subject: hello\r\n\r\nbody\r\n"))
	d.Append(t, "bob@kunde.example", "INBOX", []byte("Subject: hello\r\n\r\nbody\r\n"))
	tester := &Tester{
		Dialer: &netguard.Dialer{
			Policy: netguard.Policy{AllowedPrefixes: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
		},
		RootCAs: d.CA.Pool(),
		Timeout: 30 * time.Second,
	}
	settings := func(p Protocol, addr string, sec Security, pass string) Settings {
		host, portStr, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		port, _ := strconv.Atoi(portStr)
		return Settings{Protocol: p, Host: host, Port: port, Security: sec, Username: "alice", Password: pass}
	}
	oauth := func(p Protocol, addr string, token string, problem OAuth2Problem) Settings {
		s := settings(p, addr, SecurityTLS, "")
		s.Username, s.OAuth2Token, s.OAuth2Problem = "bob@kunde.example", token, problem
		return s
	}
	tests := []struct {
		name string
		s    Settings
		want expect
	}{
		{"imap starttls", settings(ProtocolIMAP, d.IMAPAddr, SecuritySTARTTLS, "right one"), expect{ok: true, steps: stepsIMAPSTARTTLS}},
		{"imaps", settings(ProtocolIMAP, d.IMAPSAddr, SecurityTLS, "right one"), expect{ok: true, steps: stepsIMAPTLS}},
		{"imap plain", settings(ProtocolIMAP, d.IMAPAddr, SecurityNone, "right one"), expect{ok: true, steps: stepsIMAPPlain}},
		{"imap wrong password", settings(ProtocolIMAP, d.IMAPSAddr, SecurityTLS, "wrong"), expect{failedStep: StepAuth, key: KeyAuthFailed, detail: "AUTHENTICATIONFAILED"}},
		{"imap missing folder", func() Settings {
			s := settings(ProtocolIMAP, d.IMAPSAddr, SecurityTLS, "right one")
			s.Folder = "Nope"
			return s
		}(), expect{failedStep: StepFolder, key: KeyFolderNotFound}},
		{"pop3 stls", settings(ProtocolPOP3, d.POP3Addr, SecuritySTARTTLS, "right one"), expect{ok: true, steps: stepsIMAPSTARTTLS}},
		{"pop3s", settings(ProtocolPOP3, d.POP3SAddr, SecurityTLS, "right one"), expect{ok: true, steps: stepsIMAPTLS}},
		{"pop3 plain", settings(ProtocolPOP3, d.POP3Addr, SecurityNone, "right one"), expect{ok: true, steps: stepsIMAPPlain}},
		{"pop3 wrong password", settings(ProtocolPOP3, d.POP3SAddr, SecurityTLS, "wrong"), expect{failedStep: StepAuth, key: KeyAuthFailed}},
		{"imap xoauth2", oauth(ProtocolIMAP, d.IMAPSAddr, "at-2", ""), expect{ok: true, steps: stepsIMAPTLS}},
		{"pop3 xoauth2", oauth(ProtocolPOP3, d.POP3SAddr, "at-2", ""), expect{ok: true, steps: stepsIMAPTLS}},
		{"imap xoauth2 refused", oauth(ProtocolIMAP, d.IMAPSAddr, "at-old", ""), expect{failedStep: StepAuth, key: KeyAuthOAuthFailed}},
		{"pop3 xoauth2 refused", oauth(ProtocolPOP3, d.POP3SAddr, "at-old", ""), expect{failedStep: StepAuth, key: KeyAuthOAuthFailed}},
		{"imap grant to renew", oauth(ProtocolIMAP, d.IMAPSAddr, "", OAuth2Reauthorize), expect{failedStep: StepAuth, key: KeyAuthReauthorize, steps: []Step{StepDNS, StepTCP, StepTLS, StepGreeting, StepAuth}}},
		{"pop3 no token", oauth(ProtocolPOP3, d.POP3SAddr, "", OAuth2TokenUnavailable), expect{failedStep: StepAuth, key: KeyAuthTokenUnavailable}},
		{"imap on pop3 port", settings(ProtocolIMAP, d.POP3Addr, SecurityNone, "right one"), expect{failedStep: StepGreeting, key: KeyGreetingWrongProtocol}},
	}
	for _, tt := range tests {
		r := tester.Test(t.Context(), "u", tt.s)
		check(t, tt.name, r, tt.want)
		if tt.want.ok && r.Steps[len(r.Steps)-1].Detail != "1 messages" {
			t.Errorf("%s: folder detail %q, want 1 messages", tt.name, r.Steps[len(r.Steps)-1].Detail)
		}
	}
}
