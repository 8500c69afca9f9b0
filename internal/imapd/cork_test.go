package imapd

import (
	"bytes"
	"net"
	"testing"
)

// recordConn records each Write call.
type recordConn struct {
	net.Conn
	writes [][]byte
}

func (c *recordConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, append([]byte(nil), p...))
	return len(p), nil
}

func TestCorkConn(t *testing.T) {
	rec := &recordConn{}
	c := &corkConn{Conn: rec}
	c.Write([]byte("* OK ready\r\n"))
	if len(rec.writes) != 1 {
		t.Fatalf("uncorked write held back: %d writes", len(rec.writes))
	}
	c.cork()
	for i := 0; i < 100; i++ {
		c.Write([]byte("* 1 FETCH (FLAGS ())\r\n"))
	}
	if len(rec.writes) != 1 {
		t.Fatalf("corked writes went out: %d writes", len(rec.writes))
	}
	if err := c.uncork(); err != nil {
		t.Fatal(err)
	}
	if len(rec.writes) != 2 || !bytes.Equal(rec.writes[1], bytes.Repeat([]byte("* 1 FETCH (FLAGS ())\r\n"), 100)) {
		t.Fatalf("uncork: %d writes", len(rec.writes))
	}
	// A large response leaves in pieces while corked, bounded by corkFlushAt.
	c.cork()
	line := bytes.Repeat([]byte("x"), 1000)
	for i := 0; i < 200; i++ {
		c.Write(line)
	}
	c.uncork()
	total := 0
	for _, w := range rec.writes[2:] {
		if len(w) > corkFlushAt+len(line) {
			t.Fatalf("write of %d bytes", len(w))
		}
		total += len(w)
	}
	if total != 200*len(line) || len(rec.writes) < 4 {
		t.Fatalf("%d bytes in %d writes", total, len(rec.writes)-2)
	}
}
