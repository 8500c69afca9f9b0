package outqueue_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"postfach/internal/core"
	"postfach/internal/mailout"
	"postfach/internal/outqueue"
	"postfach/internal/store"
	"postfach/internal/testpeers"
)

func drain(t testing.TB, q *outqueue.Queue) int {
	t.Helper()
	n, err := q.Drain(context.Background())
	if err != nil {
		t.Fatalf("drain: %v", err)
	}
	return n
}

func TestSendRefusesBadInputAndQueuesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	cases := []struct {
		name   string
		in     core.SendInput
		status int
		field  string
		key    string
	}{
		{"no recipients", core.SendInput{Sender: "system", Subject: "x"}, 422, "to", "error.send.no_recipients"},
		{"header injection in subject", core.SendInput{Sender: "system", To: to("kunde@example.org"), Subject: "Hallo\r\nBcc: opfer@example.org"}, 422, "subject", "error.control_chars"},
		{"header injection in a name", core.SendInput{Sender: "system", To: []core.SendAddress{{Name: "K\nBcc: x@y.org", Address: "kunde@example.org"}}}, 422, "to", "error.control_chars"},
		{"bad recipient", core.SendInput{Sender: "system", To: to("kunde@@example.org")}, 422, "to", "error.bad_address"},
		{"injection in in-reply-to", core.SendInput{Sender: "system", To: to("kunde@example.org"), InReplyTo: "a@b\r\nX: y"}, 422, "in_reply_to", "error.control_chars"},
		{"unknown sender", core.SendInput{Sender: "fremd@example.org", To: to("kunde@example.org")}, 403, "sender", "policy.not_a_mailbox"},
		{"unknown option", core.SendInput{Sender: "mailbox:99999", To: to("kunde@example.org")}, 403, "sender", "policy.unknown_option"},
		{"no sender", core.SendInput{To: to("kunde@example.org")}, 422, "sender", "error.required"},
		{"too large", core.SendInput{Sender: "system", To: to("kunde@example.org"), Text: strings.Repeat("0123456789 ", core.MaxSendSize/10)}, 413, "body", "error.send.too_large"},
	}
	for _, c := range cases {
		_, err := f.svc.Send(ctx, f.user, c.in)
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		ce := core.AsError(err)
		if fe := core.FieldErrors(err); len(fe) > 0 {
			ce = fe[0]
		}
		if ce.Status != c.status || ce.Field != c.field || ce.Key != c.key {
			t.Errorf("%s: got %d %s %s, want %d %s %s (%v)", c.name, ce.Status, ce.Field, ce.Key, c.status, c.field, c.key, err)
		}
	}
	var n int
	if err := f.db.SQL().QueryRow(`SELECT (SELECT COUNT(*) FROM messages) + (SELECT COUNT(*) FROM outbound_queue)`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d rows stored after refused sends", n)
	}
}

func TestIdempotencyKeyQueuesOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	in := core.SendInput{Sender: "system", To: to("kunde@example.org"), Subject: "Rechnung", Text: "x", IdempotencyKey: "order-4711"}
	first := f.send(t, in)
	again := f.send(t, in)
	if again.ID != first.ID || again.MessageID != first.MessageID || !again.Repeated || first.Repeated {
		t.Fatalf("first %+v, repeated %+v", first, again)
	}
	list, err := f.svc.Queue(context.Background(), f.admin, core.QueueInput{})
	if err != nil || len(list) != 1 || list[0].State != store.QueueQueued {
		t.Fatalf("queue %+v %v", list, err)
	}
}

// TestTransports delivers through the system transport's smarthost in every encryption and
// login combination, checking the envelope and header rules of A3 on the way.
func TestTransports(t *testing.T) {
	t.Parallel()
	ca := testpeers.NewCA(t)
	users := map[string]string{"relay": "geheim"}
	cases := []struct {
		name string
		mode serverMode
		sec  mailout.Security
		auth mailout.AuthMethod
	}{
		{"plain", plain, mailout.SecurityNone, mailout.AuthNone},
		{"starttls plain auth", startTLS, mailout.SecurityStartTLS, mailout.AuthPlain},
		{"starttls login auth", startTLS, mailout.SecurityStartTLS, mailout.AuthLogin},
		{"implicit tls login auth", implicitTLS, mailout.SecurityTLS, mailout.AuthLogin},
		{"implicit tls plain auth", implicitTLS, mailout.SecurityTLS, mailout.AuthPlain},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			ts := startServer(t, c.mode, ca.ServerTLS("127.0.0.1"), func(s *smtpServer) {
				if c.auth != mailout.AuthNone {
					s.users = users
				}
			})
			r := ts.route(c.sec)
			r.RootCAs = ca.Pool()
			if c.auth != mailout.AuthNone {
				r.Auth, r.Username, r.Password = c.auth, "relay", "geheim"
			}
			res := f.send(t, core.SendInput{To: to("kunde@example.org"), Cc: to("chef@example.org"), Bcc: to("archiv@example.org")})
			if n := drain(t, f.queue(r)); n != 1 {
				t.Fatalf("handled %d rows", n)
			}
			msgs := ts.messages()
			if len(msgs) != 1 {
				t.Fatalf("%d messages arrived", len(msgs))
			}
			m := msgs[0]
			wantTLS := c.sec != mailout.SecurityNone
			if m.tls != wantTLS || (c.auth != mailout.AuthNone && m.user != "relay") {
				t.Errorf("tls %v user %q", m.tls, m.user)
			}
			if !strings.HasSuffix(m.from, ".out@"+inboundDomain) || !strings.HasPrefix(m.from, "p") {
				t.Errorf("envelope sender %q is not the outbound p-address", m.from)
			}
			if len(m.to) != 3 {
				t.Errorf("envelope recipients %v", m.to)
			}
			if got := header(m.data, "from"); !strings.Contains(got, "info@firma.example") {
				t.Errorf("From: %q", got)
			}
			if got := header(m.data, "message-id"); got != "<"+res.MessageID+">" {
				t.Errorf("Message-ID %q, want %q", got, res.MessageID)
			}
			if bytes.Contains(m.data, []byte("archiv@example.org")) {
				t.Error("Bcc recipient appears in the message")
			}
			d := f.delivery(t, res.ID)
			if d.State != store.QueueSent || len(d.Recipients) != 3 || d.Recipients[0].State != store.QueueSent || len(d.AttemptLog) != 1 {
				t.Fatalf("delivery %+v", d)
			}
			if !strings.Contains(d.AttemptLog[0].Detail, "250") {
				t.Errorf("attempt log lacks the server's answer: %q", d.AttemptLog[0].Detail)
			}
		})
	}
}

func TestTemporaryFailureThenSuccess(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ts := startServer(t, plain, nil, func(s *smtpServer) {
		s.onData = func(n int, _ received) error {
			if n == 1 {
				return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
			}
			return nil
		}
	})
	q := f.queue(ts.route(mailout.SecurityNone))
	res := f.send(t, core.SendInput{To: to("kunde@example.org")})
	drain(t, q)
	d := f.delivery(t, res.ID)
	if d.State != store.QueueDeferred || !strings.Contains(d.LastError, "451") || d.NextAttemptAt <= f.clock.Now().UnixMilli() {
		t.Fatalf("after 451: %+v", d.QueueEntry)
	}
	if !strings.Contains(d.StateText, "451") {
		t.Errorf("state text %q", d.StateText)
	}
	if n := drain(t, q); n != 0 {
		t.Fatalf("retried %d rows before the next attempt was due", n)
	}
	f.clock.Advance(2 * time.Minute)
	drain(t, q)
	d = f.delivery(t, res.ID)
	if d.State != store.QueueSent || d.Attempts != 2 || len(d.AttemptLog) != 2 || len(ts.messages()) != 1 {
		t.Fatalf("after retry: %+v, %d messages", d, len(ts.messages()))
	}
	if !strings.Contains(d.AttemptLog[0].Detail, "451 4.3.0 try again later") {
		t.Errorf("first attempt log %q", d.AttemptLog[0].Detail)
	}
}

// TestPermanentFailureBounces checks per-recipient outcomes: one recipient refused with 550,
// the other delivered; the sender gets a DSN with an empty envelope sender.
func TestPermanentFailureBounces(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ts := startServer(t, plain, nil, func(s *smtpServer) {
		s.onRcpt = func(rcpt string) error {
			if rcpt == "gibtsnicht@example.org" {
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
			}
			return nil
		}
	})
	var events []string
	q := f.queue(ts.route(mailout.SecurityNone), func(c *outqueue.Config) {
		c.Event = func(_ context.Context, _ *store.Tx, _ int64, event string, _ any) error {
			events = append(events, event)
			return nil
		}
	})
	res := f.send(t, core.SendInput{To: to("kunde@example.org", "gibtsnicht@example.org")})
	drain(t, q)
	d := f.delivery(t, res.ID)
	if d.State != store.QueueFailed || d.Recipients[0].State != store.QueueSent || d.Recipients[1].State != store.QueueFailed || d.Recipients[1].Code != 550 {
		t.Fatalf("delivery %+v", d.QueueEntry)
	}
	msgs := ts.messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages arrived, want the original and the bounce", len(msgs))
	}
	dsn := msgs[1]
	if dsn.from != "" || len(dsn.to) != 1 || dsn.to[0] != "anna@firma.example" {
		t.Fatalf("bounce envelope %q → %v", dsn.from, dsn.to)
	}
	for _, want := range []string{"multipart/report", "report-type=delivery-status", "Final-Recipient: rfc822; gibtsnicht@example.org", "Action: failed", "Status: 5.1.1", "550 5.1.1 no such user", res.MessageID} {
		if !bytes.Contains(dsn.data, []byte(want)) {
			t.Errorf("bounce lacks %q", want)
		}
	}
	if strings.Join(events, ",") != "message.bounced" {
		t.Errorf("events %v", events)
	}
}

// TestGiveUpAfterDeadline keeps answering 451 while the clock runs four days ahead.
func TestGiveUpAfterDeadline(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ts := startServer(t, plain, nil, func(s *smtpServer) {
		s.onData = func(_ int, r received) error {
			if r.from == "" {
				return nil // the bounce
			}
			return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "mailbox full"}
		}
	})
	q := f.queue(ts.route(mailout.SecurityNone))
	res := f.send(t, core.SendInput{To: to("kunde@example.org")})
	for i := 0; i < 200; i++ {
		drain(t, q)
		if d := f.delivery(t, res.ID); d.State != store.QueueDeferred {
			break
		}
		f.clock.Advance(time.Hour)
	}
	d := f.delivery(t, res.ID)
	if d.State != store.QueueFailed {
		t.Fatalf("state %s after four days", d.State)
	}
	elapsed := time.UnixMilli(d.UpdatedAt).Sub(time.UnixMilli(d.FirstAttemptAt))
	if elapsed < 96*time.Hour || elapsed > 97*time.Hour {
		t.Errorf("gave up after %s", elapsed)
	}
	drain(t, q)
	var bounce *received
	for _, m := range ts.messages() {
		if m.from == "" {
			bounce = &m
		}
	}
	if bounce == nil || !bytes.Contains(bounce.data, []byte("Status: 4.4.7")) {
		t.Fatalf("no bounce with 4.4.7 after giving up")
	}
}

// TestDropAfterDataRetriesWithSameMessageID loses the connection after the final dot: the
// server may have the message, so the retry sends the same bytes again.
func TestDropAfterDataRetriesWithSameMessageID(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ts := startServer(t, plain, nil, func(s *smtpServer) {
		s.onData = func(n int, _ received) error {
			if n == 1 {
				return errDrop
			}
			return nil
		}
	})
	q := f.queue(ts.route(mailout.SecurityNone))
	res := f.send(t, core.SendInput{To: to("kunde@example.org")})
	drain(t, q)
	d := f.delivery(t, res.ID)
	if d.State != store.QueueDeferred || !d.Recipients[0].MaybeDelivered {
		t.Fatalf("after the drop: %+v", d.QueueEntry)
	}
	f.clock.Advance(2 * time.Minute)
	drain(t, q)
	msgs := ts.messages()
	if len(msgs) != 2 {
		t.Fatalf("%d copies arrived, want 2", len(msgs))
	}
	if !bytes.Equal(msgs[0].data, msgs[1].data) || header(msgs[1].data, "message-id") != "<"+res.MessageID+">" {
		t.Fatal("the retry is not the same message")
	}
	if d := f.delivery(t, res.ID); d.State != store.QueueSent {
		t.Fatalf("state %s", d.State)
	}
}

// TestLeaseOfDeadInstanceExpires claims a row for an instance that then "dies": once the
// lease runs out another instance delivers it.
func TestLeaseOfDeadInstanceExpires(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ts := startServer(t, plain, nil, nil)
	res := f.send(t, core.SendInput{To: to("kunde@example.org")})
	ctx := context.Background()
	err := f.db.InTx(ctx, func(tx *store.Tx) error {
		got, err := tx.ClaimOutbound(ctx, "dead-instance", tx.Now()+time.Minute.Milliseconds(), 10)
		if err == nil && len(got) != 1 {
			err = errors.New("nothing claimed")
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	q := f.queue(ts.route(mailout.SecurityNone))
	if n := drain(t, q); n != 0 {
		t.Fatalf("took over %d rows under a live lease", n)
	}
	f.clock.Advance(61 * time.Second)
	if n := drain(t, q); n != 1 {
		t.Fatalf("took over %d rows after the lease ran out", n)
	}
	if d := f.delivery(t, res.ID); d.State != store.QueueSent || d.Attempts != 2 || len(ts.messages()) != 1 {
		t.Fatalf("%+v", d.QueueEntry)
	}
}

// TestPolicyAtEnqueueAndDequeue: a restricted mailbox may be used only with a grant; a grant
// ended while the message waits stops it with the rule that decided.
func TestPolicyAtEnqueueAndDequeue(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	addr, yes := "vertrieb@firma.example", true
	mb, err := f.svc.CreateMailbox(ctx, f.admin, core.MailboxInput{Address: &addr, Sender: &yes, Restricted: &yes})
	if err != nil {
		t.Fatal(err)
	}
	key := "mailbox:" + itoa(mb.ID)
	_, err = f.svc.Send(ctx, f.user, core.SendInput{Sender: key, To: to("kunde@example.org"), Subject: "x", Text: "x"})
	if ce := core.AsError(err); err == nil || ce.Status != http.StatusForbidden || ce.Key != "policy.no_grant" {
		t.Fatalf("send without grant: %v", err)
	}
	g, err := f.svc.AddGrant(ctx, f.admin, mb.ID, core.GrantInput{UserID: &f.user.UserID})
	if err != nil {
		t.Fatal(err)
	}
	res := f.send(t, core.SendInput{Sender: key, To: to("kunde@example.org")})
	kept := f.send(t, core.SendInput{Sender: "system", To: to("kunde@example.org")})
	if err := f.svc.EndGrant(ctx, f.admin, mb.ID, g.ID); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, plain, nil, nil)
	drain(t, f.queue(ts.route(mailout.SecurityNone)))
	d := f.delivery(t, res.ID)
	if d.State != store.QueueRefused || d.RefusedRule != "policy.no_grant" || !strings.Contains(d.StateText, "Benutzerrechte") {
		t.Fatalf("after the grant ended: %+v %q", d.QueueEntry, d.StateText)
	}
	if len(d.AttemptLog) != 1 || !strings.Contains(d.AttemptLog[0].Result, "policy.no_grant") {
		t.Errorf("attempt log %+v", d.AttemptLog)
	}
	if msgs := ts.messages(); len(msgs) != 1 || !bytes.Contains(msgs[0].data, []byte(kept.MessageID)) {
		t.Fatalf("%d messages went out, want only the system mailbox's", len(msgs))
	}
}

// TestSmtpSink delivers through Postfix's smtp-sink as the real peer.
func TestSmtpSink(t *testing.T) {
	t.Parallel()
	sink := testpeers.StartSMTPSink(t, "-c")
	f := newFixture(t)
	host, port := testpeers.HostPort(t, sink.Addr)
	q := f.queue(mailout.Route{Host: host, Port: port, Security: mailout.SecurityNone})
	var ids []int64
	for i := range 30 {
		ids = append(ids, f.send(t, core.SendInput{To: to("kunde" + itoa(int64(i)) + "@example.org")}).ID)
	}
	drain(t, q)
	for _, id := range ids {
		if d := f.delivery(t, id); d.State != store.QueueSent {
			t.Fatalf("message %d: %s %s", id, d.State, d.LastError)
		}
	}
}
