package conntest

import (
	"errors"
	"fmt"
	"net"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
)

// imap runs STARTTLS, login and EXAMINE on a connection whose greeting was
// read (and is replayed to the client).
func (r *run) imap(conn net.Conn, preauth bool) {
	s := r.settings
	opts := &imapclient.Options{TLSConfig: r.tlsConfig()}
	var c *imapclient.Client
	if s.Security == SecuritySTARTTLS {
		var err error
		// RFC 9051 section 6.2.1; the client refuses PREAUTH before TLS
		// (section 7.1.4), which ends up here as a STARTTLS failure.
		c, err = imapclient.NewStartTLS(conn, opts)
		if err != nil {
			r.failSTARTTLS(err)
			return
		}
		r.tls = true
		r.pass(StepGreeting, "")
		r.pass(StepSTARTTLS, "")
	} else {
		c = imapclient.New(conn, opts)
		if err := c.WaitGreeting(); err != nil {
			r.failIO(StepGreeting, err)
			c.Close()
			return
		}
		r.pass(StepGreeting, "")
	}
	defer c.Close()

	if preauth {
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

func (r *run) failSTARTTLS(err error) {
	var imapErr *imap.Error
	if errors.As(err, &imapErr) {
		// Greeting was fine (we read it); the server said NO or BAD.
		r.pass(StepGreeting, "")
		key := KeySTARTTLSRefused
		if imapErr.Type == imap.StatusResponseTypeBad {
			key = KeySTARTTLSUnsupported
		}
		r.fail(StepSTARTTLS, outcome{key: key, detail: "IMAP " + string(imapErr.Type)})
		return
	}
	r.pass(StepGreeting, "")
	r.failIO(StepSTARTTLS, err)
}
