package netguard

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

func TestNormalizeHost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		host    string
		want    string
		wantErr error
	}{
		{"mail.example.com", "mail.example.com", nil},
		{"Mail.Example.COM", "mail.example.com", nil},
		{"mail.example.com.", "mail.example.com.", nil},
		{"imap_int.corp.example", "imap_int.corp.example", nil},
		{"mail.müller.de", "mail.xn--mller-kva.de", nil},
		{"127.0.0.1", "127.0.0.1", nil},
		{"::1", "::1", nil},
		{"::ffff:127.0.0.1", "::ffff:127.0.0.1", nil},
		{"1e100.net", "1e100.net", nil},
		{"0xdeadbeef.example", "0xdeadbeef.example", nil},

		{"2130706433", "", ErrNumericHost},
		{"0x7f.1", "", ErrNumericHost},
		{"0x7f000001", "", ErrNumericHost},
		{"0X7F.0.0.1", "", ErrNumericHost},
		{"017700000001", "", ErrNumericHost},
		{"0177.0.0.1", "", ErrNumericHost},
		{"127.1", "", ErrNumericHost},
		{"127.0.1", "", ErrNumericHost},
		{"127.0.0.1.", "", ErrNumericHost},
		{"127.000.000.001", "", ErrNumericHost},
		{"1.2.3.4.5", "", ErrNumericHost},
		{"mail.example.123", "", ErrNumericHost},
		{"0x", "", ErrNumericHost},
		{"１２７.０.０.１", "", ErrNumericHost}, // full-width digits map to ASCII under IDNA

		{"", "", ErrInvalidHost},
		{"mail example.com", "", ErrInvalidHost},
		{"mail..example.com", "", ErrInvalidHost},
		{"-mail.example.com", "", ErrInvalidHost},
		{"mail.example.com/evil", "", ErrInvalidHost},
		{"user@mail.example.com", "", ErrInvalidHost},
		{"mail.example.com\r\nRCPT", "", ErrInvalidHost},
		{strings.Repeat("a", 64) + ".example", "", ErrInvalidHost},
		{strings.Repeat("abcdefghi.", 26) + "example", "", ErrInvalidHost},
	}
	for _, tt := range tests {
		got, err := NormalizeHost(tt.host)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("NormalizeHost(%q) = %q, %v; want error %v", tt.host, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizeHost(%q) = %q, %v; want %q", tt.host, got, err, tt.want)
		}
	}
}

// inetAton is a reference model of the C library's inet_aton: one to four
// parts, each decimal, octal (leading 0) or hex (leading 0x), the last part
// filling the remaining bytes.
func inetAton(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
		base := 10
		digits := p
		switch {
		case len(p) >= 2 && (p[:2] == "0x" || p[:2] == "0X"):
			base, digits = 16, p[2:]
			if digits == "" {
				digits = "0"
			}
		case len(p) >= 2 && p[0] == '0':
			base, digits = 8, p[1:]
		}
		if digits == "" || strings.ContainsAny(digits, "+-_") {
			return netip.Addr{}, false
		}
		v, err := strconv.ParseUint(digits, base, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		vals[i] = v
	}
	var n uint64
	for i, v := range vals[:len(vals)-1] {
		if v > 255 {
			return netip.Addr{}, false
		}
		n |= v << (24 - 8*i)
	}
	last := vals[len(vals)-1]
	if last >= 1<<(32-8*(len(vals)-1)) {
		return netip.Addr{}, false
	}
	n |= last
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true
}

func TestInetAtonModel(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"2130706433", "0x7f.1", "017700000001", "127.1", "0x7f000001", "127.0.0.1"} {
		if ip, ok := inetAton(s); !ok || ip != netip.MustParseAddr("127.0.0.1") {
			t.Errorf("inetAton(%q) = %v, %v", s, ip, ok)
		}
	}
}

// FuzzNormalizeHost checks that nothing inet_aton would read as an IPv4
// address gets through as a host name, and that accepted names are plain
// lower-case LDH names or IP literals.
func FuzzNormalizeHost(f *testing.F) {
	for _, s := range []string{
		"mail.example.com", "2130706433", "0x7f.1", "017700000001", "127.1",
		"127.0.0.1", "::ffff:127.0.0.1", "mail.müller.de", "0x7f.0.0.1.", "１２７.０.０.１",
		"a.b.0x", "xn--mller-kva.de", "1.2.3.4.5", "[::1]", "fe80::1%eth0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		got, err := NormalizeHost(host)
		if err != nil {
			return
		}
		if _, perr := netip.ParseAddr(got); perr == nil {
			return
		}
		for _, candidate := range []string{got, strings.TrimSuffix(got, ".")} {
			if ip, ok := inetAton(candidate); ok {
				t.Fatalf("NormalizeHost(%q) accepted %q, which inet_aton reads as %s", host, got, ip)
			}
		}
		if checkHostName(got) != nil || strings.ToLower(got) != got {
			t.Fatalf("NormalizeHost(%q) returned non-canonical name %q", host, got)
		}
	})
}
