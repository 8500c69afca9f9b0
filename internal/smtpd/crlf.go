package smtpd

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// errBareLineEnd reports a CR not followed by LF, or an LF not preceded by CR, in DATA.
// RFC 5321 §2.3.8 allows only CRLF as line end; receivers that accept bare LF or CR can be
// tricked into seeing an end of data ("\n.\n", "\r.\r\n") that the next hop does not see, and
// one connection then carries a second, forged message (SMTP smuggling). We refuse the
// whole message instead of repairing it.
var errBareLineEnd = errors.New("smtpd: bare CR or LF in message data")

// crlfReader passes data through and fails on the first bare CR or bare LF. It keeps one
// byte of state across reads, because a CRLF pair may straddle two reads.
type crlfReader struct {
	r      io.Reader
	prevCR bool // the last byte seen was CR
	err    error
}

func (c *crlfReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.r.Read(p)
	if bad := c.scan(p[:n]); bad >= 0 {
		c.err = errBareLineEnd
		return bad, c.err
	}
	if err == io.EOF && c.prevCR {
		// Data ending in CR: the CR was never followed by LF.
		c.err = errBareLineEnd
		return n, c.err
	}
	return n, err
}

// scan returns the offset of the first byte that proves a bare line end in b, or -1.
func (c *crlfReader) scan(b []byte) int {
	for i, ch := range b {
		switch {
		case c.prevCR && ch != '\n':
			return i
		case !c.prevCR && ch == '\n':
			return i
		}
		c.prevCR = ch == '\r'
	}
	return -1
}

// guardListener wraps accepted connections in guardConn.
type guardListener struct{ net.Listener }

func (l guardListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &guardConn{Conn: c}, nil
}

// guardConn watches the raw bytes a client sends for bare CR or LF. The SMTP library's
// data reader removes a CR that follows a line-leading dot before we see the data, so
// "\r\n.\r\r\n" would reach Data as a clean "\r\n\r\n"; the raw stream still shows it. Once
// a bare line end was seen, every later DATA of the connection is refused. The scan is
// meaningless after STARTTLS (it sees ciphertext), so sessions under TLS rely on the data
// reader's check alone; the one form that check cannot see does not end the data there.
type guardConn struct {
	net.Conn
	mu   sync.Mutex
	scan crlfReader
	bare atomic.Bool
}

func (g *guardConn) Read(p []byte) (int, error) {
	n, err := g.Conn.Read(p)
	if n > 0 && !g.bare.Load() {
		g.mu.Lock()
		if g.scan.scan(p[:n]) >= 0 {
			g.bare.Store(true)
		}
		g.mu.Unlock()
	}
	return n, err
}

// sawBareLineEnd reports whether the plaintext connection under an SMTP session carried a
// bare CR or LF.
func sawBareLineEnd(c net.Conn) bool {
	if g, ok := c.(*guardConn); ok {
		return g.bare.Load()
	}
	return false
}
