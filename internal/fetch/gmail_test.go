package fetch

import (
	"bufio"
	"context"
	"encoding/base64"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"

	"postfach/internal/core"
	"postfach/internal/store/storetest"
	"postfach/internal/testpeers"
)

// xoauth2POP3 is an in-process POP3 server with an empty maildrop that accepts any
// XOAUTH2 login (RFC 1939 and the XOAUTH2 SASL exchange of RFC 5034 §4) and records the
// decoded initial responses.
type xoauth2POP3 struct {
	ln     net.Listener
	mu     sync.Mutex
	logins []string
}

func startXOAUTH2POP3(t *testing.T) *xoauth2POP3 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &xoauth2POP3{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(conn)
		}
	}()
	return s
}

func (s *xoauth2POP3) serve(conn net.Conn) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	write := func(line string) { _, _ = conn.Write([]byte(line)) }
	write("+OK ready\r\n")
	authed := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		cmd := strings.ToUpper(strings.Fields(line + " x")[0])
		switch {
		case cmd == "CAPA":
			write("+OK\r\nUIDL\r\nSASL XOAUTH2\r\n.\r\n")
		case cmd == "AUTH" && len(strings.Fields(line)) >= 2 && strings.EqualFold(strings.Fields(line)[1], "XOAUTH2"):
			// The initial response comes on the AUTH line, or after an empty challenge.
			f := strings.Fields(line)
			resp := ""
			if len(f) > 2 {
				resp = f[2]
			} else {
				write("+ \r\n")
				if resp, err = r.ReadString('\n'); err != nil {
					return
				}
			}
			dec, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(resp))
			s.mu.Lock()
			s.logins = append(s.logins, string(dec))
			s.mu.Unlock()
			authed = true
			write("+OK authenticated\r\n")
		case (cmd == "UIDL" || cmd == "LIST") && authed:
			write("+OK\r\n.\r\n")
		case cmd == "STAT" && authed:
			write("+OK 0 0\r\n")
		case cmd == "QUIT":
			write("+OK bye\r\n")
			return
		default:
			write("-ERR unexpected\r\n")
		}
	}
}

// TestGmailPOP3SignsInWithXOAUTH2 (C2): a "POP3 (Gmail)" account, granted at Google's token
// endpoint, logs in with XOAUTH2 and the refreshed access token instead of a password.
func TestGmailPOP3SignsInWithXOAUTH2(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fx := newFixture(t, storetest.Open(t), nil)
	ep := fx.startOAuthProvider(t, core.OAuthGoogle, "https://mail.google.com/")
	srv := startXOAUTH2POP3(t)
	id := fx.account(t, "gmail@firma.example", core.ReceivePOP3Gmail, srv.ln.Addr().String(), "none", "kunde@gmail.example", "", false)
	start, err := fx.svc.StartAccountOAuth(ctx, fx.admin, id, "https://postfach.example/api/v1/oauth/callback")
	if err != nil {
		t.Fatal(err)
	}
	state, code := ep.SignIn(t, start.URL) // fails unless the URL is the provider's
	if u, _ := url.Parse(start.URL); u.Query().Get("scope") != "https://mail.google.com/" {
		t.Fatalf("authorisation URL %s", start.URL)
	}
	if _, err := fx.svc.FinishAccountOAuth(ctx, state, code); err != nil {
		t.Fatal(err)
	}
	fx.fetchNow(t, id)
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if want := "user=kunde@gmail.example\x01auth=Bearer " + testpeers.OAuthAccessToken + "\x01\x01"; len(srv.logins) != 1 || srv.logins[0] != want {
		t.Fatalf("XOAUTH2 logins %q, want one %q", srv.logins, want)
	}
}
