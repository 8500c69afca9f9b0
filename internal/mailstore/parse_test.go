package mailstore

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestLooseAddresses(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want string }{
		{"Kunde <K@Example.org>", "k@example.org"},
		{`"Müller, Hans" <hm@example.org>, <b@example.net>`, "hm@example.org b@example.net"},
		{"a@example.org; b@example.org", "a@example.org b@example.org"},
		{"undisclosed-recipients:;", ""},
		{"<@>", ""},
		{"x@", ""},
		{"<a@example.org\r\nb@example.com>", "a@example.org b@example.com"},
	}
	for _, c := range cases {
		if got := strings.Join(LooseAddresses(c.in), " "); got != c.want {
			t.Errorf("LooseAddresses(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestParseHeaderLenient(t *testing.T) {
	t.Parallel()
	p, err := ParseHeader([]byte("From: broken <<a@example.org>\r\nMessage-ID: <x@y> (comment)\r\nReferences: a@b <c@d>\r\nSubject: =?x-unknown?Q?abc?=\r\n\r\nbody"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.From, []string{"a@example.org"}) || p.MessageID != "x@y" || !slices.Equal(p.References, []string{"c@d"}) || p.Subject != "=?x-unknown?Q?abc?=" {
		t.Fatalf("%+v", p)
	}
	for _, bad := range []string{"", " folded first line\r\n\r\n", "no colon here\r\n\r\n", "\r\nbody only"} {
		if _, err := ParseHeader([]byte(bad)); err == nil {
			t.Errorf("ParseHeader(%q) accepted", bad)
		}
	}
}

func FuzzParseHeader(f *testing.F) {
	for _, s := range []string{
		"From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nbody\r\n",
		"From: =?utf-8?q?J=C3=BCrgen?= <j@example.org>\r\nSubject: =?iso-8859-1?b?5OTk?=\r\n\r\n",
		"Message-ID: <a@b>\r\nIn-Reply-To: <c@d> <e@f>\r\nReferences: junk <g@h>\r\n\r\n",
		"Subject: =?utf-8?q?a=0D=0ABcc:_x@y?=\r\n\r\n",
		"From: \"a\\\"b\" <a@b>, group: c@d, e@f;\r\n\r\n",
		" bad\r\n",
		"X: \x00\xff\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, err := ParseHeader(raw)
		if err != nil {
			return
		}
		for _, s := range append([]string{p.Subject, p.FromText, p.ToText, p.CcText}, p.From...) {
			if strings.ContainsAny(s, "\r\n\x00") {
				t.Fatalf("control character survived: %q", s)
			}
		}
		if len(p.Subject) > 998 || !utf8.ValidString(p.Subject) && utf8.Valid(raw) {
			t.Fatalf("subject not bounded or broke UTF-8: %q", p.Subject)
		}
	})
}

func FuzzLooseAddresses(f *testing.F) {
	for _, s := range []string{"a@b", "<a@b>, c <d@e>", "x <<@>> y@z", "\"@\"@x", "a@b@c", "0<@0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		for _, a := range LooseAddresses(v) {
			at := strings.LastIndexByte(a, '@')
			if at <= 0 || at == len(a)-1 || strings.ContainsAny(a, " \t\r\n\x00<>") || a != strings.ToLower(a) {
				t.Fatalf("bad address %q from %q", a, v)
			}
		}
	})
}

func FuzzAutoReplyBlocked(f *testing.F) {
	f.Add("Auto-Submitted: auto-replied\r\n\r\n", "a@b")
	f.Add("Precedence: bulk\r\nList-Id: x\r\n\r\n", "")
	f.Add("Auto-Submitted: no (comment)\r\n\r\n", "x@y")
	f.Fuzz(func(t *testing.T, header, envFrom string) {
		p, err := ParseHeader([]byte(header))
		if err != nil {
			return
		}
		why := AutoReplyBlocked(p.Header, envFrom)
		if strings.TrimSpace(envFrom) == "" && why == "" {
			t.Fatal("reply to a bounce allowed")
		}
	})
}

// TestParseHeaderLongLines keeps header lines longer than the reader's buffer whole.
func TestParseHeaderLongLines(t *testing.T) {
	subject := strings.Repeat("Wort ", 3000) + "Ende"
	refs := strings.Repeat("<r@example.org> ", 800)
	raw := "From: a@example.org\r\nSubject: " + subject + "\r\nReferences: " + refs + "\r\nMessage-ID: <long@example.org>\r\n\r\nbody\r\n"
	p, err := ParseHeader([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	// The subject is kept to its first 998 bytes on purpose; what matters is that the
	// line was read whole and the fields after it were found.
	if !strings.HasPrefix(subject, p.Subject) || len(p.Subject) < 990 || p.MessageID != "long@example.org" {
		t.Fatalf("subject %d bytes, Message-ID %q", len(p.Subject), p.MessageID)
	}
}
