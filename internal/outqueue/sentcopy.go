package outqueue

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"postfach/internal/core"
	"postfach/internal/mailout"
	"postfach/internal/store"
)

// IMAPSentCopy appends sent messages to the mapped Sent folder of a mail account's IMAP
// server (C9) with the \Seen flag, using the account's receive settings (host, port,
// encryption, login: password, or XOAUTH2 for the OAuth2 types).
type IMAPSentCopy struct {
	Core *core.Service
	// Dial connects to the user-supplied IMAP host: the dialer that refuses private
	// addresses in production.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// RootCAs replaces the system roots (tests, on-premises CAs).
	RootCAs *x509.CertPool
	Timeout time.Duration // whole copy; default 1m
}

// CopyToSent appends raw to the Sent folder; done is false when the mailbox asks for no copy.
func (c *IMAPSentCopy) CopyToSent(ctx context.Context, m store.Mailbox, raw []byte) (bool, error) {
	if !wantsSentCopy(&m) {
		return false, nil
	}
	as, err := core.ParseAccountSettings(m.Settings)
	if err != nil {
		return false, err
	}
	rs := as.Receive
	login, err := c.login(ctx, m, rs)
	if err != nil {
		return false, err
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dial := c.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	conn, err := dial(ctx, "tcp", net.JoinHostPort(rs.Host, strconv.Itoa(rs.Port)))
	if err != nil {
		return false, fmt.Errorf("sent copy: connect: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	tlsConfig := &tls.Config{ServerName: rs.Host, RootCAs: c.RootCAs, MinVersion: tls.VersionTLS12}
	opts := &imapclient.Options{TLSConfig: tlsConfig}
	var cl *imapclient.Client
	switch rs.Security {
	case "tls":
		cl = imapclient.New(tls.Client(conn, tlsConfig), opts)
	case "none":
		cl = imapclient.New(conn, opts)
	default: // starttls, the safe default
		if cl, err = imapclient.NewStartTLS(conn, opts); err != nil {
			conn.Close()
			return false, fmt.Errorf("sent copy: starttls: %w", err)
		}
	}
	defer cl.Close()
	if err := login(cl); err != nil {
		return false, fmt.Errorf("sent copy: login: %w", err)
	}
	folder := as.Folders.Sent
	err = appendSeen(cl, folder, raw)
	var ie *imap.Error
	if errors.As(err, &ie) && ie.Code == imap.ResponseCodeTryCreate {
		// RFC 9051 §6.3.12: TRYCREATE says the folder is missing; create it once.
		if cerr := cl.Create(folder, nil).Wait(); cerr == nil {
			err = appendSeen(cl, folder, raw)
		}
	}
	if err != nil {
		return false, fmt.Errorf("sent copy: append to %q: %w", folder, err)
	}
	_ = cl.Logout().Wait()
	return true, nil
}

// login prepares the account's IMAP login before anything is dialled: the receive password,
// or for an OAuth2 type (C2) XOAUTH2 with a fresh access token of the account's grant. A
// revoked grant fails with core.ErrReauthorize and puts the account into the re-authorise
// state, like the fetcher does.
func (c *IMAPSentCopy) login(ctx context.Context, m store.Mailbox, rs core.ReceiveSettings) (func(*imapclient.Client) error, error) {
	if p := core.OAuthProviderFor(rs.Type); p != "" {
		token, err := c.Core.AccountAccessToken(ctx, m, p)
		if err != nil {
			return nil, fmt.Errorf("sent copy: access token: %w", err)
		}
		return func(cl *imapclient.Client) error {
			if !cl.Caps().Has(imap.AuthCap("XOAUTH2")) {
				return errors.New("server offers no XOAUTH2")
			}
			return cl.Authenticate(mailout.NewXOAuth2Client(rs.Username, token))
		}, nil
	}
	password, err := c.Core.ReceivePassword(m)
	if err != nil {
		return nil, fmt.Errorf("sent copy: open password: %w", err)
	}
	return func(cl *imapclient.Client) error { return cl.Login(rs.Username, password).Wait() }, nil
}

// appendSeen stores a message flagged \Seen: the user wrote it, so it is not unread
// (RFC 9051 §6.3.12 APPEND).
func appendSeen(cl *imapclient.Client, folder string, raw []byte) error {
	cmd := cl.Append(folder, int64(len(raw)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen}})
	if _, err := cmd.Write(raw); err != nil {
		return err
	}
	if err := cmd.Close(); err != nil {
		return err
	}
	_, err := cmd.Wait()
	return err
}
