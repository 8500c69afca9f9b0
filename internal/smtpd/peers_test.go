package smtpd

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"postfach/internal/store"
	"postfach/internal/testpeers"
)

// swaks runs the swaks client against the server and returns its transcript.
func swaks(t *testing.T, addr string, args ...string) string {
	t.Helper()
	bin := testpeers.Swaks(t)
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, append([]string{"--server", host, "--port", port, "--helo", "swaks.example", "--from", "kunde@example.org"}, args...)...)
	out, _ := cmd.CombinedOutput() // the exit status only repeats what the transcript says
	return string(out)
}

func TestSwaks(t *testing.T) {
	e := startEnv(t, Config{})
	cases := []struct {
		name string
		to   string
		want string // a line of the transcript
	}{
		{"accepted", e.inbound(e.account), "<-  250 2.0.0"},
		{"hosted mailbox", "chef@makler.example", "<-  250 2.0.0"},
		{"unknown recipient", "p999999@" + inboundDomain, "<** 550 5.1.1"},
		{"inactive account", e.inbound(e.inactive), "<** 550 5.2.1"},
		{"external recipient", "victim@example.com", "<** 550 5.7.1"},
		{"percent hack", "victim%example.com@makler.example", "<** 550 5.7.1"},
		{"source route", "@makler.example:victim@example.com", "<** 550 5.7.1"},
		{"quoted local part with @", `"victim@example.com"@makler.example`, "<** 550 5.7.1"},
	}
	for _, c := range cases {
		out := swaks(t, e.addr, "--to", c.to)
		if !strings.Contains(out, c.want) {
			t.Errorf("%s: transcript lacks %q:\n%s", c.name, c.want, out)
		}
	}
	if n := e.count(); n != 2 {
		t.Fatalf("stored %d messages, want 2", n)
	}

	// Smuggling vectors sent unchanged (--no-data-fixup): refused, nothing stored.
	dir := t.TempDir()
	for i, v := range []string{"\n.\n", "\r.\n", "\n.\r\n"} {
		data := "From: kunde@example.org\r\nSubject: smuggle\r\n\r\nfirst" + v +
			"MAIL FROM:<admin@bank.example>\r\nRCPT TO:<" + e.inbound(e.account) + ">\r\nDATA\r\nSubject: forged\r\n\r\nforged\r\n.\r\n"
		file := filepath.Join(dir, fmt.Sprintf("smuggle%d.eml", i))
		if err := os.WriteFile(file, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		out := swaks(t, e.addr, "--to", e.inbound(e.account), "--no-data-fixup", "--data", file)
		if !strings.Contains(out, "<** 554 5.6.0") {
			t.Errorf("vector %q: not refused:\n%s", v, out)
		}
	}
	if n := e.count(); n != 2 {
		t.Fatalf("smuggling stored %d messages", n-2)
	}
}

// TestSMTPSource delivers with Postfix's smtp-source: 20 sessions, 400 messages.
func TestSMTPSource(t *testing.T) {
	e := startEnv(t, Config{})
	bin := testpeers.SMTPSourcePath(t)
	const messages = 400
	out, err := exec.Command(bin, "-s", "20", "-m", fmt.Sprint(messages), "-l", "1024", "-f", "kunde@example.org",
		"-t", store.InboundAddress(e.account.ID, inboundDomain), "-S", "Lastprobe", e.addr).CombinedOutput()
	if err != nil {
		t.Fatalf("smtp-source: %v\n%s", err, out)
	}
	if n := e.count(); n != messages {
		t.Fatalf("stored %d of %d messages", n, messages)
	}
	st := e.srv.Stats()
	t.Logf("smtp-source: %d messages in %d transactions", st.Deliveries, st.Transactions)
}
