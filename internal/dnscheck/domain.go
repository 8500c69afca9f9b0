package dnscheck

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// ErrInvalidDomain is returned for input that is not a syntactically valid
// host name, so the UI can say so instead of claiming the domain is broken.
var ErrInvalidDomain = errors.New("invalid domain name")

// normalizeDomain turns user input ("Müller.DE.", " example.com") into the
// form shown to the user (lower case, no trailing dot) and the A-label form
// sent to DNS (RFC 5891 section 5).
func normalizeDomain(input string) (display, ascii string, err error) {
	display = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(input)), ".")
	if display == "" || strings.ContainsAny(display, " @/\\:") {
		return display, "", fmt.Errorf("dnscheck: %q: %w", input, ErrInvalidDomain)
	}
	// The lookup profile with RFC 1035 length limits (63 per label, 253 total).
	profile := idna.New(idna.MapForLookup(), idna.BidiRule(), idna.VerifyDNSLength(true))
	ascii, err = profile.ToASCII(display)
	if err != nil {
		return display, "", fmt.Errorf("dnscheck: %q: %w: %v", input, ErrInvalidDomain, err)
	}
	// RFC 1035 section 2.3.4: 253 octets of presentation form, at least two labels
	// for a sending domain.
	if len(ascii) > 253 || !strings.Contains(ascii, ".") {
		return display, "", fmt.Errorf("dnscheck: %q: %w", input, ErrInvalidDomain)
	}
	return display, ascii, nil
}

// canonicalName is a name in the rooted form used for queries and cache keys.
// Rooted names keep the stub resolver from appending search domains.
func canonicalName(name string) string {
	name = strings.ToLower(name)
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return name
}

// organizationalDomain is the registered domain of name (RFC 7489 section
// 3.2), using the public suffix list; on failure the name itself.
func organizationalDomain(name string) string {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	org, err := publicsuffix.EffectiveTLDPlusOne(name)
	if err != nil {
		return name
	}
	return org
}

// sameDomain compares two domain names ignoring case and a trailing dot.
func sameDomain(a, b string) bool {
	return strings.EqualFold(strings.TrimSuffix(a, "."), strings.TrimSuffix(b, "."))
}
