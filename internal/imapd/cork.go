package imapd

import (
	"crypto/tls"
	"errors"
	"net"
	"sync"
)

// corkConn sits between TLS and the socket and holds back writes while corked. go-imap
// flushes after every response line, so a FETCH of a thousand messages would otherwise cost
// a thousand TLS records and write system calls; corked, they leave in few large writes.
// A session corks only around commands that write many lines and uncorks before the tagged
// completion, so nothing a client waits for stays in the buffer.
type corkConn struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	buf    []byte
	err    error // a write error while corked, reported by the next write or uncork
}

// corkFlushAt bounds the buffer: beyond it the data goes out even while corked.
const corkFlushAt = 64 << 10

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if !c.corked {
		return c.Conn.Write(p)
	}
	c.buf = append(c.buf, p...)
	if len(c.buf) >= corkFlushAt {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (c *corkConn) flushLocked() error {
	if len(c.buf) == 0 {
		return c.err
	}
	_, err := c.Conn.Write(c.buf)
	c.buf = c.buf[:0]
	if err != nil && c.err == nil {
		c.err = err
	}
	return c.err
}

func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	err := c.flushLocked()
	if cap(c.buf) > corkFlushAt {
		c.buf = nil // do not keep a large buffer per idle connection
	}
	return err
}

// corkListener wraps every accepted connection in a corkConn, and in TLS when tlsConfig is
// set (implicit TLS, port 993), so that the cork is below the TLS layer.
type corkListener struct {
	net.Listener
	tlsConfig *tls.Config
}

func (l corkListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &corkConn{Conn: c}
	if l.tlsConfig != nil {
		return tls.Server(cc, l.tlsConfig), nil
	}
	return cc, nil
}

// corker finds the corkConn under a session's connection (under TLS after STARTTLS or on
// port 993); nil when there is none.
func (sess *session) corker() *corkConn {
	c := sess.conn.NetConn()
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	cc, _ := c.(*corkConn)
	return cc
}

// corked runs fn with the connection corked and flushes afterwards.
func (sess *session) corked(fn func() error) error {
	cc := sess.corker()
	if cc == nil {
		return fn()
	}
	cc.cork()
	err := fn()
	return errors.Join(err, cc.uncork())
}
