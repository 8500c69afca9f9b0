package conntest

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

func TestClassifyGreeting(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p       Protocol
		reply   string
		verdict greetingVerdict
		family  string
	}{
		{ProtocolIMAP, "* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n", greetingOK, ""},
		{ProtocolIMAP, "* ok ready\r\n", greetingOK, ""},
		{ProtocolIMAP, "* PREAUTH welcome\r\n", greetingPreauth, ""},
		{ProtocolIMAP, "* BYE go away\r\n", greetingRejected, ""},
		{ProtocolIMAP, "* OKAY\r\n", greetingGarbage, ""},
		{ProtocolIMAP, "220 mx ESMTP\r\n", greetingForeign, "SMTP"},
		{ProtocolIMAP, "+OK POP3 ready\r\n", greetingForeign, "POP3"},
		{ProtocolPOP3, "+OK POP3 ready <1.2@x>\r\n", greetingOK, ""},
		{ProtocolPOP3, "-ERR busy\r\n", greetingRejected, ""},
		{ProtocolPOP3, "* OK IMAP\r\n", greetingForeign, "IMAP"},
		{ProtocolSMTP, "220 mx.example ESMTP\r\n", greetingOK, ""},
		{ProtocolSMTP, "220-mx.example\r\n220 ESMTP\r\n", greetingOK, ""},
		{ProtocolSMTP, "220\r\n", greetingOK, ""},
		{ProtocolSMTP, "554 no service\r\n", greetingRejected, ""},
		{ProtocolSMTP, "421 busy\r\n", greetingRejected, ""},
		{ProtocolSMTP, "220 ProFTPD Server ready\r\n", greetingOK, ""},
		{ProtocolSMTP, "SSH-2.0-OpenSSH_9.6\r\n", greetingForeign, "SSH"},
		{ProtocolSMTP, "HTTP/1.1 400 Bad Request\r\n", greetingForeign, "HTTP"},
		{ProtocolSMTP, "2200 x\r\n", greetingGarbage, ""},
	}
	for _, tt := range tests {
		g, err := readGreeting(bufio.NewReader(strings.NewReader(tt.reply)), tt.p)
		if err != nil {
			t.Errorf("%s %q: %v", tt.p, tt.reply, err)
			continue
		}
		if g.verdict != tt.verdict || g.family != tt.family {
			t.Errorf("%s %q: verdict %d family %q, want %d %q", tt.p, tt.reply, g.verdict, g.family, tt.verdict, tt.family)
		}
		if string(g.raw) != tt.reply {
			t.Errorf("%s %q: raw %q", tt.p, tt.reply, g.raw)
		}
	}
	g, _ := readGreeting(bufio.NewReader(strings.NewReader("* OK [CAPABILITY IMAP4rev1 STARTTLS] hi\r\n")), ProtocolIMAP)
	if strings.Join(g.imapCaps, " ") != "IMAP4REV1 STARTTLS" {
		t.Errorf("caps %q", g.imapCaps)
	}
}

func TestReadSMTPReply(t *testing.T) {
	t.Parallel()
	code, lines, err := readSMTPReply(bufio.NewReader(strings.NewReader("250-mx.example\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN\r\n")))
	if err != nil || code != 250 || strings.Join(lines, "|") != "mx.example|STARTTLS|AUTH PLAIN LOGIN" {
		t.Fatalf("got %d %q %v", code, lines, err)
	}
	for _, bad := range []string{"250-a\r\n251 b\r\n", "25\r\n", "250-a\r\n", "abc\r\n", strings.Repeat("250-x\r\n", 100)} {
		if _, _, err := readSMTPReply(bufio.NewReader(strings.NewReader(bad))); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// FuzzReadGreeting: arbitrary server bytes never panic, the bytes kept for
// replay are exactly a prefix of what was read, and an accepted greeting
// starts the way its protocol requires.
func FuzzReadGreeting(f *testing.F) {
	for _, s := range []string{
		"* OK ready\r\n", "* PREAUTH x\r\n", "* BYE\r\n", "+OK\r\n", "-ERR x\r\n",
		"220-a\r\n220 b\r\n", "554 no\r\n", "SSH-2.0-x\r\n", "\r\n", "* OK [CAPABILITY IMAP4rev1] x\r\n",
		"220-" + strings.Repeat("a", 5000) + "\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, p := range []Protocol{ProtocolIMAP, ProtocolPOP3, ProtocolSMTP} {
			g, err := readGreeting(bufio.NewReader(bytes.NewReader(data)), p)
			if !bytes.HasPrefix(data, g.raw) {
				t.Fatalf("%s: raw %q is not a prefix of input", p, g.raw)
			}
			if err != nil || (g.verdict != greetingOK && g.verdict != greetingPreauth) {
				continue
			}
			upper := strings.ToUpper(string(g.raw))
			want := map[Protocol]string{ProtocolIMAP: "* ", ProtocolPOP3: "+OK", ProtocolSMTP: "220"}[p]
			if !strings.HasPrefix(upper, want) {
				t.Fatalf("%s: accepted greeting %q", p, g.raw)
			}
		}
		readSMTPReply(bufio.NewReader(bytes.NewReader(data)))
	})
}
