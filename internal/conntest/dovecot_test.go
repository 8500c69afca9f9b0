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
// IMAP and POP3 in every security mode, and with a wrong password. It skips
// (or fails with CI=true) when Dovecot is not installed.
func TestAgainstDovecot(t *testing.T) {
	t.Parallel()
	d := testpeers.StartDovecot(t, map[string]string{"alice": "right one"})
	d.Append(t, "alice", "INBOX", []byte("Subject: hello\r\n\r\nbody\r\n"))
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
