package smtpd

import (
	"errors"
	"strings"
)

// Reasons a recipient is refused before any lookup.
var (
	errRelay     = errors.New("relay not permitted")
	errMalformed = errors.New("malformed recipient")
)

// splitRecipient checks an RCPT TO address (already stripped of brackets by the SMTP
// parser) and returns its local part and lower-case domain. It refuses every form that
// could make us relay or that a later hop might read differently from us: a second "@"
// (quoted local parts like "a@b"@us), the "%" hack (a%b@us), bang paths (b!a@us) and
// source-route leftovers (RFC 5321 §3.6.1 and Appendix C: we never act on routes).
func splitRecipient(addr string) (local, domain string, err error) {
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 || len(addr) > 254 {
		return "", "", errMalformed
	}
	local, domain = addr[:at], strings.TrimSuffix(strings.ToLower(addr[at+1:]), ".")
	if strings.ContainsAny(local, "@%!:,\"\\") || strings.ContainsFunc(local, notPrintableASCII) {
		return "", "", errRelay
	}
	if len(local) > 64 || strings.HasPrefix(domain, "[") || !validDomain(domain) {
		return "", "", errRelay
	}
	return local, domain, nil
}

func notPrintableASCII(r rune) bool { return r <= ' ' || r >= 0x7f }

// validDomain accepts a dot-separated LDH host name (RFC 5321 §4.1.2 Domain).
func validDomain(d string) bool {
	if d == "" || len(d) > 253 {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
