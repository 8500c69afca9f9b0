package testpeers

import (
	"encoding/base64"
	"errors"
	"net"
	"net/smtp"
	"net/textproto"
	"strings"
	"testing"

	gosmtp "github.com/emersion/go-smtp"
)

// send delivers one message over c; the error is the server's answer to the body.
func send(c *smtp.Client, from, to, body string) error {
	if err := c.Mail(from); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(body)); err != nil {
		return err
	}
	return w.Close()
}

// dialTLS opens a session and upgrades it with STARTTLS.
func dialTLS(t *testing.T, s *SMTPServer, ca *CA) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.StartTLS(ca.ClientTLS("127.0.0.1")); err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	return c
}

func TestSMTPServerStartTLSAndRequiredAuth(t *testing.T) {
	t.Parallel()
	ca := NewCA(t)
	s := StartSMTPServer(t, SMTPConfig{Security: SMTPStartTLS, TLS: ca.ServerTLS(), Users: map[string]string{"alice": "pw-1"}, RequireAuth: true})
	// net/smtp quits after a refused AUTH, so the wrong password gets its own session.
	if err := dialTLS(t, s, ca).Auth(smtp.PlainAuth("", "alice", "wrong", "127.0.0.1")); err == nil {
		t.Fatal("wrong password accepted")
	}
	c := dialTLS(t, s, ca)
	if err := c.Mail("a@example.org"); err == nil || !strings.Contains(err.Error(), "authenticate") {
		t.Fatalf("MAIL before AUTH: %v, want a refusal", err)
	}
	if err := c.Auth(smtp.PlainAuth("", "alice", "pw-1", "127.0.0.1")); err != nil {
		t.Fatalf("AUTH PLAIN: %v", err)
	}
	if err := send(c, "a@example.org", "b@example.net", "Subject: x\r\n\r\nhello\r\n"); err != nil {
		t.Fatal(err)
	}
	c.Quit()
	msgs := s.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := msgs[0]
	if m.Helo != "client.test" || !m.TLS || m.User != "alice" || m.Mech != "PLAIN" || m.From != "a@example.org" ||
		len(m.To) != 1 || m.To[0] != "b@example.net" || !strings.Contains(string(m.Data), "hello") || !m.Delivered() {
		t.Fatalf("server saw %+v", m)
	}
}

func TestSMTPServerScriptedAnswers(t *testing.T) {
	t.Parallel()
	tryLater := &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "try later"}
	s := StartSMTPServer(t, SMTPConfig{
		OnMail: func(from string) error {
			if from == "spammer@example.org" {
				return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 7, 1}, Message: "no"}
			}
			return nil
		},
		OnRcpt: func(rcpt string) error {
			if rcpt == "nobody@example.net" {
				return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "unknown"}
			}
			return nil
		},
		OnData: func(n int, m SMTPMessage) error {
			switch n {
			case 1:
				return tryLater
			case 2:
				return ErrSMTPDrop
			}
			return nil
		},
	})
	c, err := smtp.Dial(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("spammer@example.org"); err == nil || !strings.HasPrefix(err.Error(), "550") {
		t.Fatalf("scripted MAIL: %v", err)
	}
	c.Reset()
	if err := send(c, "a@example.org", "nobody@example.net", "x\r\n"); err == nil || !strings.HasPrefix(err.Error(), "550") {
		t.Fatalf("scripted RCPT: %v", err)
	}
	c.Reset()
	if err := send(c, "a@example.org", "b@example.net", "first\r\n"); err == nil || !strings.HasPrefix(err.Error(), "451") {
		t.Fatalf("first body: %v, want 451", err)
	}
	if err := send(c, "a@example.org", "b@example.net", "second\r\n"); err == nil || strings.HasPrefix(err.Error(), "2") {
		t.Fatalf("second body answered: %v, want a dropped connection", err)
	}
	c.Close()

	c, err = smtp.Dial(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := send(c, "a@example.org", "b@example.net", "third\r\n"); err != nil {
		t.Fatalf("third body: %v", err)
	}
	c.Quit()

	msgs := s.Messages()
	if len(msgs) != 3 {
		t.Fatalf("%d messages, want 3 bodies", len(msgs))
	}
	for i, want := range []struct {
		body      string
		answer    error
		delivered bool
	}{{"first", tryLater, false}, {"second", ErrSMTPDrop, true}, {"third", nil, true}} {
		m := msgs[i]
		if !strings.HasPrefix(string(m.Data), want.body) || !errors.Is(m.Answer, want.answer) || m.Delivered() != want.delivered {
			t.Errorf("body %d: %q answer %v delivered %v", i+1, m.Data, m.Answer, m.Delivered())
		}
	}
	if n := s.Sessions(); n != 2 {
		t.Errorf("%d sessions, want 2", n)
	}
}

// TestSMTPServerXOAUTH2 speaks XOAUTH2 by hand: a refused token gets the JSON challenge
// first and 535 after the client's empty answer, as at Google and Microsoft.
func TestSMTPServerXOAUTH2(t *testing.T) {
	t.Parallel()
	s := StartSMTPServer(t, SMTPConfig{Tokens: map[string]string{"anna": "at-2"}, RequireAuth: true})
	conn, err := net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tp := textproto.NewConn(conn)
	expect := func(code int) string {
		t.Helper()
		_, msg, err := tp.ReadResponse(code)
		if err != nil {
			t.Fatalf("want %d: %v", code, err)
		}
		return msg
	}
	cmd := func(line string, code int) string {
		t.Helper()
		if err := tp.PrintfLine("%s", line); err != nil {
			t.Fatal(err)
		}
		return expect(code)
	}
	ir := func(token string) string {
		return base64.StdEncoding.EncodeToString([]byte("user=anna\x01auth=Bearer " + token + "\x01\x01"))
	}
	expect(220)
	if ehlo := cmd("EHLO client.test", 250); !strings.Contains(ehlo, "AUTH XOAUTH2") || strings.Contains(ehlo, "PLAIN") {
		t.Fatalf("EHLO offers %q, want only XOAUTH2", ehlo)
	}
	challenge, err := base64.StdEncoding.DecodeString(cmd("AUTH XOAUTH2 "+ir("at-1"), 334))
	if err != nil || !strings.Contains(string(challenge), `"status":"401"`) {
		t.Fatalf("challenge %q (%v)", challenge, err)
	}
	cmd("", 535)
	cmd("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00anna\x00at-2")), 504)
	cmd("AUTH XOAUTH2 "+ir("at-2"), 235)
	cmd("MAIL FROM:<anna@example.org>", 250)
	cmd("RCPT TO:<b@example.net>", 250)
	cmd("DATA", 354)
	dw := tp.DotWriter()
	dw.Write([]byte("Subject: x\r\n\r\nbody\r\n"))
	if err := dw.Close(); err != nil {
		t.Fatal(err)
	}
	expect(250)
	if msgs := s.Messages(); len(msgs) != 1 || msgs[0].User != "anna" || msgs[0].Mech != "XOAUTH2" {
		t.Fatalf("server saw %+v", msgs)
	}
}
