package pop3

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"time"
)

// maxBadCommands is how many unknown or malformed commands a session may
// send before the server hangs up on it.
const maxBadCommands = 20

type sessionState int

const (
	stateAuthorization sessionState = iota // RFC 1939 §4
	stateTransaction                       // RFC 1939 §5
)

// session is one POP3 connection. It runs on a single goroutine; only the
// Done watcher touches it from outside, by closing raw.
type session struct {
	srv       *Server
	raw       net.Conn // the TCP connection, closed to end the session
	conn      net.Conn // raw, or TLS on top of it
	br        *bufio.Reader
	bw        *bufio.Writer
	remoteIP  netip.Addr
	log       *slog.Logger
	maxLine   int
	tlsActive bool

	state          sessionState
	user           string // from USER, waiting for PASS
	authFailures   int
	unauthCommands int
	badCommands    int

	mailbox Mailbox
	msgs    []MessageInfo
	deleted []bool
}

// deadlineWriter renews the write deadline before every write, so a client
// that stops reading is dropped after the autologout time.
type deadlineWriter struct {
	conn    net.Conn
	timeout time.Duration
}

func (w deadlineWriter) Write(p []byte) (int, error) {
	if err := w.conn.SetWriteDeadline(time.Now().Add(w.timeout)); err != nil {
		return 0, err
	}
	return w.conn.Write(p)
}

// setConn switches the session to conn. Input still buffered from the old
// connection is dropped: after STLS it is plaintext that may have been
// injected (RFC 2595 §4, "STARTTLS injection").
func (s *session) setConn(conn net.Conn) {
	s.conn = conn
	s.br = bufio.NewReader(conn)
	s.bw = bufio.NewWriterSize(deadlineWriter{conn: conn, timeout: s.srv.autologout()}, 16<<10)
}

func (s *session) authAllowed() bool { return s.tlsActive || s.srv.AllowInsecureAuth }

func (s *session) ok(format string, args ...any) {
	fmt.Fprintf(s.bw, "+OK "+format+"\r\n", args...)
}

// fail sends "-ERR", with an RFC 2449 §8 response code when code is set.
func (s *session) fail(code, text string) {
	if code != "" {
		fmt.Fprintf(s.bw, "-ERR [%s] %s\r\n", code, text)
		return
	}
	fmt.Fprintf(s.bw, "-ERR %s\r\n", text)
}

func (s *session) run(ctx context.Context) {
	defer func() {
		if s.mailbox != nil {
			if err := s.mailbox.Close(); err != nil {
				s.log.Warn("pop3: closing mailbox", "err", err)
			}
		}
	}()
	host := s.srv.Hostname
	if host == "" {
		host = "Postfach"
	}
	s.ok("%s POP3 server ready", host)
	for {
		line, err := s.readCommand()
		if err != nil {
			if errors.Is(err, errLineTooLong) {
				s.fail("", "line too long")
				_ = s.bw.Flush()
			}
			s.log.Debug("pop3: session ended", "err", err)
			return
		}
		if s.mailboxDone() {
			s.log.Info("pop3: session ended by the mailbox (credentials changed?)")
			return
		}
		if s.state == stateAuthorization {
			s.unauthCommands++
			if s.unauthCommands > orDefault(s.srv.MaxUnauthCommands, DefaultMaxUnauthCommands) {
				s.fail("", "too many commands without authentication")
				_ = s.bw.Flush()
				return
			}
		}
		cmd, err := parseCommand(line)
		if err != nil {
			if !s.badCommand("unknown command") {
				return
			}
			continue
		}
		if quit := s.dispatch(ctx, cmd); quit {
			_ = s.bw.Flush()
			return
		}
	}
}

// badCommand answers a bad command and reports whether the session may go on.
func (s *session) badCommand(text string) bool {
	s.badCommands++
	s.fail("", text)
	if s.badCommands >= maxBadCommands {
		s.fail("", "too many bad commands")
		_ = s.bw.Flush()
		return false
	}
	return true
}

func (s *session) mailboxDone() bool {
	if s.mailbox == nil {
		return false
	}
	select {
	case <-s.mailbox.Done():
		return true
	default:
		return false
	}
}

// readCommand reads the next command line. Responses are flushed only when
// no further complete command is buffered, which answers a pipelined batch
// (RFC 2449 §6.6) in few writes without ever waiting on a half-read command.
func (s *session) readCommand() (string, error) {
	if !s.hasBufferedLine() {
		if err := s.bw.Flush(); err != nil {
			return "", err
		}
	}
	if err := s.conn.SetReadDeadline(time.Now().Add(s.srv.autologout())); err != nil {
		return "", err
	}
	return readLine(s.br, s.maxLine)
}

func (s *session) hasBufferedLine() bool {
	n := s.br.Buffered()
	if n == 0 {
		return false
	}
	b, _ := s.br.Peek(n)
	return bytes.IndexByte(b, '\n') >= 0
}

// dispatch runs one command and reports whether the session ends.
func (s *session) dispatch(ctx context.Context, cmd command) bool {
	if s.state == stateAuthorization {
		switch cmd.name {
		case "CAPA":
			s.capa()
		case "USER":
			s.cmdUser(cmd.args)
		case "PASS":
			return s.cmdPass(ctx, cmd.args)
		case "AUTH":
			return s.cmdAuth(ctx, cmd.args)
		case "STLS":
			return s.cmdSTLS(ctx)
		case "QUIT":
			s.ok("bye")
			return true
		case "STAT", "LIST", "RETR", "DELE", "NOOP", "RSET", "TOP", "UIDL":
			s.fail("", "not authenticated")
		default:
			return !s.badCommand("unknown command")
		}
		return false
	}
	switch cmd.name {
	case "CAPA":
		s.capa()
	case "STAT":
		count, size := s.totals()
		s.ok("%d %d", count, size)
	case "LIST":
		s.cmdList(cmd.args)
	case "UIDL":
		s.cmdUIDL(cmd.args)
	case "RETR":
		return s.cmdRetr(ctx, cmd.args)
	case "TOP":
		return s.cmdTop(ctx, cmd.args)
	case "DELE":
		s.cmdDele(cmd.args)
	case "NOOP":
		s.ok("")
	case "RSET":
		clear(s.deleted)
		count, size := s.totals()
		s.ok("maildrop has %d messages (%d octets)", count, size)
	case "QUIT":
		s.update(ctx)
		return true
	case "USER", "PASS", "AUTH", "STLS", "APOP":
		s.fail("", "already authenticated")
	default:
		return !s.badCommand("unknown command")
	}
	return false
}

// capa answers CAPA, RFC 2449 §5, with what is available in this state.
func (s *session) capa() {
	s.ok("capability list follows")
	caps := []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "IMPLEMENTATION Postfach"}
	if s.state == stateAuthorization {
		if s.srv.TLSConfig != nil && !s.tlsActive {
			caps = append(caps, "STLS")
		}
		if s.authAllowed() {
			caps = append(caps, "USER", "SASL PLAIN")
		}
	}
	for _, c := range caps {
		s.bw.WriteString(c + "\r\n")
	}
	s.bw.WriteString(".\r\n")
}

func (s *session) totals() (count int, size int64) {
	for i, m := range s.msgs {
		if !s.deleted[i] {
			count++
			size += m.Size
		}
	}
	return count, size
}

// message returns the index of a message-number argument that names an
// existing, undeleted message, or answers -ERR.
func (s *session) message(arg string) (int, bool) {
	n, err := parseNumber(arg)
	if err != nil {
		s.fail("", "invalid message number")
		return 0, false
	}
	if n < 1 || n > len(s.msgs) {
		s.fail("", "no such message")
		return 0, false
	}
	if s.deleted[n-1] {
		s.fail("", fmt.Sprintf("message %d already deleted", n))
		return 0, false
	}
	return n - 1, true
}

func (s *session) cmdList(args string) {
	f, err := splitArgs(args, 0, 1)
	if err != nil {
		s.fail("", "usage: LIST [msg]")
		return
	}
	if len(f) == 1 {
		if i, ok := s.message(f[0]); ok {
			s.ok("%d %d", i+1, s.msgs[i].Size)
		}
		return
	}
	count, size := s.totals()
	s.ok("%d messages (%d octets)", count, size)
	for i, m := range s.msgs {
		if !s.deleted[i] {
			fmt.Fprintf(s.bw, "%d %d\r\n", i+1, m.Size)
		}
	}
	s.bw.WriteString(".\r\n")
}

// cmdUIDL implements UIDL, RFC 1939 §7.
func (s *session) cmdUIDL(args string) {
	f, err := splitArgs(args, 0, 1)
	if err != nil {
		s.fail("", "usage: UIDL [msg]")
		return
	}
	if len(f) == 1 {
		if i, ok := s.message(f[0]); ok {
			s.ok("%d %s", i+1, s.msgs[i].UID)
		}
		return
	}
	s.ok("unique-id listing follows")
	for i, m := range s.msgs {
		if !s.deleted[i] {
			fmt.Fprintf(s.bw, "%d %s\r\n", i+1, m.UID)
		}
	}
	s.bw.WriteString(".\r\n")
}

func (s *session) cmdDele(args string) {
	f, err := splitArgs(args, 1, 1)
	if err != nil {
		s.fail("", "usage: DELE msg")
		return
	}
	if i, ok := s.message(f[0]); ok {
		s.deleted[i] = true
		s.ok("message %d deleted", i+1)
	}
}

func (s *session) cmdRetr(ctx context.Context, args string) bool {
	f, err := splitArgs(args, 1, 1)
	if err != nil {
		s.fail("", "usage: RETR msg")
		return false
	}
	i, ok := s.message(f[0])
	if !ok {
		return false
	}
	return s.sendMessage(ctx, i, -1)
}

// cmdTop implements TOP, RFC 1939 §7.
func (s *session) cmdTop(ctx context.Context, args string) bool {
	f, err := splitArgs(args, 2, 2)
	if err != nil {
		s.fail("", "usage: TOP msg n")
		return false
	}
	lines, err := parseNumber(f[1])
	if err != nil {
		s.fail("", "invalid line count")
		return false
	}
	i, ok := s.message(f[0])
	if !ok {
		return false
	}
	return s.sendMessage(ctx, i, lines)
}

// sendMessage streams message i, whole (lines < 0) or its header and first
// lines body lines. An error after "+OK" went out cannot be reported in the
// protocol, so the session then ends (and deletes nothing).
func (s *session) sendMessage(ctx context.Context, i, lines int) bool {
	rc, err := s.mailbox.Open(ctx, s.msgs[i].UID)
	if err != nil {
		s.log.Warn("pop3: opening message", "uid", s.msgs[i].UID, "err", err)
		s.fail(CodeSysTemp, "message unavailable")
		return false
	}
	defer rc.Close()
	if lines < 0 {
		s.ok("%d octets", s.msgs[i].Size)
	} else {
		s.ok("top of message follows")
	}
	dw := newDotWriter(s.bw)
	if lines < 0 {
		_, err = io.Copy(dw, rc)
	} else {
		err = copyTop(dw, rc, lines)
	}
	if err == nil {
		err = dw.Close()
	}
	if err != nil {
		s.log.Warn("pop3: sending message", "uid", s.msgs[i].UID, "err", err)
		return true
	}
	return false
}

// update is the UPDATE state, RFC 1939 §6: deletions happen here only.
func (s *session) update(ctx context.Context) {
	var uids []string
	for i, m := range s.msgs {
		if s.deleted[i] {
			uids = append(uids, m.UID)
		}
	}
	if len(uids) > 0 {
		if err := s.mailbox.Delete(ctx, uids); err != nil {
			s.log.Error("pop3: deleting messages", "count", len(uids), "err", err)
			s.fail(CodeSysTemp, "some deleted messages not removed")
			return
		}
		s.log.Info("pop3: messages deleted", "count", len(uids))
	}
	s.ok("bye (%d messages deleted)", len(uids))
}

func (s *session) cmdUser(args string) {
	if !s.authAllowed() {
		s.fail("", "TLS required: use STLS first")
		return
	}
	if args == "" {
		s.fail("", "usage: USER name")
		return
	}
	s.user = args
	s.ok("send PASS")
}

// cmdPass takes the rest of the line as password: RFC 1939 §7 allows
// spaces in it.
func (s *session) cmdPass(ctx context.Context, args string) bool {
	if !s.authAllowed() {
		s.fail("", "TLS required: use STLS first")
		return false
	}
	if s.user == "" {
		s.fail("", "USER first")
		return false
	}
	user := s.user
	s.user = ""
	return s.login(ctx, user, args, "USER")
}

// login authenticates and opens the maildrop snapshot. It reports whether
// the session must end (too many failures).
func (s *session) login(ctx context.Context, user, pass, mech string) bool {
	log := s.log.With("user", user, "mech", mech)
	mb, err := s.srv.Backend.Authenticate(ctx, user, pass, s.remoteIP)
	if err != nil {
		switch {
		case errors.Is(err, ErrAuthFailed):
			s.authFailures++
			log.Info("pop3: login failed")
			s.fail(CodeAuth, "invalid user name or password")
			return s.authFailures >= orDefault(s.srv.MaxAuthFailures, DefaultMaxAuthFailures)
		case errors.Is(err, ErrInUse):
			log.Info("pop3: login refused, maildrop in use")
			s.fail(CodeInUse, "maildrop in use")
		case errors.Is(err, ErrTemporarilyUnavailable):
			log.Info("pop3: login refused, temporarily unavailable", "err", err)
			s.fail(CodeSysTemp, "temporarily unavailable, try again later")
		default:
			log.Error("pop3: authenticating", "err", err)
			s.fail(CodeSysTemp, "internal error, try again later")
		}
		return false
	}
	msgs, err := mb.Messages(ctx)
	if err == nil {
		err = checkSnapshot(msgs)
	}
	if err != nil {
		log.Error("pop3: reading maildrop", "err", err)
		if cerr := mb.Close(); cerr != nil {
			log.Warn("pop3: closing mailbox", "err", cerr)
		}
		s.fail(CodeSysTemp, "maildrop unavailable, try again later")
		return false
	}
	s.mailbox, s.msgs, s.deleted = mb, msgs, make([]bool, len(msgs))
	s.state = stateTransaction
	s.log = log
	// End the session promptly when the mailbox says so, even while the
	// session waits for the next command.
	done, raw := mb.Done(), s.raw
	go func() {
		select {
		case <-done:
			raw.Close()
		case <-ctx.Done():
		}
	}()
	count, size := s.totals()
	log.Info("pop3: login", "messages", count)
	s.ok("maildrop has %d messages (%d octets)", count, size)
	return false
}

// checkSnapshot rejects a backend snapshot that would break the protocol.
func checkSnapshot(msgs []MessageInfo) error {
	seen := make(map[string]struct{}, len(msgs))
	for _, m := range msgs {
		if !validUID(m.UID) {
			return fmt.Errorf("pop3: invalid UID %q", truncate(m.UID, 80))
		}
		if _, dup := seen[m.UID]; dup {
			return fmt.Errorf("pop3: duplicate UID %q", m.UID)
		}
		if m.Size < 0 {
			return fmt.Errorf("pop3: negative size for UID %q", m.UID)
		}
		seen[m.UID] = struct{}{}
	}
	return nil
}

// cmdSTLS implements STLS, RFC 2595 §4.
func (s *session) cmdSTLS(ctx context.Context) bool {
	if s.srv.TLSConfig == nil {
		s.fail("", "STLS not available")
		return false
	}
	if s.tlsActive {
		s.fail("", "TLS already active")
		return false
	}
	s.ok("begin TLS negotiation")
	if err := s.bw.Flush(); err != nil {
		return true
	}
	tc := tls.Server(s.conn, s.srv.TLSConfig)
	hsCtx, cancel := context.WithTimeout(ctx, s.srv.autologout())
	defer cancel()
	if err := tc.HandshakeContext(hsCtx); err != nil {
		s.log.Debug("pop3: STLS handshake failed", "err", err)
		return true
	}
	s.setConn(tc)
	s.tlsActive = true
	s.user = "" // RFC 2595 §4: forget what was said before TLS
	return false
}
