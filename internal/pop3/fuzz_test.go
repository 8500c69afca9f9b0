package pop3

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// transcriptConn is a net.Conn that reads a fixed transcript and discards
// or records what is written, for fuzzing either side without a network.
type transcriptConn struct {
	r io.Reader
	w io.Writer
}

func (c *transcriptConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *transcriptConn) Write(p []byte) (int, error) { return c.w.Write(p) }
func (c *transcriptConn) Close() error                { return nil }
func (c *transcriptConn) LocalAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 110}
}
func (c *transcriptConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000}
}
func (c *transcriptConn) SetDeadline(time.Time) error      { return nil }
func (c *transcriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *transcriptConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzServerSession feeds arbitrary bytes as a client transcript to a
// server session. Beyond not crashing or hanging, nothing may be deleted
// unless the client said QUIT, and the mailbox is closed once per login.
func FuzzServerSession(f *testing.F) {
	seeds := []string{
		"USER " + testUser + "\r\nPASS " + testPass + "\r\nSTAT\r\nLIST\r\nUIDL\r\nRETR 1\r\nTOP 1 2\r\nDELE 1\r\nRSET\r\nDELE 2\r\nQUIT\r\n",
		"CAPA\r\nAUTH PLAIN " + b64("\x00"+testUser+"\x00"+testPass) + "\r\nLIST 1\r\nUIDL 2\r\nDELE 3\r\nquit\r\n",
		"AUTH PLAIN\r\n" + b64(testUser+"\x00"+testUser+"\x00"+testPass) + "\r\nNOOP\r\nRETR 3\r\nTOP 3 0\r\nQUIT\r\n",
		"AUTH\r\nAUTH PLAIN =\r\nAUTH PLAIN\r\n*\r\nSTLS\r\nAPOP a b\r\nQUIT\r\n",
		"USER a\nPASS b\nUSER " + testUser + "\nPASS " + testPass + "\nDELE 1\n",
		"RETR 1\r\n\r\n \r\nLIST 99999999999\r\nTOP 1 -1\r\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, transcript []byte) {
		b := newMemBackend()
		b.addUser(testUser, testPass, testMessages...)
		srv := &Server{Backend: b, AllowInsecureAuth: true, MaxLineLength: 256}
		srv.mu.Lock()
		srv.init()
		srv.mu.Unlock()
		var out bytes.Buffer
		srv.serveConn(&transcriptConn{r: bytes.NewReader(transcript), w: &out})
		deletes, closes := b.counts()
		if deletes > 0 && !strings.Contains(strings.ToUpper(string(transcript)), "QUIT") {
			t.Fatalf("deleted without QUIT; transcript %q", transcript)
		}
		b.mu.Lock()
		logins := len(b.sessions[testUser])
		b.mu.Unlock()
		if closes != logins {
			t.Fatalf("%d logins but %d mailbox closes", logins, closes)
		}
		if !strings.HasPrefix(out.String(), "+OK ") {
			t.Fatalf("no greeting: %q", out.String())
		}
	})
}

// FuzzClient feeds arbitrary bytes as server responses to a client that
// runs every command. The client must not crash, hang or exceed its limits.
func FuzzClient(f *testing.F) {
	seeds := []string{
		"+OK ready <1.2@host>\r\n+OK\r\nUIDL\r\nTOP\r\nSASL PLAIN\r\n.\r\n+OK\r\n+OK\r\n+OK\r\n+OK 2 30\r\n+OK\r\n1 abc\r\n2 def\r\n.\r\n+OK\r\n1 10\r\n2 20\r\n.\r\n+OK\r\nSubject: x\r\n\r\n..dot\r\n.\r\n+OK\r\nSubject: x\r\n.\r\n+OK\r\n+OK\r\n+OK bye\r\n",
		"+OK\r\n-ERR [SYS/TEMP] no\r\n-ERR [AUTH] bad\r\n+ \r\n-ERR\r\n-ERR [IN-USE]\r\n",
		"+OK\n+OK\n.\n+OK\n+OK\n+ eyJzdGF0dXMiOiI0MDEifQ==\n-ERR\n+OK 1 1\n+OK\n.\n",
		"+OK\r\n+OK\r\n" + strings.Repeat("x", 5000) + "\r\n.\r\n",
		"-ERR [SYS/PERM] go away\r\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	const maxMessage = 1024
	f.Fuzz(func(t *testing.T, responses []byte) {
		c, err := NewClient(&transcriptConn{r: bytes.NewReader(responses), w: io.Discard},
			WithMaxMessageSize(maxMessage), WithMaxListingSize(4096))
		if err != nil {
			return
		}
		ctx := t.Context()
		c.Capabilities(ctx)
		c.Login(ctx, "user", "pass")
		c.AuthPlain(ctx, "user", "pass")
		c.AuthXOAUTH2(ctx, "user", strings.Repeat("t", 300))
		c.Stat(ctx)
		if entries, err := c.UIDL(ctx); err == nil {
			for _, e := range entries {
				if e.Num <= 0 || e.UID == "" || strings.ContainsAny(e.UID, " \r\n\x00") {
					t.Fatalf("bad UIDL entry %+v", e)
				}
			}
		}
		c.List(ctx)
		for _, top := range []bool{false, true} {
			var msg []byte
			var err error
			if top {
				msg, err = c.Top(ctx, 1, 5)
			} else {
				msg, err = c.Retr(ctx, 1)
			}
			if err == nil && len(msg) > maxMessage {
				t.Fatalf("message of %d octets over the %d limit", len(msg), maxMessage)
			}
		}
		c.Dele(ctx, 1)
		c.Noop(ctx)
		c.Quit(ctx)
	})
}

// FuzzDotStuffing checks that what the server's dotWriter sends, the
// client's readDotBody returns unchanged (with a CRLF added to a message
// that did not end in a line ending), for every split of long lines; and
// that copyTop sends a prefix of the message.
func FuzzDotStuffing(f *testing.F) {
	for _, s := range append(testMessages, "", ".", ".\r\n", "..\r\n.", "a\r\n.\r\n.", "\r\n\r\n.\n.\r\n", strings.Repeat(".", 40)+"\r\n") {
		f.Add([]byte(s), uint8(2))
	}
	f.Fuzz(func(t *testing.T, msg []byte, lines uint8) {
		var wire bytes.Buffer
		dw := newDotWriter(&wire)
		// Write in uneven pieces, as io.Copy from a backend might.
		for rest := msg; len(rest) > 0; {
			n := min(len(rest), 7)
			if _, err := dw.Write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		if err := dw.Close(); err != nil {
			t.Fatal(err)
		}
		got, err := readDotBody(bufio.NewReaderSize(bytes.NewReader(wire.Bytes()), 16), 1<<20)
		if err != nil {
			t.Fatalf("readDotBody: %v; wire %q", err, wire.Bytes())
		}
		want := msg
		if len(msg) > 0 && msg[len(msg)-1] != '\n' {
			want = append(bytes.Clone(msg), '\r', '\n')
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("round trip of %q gave %q (wire %q)", msg, got, wire.Bytes())
		}

		var top bytes.Buffer
		if err := copyTop(&top, bytes.NewReader(msg), int(lines)); err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(msg, top.Bytes()) {
			t.Fatalf("TOP %d of %q gave %q", lines, msg, top.Bytes())
		}
	})
}
