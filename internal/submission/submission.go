// Package submission is the SMTP submission server of hosted mailboxes (RFC 6409): port 587
// with STARTTLS and port 465 with implicit TLS (RFC 8314). Every message needs AUTH with
// the mailbox's full address and password; the envelope sender and every From: address
// must pass core.CheckSubmissionSender (the compose policy for the mailbox's assigned
// users, M1); accepted mail is handed to a Queue.
package submission

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/mail"
	"net/netip"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"postfach/internal/core"
)

// Queue takes accepted mail; it must have committed it durably when it returns nil.
type Queue interface {
	EnqueueSubmission(ctx context.Context, p core.HostedPrincipal, envelopeFrom string, recipients []string, raw []byte) error
}

// Config configures a Server.
type Config struct {
	Core     *core.Service
	Queue    Queue // nil: mail is refused with a temporary error until a queue is wired in
	TLS      *tls.Config
	Hostname string
	Log      *slog.Logger
	// InsecureAuth allows AUTH without TLS (tests only).
	InsecureAuth    bool
	MaxMessageBytes int64
	MaxRecipients   int
}

// Server is one submission listener's SMTP server.
type Server struct {
	cfg Config
	srv *smtp.Server
}

// New makes a server.
func New(cfg Config) *Server {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.MaxMessageBytes == 0 {
		cfg.MaxMessageBytes = 50 << 20
	}
	if cfg.MaxRecipients == 0 {
		cfg.MaxRecipients = 100
	}
	s := &Server{cfg: cfg}
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = cfg.Hostname
	srv.TLSConfig = cfg.TLS
	srv.AllowInsecureAuth = cfg.InsecureAuth
	srv.MaxMessageBytes = cfg.MaxMessageBytes
	srv.MaxRecipients = cfg.MaxRecipients
	srv.ReadTimeout = 5 * time.Minute
	srv.WriteTimeout = time.Minute
	srv.ErrorLog = slogLogger{cfg.Log}
	s.srv = srv
	return s
}

type slogLogger struct{ log *slog.Logger }

func (l slogLogger) Printf(format string, v ...any) { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l slogLogger) Println(v ...any)               { l.log.Warn(fmt.Sprint(v...)) }

// Serve accepts connections until Close; for port 465 pass a tls.NewListener.
func (s *Server) Serve(ln net.Listener) error {
	err := s.srv.Serve(ln)
	if errors.Is(err, smtp.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Close stops the server.
func (s *Server) Close(ctx context.Context) error { return s.srv.Shutdown(ctx) }

type session struct {
	srv    *Server
	conn   *smtp.Conn
	remote netip.Addr
	ctx    context.Context

	p     *core.HostedPrincipal
	from  string
	rcpts []string
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	sess := &session{srv: s, conn: c, ctx: context.Background()}
	if ap, err := netip.ParseAddrPort(c.Conn().RemoteAddr().String()); err == nil {
		sess.remote = ap.Addr()
	}
	return sess, nil
}

func smtpErr(code int, enh smtp.EnhancedCode, msg string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: msg}
}

var (
	errAuthRequired = smtpErr(530, smtp.EnhancedCode{5, 7, 0}, "Authentication required")
	errAuthFailed   = smtpErr(535, smtp.EnhancedCode{5, 7, 8}, "Authentication credentials invalid")
	errThrottled    = smtpErr(454, smtp.EnhancedCode{4, 7, 0}, "Too many failed logins from your network, try later")
	errTemporary    = smtpErr(451, smtp.EnhancedCode{4, 3, 0}, "Temporary server error, try again later")
)

// AuthMechanisms offers PLAIN (RFC 4616) and LOGIN (Outlook's choice, see authlogin.go).
func (s *session) AuthMechanisms() []string { return []string{sasl.Plain, mechLogin} }

func (s *session) Auth(mech string) (sasl.Server, error) {
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, username, password string) error {
			// RFC 4616 §2: an authorization identity other than the user is not supported.
			if identity != "" && !strings.EqualFold(identity, username) {
				return errAuthFailed
			}
			return s.authenticate(username, password)
		}), nil
	case mechLogin:
		return newLoginServer(s.authenticate), nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

// authenticate checks a login through core (throttled and logged) and keeps the principal.
func (s *session) authenticate(username, password string) error {
	p, err := s.srv.cfg.Core.AuthenticateHosted(s.ctx, "submission", username, password, s.remote)
	switch {
	case errors.Is(err, core.ErrHostedThrottled):
		return errThrottled
	case errors.Is(err, core.ErrHostedAuthFailed):
		return errAuthFailed
	case err != nil:
		s.srv.cfg.Log.Error("submission: auth", "err", err)
		return errTemporary
	}
	s.p = &p
	return nil
}

func (s *session) Reset() { s.from, s.rcpts = "", nil }

func (s *session) Logout() error { return nil }

// current refuses a session whose password was replaced after it logged in (H11).
func (s *session) current() error {
	if s.p == nil {
		return errAuthRequired
	}
	ok, err := s.srv.cfg.Core.HostedPasswordCurrent(s.ctx, s.p.Mailbox.ID, s.p.Generation)
	if err != nil {
		return errTemporary
	}
	if !ok {
		return errAuthFailed
	}
	return nil
}

func (s *session) allowed(address, what string) error {
	d, err := s.srv.cfg.Core.CheckSubmissionSender(s.ctx, *s.p, address)
	if err != nil {
		s.srv.cfg.Log.Error("submission: policy", "err", err)
		return errTemporary
	}
	if !d.Allowed {
		return smtpErr(550, smtp.EnhancedCode{5, 7, 1}, fmt.Sprintf("%s %s may not be used by this mailbox (%s)", what, address, d.Rule))
	}
	return nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if err := s.current(); err != nil {
		return err
	}
	if from == "" {
		return smtpErr(550, smtp.EnhancedCode{5, 7, 1}, "A sender address is required")
	}
	if err := s.allowed(from, "Sender"); err != nil {
		return err
	}
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.p == nil {
		return errAuthRequired
	}
	if _, err := mail.ParseAddress("<" + to + ">"); err != nil {
		return smtpErr(553, smtp.EnhancedCode{5, 1, 3}, "Bad recipient address")
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}

// FromAddresses reads the From: header of a message (RFC 5322 §3.6.2; it may name several).
func FromAddresses(raw []byte) ([]string, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("submission: header: %w", err)
	}
	list, err := msg.Header.AddressList("From")
	if err != nil {
		return nil, fmt.Errorf("submission: From: %w", err)
	}
	out := make([]string, len(list))
	for i, a := range list {
		out[i] = a.Address
	}
	return out, nil
}

func (s *session) Data(r io.Reader) error {
	if s.p == nil {
		return errAuthRequired
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	froms, err := FromAddresses(raw)
	if err != nil || len(froms) == 0 {
		return smtpErr(550, smtp.EnhancedCode{5, 6, 0}, "The message needs a readable From: header")
	}
	for _, f := range froms {
		if err := s.allowed(f, "From:"); err != nil {
			return err
		}
	}
	if s.srv.cfg.Queue == nil {
		return smtpErr(451, smtp.EnhancedCode{4, 3, 2}, "Outbound queue not available, try again later")
	}
	if err := s.srv.cfg.Queue.EnqueueSubmission(s.ctx, *s.p, s.from, s.rcpts, raw); err != nil {
		s.srv.cfg.Log.Error("submission: enqueue", "err", err)
		return errTemporary
	}
	return nil
}
