package netguard

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"golang.org/x/net/idna"
)

// Errors for host strings that are refused before any lookup.
var (
	ErrInvalidHost = errors.New("netguard: invalid host name")
	// ErrNumericHost is returned for numeric spellings of an IPv4 address
	// other than the canonical dotted quad: "2130706433", "0x7f.1",
	// "017700000001", "127.1", "127.0.0.1.". C's inet_aton (and with it the
	// system resolver Go may delegate to) reads them all as 127.0.0.1.
	ErrNumericHost = errors.New("netguard: numeric host must be a canonical IP address (like 192.0.2.10)")
)

// NormalizeHost checks a user-supplied host (without port) and returns the
// form to resolve: an IP literal unchanged, or a lower-case ASCII host name
// (internationalised names converted to Punycode).
//
// A name whose last label is numeric is refused: no top-level domain is
// numeric (RFC 3696 section 2), so such a string is either a typo or an
// attempt to spell an address in a form that only some parsers accept.
func NormalizeHost(host string) (string, error) {
	if host == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalidHost)
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return host, nil
	}
	if looksNumeric(host) {
		return "", fmt.Errorf("%w: %q", ErrNumericHost, host)
	}
	ascii := strings.ToLower(host)
	if !isAll(host, func(c byte) bool { return c < 0x80 }) {
		// Internationalised name (RFC 5891); pure ASCII names skip this so
		// that underscores in internal names stay acceptable.
		converted, err := idna.Lookup.ToASCII(host)
		if err != nil {
			return "", fmt.Errorf("%w: %q", ErrInvalidHost, host)
		}
		ascii = strings.ToLower(converted)
	}
	if err := checkHostName(ascii); err != nil {
		return "", fmt.Errorf("%w: %q", err, host)
	}
	// IDNA mapping can turn full-width digits and dots into ASCII ones;
	// judge the result again.
	if _, err := netip.ParseAddr(ascii); err == nil || looksNumeric(ascii) {
		return "", fmt.Errorf("%w: %q", ErrNumericHost, host)
	}
	return ascii, nil
}

// looksNumeric reports whether the last label (ignoring one trailing dot) is
// made of decimal digits or is a 0x hex number, the forms inet_aton accepts
// for each part.
func looksNumeric(host string) bool {
	host = strings.TrimSuffix(host, ".")
	last := host
	if i := strings.LastIndexByte(host, '.'); i >= 0 {
		last = host[i+1:]
	}
	if last == "" {
		return false
	}
	if len(last) >= 2 && last[0] == '0' && (last[1] == 'x' || last[1] == 'X') {
		return isAll(last[2:], isHexDigit)
	}
	return isAll(last, isDigit)
}

// checkHostName applies the letter-digit-hyphen rule of RFC 1123 section 2.1
// to an ASCII name, tolerating underscores (seen in internal names) and one
// trailing dot.
func checkHostName(name string) error {
	name = strings.TrimSuffix(name, ".")
	if name == "" || len(name) > 253 {
		return ErrInvalidHost
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return ErrInvalidHost
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(isDigit(c) || c >= 'a' && c <= 'z' || c == '-' || c == '_') {
				return ErrInvalidHost
			}
		}
	}
	return nil
}

func isAll(s string, pred func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !pred(s[i]) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHexDigit(c byte) bool {
	return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}
