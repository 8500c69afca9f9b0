package pop3

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

// memBackend is an in-memory Backend for the server tests.
type memBackend struct {
	mu       sync.Mutex
	users    map[string]string       // user name → password
	messages map[string][]memMessage // user name → maildrop
	authErr  error                   // returned by Authenticate when set
	sessions map[string][]*memMailbox
	deletes  int // Delete calls
	closes   int // Mailbox.Close calls
	remotes  []netip.Addr
}

type memMessage struct {
	uid string
	raw []byte
}

func newMemBackend() *memBackend {
	return &memBackend{
		users:    make(map[string]string),
		messages: make(map[string][]memMessage),
		sessions: make(map[string][]*memMailbox),
	}
}

func (b *memBackend) addUser(user, pass string, raws ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.users[user] = pass
	for i, raw := range raws {
		b.messages[user] = append(b.messages[user], memMessage{uid: fmt.Sprintf("uid-%d", i+1), raw: []byte(raw)})
	}
}

func (b *memBackend) uids(user string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var uids []string
	for _, m := range b.messages[user] {
		uids = append(uids, m.uid)
	}
	return uids
}

func (b *memBackend) counts() (deletes, closes int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.deletes, b.closes
}

// kick ends every open session of user, as a password change does.
func (b *memBackend) kick(user string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, mb := range b.sessions[user] {
		mb.doneOnce.Do(func() { close(mb.done) })
	}
}

func (b *memBackend) Authenticate(ctx context.Context, user, pass string, remoteIP netip.Addr) (Mailbox, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.remotes = append(b.remotes, remoteIP)
	if b.authErr != nil {
		return nil, b.authErr
	}
	if want, ok := b.users[user]; !ok || want != pass {
		return nil, fmt.Errorf("memBackend: %w", ErrAuthFailed)
	}
	mb := &memMailbox{b: b, user: user, done: make(chan struct{})}
	b.sessions[user] = append(b.sessions[user], mb)
	return mb, nil
}

type memMailbox struct {
	b        *memBackend
	user     string
	done     chan struct{}
	doneOnce sync.Once
}

func (m *memMailbox) Messages(ctx context.Context) ([]MessageInfo, error) {
	m.b.mu.Lock()
	defer m.b.mu.Unlock()
	var infos []MessageInfo
	for _, msg := range m.b.messages[m.user] {
		infos = append(infos, MessageInfo{UID: msg.uid, Size: int64(len(msg.raw))})
	}
	return infos, nil
}

func (m *memMailbox) Open(ctx context.Context, uid string) (io.ReadCloser, error) {
	m.b.mu.Lock()
	defer m.b.mu.Unlock()
	for _, msg := range m.b.messages[m.user] {
		if msg.uid == uid {
			return io.NopCloser(bytes.NewReader(msg.raw)), nil
		}
	}
	return nil, fmt.Errorf("memBackend: no message %q", uid)
}

func (m *memMailbox) Delete(ctx context.Context, uids []string) error {
	m.b.mu.Lock()
	defer m.b.mu.Unlock()
	m.b.deletes++
	m.b.messages[m.user] = slices.DeleteFunc(m.b.messages[m.user], func(msg memMessage) bool {
		return slices.Contains(uids, msg.uid)
	})
	return nil
}

func (m *memMailbox) Close() error {
	m.b.mu.Lock()
	defer m.b.mu.Unlock()
	m.b.closes++
	return nil
}

func (m *memMailbox) Done() <-chan struct{} { return m.done }

// startServer runs srv on a random loopback port until the test ends.
func startServer(t testing.TB, srv *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-served; err != ErrServerClosed {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return ln.Addr().String()
}

// dialClient connects a Client to addr.
func dialClient(t testing.TB, addr string, opts ...ClientOption) *Client {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(conn, opts...)
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// testCtx bounds a test's protocol exchanges so a bug hangs no test for long.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
