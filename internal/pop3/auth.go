package pop3

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strings"
)

// cmdAuth implements AUTH, RFC 5034, for the PLAIN mechanism (RFC 4616).
// It reports whether the session must end.
func (s *session) cmdAuth(ctx context.Context, args string) bool {
	if !s.authAllowed() {
		s.fail("", "TLS required: use STLS first")
		return false
	}
	mech, initial, hasInitial := strings.Cut(args, " ")
	if mech == "" {
		// AUTH without a mechanism lists them; older Outlook versions ask so.
		s.ok("SASL mechanisms follow")
		s.bw.WriteString("PLAIN\r\n.\r\n")
		return false
	}
	if !strings.EqualFold(mech, "PLAIN") {
		s.fail("", "unsupported authentication mechanism")
		return false
	}
	var response string
	switch {
	case hasInitial && initial == "=":
		response = "" // RFC 5034 §4: "=" is an empty initial response
	case hasInitial:
		response = initial
	default:
		// RFC 5034 §4: an empty challenge, then the client's response line.
		s.bw.WriteString("+ \r\n")
		line, err := s.readCommand()
		if err != nil {
			return true
		}
		if line == "*" {
			s.fail("", "authentication cancelled")
			return false
		}
		response = line
	}
	user, pass, err := decodePlain(response)
	if err != nil {
		s.authFailures++
		s.fail("", "malformed PLAIN response")
		return s.authFailures >= orDefault(s.srv.MaxAuthFailures, DefaultMaxAuthFailures)
	}
	return s.login(ctx, user, pass, "PLAIN")
}

// decodePlain decodes a SASL PLAIN message, RFC 4616 §2:
// [authzid] NUL authcid NUL passwd. Acting as another identity is not
// supported, so a non-empty authzid must equal the authcid.
func decodePlain(b64 string) (user, pass string, err error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", "", errors.New("invalid base64")
	}
	parts := bytes.Split(raw, []byte{0})
	if len(parts) != 3 {
		return "", "", errors.New("expected three fields")
	}
	authz, authc, passwd := string(parts[0]), string(parts[1]), string(parts[2])
	if authc == "" || passwd == "" {
		return "", "", errors.New("empty user or password")
	}
	if authz != "" && authz != authc {
		return "", "", errors.New("authorization identity differs")
	}
	return authc, passwd, nil
}
