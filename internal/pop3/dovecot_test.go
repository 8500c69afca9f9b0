package pop3

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"testing"

	"postfach/internal/testpeers"
)

// TestClientAgainstDovecot runs the client against Debian's dovecot-pop3d.
func TestClientAgainstDovecot(t *testing.T) {
	t.Parallel()
	const user, pass = "pop@example.test", "dovecot pw"
	d := testpeers.StartDovecot(t, map[string]string{user: pass})
	raws := []string{
		"From: x@example.test\r\nSubject: first\r\nMessage-ID: <1@example.test>\r\n\r\nline\r\n.\r\n.. dots\r\n.x\r\nend\r\n",
		"From: x@example.test\r\nSubject: second\r\n\r\nsecond body\r\n",
		"From: x@example.test\r\nSubject: third\r\n\r\nthird body\r\nmore\r\n",
	}
	for _, raw := range raws {
		d.Append(t, user, "INBOX", []byte(raw))
	}
	ctx := testCtx(t)
	dial := func(t *testing.T) *Client {
		t.Helper()
		return dialClient(t, d.POP3Addr)
	}
	login := func(t *testing.T) *Client {
		t.Helper()
		c := dial(t)
		if err := c.Login(ctx, user, pass); err != nil {
			t.Fatal(err)
		}
		return c
	}
	uidls := func(t *testing.T) []string {
		t.Helper()
		c := login(t)
		defer c.Quit(ctx)
		entries, err := c.UIDL(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var uids []string
		for _, e := range entries {
			uids = append(uids, e.UID)
		}
		return uids
	}

	t.Run("bad password", func(t *testing.T) {
		c := dial(t)
		err := c.Login(ctx, user, "wrong")
		var re *ResponseError
		if !errors.As(err, &re) || !re.AuthFailed() || re.Command != "PASS" {
			t.Fatalf("Login with wrong password: %v", err)
		}
	})

	t.Run("capabilities", func(t *testing.T) {
		caps, err := dial(t).Capabilities(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"UIDL", "TOP", "STLS", "SASL", "RESP-CODES"} {
			if _, ok := caps[want]; !ok {
				t.Errorf("Dovecot CAPA lacks %s: %v", want, caps)
			}
		}
	})

	var all []string
	t.Run("stat uidl retr top", func(t *testing.T) {
		c := login(t)
		defer c.Quit(ctx)
		count, size, err := c.Stat(ctx)
		var wantSize int64
		for _, r := range raws {
			wantSize += int64(len(r))
		}
		if err != nil || count != 3 || size != wantSize {
			t.Fatalf("Stat = %d, %d, %v; want 3, %d", count, size, err, wantSize)
		}
		entries, err := c.UIDL(ctx)
		if err != nil || len(entries) != 3 {
			t.Fatalf("UIDL = %v, %v", entries, err)
		}
		for i, e := range entries {
			if e.Num != i+1 || slices.Contains(all, e.UID) {
				t.Errorf("UIDL entry %+v", e)
			}
			all = append(all, e.UID)
		}
		list, err := c.List(ctx)
		if err != nil || len(list) != 3 {
			t.Fatalf("List = %v, %v", list, err)
		}
		for i, raw := range raws {
			got, err := c.Retr(ctx, i+1)
			if err != nil || string(got) != raw {
				t.Errorf("Retr %d = %q, %v; want %q", i+1, got, err, raw)
			}
			if list[i].Size != int64(len(raw)) {
				t.Errorf("List %d size %d, want %d", i+1, list[i].Size, len(raw))
			}
		}
		top, err := c.Top(ctx, 3, 1)
		if want := "From: x@example.test\r\nSubject: third\r\n\r\nthird body\r\n"; err != nil || string(top) != want {
			t.Errorf("Top = %q, %v", top, err)
		}
	})

	t.Run("DELE without QUIT keeps the message", func(t *testing.T) {
		c := login(t)
		if err := c.Dele(ctx, 1); err != nil {
			t.Fatal(err)
		}
		c.Close()
		if got := uidls(t); !slices.Equal(got, all) {
			t.Fatalf("after DELE and Close: %v, want %v", got, all)
		}
	})

	t.Run("DELE and QUIT removes the message", func(t *testing.T) {
		c := login(t)
		if err := c.Dele(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if err := c.Quit(ctx); err != nil {
			t.Fatal(err)
		}
		if got := uidls(t); !slices.Equal(got, all[1:]) {
			t.Fatalf("after DELE and QUIT: %v, want %v", got, all[1:])
		}
	})

	t.Run("STLS", func(t *testing.T) {
		c := dial(t)
		if err := c.StartTLS(ctx, d.CA.ClientTLS("127.0.0.1")); err != nil {
			t.Fatal(err)
		}
		if err := c.AuthPlain(ctx, user, pass); err != nil {
			t.Fatal(err)
		}
		if n, _, err := c.Stat(ctx); err != nil || n != 2 {
			t.Fatalf("Stat = %d, %v", n, err)
		}
		if err := c.Quit(ctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("STLS with an untrusted certificate", func(t *testing.T) {
		c := dial(t)
		other := testpeers.NewCA(t)
		if err := c.StartTLS(ctx, other.ClientTLS("127.0.0.1")); err == nil {
			t.Fatal("StartTLS trusted a certificate from another CA")
		}
		if err := c.Noop(ctx); err == nil {
			t.Fatal("client usable after a failed handshake")
		}
	})

	t.Run("implicit TLS with AUTH PLAIN", func(t *testing.T) {
		conn, err := tls.Dial("tcp", d.POP3SAddr, d.CA.ClientTLS("127.0.0.1"))
		if err != nil {
			t.Fatal(err)
		}
		c, err := NewClient(conn)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var re *ResponseError
		if err := c.AuthPlain(ctx, user, "wrong"); !errors.As(err, &re) || !re.AuthFailed() {
			t.Fatalf("AuthPlain with wrong password: %v", err)
		}
		if err := c.AuthPlain(ctx, user, pass); err != nil {
			t.Fatal(err)
		}
		if got, err := c.Retr(ctx, 1); err != nil || string(got) != raws[1] {
			t.Fatalf("Retr = %q, %v", got, err)
		}
	})
}

// TestClientGreetingRefused checks that a -ERR greeting is a ResponseError.
func TestClientGreetingRefused(t *testing.T) {
	t.Parallel()
	server, client := net.Pipe()
	go func() {
		fmt.Fprintf(server, "-ERR [SYS/TEMP] too busy\r\n")
		server.Close()
	}()
	_, err := NewClient(client)
	var re *ResponseError
	if !errors.As(err, &re) || re.Command != "greeting" || !re.Temporary() {
		t.Fatalf("NewClient = %v", err)
	}
}
