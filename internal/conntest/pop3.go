package conntest

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"postfach/internal/pop3"
)

// pop3 runs STLS, login and STAT on a connection whose greeting was read
// (and is replayed to the client).
func (r *run) pop3(conn net.Conn) {
	s := r.settings
	c, err := pop3.NewClient(conn)
	if err != nil {
		r.failPOP3(StepAuth, err, nil)
		return
	}
	defer c.Close()

	// CAPA (RFC 2449) is optional; old servers answer -ERR, then we just
	// try what the settings ask for.
	caps, err := c.Capabilities(r.ctx)
	if err != nil {
		var re *pop3.ResponseError
		if !errors.As(err, &re) {
			r.failPOP3(StepSTARTTLS, err, nil)
			return
		}
		caps = nil
	}

	if s.Security == SecuritySTARTTLS {
		if _, ok := caps["STLS"]; caps != nil && !ok {
			r.fail(StepSTARTTLS, outcome{key: KeySTARTTLSUnsupported, detail: "STLS not in CAPA reply"})
			return
		}
		// RFC 2595 section 4.
		if err := c.StartTLS(r.ctx, r.tlsConfig()); err != nil {
			var re *pop3.ResponseError
			if errors.As(err, &re) {
				r.fail(StepSTARTTLS, outcome{key: KeySTARTTLSRefused, detail: pop3Detail(re)})
			} else {
				r.failIO(StepSTARTTLS, err)
			}
			return
		}
		r.tls = true
		r.pass(StepSTARTTLS, "")
		// Capabilities may change after STLS (RFC 2595 section 4).
		if caps, err = c.Capabilities(r.ctx); err != nil {
			caps = nil
		}
	}

	if !r.requireCredentials() {
		return
	}
	oauth := s.OAuth2Token != ""
	if oauth {
		r.credentialsSent()
		err = c.AuthXOAUTH2(r.ctx, s.Username, s.OAuth2Token)
	} else {
		if _, hasUser := caps["USER"]; caps != nil && !hasUser && !r.tls && !saslHas(caps, "PLAIN") {
			// Dovecot and others drop USER from CAPA when they refuse
			// cleartext passwords (RFC 2449 section 6.8).
			r.fail(StepAuth, outcome{key: KeyAuthEncryptionRequired, detail: "USER not in CAPA reply"})
			return
		}
		r.credentialsSent()
		err = c.Login(r.ctx, s.Username, s.Password)
	}
	if err != nil {
		r.failPOP3(StepAuth, err, func(re *pop3.ResponseError) string {
			switch {
			case re.Temporary():
				return KeyAuthTemporary
			case oauth:
				return KeyAuthOAuthFailed
			}
			return KeyAuthFailed
		})
		return
	}
	r.pass(StepAuth, "")

	count, _, err := c.Stat(r.ctx)
	if err != nil {
		r.failPOP3(StepFolder, err, func(re *pop3.ResponseError) string {
			if strings.EqualFold(re.Code, pop3.CodeInUse) {
				return KeyFolderInUse
			}
			return KeyFolderFailed
		})
		return
	}
	r.pass(StepFolder, fmt.Sprintf("%d messages", count))
	_ = c.Quit(r.ctx)
}

// failPOP3 maps a -ERR to a key by its extended code (RFC 2449 section 8,
// RFC 3206) and anything else to a connection problem.
func (r *run) failPOP3(step Step, err error, keyFor func(*pop3.ResponseError) string) {
	var re *pop3.ResponseError
	if errors.As(err, &re) {
		key := KeyProtocol
		if re.Command == "greeting" {
			key = KeyGreetingRejected
		} else if keyFor != nil {
			key = keyFor(re)
		}
		r.fail(step, outcome{key: key, detail: pop3Detail(re)})
		return
	}
	r.failIO(step, err)
}

func saslHas(caps map[string][]string, mech string) bool {
	for _, m := range caps["SASL"] {
		if strings.EqualFold(m, mech) {
			return true
		}
	}
	return false
}

func pop3Detail(re *pop3.ResponseError) string {
	detail := "POP3 -ERR"
	if re.Code != "" {
		detail += " [" + printable(re.Code, 40) + "]"
	}
	return detail
}
