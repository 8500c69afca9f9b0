package outqueue_test

import (
	"context"
	"strings"
	"testing"

	"postfach/internal/mailout"
	"postfach/internal/mailstore"
	"postfach/internal/store"
)

// TestOutOfOfficeReplySent (H3): a message to a hosted mailbox with an Abwesenheitsnotiz
// leads to exactly one reply on the wire, with the null reverse path (RFC 3834 §3.3); list
// mail and a second message within the period get none, and draining again sends nothing
// twice.
func TestOutOfOfficeReplySent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	addr := "anna.postfach@firma.example"
	var mb store.Mailbox
	err := f.db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		mb, err = tx.CreateMailbox(ctx, f.tenant, store.Mailbox{Kind: store.KindHosted, Address: addr, Active: true, Restricted: true})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.SetOutOfOffice(ctx, f.admin, mb.ID, mailstore.OutOfOffice{Enabled: true, Text: "Bin im Urlaub."}); err != nil {
		t.Fatal(err)
	}
	if mb, err = f.db.Read().Mailbox(ctx, f.tenant, mb.ID); err != nil {
		t.Fatal(err)
	}
	deliver := func(envFrom, id, extra string) {
		t.Helper()
		raw := "From: <" + envFrom + ">\r\nTo: <" + addr + ">\r\nSubject: Frage\r\nMessage-ID: <" + id + ">\r\n" + extra + "\r\nHallo\r\n"
		err := f.db.InTx(ctx, func(tx *store.Tx) error {
			_, err := mailstore.Deliver(ctx, tx, mailstore.Delivery{Source: "smtp", EnvelopeFrom: envFrom, Recipients: []string{addr},
				Mailboxes: []store.Mailbox{mb}, Raw: []byte(raw), Hostname: "mx.postfach.test"})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	deliver("kunde@example.org", "q1@example.org", "")
	deliver("kunde@example.org", "q2@example.org", "")                                     // within the period
	deliver("news@lists.example.org", "n1@example.org", "List-Id: <news.example.org>\r\n") // list
	deliver("werbung@example.net", "b1@example.net", "Precedence: bulk\r\n")               // bulk

	ts := startServer(t, plain, nil, nil)
	q := f.queue(ts.route(mailout.SecurityNone))
	drain(t, q)
	drain(t, q)
	msgs := ts.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d replies went out, want 1", len(msgs))
	}
	m := msgs[0]
	if m.from != "" || len(m.to) != 1 || m.to[0] != "kunde@example.org" {
		t.Errorf("envelope from %q to %v", m.from, m.to)
	}
	for _, want := range []string{"Auto-Submitted: auto-replied", "In-Reply-To: <q1@example.org>", "Subject: Auto: Frage", "Bin im Urlaub."} {
		if !strings.Contains(string(m.data), want) {
			t.Errorf("reply lacks %q:\n%s", want, m.data)
		}
	}
	err = f.db.InTx(ctx, func(tx *store.Tx) error {
		pending, err := tx.PendingAutoReplies(ctx, 10)
		if len(pending) != 0 {
			t.Errorf("%d replies still pending", len(pending))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
