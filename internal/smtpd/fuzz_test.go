package smtpd

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// hasBareLineEnd is the obvious whole-buffer definition the streaming reader must match.
func hasBareLineEnd(b []byte) bool {
	for i, c := range b {
		if c == '\r' && (i+1 >= len(b) || b[i+1] != '\n') {
			return true
		}
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			return true
		}
	}
	return false
}

func FuzzCRLFReader(f *testing.F) {
	for _, s := range []string{"a\r\nb\r\n", "a\n.\n", "a\r.\r\n", "\r", "\n", "x\r\r\n", "", "\r\n.\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// One byte per read: CRLF pairs straddle every read boundary.
		out, err := io.ReadAll(&crlfReader{r: iotest.OneByteReader(bytes.NewReader(data))})
		bare := errors.Is(err, errBareLineEnd)
		if bare != hasBareLineEnd(data) {
			t.Fatalf("%q: reader says bare=%v (err %v)", data, bare, err)
		}
		if !bare && !bytes.Equal(out, data) {
			t.Fatalf("%q: data changed to %q", data, out)
		}
	})
}

func TestSplitRecipient(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, local, domain string }{
		{"p14@In.Example", "p14", "in.example"},
		{"a.b-c+d@example.org.", "a.b-c+d", "example.org"},
		{"a%b@example.org", "", ""},
		{"a@b@example.org", "", ""},
		{"a!b@example.org", "", ""},
		{"a@[127.0.0.1]", "", ""},
		{"a@exa_mple.org", "", ""},
		{"@example.org", "", ""},
		{"a@", "", ""},
	}
	for _, c := range cases {
		local, domain, err := splitRecipient(c.in)
		if (err == nil) != (c.local != "") || local != c.local || domain != c.domain {
			t.Errorf("splitRecipient(%q) = %q, %q, %v", c.in, local, domain, err)
		}
	}
}

func FuzzSplitRecipient(f *testing.F) {
	for _, s := range []string{"p1@in.example", "a%b@c", `"a@b"@c`, "a@b@c", "x@[1.2.3.4]", "a@-b.c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		local, domain, err := splitRecipient(addr)
		if err != nil {
			return
		}
		if strings.ContainsAny(local, "@%!\"") || local == "" || !validDomain(domain) || domain != strings.ToLower(domain) {
			t.Fatalf("accepted %q as %q @ %q", addr, local, domain)
		}
	})
}
