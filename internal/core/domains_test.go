package core

import (
	"strings"
	"testing"
)

func TestDomainValidator(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"Makler.Example", "makler.example", true},
		{" makler.example. ", "makler.example", true},
		{"sub.makler.example", "sub.makler.example", true},
		{"", "", false},
		{"localhost", "localhost", false},
		{"a@b.example", "a@b.example", false},
		{"a b.example", "a b.example", false},
		{"a..b", "a..b", false},
		{".example", ".example", false},
		{"[127.0.0.1]", "[127.0.0.1]", false},
	} {
		var v validator
		got := v.domain("domain", tc.in)
		if got != tc.want || (v.err() == nil) != tc.ok {
			t.Errorf("domain(%q) = %q, err %v; want %q ok=%v", tc.in, got, v.err(), tc.want, tc.ok)
		}
	}
}

// FuzzDomainValidator checks what a tenant admin can claim as a domain: an accepted value
// is a normalized (lowercase, no trailing dot) dot-separated name with no empty label and
// none of the characters of addresses or DNS syntax, and normalizing it again changes nothing.
func FuzzDomainValidator(f *testing.F) {
	for _, s := range []string{"Makler.Example.", "a..b", "xn--mller-kva.example", "müller.example", "a@b.c", "[1.2.3.4]", "a.b\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var v validator
		got := v.domain("domain", in)
		if v.err() != nil {
			return
		}
		if got != strings.ToLower(got) || strings.HasSuffix(got, ".") || !strings.Contains(got, ".") {
			t.Fatalf("accepted %q as %q", in, got)
		}
		for _, label := range strings.Split(got, ".") {
			if label == "" {
				t.Fatalf("accepted %q with an empty label", got)
			}
		}
		if strings.ContainsAny(got, "@<>[]()\\\",; \t\r\n\x00") {
			t.Fatalf("accepted %q", got)
		}
		var again validator
		if twice := again.domain("domain", got); twice != got || again.err() != nil {
			t.Fatalf("normalizing %q again gave %q, %v", got, twice, again.err())
		}
	})
}
