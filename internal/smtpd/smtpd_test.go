package smtpd

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"postfach/internal/store"
	"postfach/internal/store/storetest"
)

const inboundDomain = "in.postfach.test"

// env is a running server with one tenant: an active account (p-address), an inactive
// account, and a hosted mailbox on makler.example.
type env struct {
	t        *testing.T
	db       *store.DB
	srv      *Server
	addr     string
	tenant   int64
	account  store.Mailbox
	inactive store.Mailbox
	hosted   store.Mailbox
}

func startEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, db: storetest.Open(t)}
	err := e.db.InTx(ctx, func(tx *store.Tx) error {
		ten, err := tx.CreateTenant(ctx, store.Tenant{Name: "Makler", Slug: "makler", MailboxQuota: 10})
		if err != nil {
			return err
		}
		e.tenant = ten.ID
		mk := func(kind, addr string, active bool) store.Mailbox {
			if err != nil {
				return store.Mailbox{}
			}
			var m store.Mailbox
			m, err = tx.CreateMailbox(ctx, ten.ID, store.Mailbox{Kind: kind, Address: addr, Active: active})
			return m
		}
		e.account = mk(store.KindAccount, "info@kunde-makler.example", true)
		e.inactive = mk(store.KindAccount, "alt@kunde-makler.example", false)
		e.hosted = mk(store.KindHosted, "chef@makler.example", true)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Hostname, cfg.InboundDomain = "mx.postfach.test", inboundDomain
	e.srv = New(e.db, cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	go e.srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.srv.Close(ctx)
	})
	return e
}

func (e *env) inbound(m store.Mailbox) string { return store.InboundAddress(m.ID, inboundDomain) }

func (e *env) count() int {
	e.t.Helper()
	var n int
	if err := e.db.SQL().QueryRow(`SELECT COUNT(*) FROM messages`).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// conversation is a raw SMTP client: it sends exactly the bytes a test gives.
type conversation struct {
	t    *testing.T
	conn net.Conn
	r    *textproto.Reader
}

func dial(t *testing.T, addr string) *conversation {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	c := &conversation{t: t, conn: conn, r: textproto.NewReader(bufio.NewReader(conn))}
	c.expect(220)
	c.send("EHLO client.example\r\n")
	c.expect(250)
	return c
}

func (c *conversation) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatal(err)
	}
}

// reply reads one (possibly multi-line) reply.
func (c *conversation) reply() (int, string) {
	c.t.Helper()
	code, msg, err := c.r.ReadResponse(0)
	if err != nil && code == 0 {
		c.t.Fatalf("read reply: %v", err)
	}
	return code, msg
}

func (c *conversation) expect(code int) string {
	c.t.Helper()
	got, msg := c.reply()
	if got != code {
		c.t.Fatalf("got %d %s, want %d", got, msg, code)
	}
	return msg
}

func (c *conversation) cmd(line string) (int, string) {
	c.t.Helper()
	c.send(line + "\r\n")
	return c.reply()
}

func TestRecipients(t *testing.T) {
	e := startEnv(t, Config{})
	cases := []struct {
		name string
		rcpt string
		code int
		enh  string
	}{
		{"inbound address", e.inbound(e.account), 250, ""},
		{"inbound address upper case", strings.ToUpper(e.inbound(e.account)), 250, ""},
		{"hosted mailbox", "chef@makler.example", 250, ""},
		{"hosted mailbox, domain case", "chef@MAKLER.example", 250, ""},
		{"inactive account", e.inbound(e.inactive), 550, "5.2.1"},
		{"unknown inbound address", "p999999@" + inboundDomain, 550, "5.1.1"},
		{"outbound address is no recipient", store.OutboundAddress(e.account.ID, inboundDomain), 550, "5.1.1"},
		{"not a p-address", "info@" + inboundDomain, 550, "5.1.1"},
		{"unknown user on a hosted domain", "nobody@makler.example", 550, "5.1.1"},
		{"external domain", "victim@example.com", 550, "5.7.1"},
		{"percent hack", "victim%example.com@" + inboundDomain, 550, "5.7.1"},
		{"percent hack on hosted domain", "victim%example.com@makler.example", 550, "5.7.1"},
		{"bang path", "example.com!victim@makler.example", 550, "5.7.1"},
		{"quoted local part with @", `"victim@example.com"@makler.example`, 550, "5.7.1"},
		{"source route to external", "@makler.example:victim@example.com", 550, "5.7.1"},
		{"address literal", "victim@[192.0.2.1]", 550, "5.7.1"},
	}
	c := dial(t, e.addr)
	for _, tc := range cases {
		if code, _ := c.cmd("MAIL FROM:<sender@example.org>"); code != 250 {
			t.Fatalf("MAIL: %d", code)
		}
		code, msg := c.cmd("RCPT TO:<" + tc.rcpt + ">")
		if code != tc.code || (tc.enh != "" && !strings.HasPrefix(msg, tc.enh)) {
			t.Errorf("%s: RCPT TO:<%s> = %d %s, want %d %s", tc.name, tc.rcpt, code, msg, tc.code, tc.enh)
		}
		c.cmd("RSET")
	}
	if n := e.count(); n != 0 {
		t.Fatalf("%d messages stored without DATA", n)
	}
}

func TestDeliveryIsStored(t *testing.T) {
	e := startEnv(t, Config{})
	c := dial(t, e.addr)
	c.cmd("MAIL FROM:<kunde@example.org>")
	c.cmd("RCPT TO:<" + e.inbound(e.account) + ">")
	c.cmd("RCPT TO:<chef@makler.example>")
	c.cmd("DATA")
	c.send("From: Kunde <kunde@example.org>\r\nTo: info@kunde-makler.example\r\nSubject: Hallo\r\nMessage-ID: <m1@example.org>\r\n\r\n..dot-stuffed line\r\nbody\r\n.\r\n")
	if code, msg := c.reply(); code != 250 {
		t.Fatalf("DATA: %d %s", code, msg)
	}
	var raw []byte
	var mailboxID int64
	if err := e.db.SQL().QueryRow(`SELECT b.raw, m.mailbox_id FROM messages m JOIN message_bodies b ON b.message_id = m.id`).Scan(&raw, &mailboxID); err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	if !strings.HasPrefix(s, "Received: from client.example ([127.0.0.1])\r\n\tby mx.postfach.test (Postfach) with ESMTP id ") ||
		!strings.HasSuffix(s, "\r\n\r\n.dot-stuffed line\r\nbody\r\n") || mailboxID != e.account.ID {
		t.Fatalf("stored %q in mailbox %d", s, mailboxID)
	}
}

// TestSmuggling sends the end-of-data look-alikes of SMTP smuggling. None may end the
// data early, and every message with a bare CR or LF is refused as a whole, so the
// smuggled second message is never stored.
func TestSmuggling(t *testing.T) {
	e := startEnv(t, Config{})
	smuggled := "MAIL FROM:<admin@bank.example>\r\nRCPT TO:<" + e.inbound(e.account) + ">\r\nDATA\r\nFrom: admin@bank.example\r\nSubject: forged\r\n\r\nforged\r\n"
	vectors := map[string]string{
		"LF dot LF":      "\n.\n",
		"CR dot LF":      "\r.\n",
		"LF dot CRLF":    "\n.\r\n",
		"CR dot CR":      "\r.\r",
		"CRLF dot LF":    "\r\n.\n",
		"CRLF dot CR LF": "\r\n.\r\r\n",
		"bare LF":        "\n",
	}
	for name, v := range vectors {
		t.Run(name, func(t *testing.T) {
			before := e.count()
			c := dial(t, e.addr)
			c.cmd("MAIL FROM:<kunde@example.org>")
			c.cmd("RCPT TO:<" + e.inbound(e.account) + ">")
			c.cmd("DATA")
			c.send("From: kunde@example.org\r\nSubject: real\r\n\r\nfirst part" + v + smuggled + ".\r\n")
			code, msg := c.reply()
			if code != 554 || !strings.Contains(msg, "bare CR or LF") {
				t.Fatalf("got %d %s, want 554", code, msg)
			}
			// The session is still in step: the next command gets its own reply.
			if code, _ := c.cmd("NOOP"); code != 250 {
				t.Fatalf("NOOP after refused data: %d", code)
			}
			if n := e.count(); n != before {
				t.Fatalf("%d messages stored", n-before)
			}
		})
	}
}

func TestSizeLimit(t *testing.T) {
	e := startEnv(t, Config{MaxMessageBytes: 10_000})
	c := dial(t, e.addr)
	if code, msg := c.cmd("EHLO client.example"); code != 250 || !strings.Contains(msg, "SIZE 10000") {
		t.Fatalf("EHLO does not advertise SIZE: %s", msg)
	}
	if code, _ := c.cmd("MAIL FROM:<a@example.org> SIZE=20000"); code != 552 {
		t.Fatalf("declared size over the limit: %d", code)
	}
	c.cmd("MAIL FROM:<a@example.org>")
	c.cmd("RCPT TO:<" + e.inbound(e.account) + ">")
	c.cmd("DATA")
	c.send("Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("x", 98)+"\r\n", 200) + ".\r\n")
	if code, _ := c.reply(); code != 552 {
		t.Fatalf("oversized data: %d", code)
	}
	if e.count() != 0 {
		t.Fatal("oversized message stored")
	}
}

// TestConcurrentSessionsShareCommits runs 20 sessions at once; every 250 must be in the
// database afterwards. The number of transactions is logged, not asserted: batching depends
// on scheduling.
func TestConcurrentSessionsShareCommits(t *testing.T) {
	e := startEnv(t, Config{})
	const sessions, each = 20, 15
	var wg sync.WaitGroup
	errs := make(chan error, sessions)
	for s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", e.addr)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			r := textproto.NewReader(bufio.NewReader(conn))
			w := textproto.NewWriter(bufio.NewWriter(conn))
			step := func(line string, want int) error {
				if line != "" {
					if err := w.PrintfLine("%s", line); err != nil {
						return err
					}
				}
				if _, _, err := r.ReadResponse(want); err != nil {
					return fmt.Errorf("%q: %w", line, err)
				}
				return nil
			}
			if err := step("", 220); err != nil {
				errs <- err
				return
			}
			step("EHLO c", 250)
			for i := range each {
				for _, st := range []struct {
					line string
					code int
				}{{"MAIL FROM:<a@example.org>", 250}, {"RCPT TO:<chef@makler.example>", 250}, {"DATA", 354}} {
					if err := step(st.line, st.code); err != nil {
						errs <- err
						return
					}
				}
				dw := w.DotWriter()
				fmt.Fprintf(dw, "From: a@example.org\r\nTo: chef@makler.example\r\nMessage-ID: <%d.%d@example.org>\r\n\r\nbody\r\n", s, i)
				dw.Close()
				if err := step("", 250); err != nil {
					errs <- err
					return
				}
			}
			step("QUIT", 221)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := e.count(); n != sessions*each {
		t.Fatalf("stored %d, want %d", n, sessions*each)
	}
	st := e.srv.Stats()
	t.Logf("%d deliveries in %d transactions", st.Deliveries, st.Transactions)
}
