package pop3

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
)

// scripted connects a Client to a fake server. The server sends greeting,
// then for every command line it reads calls answer, which returns the raw
// bytes to send back (an answer not ending in a newline is the last: the
// server then hangs up); the received lines are delivered on the channel.
func scripted(t *testing.T, greeting string, answer func(line string) string, opts ...ClientOption) (*Client, <-chan string) {
	t.Helper()
	server, client := net.Pipe()
	received := make(chan string, 100)
	go func() {
		defer server.Close()
		defer close(received)
		if _, err := io.WriteString(server, greeting); err != nil {
			return
		}
		r := bufio.NewReader(server)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSuffix(line, "\r\n")
			received <- line
			a := answer(line)
			if _, err := io.WriteString(server, a); err != nil || !strings.HasSuffix(a, "\n") {
				return
			}
		}
	}()
	c, err := NewClient(client, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, received
}

func TestParseStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		line string
		want status
		bad  bool
	}{
		{line: "+OK", want: status{ok: true}},
		{line: "+OK 2 320", want: status{ok: true, text: "2 320"}},
		{line: "+Ok fine", want: status{ok: true, text: "fine"}},
		{line: "-ERR", want: status{}},
		{line: "-ERR [AUTH] Authentication failed.", want: status{code: "AUTH", text: "Authentication failed."}},
		{line: "-ERR [SYS/TEMP] try later", want: status{code: "SYS/TEMP", text: "try later"}},
		{line: "-ERR [in-use] locked", want: status{code: "IN-USE", text: "locked"}},
		{line: "-ERR [not a code] text", want: status{text: "[not a code] text"}},
		{line: "-ERR [] x", want: status{text: "[] x"}},
		{line: "+ ", want: status{cont: true}},
		{line: "+", want: status{cont: true}},
		{line: "+ eyJzIjoxfQ==", want: status{cont: true, text: "eyJzIjoxfQ=="}},
		{line: "+OKAY", bad: true},
		{line: "* OK imap", bad: true},
		{line: "", bad: true},
	}
	for _, tc := range tests {
		got, err := parseStatus(tc.line)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("parseStatus(%q) = %+v, %v", tc.line, got, err)
		}
	}
}

func TestClientRefusesOversizedMessage(t *testing.T) {
	t.Parallel()
	c, _ := scripted(t, "+OK ready\r\n", func(line string) string {
		return "+OK\r\n" + strings.Repeat("x", 100) + "\r\n.\r\n"
	}, WithMaxMessageSize(50))
	ctx := testCtx(t)
	if _, err := c.Retr(ctx, 1); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Retr = %v, want ErrTooLarge", err)
	}
	if err := c.Noop(ctx); err == nil {
		t.Fatal("client usable after ErrTooLarge")
	}
}

func TestClientRefusesSTLSInjection(t *testing.T) {
	t.Parallel()
	c, _ := scripted(t, "+OK ready\r\n", func(line string) string {
		return "+OK begin\r\n+OK injected\r\n"
	})
	if err := c.StartTLS(testCtx(t), &tls.Config{ServerName: "pop.example.test"}); err == nil || !strings.Contains(err.Error(), "before TLS") {
		t.Fatalf("StartTLS = %v", err)
	}
}

func TestClientRefusesLineInjection(t *testing.T) {
	t.Parallel()
	c, received := scripted(t, "+OK ready\r\n", func(string) string { return "+OK\r\n" })
	ctx := testCtx(t)
	if err := c.Login(ctx, "a\r\nDELE 1", "pw"); err == nil {
		t.Fatal("Login accepted CR LF in the user name")
	}
	if err := c.Login(ctx, "a", "pw\r\nDELE 1"); err == nil {
		t.Fatal("Login accepted CR LF in the password")
	}
	if err := c.Noop(ctx); err != nil {
		t.Fatalf("client unusable after a refused argument: %v", err)
	}
	c.Close()
	for line := range received {
		if strings.Contains(line, "DELE") {
			t.Errorf("server received %q", line)
		}
	}
}

func TestClientXOAUTH2(t *testing.T) {
	t.Parallel()
	token := strings.Repeat("t", 400) // longer than an AUTH line may be
	const failure = `{"status":"401","schemes":"bearer","scope":"https://outlook.office.com/POP.AccessAsUser.All"}`
	for _, accept := range []bool{true, false} {
		c, received := scripted(t, "+OK ready\r\n", func(line string) string {
			switch {
			case line == "AUTH XOAUTH2":
				return "+ \r\n"
			case strings.HasPrefix(line, "dXNlcj"): // base64 of "user="
				if accept {
					return "+OK authenticated\r\n"
				}
				return "+ " + base64.StdEncoding.EncodeToString([]byte(failure)) + "\r\n"
			case line == "":
				return "-ERR [AUTH] Authentication failure\r\n"
			}
			return "-ERR unexpected\r\n"
		})
		err := c.AuthXOAUTH2(testCtx(t), "user@example.test", token)
		c.Close()
		var lines []string
		for l := range received {
			lines = append(lines, l)
		}
		if len(lines) < 2 {
			t.Fatalf("server received %q", lines)
		}
		sent, _ := base64.StdEncoding.DecodeString(lines[1])
		if want := "user=user@example.test\x01auth=Bearer " + token + "\x01\x01"; string(sent) != want {
			t.Errorf("XOAUTH2 response %q", sent)
		}
		var re *ResponseError
		switch {
		case accept && err != nil:
			t.Errorf("accepted: %v", err)
		case !accept && (!errors.As(err, &re) || !re.AuthFailed() || !strings.Contains(re.Text, "401")):
			t.Errorf("refused: %v", err)
		case !accept && strings.Contains(err.Error(), token):
			t.Errorf("error contains the token")
		}
	}
}

func TestClientAuthPlainInitialResponse(t *testing.T) {
	t.Parallel()
	c, received := scripted(t, "+OK ready\r\n", func(string) string { return "+OK\r\n" })
	if err := c.AuthPlain(testCtx(t), "u@example.test", "pw"); err != nil {
		t.Fatal(err)
	}
	if got, want := <-received, "AUTH PLAIN "+b64("\x00u@example.test\x00pw"); got != want {
		t.Errorf("sent %q, want %q", got, want)
	}
}

func TestClientAPOP(t *testing.T) {
	t.Parallel()
	// The example of RFC 1939 §7.
	c, received := scripted(t, "+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n", func(string) string { return "+OK\r\n" })
	if err := c.APOP(testCtx(t), "mrose", "tanstaaf"); err != nil {
		t.Fatal(err)
	}
	if got := <-received; got != "APOP mrose c4c9334bac560ecc979e58001b3e22fb" {
		t.Errorf("sent %q", got)
	}
}

func TestClientHonoursContext(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	c, _ := scripted(t, "+OK ready\r\n", func(string) string { <-block; return "\n" })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Noop(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Noop with cancelled context = %v", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	go func() {
		cancel() // may run before or during the read; both must end it
	}()
	if err := c.Noop(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Noop cancelled while waiting = %v", err)
	}
}

func TestClientMalformedListings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, answer string
		call         func(context.Context, *Client) error
	}{
		{"UIDL with space in UID", "+OK\r\n1 a b\r\n.\r\n", func(ctx context.Context, c *Client) error { _, err := c.UIDL(ctx); return err }},
		{"UIDL with control char", "+OK\r\n1 a\x01\r\n.\r\n", func(ctx context.Context, c *Client) error { _, err := c.UIDL(ctx); return err }},
		{"LIST with negative size", "+OK\r\n1 -5\r\n.\r\n", func(ctx context.Context, c *Client) error { _, err := c.List(ctx); return err }},
		{"STAT without size", "+OK 3\r\n", func(ctx context.Context, c *Client) error { _, _, err := c.Stat(ctx); return err }},
		{"RETR cut off", "+OK\r\nhalf", func(ctx context.Context, c *Client) error { _, err := c.Retr(ctx, 1); return err }},
		{"garbage status", "HELLO\r\n", func(ctx context.Context, c *Client) error { return c.Noop(ctx) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, _ := scripted(t, "+OK ready\r\n", func(string) string { return tc.answer })
			if err := tc.call(testCtx(t), c); err == nil {
				t.Fatal("no error")
			}
		})
	}
}
