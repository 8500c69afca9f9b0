package pop3

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Backend authenticates users of hosted mailboxes.
type Backend interface {
	// Authenticate checks credentials for a hosted mailbox; remoteIP is for
	// throttling and logging. It returns ErrAuthFailed (possibly wrapped)
	// for wrong credentials and ErrTemporarilyUnavailable or ErrInUse when
	// the mailbox cannot be opened now.
	Authenticate(ctx context.Context, user, pass string, remoteIP netip.Addr) (Mailbox, error)
}

// Mailbox is one authenticated session's view of a hosted maildrop.
type Mailbox interface {
	// Messages returns the maildrop snapshot at login: stable order, each
	// with a UID (stable, unique, at most 70 printable characters) and its
	// size in octets with CRLF line endings.
	Messages(ctx context.Context) ([]MessageInfo, error)
	// Open returns the raw message (CRLF line endings).
	Open(ctx context.Context, uid string) (io.ReadCloser, error)
	// Delete removes messages; called only in the UPDATE state after QUIT,
	// RFC 1939 §6.
	Delete(ctx context.Context, uids []string) error
	// Close releases the mailbox; called once when the session ends.
	Close() error
	// Done is closed when the session must end (for example because the
	// password was changed); the server then drops the connection without
	// deleting anything.
	Done() <-chan struct{}
}

// Server defaults.
const (
	// RFC 1939 §3: the autologout timer must be at least 10 minutes.
	DefaultAutologoutTimeout = 10 * time.Minute
	// RFC 2449 §4 allows 255 octets per command; SASL responses may be
	// longer (RFC 5034 §4), so the default leaves room.
	DefaultMaxLineLength = 4096
	// Commands accepted before authentication succeeds.
	DefaultMaxUnauthCommands = 20
	// Failed authentications before the server hangs up.
	DefaultMaxAuthFailures = 3
)

// Server is a POP3 server for hosted mailboxes. Set the fields before Serve;
// zero values take the defaults above.
type Server struct {
	Backend Backend
	// TLSConfig enables STLS (RFC 2595) and is required with ImplicitTLS.
	TLSConfig *tls.Config
	Logger    *slog.Logger
	// ImplicitTLS makes every connection start with a TLS handshake (port 995).
	ImplicitTLS bool
	// AllowInsecureAuth permits USER/PASS and AUTH without TLS. For tests.
	AllowInsecureAuth bool
	// Hostname appears in the greeting.
	Hostname string
	// AutologoutTimeout is the idle time after which a session is dropped.
	AutologoutTimeout time.Duration
	// MaxLineLength bounds a command line in octets, without CRLF.
	MaxLineLength int
	// MaxUnauthCommands bounds the commands of a session before it
	// authenticates.
	MaxUnauthCommands int
	// MaxAuthFailures is how many failed logins a session may have.
	MaxAuthFailures int

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	sessions  sync.WaitGroup
	baseCtx   context.Context
	cancel    context.CancelFunc
	nextID    atomic.Uint64
}

func (s *Server) init() {
	if s.listeners == nil {
		s.listeners = make(map[net.Listener]struct{})
		s.conns = make(map[net.Conn]struct{})
		s.baseCtx, s.cancel = context.WithCancel(context.Background())
	}
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (s *Server) autologout() time.Duration {
	if s.AutologoutTimeout > 0 {
		return s.AutologoutTimeout
	}
	return DefaultAutologoutTimeout
}

func orDefault(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// Serve accepts connections on ln until Close; it always returns a non-nil
// error, ErrServerClosed after Close.
func (s *Server) Serve(ln net.Listener) error {
	if s.Backend == nil {
		return errors.New("pop3: Server.Backend is nil")
	}
	if s.ImplicitTLS && s.TLSConfig == nil {
		return errors.New("pop3: ImplicitTLS needs a TLSConfig")
	}
	s.mu.Lock()
	s.init()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()

	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			if isTemporaryAcceptError(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.logger().Warn("pop3: accept failed, retrying", "err", err, "in", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("pop3: accept: %w", err)
		}
		backoff = 0
		if !s.track(conn) {
			conn.Close()
			return ErrServerClosed
		}
		go func() {
			defer s.sessions.Done()
			defer s.untrack(conn)
			s.serveConn(conn)
		}()
	}
}

// isTemporaryAcceptError classifies accept errors such as EMFILE that go
// away when other connections close; they are retried rather than ending Serve.
func isTemporaryAcceptError(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// track registers a new session. The WaitGroup is incremented under the
// mutex so that Close, which sets closed under it, never races with Add.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	s.sessions.Add(1)
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

// Close closes the listeners and all open sessions (which delete nothing:
// they never reach QUIT) and waits for the sessions to end.
func (s *Server) Close() error {
	s.mu.Lock()
	s.init()
	s.closed = true
	s.cancel()
	var err error
	for ln := range s.listeners {
		if cerr := ln.Close(); cerr != nil && err == nil && !errors.Is(cerr, net.ErrClosed) {
			err = fmt.Errorf("pop3: closing listener: %w", cerr)
		}
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.sessions.Wait()
	return err
}

func (s *Server) serveConn(raw net.Conn) {
	id := s.nextID.Add(1)
	remote := remoteAddr(raw)
	log := s.logger().With("session", id, "remote", remote.String())
	sess := &session{
		srv:      s,
		raw:      raw,
		remoteIP: remote.Addr(),
		log:      log,
		maxLine:  orDefault(s.MaxLineLength, DefaultMaxLineLength),
	}
	ctx, cancel := context.WithCancel(s.baseCtx)
	defer cancel()
	conn := raw
	if s.ImplicitTLS {
		tc := tls.Server(raw, s.TLSConfig)
		hsCtx, hsCancel := context.WithTimeout(ctx, s.autologout())
		err := tc.HandshakeContext(hsCtx)
		hsCancel()
		if err != nil {
			log.Debug("pop3: TLS handshake failed", "err", err)
			return
		}
		conn = tc
		sess.tlsActive = true
	}
	sess.setConn(conn)
	sess.run(ctx)
}

func remoteAddr(c net.Conn) netip.AddrPort {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}
