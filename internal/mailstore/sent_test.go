package mailstore

import (
	"strings"
	"testing"

	"postfach/internal/store"
)

func (f *fixture) deliverSent(raw string, mb store.Mailbox) Stored {
	f.t.Helper()
	var out Stored
	f.tx(func(tx *store.Tx) error {
		var err error
		p := Prepare(Delivery{Source: "imap", Mailboxes: []store.Mailbox{mb}, Raw: []byte(strings.ReplaceAll(raw, "\n", "\r\n")), Hostname: "mx.test"})
		out, err = NewBatch(tx).DeliverSent(f.ctx, p)
		return err
	})
	return out
}

// TestDeliverSentFilesAtRecipients: mail from an account's Sent folder is outgoing, filed at
// every To/Cc recipient's contact, threaded to what it answers, and kept private to the
// owner of a private account until it is filed (C3).
func TestDeliverSentFilesAtRecipients(t *testing.T) {
	f := newFixture(t)
	owner := f.user("petra", "PK")
	other := f.user("otto", "OT")
	acct := f.mailbox(store.KindAccount, "petra@makler.example", false, `{"private_owner":"PK"}`)
	kunde, partner := f.contact("kunde@example.org"), f.contact("partner@example.org")
	first := f.deliver("From: Kunde <kunde@example.org>\nTo: petra@makler.example\nSubject: Frage\nMessage-ID: <frage@example.org>\n\nx\n", "kunde@example.org", acct)

	out := f.deliverSent("From: Petra <petra@makler.example>\nTo: Kunde <kunde@example.org>\nCc: partner@example.org, fremd@example.net\n"+
		"Subject: Re: Frage\nMessage-ID: <antwort@makler.example>\nIn-Reply-To: <frage@example.org>\n\nAntwort\n", acct)
	if len(out.Messages) != 1 || out.Messages[0].Duplicate {
		t.Fatalf("stored %+v", out)
	}
	m := out.Messages[0]
	if m.Direction != store.DirectionOut || m.Folder != "Sent" || m.Status != store.QueueSent || m.ThreadID != first.Messages[0].ThreadID {
		t.Fatalf("sent message: direction %q folder %q status %q thread %d (want %d)", m.Direction, m.Folder, m.Status, m.ThreadID, first.Messages[0].ThreadID)
	}
	if m.ContactID == nil || *m.ContactID != kunde || m.FiledReason != ReasonRecipient || m.PrivateOwnerID == nil || *m.PrivateOwnerID != owner {
		t.Fatalf("sent message filed at %v (%q), private owner %v", m.ContactID, m.FiledReason, m.PrivateOwnerID)
	}
	var linked []int64
	f.tx(func(tx *store.Tx) error {
		var err error
		linked, err = tx.MessageContactIDs(f.ctx, f.tenant.ID, m.ID)
		return err
	})
	if len(linked) != 2 || linked[0] != kunde || linked[1] != partner {
		t.Fatalf("filed at contacts %v, want %d and %d", linked, kunde, partner)
	}

	// Unfiled sent mail of a private account stays its owner's.
	lone := f.deliverSent("From: petra@makler.example\nTo: fremd@example.net\nSubject: privat\nMessage-ID: <privat@makler.example>\n\nx\n", acct).Messages[0]
	if lone.ContactID != nil || lone.FiledReason != ReasonUnassigned {
		t.Fatalf("sent to nobody known: %+v", lone)
	}
	f.tx(func(tx *store.Tx) error {
		if _, err := Read(f.ctx, tx, Viewer{TenantID: f.tenant.ID, UserID: other}, lone.ID); err == nil {
			t.Error("another user reads unfiled sent mail of a private account")
		}
		if _, err := Read(f.ctx, tx, Viewer{TenantID: f.tenant.ID, UserID: owner}, lone.ID); err != nil {
			t.Errorf("the owner cannot read the private account's sent mail: %v", err)
		}
		return nil
	})

	// The same Message-ID sent by this account (Postfach's copy in the Sent folder) is stored once.
	again := f.deliverSent("DKIM-Signature: v=1\nFrom: petra@makler.example\nTo: kunde@example.org\nSubject: Re: Frage\nMessage-ID: <antwort@makler.example>\n\nAntwort\n", acct)
	if !again.Messages[0].Duplicate || again.Messages[0].ID != m.ID {
		t.Fatalf("copy stored again: %+v", again)
	}
}

// TestQuarantineOnce: the same unparsable bytes delivered again (a sender's retry, a
// re-fetch) are not quarantined a second time for the same tenant and mailbox; another
// mailbox keeps its own row, and so does the operator's quarantine.
func TestQuarantineOnce(t *testing.T) {
	f := newFixture(t)
	acct := f.mailbox(store.KindAccount, "info@makler.example", false, "")
	other := f.mailbox(store.KindAccount, "vertrieb@makler.example", false, "")
	const raw = " leading space is no header\n\nbody\n"
	first := f.deliver(raw, "a@example.org", acct)
	f.tick()
	again := f.deliver(raw, "a@example.org", acct)
	if len(first.Quarantined) != 1 || len(again.Quarantined) != 1 || again.Quarantined[0] != first.Quarantined[0] {
		t.Fatalf("retry quarantined again: %v / %v", first.Quarantined, again.Quarantined)
	}
	if o := f.deliver(raw, "a@example.org", other); len(o.Quarantined) != 1 || o.Quarantined[0] == first.Quarantined[0] {
		t.Fatalf("another mailbox shares the row: %v", o.Quarantined)
	}
	if o := f.deliver(" other bytes\n\nbody\n", "a@example.org", acct); len(o.Quarantined) != 1 || o.Quarantined[0] == first.Quarantined[0] {
		t.Fatalf("different bytes share the row: %v", o.Quarantined)
	}
	op1, op2 := f.deliver(raw, "a@example.org"), f.deliver(raw, "a@example.org")
	if len(op1.Quarantined) != 1 || len(op2.Quarantined) != 1 || op1.Quarantined[0] != op2.Quarantined[0] || op1.Quarantined[0] == first.Quarantined[0] {
		t.Fatalf("operator's quarantine: %v / %v (tenant's %v)", op1.Quarantined, op2.Quarantined, first.Quarantined)
	}
	var n int
	f.tx(func(tx *store.Tx) error { return tx.QueryRow(f.ctx, `SELECT COUNT(*) FROM quarantine`).Scan(&n) })
	if n != 4 {
		t.Fatalf("quarantine holds %d rows, want 4", n)
	}
}

// TestReplyStoredBeforeTheMessageItAnswers: the customer's answer came into the inbox before
// the message it answers was fetched from the Sent folder. When the sent message is stored,
// the answer (and what is threaded to it) joins its conversation and, being unassigned, is
// filed at the sent message's contact. An answer threaded by another reference and one
// filed by hand keep what they had.
func TestReplyStoredBeforeTheMessageItAnswers(t *testing.T) {
	f := newFixture(t)
	acct := f.mailbox(store.KindAccount, "info@makler.example", false, "")
	kunde := f.contact("kunde@example.org")
	elsewhere := f.insertSent(acct, "anderes@makler.example", kunde)

	reply := f.deliver("From: anders@example.net\nTo: info@makler.example\nSubject: Re: Angebot\nMessage-ID: <r1@example.net>\n"+
		"In-Reply-To: <angebot-2@makler.example>\n\nJa.\n", "anders@example.net", acct).Messages[0]
	onReply := f.deliver("From: chef@example.net\nTo: info@makler.example\nSubject: Re: Re: Angebot\nMessage-ID: <r2@example.net>\n"+
		"In-Reply-To: <r1@example.net>\n\nAuch ja.\n", "chef@example.net", acct).Messages[0]
	threaded := f.deliver("From: dritter@example.net\nTo: info@makler.example\nSubject: Re: Angebot\nMessage-ID: <r3@example.net>\n"+
		"In-Reply-To: <angebot-2@makler.example>\nReferences: <anderes@makler.example>\n\nx\n", "dritter@example.net", acct).Messages[0]
	byHand := f.deliver("From: vierter@example.net\nTo: info@makler.example\nSubject: Re: Angebot\nMessage-ID: <r4@example.net>\n"+
		"In-Reply-To: <angebot-2@makler.example>\n\nx\n", "vierter@example.net", acct).Messages[0]
	if reply.ThreadID != reply.ID || reply.ContactID != nil || onReply.ThreadID != reply.ID || threaded.ThreadID != elsewhere.ID {
		t.Fatalf("before: reply thread %d contact %v, its answer thread %d, threaded %d", reply.ThreadID, reply.ContactID, onReply.ThreadID, threaded.ThreadID)
	}
	f.tx(func(tx *store.Tx) error {
		return tx.FileMessage(f.ctx, f.tenant.ID, byHand.ID, nil, "filed by hand by anna")
	})

	sent := f.deliverSent("From: info@makler.example\nTo: Kunde <kunde@example.org>\nSubject: Angebot\nMessage-ID: <angebot-2@makler.example>\n\nAngebot\n", acct).Messages[0]
	if sent.ContactID == nil || *sent.ContactID != kunde {
		t.Fatalf("sent message filed at %v", sent.ContactID)
	}
	after := map[int64]store.Message{}
	f.tx(func(tx *store.Tx) error {
		for _, id := range []int64{reply.ID, onReply.ID, threaded.ID, byHand.ID} {
			m, err := tx.MessageWhere(f.ctx, store.MessageQuery{TenantID: f.tenant.ID}, id)
			if err != nil {
				return err
			}
			after[id] = m
		}
		return nil
	})
	if m := after[reply.ID]; m.ThreadID != sent.ThreadID || m.ContactID == nil || *m.ContactID != kunde || m.FiledReason != "reply to <angebot-2@makler.example>" {
		t.Errorf("the reply after the sent message: thread %d (want %d), contact %v, reason %q", m.ThreadID, sent.ThreadID, m.ContactID, m.FiledReason)
	}
	if m := after[onReply.ID]; m.ThreadID != sent.ThreadID {
		t.Errorf("the answer to the reply: thread %d, want %d", m.ThreadID, sent.ThreadID)
	}
	if m := after[threaded.ID]; m.ThreadID != elsewhere.ID {
		t.Errorf("a reply threaded by References moved to %d", m.ThreadID)
	}
	if m := after[byHand.ID]; m.ThreadID != sent.ThreadID || m.ContactID != nil || m.FiledReason != "filed by hand by anna" {
		t.Errorf("the reply filed by hand: thread %d, contact %v, reason %q", m.ThreadID, m.ContactID, m.FiledReason)
	}
}
