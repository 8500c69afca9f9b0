package imapd

import (
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

func TestFormatFlags(t *testing.T) {
	for _, tc := range []struct {
		in   []imap.Flag
		want string
	}{
		{nil, ""},
		{[]imap.Flag{`\seen`, `\FLAGGED`}, `\Flagged \Seen`},
		{[]imap.Flag{`\Seen`, `\seen`, `$Label1`}, `$Label1 \Seen`},
		{[]imap.Flag{`\Recent`, `\Deleted`}, `\Deleted`},
		{[]imap.Flag{"", "a b", "x(y", "ok"}, "ok"},
		{[]imap.Flag{`\`, `\ä`, `a"b`, `a]`, `\\x`, "\x01"}, ""},
		{[]imap.Flag{`\Extension`}, `\Extension`},
	} {
		if got := formatFlags(tc.in); got != tc.want {
			t.Errorf("formatFlags(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if !hasFlag(parseFlags(`\Answered \Seen`), `\SEEN`) || hasFlag(parseFlags(""), imap.FlagSeen) {
		t.Error("hasFlag")
	}
}

// FuzzFlags checks the stored form of flags, which comes from client STORE and APPEND
// arguments: canonical (formatting it again changes nothing), space-separated atoms only,
// and every flag the client set is still there under its canonical spelling.
func FuzzFlags(f *testing.F) {
	for _, s := range []string{`\Seen \Flagged`, `\seen`, `$Forwarded Junk`, `\Recent`, `\`, `\ä`, "a\tb", "(x)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var in []imap.Flag
		for _, p := range strings.Split(s, " ") {
			in = append(in, imap.Flag(p))
		}
		stored := formatFlags(in)
		if again := formatFlags(parseFlags(stored)); again != stored {
			t.Fatalf("not canonical: %q -> %q -> %q", s, stored, again)
		}
		if stored != "" {
			for _, fl := range strings.Split(stored, " ") {
				if !storableFlag(fl) {
					t.Fatalf("stored flags %q from %q", stored, s)
				}
			}
		}
		out := parseFlags(stored)
		for _, fl := range in {
			c := canonicalFlag(fl)
			if c == `\Recent` || !storableFlag(c) {
				continue
			}
			if !hasFlag(out, fl) {
				t.Fatalf("flag %q of %q lost in %q", fl, s, stored)
			}
		}
	})
}

func TestValidFolderName(t *testing.T) {
	for name, want := range map[string]bool{
		"Kunden": true, "Kunden/Müller": true, "": false, "/Kunden": false, "Kunden/": false,
		"a//b": false, "a*": false, "a%b": false, "a\r\nb": false, "a\x00": false, strings.Repeat("x", 201): false,
	} {
		if got := validFolderName(name); got != want {
			t.Errorf("validFolderName(%q) = %v", name, got)
		}
	}
}

// FuzzValidFolderName checks that an accepted name (from CREATE or RENAME) has no empty
// hierarchy level and none of the characters LIST patterns and the protocol treat specially.
func FuzzValidFolderName(f *testing.F) {
	for _, s := range []string{"Kunden/Müller", "a//b", "*", "INBOX", "a/b/c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if !validFolderName(name) {
			return
		}
		for _, level := range strings.Split(name, string(delim)) {
			if level == "" {
				t.Fatalf("accepted %q with an empty level", name)
			}
		}
		if strings.ContainsAny(name, "*%\r\n\x00") || len(name) > 200 {
			t.Fatalf("accepted %q", name)
		}
	})
}
