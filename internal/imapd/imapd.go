// Package imapd is the IMAP server of hosted mailboxes (H10): go-imap's imapserver speaking
// the protocol, this package keeping the state in the database (store.IMAPFolder,
// store.IMAPEntry), so that any number of instances serve the same mailbox.
//
// Rules the code keeps:
//   - The user name is the mailbox's full address; logins go through core.AuthenticateHosted
//     (throttled, logged) and only over TLS or after STARTTLS.
//   - A selected session holds a snapshot of UIDs and flags; it learns what others changed
//     by comparing the folder's modseq on poll (after commands and during IDLE). Signals
//     from mailhub say when to look; a periodic look covers lost signals.
//   - Mail the inbound server stored gets its UID lazily, in INBOX (received) or Sent (sent),
//     under a lock on the mailbox's INBOX row so concurrent sessions never assign twice.
//   - APPEND stores through mailstore.Deliver (threading and filing like any received mail,
//     no out-of-office reply). EXPUNGE removes the message from the IMAP view; the stored
//     message stays, because it may be filed at a contact's journal.
//   - A new password ends open sessions at once (mailhub KindCredentials).
package imapd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"postfach/internal/core"
	"postfach/internal/mailhub"
	"postfach/internal/store"
)

// Config configures a Server.
type Config struct {
	Core     *core.Service
	Hub      *mailhub.Hub
	TLS      *tls.Config // STARTTLS; required for logins unless InsecureAuth
	Hostname string
	Log      *slog.Logger
	// PollInterval bounds how long a change by a writer that sends no signal (the inbound
	// server on SQLite) stays unseen by an idle session.
	PollInterval time.Duration
	// InsecureAuth allows logins without TLS (tests only).
	InsecureAuth bool
	// MaxAppendSize bounds one APPEND.
	MaxAppendSize uint32
}

// Server serves IMAP for hosted mailboxes.
type Server struct {
	cfg Config
	srv *imapserver.Server

	mu       sync.Mutex
	sessions map[*session]struct{}

	snapshots *folderSnapshots // the last entry list per folder, for SELECT
}

// snapshotFolders bounds the folders whose entry lists are kept for SELECT (about 64 bytes
// per message).
const snapshotFolders = 1024

// New makes a server.
func New(cfg Config) *Server {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 2 * time.Second
	}
	if cfg.MaxAppendSize == 0 {
		cfg.MaxAppendSize = 50 << 20
	}
	s := &Server{cfg: cfg, sessions: map[*session]struct{}{}, snapshots: newFolderSnapshots(snapshotFolders)}
	s.srv = imapserver.New(&imapserver.Options{
		NewSession: s.newSession,
		Caps: imap.CapSet{
			imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}, imap.CapMove: {}, imap.CapNamespace: {},
			imap.CapAppendLimit: {}, imap.CapSpecialUse: {},
		},
		TLSConfig:    cfg.TLS,
		InsecureAuth: cfg.InsecureAuth,
		Logger:       slogLogger{cfg.Log},
	})
	return s
}

type slogLogger struct{ log *slog.Logger }

func (l slogLogger) Printf(format string, v ...any) { l.log.Warn(fmt.Sprintf(format, v...)) }

// Serve accepts plain connections (STARTTLS, port 143) on ln until Close.
func (s *Server) Serve(ln net.Listener) error {
	return s.serve(corkListener{Listener: ln})
}

// ServeImplicitTLS accepts connections on ln that start with TLS (port 993) until Close.
func (s *Server) ServeImplicitTLS(ln net.Listener) error {
	if s.cfg.TLS == nil {
		return errors.New("imapd: implicit TLS needs a certificate")
	}
	return s.serve(corkListener{Listener: ln, tlsConfig: s.cfg.TLS})
}

func (s *Server) serve(ln net.Listener) error {
	err := s.srv.Serve(ln)
	if err != nil && errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Close stops accepting and ends every session.
func (s *Server) Close() error {
	return s.srv.Close()
}

func (s *Server) newSession(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
	sess := &session{srv: s, conn: c, ctx: context.Background()}
	if ap, err := netip.ParseAddrPort(c.NetConn().RemoteAddr().String()); err == nil {
		sess.remote = ap.Addr()
	}
	return sess, &imapserver.GreetingData{}, nil
}

func (s *Server) db() *store.DB { return s.cfg.Core.DB }

var (
	errNoSuchMailbox = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: "No such mailbox"}
	errTryCreate     = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTryCreate, Text: "No such mailbox"}
	errThrottled     = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "Too many failed logins from your network, try later"}
	errServer        = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeServerBug, Text: "Internal error"}
)

func (sess *session) internal(err error) error {
	sess.srv.cfg.Log.Error("imap: internal error", "err", err, "mailbox", sess.p.Mailbox.ID)
	return errServer
}
