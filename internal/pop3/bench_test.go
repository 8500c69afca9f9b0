package pop3

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"postfach/internal/testpeers"
)

// benchMessage returns a message of about size octets with 76-column lines,
// some starting with a dot so that byte-stuffing is exercised.
func benchMessage(i, size int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "From: bench@example.test\r\nSubject: message %d\r\nMessage-ID: <%d@example.test>\r\n\r\n", i, i)
	line := strings.Repeat("abcdefghij", 7) + "klmn\r\n"
	for n := 0; b.Len() < size; n++ {
		if n%10 == 0 {
			b.WriteString(".")
		}
		b.WriteString(line)
	}
	return b.String()
}

// BenchmarkRetr retrieves 50 KB messages with our client from our server
// (in-memory backend) and from Dovecot's POP3 server (Maildir in the page
// cache), plaintext over loopback, one session per benchmark run.
func BenchmarkRetr(b *testing.B) {
	const messages, size = 100, 50 << 10
	const user, pass = "bench@example.test", "bench pw"
	raws := make([]string, messages)
	for i := range raws {
		raws[i] = benchMessage(i, size)
	}

	run := func(b *testing.B, addr string) {
		ctx := context.Background()
		c := dialClient(b, addr)
		if err := c.Login(ctx, user, pass); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(raws[0])))
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			msg, err := c.Retr(ctx, i%messages+1)
			if err != nil {
				b.Fatal(err)
			}
			if len(msg) != len(raws[i%messages]) {
				b.Fatalf("message %d has %d octets, want %d", i%messages+1, len(msg), len(raws[i%messages]))
			}
		}
		b.StopTimer()
		c.Quit(ctx)
	}

	b.Run("postfach", func(b *testing.B) {
		backend := newMemBackend()
		backend.addUser(user, pass, raws...)
		run(b, startServer(b, &Server{Backend: backend, AllowInsecureAuth: true}))
	})
	b.Run("dovecot", func(b *testing.B) {
		d := testpeers.StartDovecot(b, map[string]string{user: pass})
		for _, raw := range raws {
			d.Append(b, user, "INBOX", []byte(raw))
		}
		run(b, d.POP3Addr)
	})
}
