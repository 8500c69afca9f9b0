// Package smtpd is Postfach's inbound SMTP server: the MX for the operator's inbound domain
// (the p-addresses of mail accounts, seed 002) and for the tenants' hosted domains. It
// accepts RCPT only for existing, active inbound addresses and hosted mailboxes, never
// relays, refuses bare CR/LF in DATA (SMTP smuggling), bounds the message size, and answers
// 250 only after the message is committed: concurrent sessions share one transaction
// through the Committer (group commit), so one fsync acknowledges many messages.
package smtpd

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"postfach/internal/mailstore"
	"postfach/internal/store"
)

// DefaultMaxMessageBytes is the size limit advertised with SIZE (RFC 1870).
const DefaultMaxMessageBytes = 25 << 20

// Config configures a Server.
type Config struct {
	Hostname        string // our name in the greeting and in Received:
	InboundDomain   string // the operator's domain of the p-addresses
	MaxMessageBytes int64
	MaxRecipients   int
	TLS             *tls.Config // nil: no STARTTLS
	// MaxBatch and Linger tune the group commit (see Committer).
	MaxBatch int
	Linger   time.Duration
	Log      *slog.Logger
}

// Server is the inbound SMTP server.
type Server struct {
	cfg       Config
	db        *store.DB
	smtp      *smtp.Server
	committer *Committer
	log       *slog.Logger
}

// New builds a server on db; Serve starts it.
func New(db *store.DB, cfg Config) *Server {
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if cfg.MaxRecipients <= 0 {
		cfg.MaxRecipients = 100
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	cfg.InboundDomain = strings.ToLower(cfg.InboundDomain)
	s := &Server{cfg: cfg, db: db, log: cfg.Log, committer: NewCommitter(db, cfg.MaxBatch, cfg.Linger)}
	srv := smtp.NewServer(s)
	srv.Domain = cfg.Hostname
	srv.MaxMessageBytes = cfg.MaxMessageBytes
	srv.MaxRecipients = cfg.MaxRecipients
	srv.MaxLineLength = 4096
	srv.ReadTimeout = 5 * time.Minute // RFC 5321 §4.5.3.2.7 suggests 5 minutes at the server
	srv.WriteTimeout = time.Minute
	srv.TLSConfig = cfg.TLS
	srv.ErrorLog = slogAdapter{cfg.Log}
	s.smtp = srv
	return s
}

// Serve accepts connections on ln until Close.
func (s *Server) Serve(ln net.Listener) error {
	err := s.smtp.Serve(guardListener{ln})
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops accepting, waits for sessions to end (bounded by ctx) and flushes the
// committer.
func (s *Server) Close(ctx context.Context) error {
	err := s.smtp.Shutdown(ctx)
	if err != nil {
		_ = s.smtp.Close()
	}
	s.committer.Close()
	return err
}

// Stats reports the group-commit counters.
func (s *Server) Stats() CommitStats { return s.committer.Stats() }

// NewSession implements smtp.Backend.
func (s *Server) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{srv: s, conn: c}, nil
}

type session struct {
	srv        *Server
	conn       *smtp.Conn
	from       string
	recipients []string
	mailboxes  []store.Mailbox
}

func smtpErr(code int, enh smtp.EnhancedCode, msg string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: msg}
}

func (s *session) Reset() {
	s.from, s.recipients, s.mailboxes = "", nil, nil
}

func (s *session) Logout() error { return nil }

func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	if opts != nil && opts.Size > s.srv.cfg.MaxMessageBytes {
		return smtpErr(552, smtp.EnhancedCode{5, 3, 4}, fmt.Sprintf("Message too big: the limit is %d bytes", s.srv.cfg.MaxMessageBytes))
	}
	s.Reset()
	s.from = from
	return nil
}

// Rcpt accepts only our own, active mailboxes (A1, H4) and never relays.
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	local, domain, err := splitRecipient(to)
	switch {
	case errors.Is(err, errMalformed):
		return smtpErr(501, smtp.EnhancedCode{5, 1, 3}, "Bad recipient address syntax")
	case err != nil:
		return smtpErr(550, smtp.EnhancedCode{5, 7, 1}, "Relaying denied: we accept mail only for our own addresses")
	}
	mb, err := s.srv.resolve(context.Background(), local, domain)
	if err != nil {
		return err
	}
	for _, have := range s.mailboxes {
		if have.ID == mb.ID {
			return nil // the same mailbox twice (alias and address): one copy
		}
	}
	s.recipients = append(s.recipients, to)
	s.mailboxes = append(s.mailboxes, mb)
	return nil
}

// resolve finds the active mailbox for a recipient or returns the SMTP error to send.
func (srv *Server) resolve(ctx context.Context, local, domain string) (store.Mailbox, error) {
	rd := srv.db.Read()
	unknown := smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "No such mailbox here")
	tempFail := smtpErr(451, smtp.EnhancedCode{4, 3, 0}, "Temporary failure, please try again later")
	var mb store.Mailbox
	if domain == srv.cfg.InboundDomain {
		// p<id>.out is an envelope sender, never a recipient.
		if _, outbound, ok := store.ParseInboundLocal(local); !ok || outbound {
			return mb, unknown
		}
		m, err := rd.ResolveInboundLocal(ctx, local)
		if errors.Is(err, store.ErrNotFound) {
			return mb, unknown
		}
		if err != nil {
			srv.log.Error("smtpd: resolve inbound address", "local", local, "err", err)
			return mb, tempFail
		}
		mb = m
	} else {
		list, err := rd.HostedMailboxesByAddress(ctx, local+"@"+domain)
		if err != nil {
			srv.log.Error("smtpd: resolve hosted address", "err", err)
			return mb, tempFail
		}
		if len(list) == 0 {
			hosts, err := rd.HostsDomain(ctx, domain)
			if err != nil {
				srv.log.Error("smtpd: hosted domain", "err", err)
				return mb, tempFail
			}
			if hosts {
				return mb, unknown
			}
			return mb, smtpErr(550, smtp.EnhancedCode{5, 7, 1}, "Relaying denied: we accept mail only for our own addresses")
		}
		mb = list[0]
		for _, m := range list {
			if m.Active {
				mb = m
				break
			}
		}
	}
	if !mb.Active {
		// A1/H4: an inactive account or mailbox keeps its data but receives nothing.
		return mb, smtpErr(550, smtp.EnhancedCode{5, 2, 1}, "This mailbox is deactivated and does not accept mail")
	}
	return mb, nil
}

// Data reads the message, refuses bare line ends, and answers after the commit.
func (s *session) Data(r io.Reader) error {
	var buf bytes.Buffer
	_, err := io.Copy(&buf, &crlfReader{r: r})
	if _, tls := s.conn.TLSConnectionState(); err == nil && !tls && sawBareLineEnd(s.conn.Conn()) {
		err = errBareLineEnd
	}
	switch {
	case errors.Is(err, errBareLineEnd):
		return smtpErr(554, smtp.EnhancedCode{5, 6, 0}, "Message refused: bare CR or LF; lines must end in CRLF (RFC 5321 section 2.3.8)")
	case err != nil:
		return err // size limit (552) or a broken connection
	}
	// Parsing and hashing happen here, in the session's goroutine, so that the one commit
	// goroutine only runs statements.
	prepared := mailstore.Prepare(mailstore.Delivery{
		Source: "smtp", EnvelopeFrom: s.from, Recipients: s.recipients, Mailboxes: s.mailboxes,
		Raw: buf.Bytes(), Trace: s.received(), Hostname: s.srv.cfg.Hostname,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err = s.srv.committer.Deliver(ctx, prepared)
	if err != nil {
		s.srv.log.Error("smtpd: store message", "from", s.from, "err", err)
		return smtpErr(451, smtp.EnhancedCode{4, 3, 0}, "Temporary failure storing the message, please try again later")
	}
	return nil
}

// received is our trace field (RFC 5321 §4.4): who handed the message over, from where,
// to whom, when.
func (s *session) received() []byte {
	helo := sanitizeTrace(s.conn.Hostname())
	ip := "unknown"
	if addr, ok := s.conn.Conn().RemoteAddr().(*net.TCPAddr); ok {
		ip = addr.IP.String()
	}
	with := "ESMTP"
	if _, ok := s.conn.TLSConnectionState(); ok {
		with = "ESMTPS"
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	var b strings.Builder
	fmt.Fprintf(&b, "Received: from %s ([%s])\r\n\tby %s (Postfach) with %s id %s", helo, ip, s.srv.cfg.Hostname, with, hex.EncodeToString(id[:]))
	if len(s.recipients) == 1 {
		// Only with one recipient: naming several would disclose Bcc recipients.
		fmt.Fprintf(&b, "\r\n\tfor <%s>", sanitizeTrace(s.recipients[0]))
	}
	fmt.Fprintf(&b, ";\r\n\t%s\r\n", time.Now().Format(time.RFC1123Z))
	return []byte(b.String())
}

// sanitizeTrace keeps a client-supplied token from breaking the header.
func sanitizeTrace(s string) string {
	s = strings.Map(func(r rune) rune {
		if r <= ' ' || r >= 0x7f || r == '(' || r == ')' || r == ';' || r == '<' || r == '>' {
			return -1
		}
		return r
	}, s)
	if s == "" {
		return "unknown"
	}
	if len(s) > 255 {
		s = s[:255]
	}
	return s
}

type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Printf(format string, v ...any) { a.log.Warn(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Println(v ...any)               { a.log.Warn(fmt.Sprint(v...)) }
