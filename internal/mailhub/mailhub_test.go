package mailhub

import (
	"strconv"
	"testing"
)

func TestParsePayload(t *testing.T) {
	for _, tc := range []struct {
		in   string
		kind byte
		id   int64
		ok   bool
	}{
		{"m:42", KindChanged, 42, true},
		{"n:1", KindNewMail, 1, true},
		{"c:9223372036854775807", KindCredentials, 9223372036854775807, true},
		{"x:1", 0, 0, false},
		{"m:0", 0, 0, false},
		{"m:-3", 0, 0, false},
		{"m:", 0, 0, false},
		{"m42", 0, 0, false},
		{"mm:42", 0, 0, false},
		{"m:4 2", 0, 0, false},
		{"m:9223372036854775808", 0, 0, false},
		{"", 0, 0, false},
	} {
		kind, id, ok := ParsePayload(tc.in)
		if kind != tc.kind || id != tc.id || ok != tc.ok {
			t.Errorf("ParsePayload(%q) = %q %d %v, want %q %d %v", tc.in, kind, id, ok, tc.kind, tc.id, tc.ok)
		}
	}
}

// FuzzParsePayload checks that whatever arrives on the channel (any instance, any version,
// or anyone with NOTIFY rights) is either refused or is exactly what Publish would send.
func FuzzParsePayload(f *testing.F) {
	for _, s := range []string{"m:42", "n:1", "c:7", "m:0", "m:+5", "m:05", "z:1", ":", "m:1:2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		kind, id, ok := ParsePayload(p)
		if !ok {
			return
		}
		if id <= 0 || (kind != KindChanged && kind != KindNewMail && kind != KindCredentials) {
			t.Fatalf("ParsePayload(%q) accepted kind %q id %d", p, kind, id)
		}
		// The same signal re-encoded parses to the same values.
		again := string(kind) + ":" + strconv.FormatInt(id, 10)
		if k2, id2, ok2 := ParsePayload(again); !ok2 || k2 != kind || id2 != id {
			t.Fatalf("round trip of %q via %q: %q %d %v", p, again, k2, id2, ok2)
		}
	})
}
