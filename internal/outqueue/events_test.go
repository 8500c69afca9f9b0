package outqueue_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-smtp"

	"postfach/internal/core"
	"postfach/internal/mailout"
	"postfach/internal/outqueue"
	"postfach/internal/store"
	"postfach/internal/webhooks"
)

// TestDKIMSignatureVerifies: mail from a verified hosted domain leaves signed, and the
// signature verifies against the TXT record the API shows for the domain; mail from a
// domain that is not ours leaves unsigned.
func TestDKIMSignatureVerifies(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	err := f.db.InTx(ctx, func(tx *store.Tx) error {
		d, err := tx.CreateTenantDomain(ctx, f.tenant, "firma.example", "token")
		if err != nil {
			return err
		}
		return tx.RecordDomainCheck(ctx, f.tenant, d.ID, true, "")
	})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := f.svc.DKIMRecord(ctx, f.admin, "firma.example")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Type != "TXT" || rec.Name != rec.Selector+"._domainkey.firma.example" || !strings.HasPrefix(rec.Value, "v=DKIM1; k=rsa; p=") {
		t.Fatalf("record %+v", rec)
	}
	again, err := f.svc.DKIMRecord(ctx, f.admin, "firma.example")
	if err != nil || again != rec {
		t.Fatalf("second lookup made another key: %+v %v", again, err)
	}

	ts := startServer(t, plain, nil, nil)
	q := f.queue(ts.route(mailout.SecurityNone))
	f.send(t, core.SendInput{Sender: "system", To: to("kunde@example.org")}) // From: info@firma.example
	f.send(t, core.SendInput{Sender: "system", To: to("kunde@example.org"), HTML: "<p>Grüße</p>"})
	drain(t, q)
	msgs := ts.messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages delivered", len(msgs))
	}
	lookup := func(name string) ([]string, error) {
		if name == rec.Name {
			return []string{rec.Value}, nil
		}
		t.Errorf("lookup of %q", name)
		return nil, nil
	}
	for _, m := range msgs {
		verifs, err := dkim.VerifyWithOptions(bytes.NewReader(m.data), &dkim.VerifyOptions{LookupTXT: lookup})
		if err != nil || len(verifs) != 1 || verifs[0].Err != nil || verifs[0].Domain != "firma.example" {
			t.Fatalf("verify: %v %+v\n%s", err, verifs, m.data)
		}
	}
}

// TestDKIMOnlyForOurDomains: an unverified domain and a foreign one are not signed.
func TestDKIMOnlyForOurDomains(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	if err := f.db.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.CreateTenantDomain(ctx, f.tenant, "firma.example", "token") // not verified
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, plain, nil, nil)
	f.send(t, core.SendInput{To: to("kunde@example.org")})
	drain(t, f.queue(ts.route(mailout.SecurityNone)))
	if msgs := ts.messages(); len(msgs) != 1 || header(msgs[0].data, "dkim-signature") != "" {
		t.Fatalf("unverified domain signed or not delivered: %d", len(msgs))
	}
	for _, tc := range []struct {
		from string
		want bool
	}{{"noreply@firma." + inboundDomain, true}, {"x@" + inboundDomain, true}, {"x@firma.example", false}, {"x@example.org", false}} {
		_, ok, err := f.svc.DKIMSignerFor(ctx, f.tenant, tc.from[strings.IndexByte(tc.from, '@')+1:])
		if err != nil || ok != tc.want {
			t.Errorf("%s: signed %v, want %v (%v)", tc.from, ok, tc.want, err)
		}
	}
}

// TestWebhookEventsWithOutcome: message.sent and message.bounced are written in the
// transaction that records the outcome.
func TestWebhookEventsWithOutcome(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	var ep webhooks.Endpoint
	if err := f.db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		ep, err = webhooks.CreateEndpoint(ctx, tx, f.tenant, webhooks.Endpoint{URL: "https://hooks.example/x",
			Events: []string{webhooks.EventSent, webhooks.EventBounced}, Active: true, SecretSealed: []byte("x")})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, plain, nil, func(s *smtpServer) {
		s.onRcpt = func(rcpt string) error {
			if strings.HasPrefix(rcpt, "weg@") {
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
			}
			return nil
		}
	})
	q := f.queue(ts.route(mailout.SecurityNone), func(c *outqueue.Config) { c.Event = webhooks.Enqueue })
	sent := f.send(t, core.SendInput{To: to("kunde@example.org")})
	bounced := f.send(t, core.SendInput{To: to("weg@example.org")})
	drain(t, q)
	var list []webhooks.Delivery
	if err := f.db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		list, err = webhooks.ListDeliveries(ctx, tx, f.tenant, ep.ID, 10)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, d := range list {
		var env struct {
			Type string `json:"type"`
			Data struct {
				MessageID int64 `json:"message_id"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(d.Body), &env); err != nil {
			t.Fatal(err)
		}
		got[env.Type] = env.Data.MessageID
	}
	if len(list) != 2 || got[webhooks.EventSent] != sent.ID || got[webhooks.EventBounced] != bounced.ID {
		t.Fatalf("events %v, want sent %d and bounced %d", got, sent.ID, bounced.ID)
	}
}

// TestSubmittedMailRecheckedAtDequeue: mail a hosted mailbox submitted as a restricted
// mailbox of its assigned user is refused when the user's grant ends while it waits; the
// mailbox's own address still goes out.
func TestSubmittedMailRecheckedAtDequeue(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	hostedAddr, vertrieb, yes, quota := "anna.postfach@firma.example", "vertrieb@firma.example", true, 5
	if _, err := f.svc.UpdateTenant(ctx, core.Actor{Kind: core.ActorSystem, Name: "test"}, f.tenant, core.TenantInput{MailboxQuota: &quota}); err != nil {
		t.Fatal(err)
	}
	hosted, err := f.svc.CreateMailbox(ctx, f.admin, core.MailboxInput{Address: &hostedAddr, Sender: &yes})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.AddGrant(ctx, f.admin, hosted.ID, core.GrantInput{UserID: &f.user.UserID}); err != nil {
		t.Fatal(err)
	}
	restricted, err := f.svc.CreateMailbox(ctx, f.admin, core.MailboxInput{Address: &vertrieb, Sender: &yes, Restricted: &yes})
	if err != nil {
		t.Fatal(err)
	}
	g, err := f.svc.AddGrant(ctx, f.admin, restricted.ID, core.GrantInput{UserID: &f.user.UserID})
	if err != nil {
		t.Fatal(err)
	}
	mb, err := f.db.Read().Mailbox(ctx, f.tenant, hosted.ID)
	if err != nil {
		t.Fatal(err)
	}
	p := core.HostedPrincipal{Mailbox: mb}
	if d, err := f.svc.CheckSubmissionSender(ctx, p, vertrieb); err != nil || !d.Allowed {
		t.Fatalf("at submission: %+v %v", d, err)
	}
	msg := func(from string) []byte {
		return []byte("From: " + from + "\r\nTo: kunde@example.org\r\nSubject: x\r\nMessage-ID: <" + from + "@t>\r\n\r\nHallo\r\n")
	}
	refusedID, err := f.svc.EnqueueHosted(ctx, p, vertrieb, []string{"kunde@example.org"}, msg(vertrieb))
	if err != nil {
		t.Fatal(err)
	}
	keptID, err := f.svc.EnqueueHosted(ctx, p, hostedAddr, []string{"kunde@example.org"}, msg(hostedAddr))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.EndGrant(ctx, f.admin, restricted.ID, g.ID); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, plain, nil, nil)
	drain(t, f.queue(ts.route(mailout.SecurityNone)))
	d := f.delivery(t, refusedID)
	if d.State != store.QueueRefused || d.RefusedRule != "policy.no_grant" || d.LastError != vertrieb {
		t.Fatalf("after the grant ended: %+v", d.QueueEntry)
	}
	if k := f.delivery(t, keptID); k.State != store.QueueSent {
		t.Fatalf("own address: %+v", k.QueueEntry)
	}
	if msgs := ts.messages(); len(msgs) != 1 || msgs[0].from != hostedAddr {
		t.Fatalf("%d messages went out", len(msgs))
	}
}

// TestSentMessageFiledAtEveryRecipient (A4): a message to two contacts (and one stranger)
// lists under each contact; contact_id keeps the first for older readers.
func TestSentMessageFiledAtEveryRecipient(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	var ids []int64
	for _, addr := range []string{"erika@kunde.example", "max@kunde.example"} {
		c, err := f.svc.CreateContact(ctx, f.admin, core.ContactInput{Email: &addr})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	res := f.send(t, core.SendInput{To: to("Erika@Kunde.example", "fremd@example.org"), Cc: to("max@kunde.example")})
	other := f.send(t, core.SendInput{To: to("max@kunde.example")})
	token := core.Actor{Kind: core.ActorToken, TenantID: f.tenant, Name: "crm"}
	for i, want := range [][]int64{{res.ID}, {other.ID, res.ID}} {
		list, err := f.svc.Messages(ctx, token, core.MessageListInput{ContactID: ids[i]})
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for _, m := range list.Messages {
			got = append(got, m.ID)
		}
		if len(got) != len(want) || list.Total != len(want) {
			t.Fatalf("contact %d: messages %v (total %d), want %v", ids[i], got, list.Total, want)
		}
		for j := range want {
			if got[j] != want[j] {
				t.Fatalf("contact %d: messages %v, want %v", ids[i], got, want)
			}
		}
	}
	m, err := f.db.Read().MessageWhere(ctx, store.MessageQuery{TenantID: f.tenant}, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m.ContactID == nil || *m.ContactID != ids[0] {
		t.Fatalf("contact_id %v, want the first recipient's %d", m.ContactID, ids[0])
	}
}

// TestConcurrentSendsShareCommits: sends that arrive together commit in shared
// transactions; a key repeated inside one batch still makes one message, and every caller
// gets the id of its committed message.
func TestConcurrentSendsShareCommits(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	const keys = 40
	results := make([]core.SendResult, 2*keys)
	var wg sync.WaitGroup
	for i := range 2 * keys {
		wg.Go(func() {
			res, err := f.svc.Send(ctx, f.user, core.SendInput{Sender: "system", To: to("kunde@example.org"), Subject: "x", Text: "x",
				IdempotencyKey: "k-" + strconv.Itoa(i%keys)})
			if err != nil {
				t.Error(err)
			}
			results[i] = res
		})
	}
	wg.Wait()
	for i := range keys {
		a, b := results[i], results[i+keys]
		if a.ID == 0 || a.ID != b.ID || a.MessageID != b.MessageID {
			t.Fatalf("key %d: %+v and %+v", i, a, b)
		}
	}
	counts, err := f.db.Read().OutboundStateCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if counts[store.QueueQueued] != keys {
		t.Fatalf("queue %v, want %d queued", counts, keys)
	}
}
