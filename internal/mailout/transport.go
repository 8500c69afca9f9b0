package mailout

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-sasl"
)

// Security says how a connection to an SMTP server is protected (feature C5).
type Security string

const (
	// SecurityNone speaks plain SMTP. Only for servers on a trusted network.
	SecurityNone Security = "none"
	// SecurityTLS is implicit TLS from the first byte (RFC 8314 §3.3, port 465).
	SecurityTLS Security = "tls"
	// SecurityStartTLS requires STARTTLS (RFC 3207); a server that does not
	// offer it is an error, never a silent downgrade.
	SecurityStartTLS Security = "starttls"
	// SecurityOpportunistic uses STARTTLS when offered and does not verify the
	// certificate; for direct delivery to MX hosts (RFC 7435, see DeliverMX).
	SecurityOpportunistic Security = "opportunistic"
)

// AuthMethod is the SASL mechanism used to log in to a mailbox's own SMTP
// server (feature C6). The empty method means no login.
type AuthMethod string

const (
	AuthNone    AuthMethod = ""
	AuthPlain   AuthMethod = "plain"
	AuthLogin   AuthMethod = "login"
	AuthXOAuth2 AuthMethod = "xoauth2"
)

// Route is one way out: a smarthost, a mailbox's own submission server, or
// (built by DeliverMX) one MX host.
type Route struct {
	Host     string
	Port     int
	Security Security
	Auth     AuthMethod
	Username string
	Password string
	// OAuth2Token is the access token for AuthXOAuth2; refreshing it is the
	// caller's job.
	OAuth2Token string
	// RootCAs overrides the system roots for certificate verification
	// (tests, on-premises CAs). Nil means the system pool.
	RootCAs *x509.CertPool
	// HeloName is the name sent in EHLO; empty falls back to
	// Deliverer.HeloName.
	HeloName string
}

// Validate reports configuration mistakes before any connection is made.
func (r Route) Validate() error {
	if r.Host == "" {
		return errors.New("mailout: route has no host")
	}
	if strings.ContainsAny(r.Host, "\r\n\x00 /") {
		return fmt.Errorf("mailout: route host %q is not a host name", r.Host)
	}
	if r.Port <= 0 || r.Port > 65535 {
		return fmt.Errorf("mailout: route port %d out of range", r.Port)
	}
	switch r.Security {
	case SecurityNone, SecurityTLS, SecurityStartTLS, SecurityOpportunistic:
	default:
		return fmt.Errorf("mailout: unknown security %q", r.Security)
	}
	switch r.Auth {
	case AuthNone:
	case AuthPlain, AuthLogin:
		if r.Username == "" {
			return fmt.Errorf("mailout: auth %s needs a username", r.Auth)
		}
	case AuthXOAuth2:
		if r.Username == "" || r.OAuth2Token == "" {
			return errors.New("mailout: auth xoauth2 needs a username and a token")
		}
	default:
		return fmt.Errorf("mailout: unknown auth method %q", r.Auth)
	}
	for _, s := range []string{r.Username, r.Password, r.OAuth2Token, r.HeloName} {
		if strings.ContainsAny(s, "\r\n\x00") {
			return errors.New("mailout: route credentials or helo name contain CR, LF or NUL")
		}
	}
	return nil
}

// tlsConfig builds the client TLS configuration. Required and implicit TLS
// verify the certificate against the host name; opportunistic TLS does not,
// because an unverified encrypted channel is still better than cleartext and
// MX host names are rarely covered by certificates (RFC 7435 §1.3; this is
// what Postfix's "may" level does).
func (r Route) tlsConfig() *tls.Config {
	cfg := &tls.Config{
		ServerName: strings.TrimSuffix(r.Host, "."),
		RootCAs:    r.RootCAs,
		MinVersion: tls.VersionTLS12,
	}
	if r.Security == SecurityOpportunistic {
		cfg.InsecureSkipVerify = true
	}
	return cfg
}

// saslClient returns the SASL client for the route's auth method.
func (r Route) saslClient() sasl.Client {
	switch r.Auth {
	case AuthPlain:
		return sasl.NewPlainClient("", r.Username, r.Password)
	case AuthLogin:
		return &loginClient{username: r.Username, password: r.Password}
	case AuthXOAuth2:
		return NewXOAuth2Client(r.Username, r.OAuth2Token)
	}
	return nil
}

// NewXOAuth2Client is the client side of XOAUTH2, the OAuth2 mechanism of
// Google and Microsoft (documented by both, not an RFC; go-sasl lacks it).
// It serves every protocol that speaks SASL: SMTP here, IMAP for the Sent
// copy and the connection test.
func NewXOAuth2Client(username, token string) sasl.Client {
	return &xoauth2Client{username: username, token: token}
}

// xoauth2Client sends the initial response "user=U^Aauth=Bearer T^A^A". On
// failure the server sends a JSON challenge, which must be answered with an
// empty response so that it sends the final error reply.
type xoauth2Client struct {
	username, token string
}

func (c *xoauth2Client) Start() (string, []byte, error) {
	ir := "user=" + c.username + "\x01auth=Bearer " + c.token + "\x01\x01"
	return "XOAUTH2", []byte(ir), nil
}

func (c *xoauth2Client) Next(challenge []byte) ([]byte, error) {
	return []byte{}, nil
}

// loginClient implements the obsolete but widespread LOGIN mechanism
// (draft-murchison-sasl-login). go-sasl's client sends the user name as an
// initial response and insists on the exact challenge "Password:"; servers
// differ in both, so this one waits for the prompts and recognises them by
// content, falling back to their order.
type loginClient struct {
	username, password string
	step               int
}

func (c *loginClient) Start() (string, []byte, error) {
	return "LOGIN", nil, nil
}

func (c *loginClient) Next(challenge []byte) ([]byte, error) {
	c.step++
	lower := bytes.ToLower(challenge)
	switch {
	case bytes.Contains(lower, []byte("user")):
		return []byte(c.username), nil
	case bytes.Contains(lower, []byte("pass")):
		return []byte(c.password), nil
	case c.step == 1:
		return []byte(c.username), nil
	case c.step == 2:
		return []byte(c.password), nil
	}
	return nil, fmt.Errorf("mailout: unexpected LOGIN challenge %q", challenge)
}
