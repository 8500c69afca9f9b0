package conntest

import (
	"errors"
	"fmt"
	"net"
	"slices"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
)

// imap runs STARTTLS, login and EXAMINE on a connection whose greeting was
// read (and is replayed to the client).
func (r *run) imap(conn net.Conn, g greeting) {
	s := r.settings
	opts := &imapclient.Options{TLSConfig: r.tlsConfig()}
	var c *imapclient.Client
	if s.Security == SecuritySTARTTLS {
		if g.imapCaps != nil && !slices.Contains(g.imapCaps, "STARTTLS") {
			r.fail(StepSTARTTLS, outcome{key: KeySTARTTLSUnsupported, detail: "STARTTLS not in CAPABILITY"})
			return
		}
		var err error
		// RFC 9051 section 6.2.1; the client refuses PREAUTH before TLS
		// (section 7.1.4), which ends up here as a STARTTLS failure.
		c, err = imapclient.NewStartTLS(conn, opts)
		if err != nil {
			r.failSTARTTLS(err, g.imapCaps != nil)
			return
		}
		r.tls = true
		r.pass(StepSTARTTLS, "")
	} else {
		c = imapclient.New(conn, opts)
		if err := c.WaitGreeting(); err != nil {
			r.failIO(StepAuth, err)
			c.Close()
			return
		}
	}
	defer c.Close()

	if g.verdict == greetingPreauth {
		r.pass(StepAuth, "pre-authenticated by the server")
	} else if !r.imapLogin(c) {
		return
	}

	folder := s.Folder
	if folder == "" {
		folder = "INBOX"
	}
	// EXAMINE (RFC 9051 section 6.3.3): read-only, so the test changes no
	// \Recent or \Seen state on the server.
	data, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		r.fail(StepFolder, r.imapOutcome(err, func(code imap.ResponseCode) string {
			switch code {
			case imap.ResponseCodeNonExistent, imap.ResponseCodeTryCreate:
				return KeyFolderNotFound
			case imap.ResponseCodeNoPerm:
				return KeyFolderNoPermission
			case imap.ResponseCodeInUse:
				return KeyFolderInUse
			case "":
				// Servers without RFC 5530 codes (Dovecot 2.3 among
				// them) say only NO; ask LIST whether the folder exists.
				if list, err := c.List("", folder, nil).Collect(); err == nil && len(list) == 0 {
					return KeyFolderNotFound
				}
			}
			return KeyFolderFailed
		}))
		return
	}
	r.pass(StepFolder, fmt.Sprintf("%d messages", data.NumMessages))
	_ = c.Logout().Wait()
}

func (r *run) imapLogin(c *imapclient.Client) bool {
	s := r.settings
	if !r.requireCredentials() {
		return false
	}
	caps := c.Caps()
	var err error
	switch {
	case s.OAuth2Token != "" && caps.Has(imap.Cap("AUTH=XOAUTH2")):
		r.credentialsSent()
		err = c.Authenticate(newXOAUTH2Client(s.Username, s.OAuth2Token))
	case s.OAuth2Token != "" && caps.Has(imap.Cap("AUTH=OAUTHBEARER")):
		r.credentialsSent()
		err = c.Authenticate(sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{Username: s.Username, Token: s.OAuth2Token}))
	case s.OAuth2Token != "":
		r.fail(StepAuth, outcome{key: KeyAuthNoMechanism, detail: "server offers neither XOAUTH2 nor OAUTHBEARER"})
		return false
	case caps.Has(imap.CapLoginDisabled):
		// RFC 9051 section 6.2.3: LOGIN is refused on this connection.
		r.fail(StepAuth, outcome{key: KeyAuthEncryptionRequired, detail: "server announces LOGINDISABLED"})
		return false
	default:
		r.credentialsSent()
		err = c.Login(s.Username, s.Password).Wait()
	}
	if err != nil {
		oauth := s.OAuth2Token != ""
		r.fail(StepAuth, r.imapOutcome(err, func(code imap.ResponseCode) string {
			switch code {
			case imap.ResponseCodeUnavailable:
				return KeyAuthTemporary
			case imap.ResponseCodePrivacyRequired:
				return KeyAuthEncryptionRequired
			}
			if oauth {
				return KeyAuthOAuthFailed
			}
			return KeyAuthFailed
		}))
		return false
	}
	r.pass(StepAuth, "")
	return true
}

// imapOutcome maps a tagged NO/BAD to a key by its response code (RFC 5530),
// and anything else to a connection problem. The response text stays out.
func (r *run) imapOutcome(err error, keyFor func(imap.ResponseCode) string) outcome {
	var imapErr *imap.Error
	if errors.As(err, &imapErr) {
		detail := "IMAP " + string(imapErr.Type)
		if imapErr.Code != "" {
			detail += " [" + printable(string(imapErr.Code), 40) + "]"
		}
		return outcome{key: keyFor(imapErr.Code), detail: detail}
	}
	if o, ok := classifyTLS(err, r.now()); ok {
		return o
	}
	return classifyIO(r.ctx, err)
}

// failSTARTTLS reports a failed STARTTLS. A NO or BAD from a server that
// did not list its capabilities in the greeting most likely means it has
// no STARTTLS; one that listed STARTTLS refused it.
func (r *run) failSTARTTLS(err error, announced bool) {
	var imapErr *imap.Error
	if errors.As(err, &imapErr) {
		key := KeySTARTTLSUnsupported
		if announced {
			key = KeySTARTTLSRefused
		}
		r.fail(StepSTARTTLS, outcome{key: key, detail: "IMAP " + string(imapErr.Type)})
		return
	}
	r.failIO(StepSTARTTLS, err)
}
