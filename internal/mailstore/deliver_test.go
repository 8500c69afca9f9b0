package mailstore

import (
	"strings"
	"testing"
	"time"

	"postfach/internal/store"
)

func TestDeliverThreadsAndFilesReplies(t *testing.T) {
	f := newFixture(t)
	acct := f.mailbox(store.KindAccount, "info@makler.example", false, "")
	kunde := f.contact("kunde@example.org")
	sent := f.insertSent(acct, "angebot-1@makler.example", kunde)

	// The customer answers from another address: threading, not the address, files it.
	reply := f.deliver("From: Kunde <anders@example.net>\nTo: info@makler.example\nSubject: Re: Angebot\nMessage-ID: <r1@example.net>\nIn-Reply-To: <angebot-1@makler.example>\n\nJa.\n", "anders@example.net", acct)
	if len(reply.Messages) != 1 {
		t.Fatalf("stored %+v", reply)
	}
	got := reply.Messages[0]
	if got.ThreadID != sent.ID || got.ContactID == nil || *got.ContactID != kunde || got.FiledReason != "reply to <angebot-1@makler.example>" {
		t.Fatalf("reply: thread %d (want %d), contact %v, reason %q", got.ThreadID, sent.ID, got.ContactID, got.FiledReason)
	}

	// A reply to the reply that names only the older message in References joins the same thread.
	deep := f.deliver("From: x@example.net\nTo: info@makler.example\nSubject: Re: Re: Angebot\nMessage-ID: <r2@example.net>\nReferences: <angebot-1@makler.example> <unknown@elsewhere>\n\nx\n", "x@example.net", acct)
	if m := deep.Messages[0]; m.ThreadID != sent.ID || m.ContactID == nil || *m.ContactID != kunde {
		t.Fatalf("references: %+v", m)
	}

	// Mail from a contact's address without references.
	fromContact := f.deliver("From: KUNDE@example.org\nTo: info@makler.example\nSubject: Neu\nMessage-ID: <n1@example.org>\n\nx\n", "kunde@example.org", acct)
	if m := fromContact.Messages[0]; m.ContactID == nil || *m.ContactID != kunde || m.FiledReason != ReasonFromContact || m.ThreadID != m.ID {
		t.Fatalf("from contact: %+v", m)
	}

	// Unknown sender: unassigned, own thread, a generated Message-ID.
	unknown := f.deliver("From: fremd@example.com\nTo: info@makler.example\nSubject: Hallo\n\nx\n", "fremd@example.com", acct)
	if m := unknown.Messages[0]; m.ContactID != nil || m.FiledReason != ReasonUnassigned || m.MessageID == "" {
		t.Fatalf("unassigned: %+v", m)
	}
}

func TestDeliverDecodesHeaders(t *testing.T) {
	f := newFixture(t)
	acct := f.mailbox(store.KindAccount, "info@makler.example", false, "")
	out := f.deliver("From: =?ISO-8859-1?Q?J=FCrgen_M=FCller?= <jm@example.org>\nTo: info@makler.example\nSubject: =?UTF-8?B?w4RuZGVydW5n?= =?KOI8-R?Q?=F0=D2=C9?=\nDate: Tue, 4 Mar 2025 10:00:00 +0100\nMessage-ID: <d1@example.org>\n\nx\n", "jm@example.org", acct)
	var m store.Message
	f.tx(func(tx *store.Tx) error {
		var err error
		m, err = Read(f.ctx, tx, Viewer{TenantID: f.tenant.ID, Unfiltered: true}, out.Messages[0].ID)
		return err
	})
	if m.From != "Jürgen Müller <jm@example.org>" || m.Subject != "ÄnderungПри" {
		t.Fatalf("decoded from %q subject %q", m.From, m.Subject)
	}
	if want := time.Date(2025, 3, 4, 9, 0, 0, 0, time.UTC).UnixMilli(); m.SentAt != want {
		t.Fatalf("sent_at %d, want %d", m.SentAt, want)
	}
	if !strings.HasPrefix(string(m.Raw), "Received: from test\r\nFrom: =?ISO-8859-1?Q?") || m.Size != int64(len(m.Raw)) {
		t.Fatalf("raw not kept as received: %q", m.Raw[:60])
	}
}

func TestDeliverQuarantinesUnparsable(t *testing.T) {
	f := newFixture(t)
	acct := f.mailbox(store.KindAccount, "info@makler.example", false, "")
	out := f.deliver(" leading space is no header\n\nbody\n", "a@example.org", acct)
	if len(out.Quarantined) != 1 || len(out.Messages) != 0 {
		t.Fatalf("want quarantine, got %+v", out)
	}
	var list []store.QuarantinedMessage
	f.tx(func(tx *store.Tx) error {
		var err error
		list, err = tx.QuarantineList(f.ctx, f.tenant.ID, 10)
		return err
	})
	if len(list) != 1 || list[0].EnvelopeFrom != "a@example.org" || list[0].Reason == "" {
		t.Fatalf("quarantine list %+v", list)
	}
}

func TestDeliverRetryIsNotDuplicated(t *testing.T) {
	f := newFixture(t)
	acct := f.mailbox(store.KindAccount, "info@makler.example", false, "")
	msg := "From: a@example.org\nTo: info@makler.example\nMessage-ID: <once@example.org>\nSubject: x\n\nbody\n"
	first := f.deliver(msg, "a@example.org", acct)
	f.tick()
	again := f.deliver(msg, "a@example.org", acct)
	if !again.Messages[0].Duplicate || again.Messages[0].ID != first.Messages[0].ID {
		t.Fatalf("retry stored twice: %+v / %+v", first, again)
	}
	// Same Message-ID, different content: a different message, stored.
	other := f.deliver(strings.Replace(msg, "body", "other body", 1), "a@example.org", acct)
	if other.Messages[0].Duplicate {
		t.Fatal("different content treated as duplicate")
	}

	// Without a Message-ID the stored id is made from the content hash: the retry of the same
	// bytes is recognised, other bytes are another message.
	bare := "From: a@example.org\nTo: info@makler.example\nSubject: ohne Kennung\n\nbody\n"
	one := f.deliver(bare, "a@example.org", acct)
	if id := one.Messages[0].MessageID; !strings.HasSuffix(id, "@no-message-id.postfach.invalid") || one.Messages[0].Duplicate {
		t.Fatalf("message without Message-ID: %+v", one.Messages[0])
	}
	if two := f.deliver(bare, "a@example.org", acct); !two.Messages[0].Duplicate || two.Messages[0].ID != one.Messages[0].ID {
		t.Fatalf("retry without Message-ID stored twice: %+v / %+v", one, two)
	}
	if three := f.deliver(strings.Replace(bare, "body", "other", 1), "a@example.org", acct); three.Messages[0].Duplicate ||
		three.Messages[0].MessageID == one.Messages[0].MessageID {
		t.Fatalf("other bytes without Message-ID: %+v", three.Messages[0])
	}
}

func TestDeliverOneRowPerTenantWithRoles(t *testing.T) {
	f := newFixture(t)
	a := f.mailbox(store.KindHosted, "chef@makler.example", false, "")
	b := f.mailbox(store.KindHosted, "team@makler.example", false, "")
	out := f.deliver("From: x@example.org\nTo: chef@makler.example\nCc: someone@example.org\nSubject: x\nMessage-ID: <roles@x>\n\nx\n", "x@example.org", a, b)
	if len(out.Messages) != 1 {
		t.Fatalf("want one row, got %d", len(out.Messages))
	}
	rows, err := f.db.SQL().QueryContext(f.ctx, f.db.Rebind(`SELECT mailbox_id, role FROM message_mailboxes WHERE message_id = ? ORDER BY mailbox_id, role`), out.Messages[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var id int64
		var role string
		if err := rows.Scan(&id, &role); err != nil {
			t.Fatal(err)
		}
		name := map[int64]string{a.ID: "chef", b.ID: "team"}[id]
		got = append(got, name+":"+role)
	}
	if strings.Join(got, " ") != "chef:to team:bcc" {
		t.Fatalf("roles %v", got)
	}
}

func TestOutOfOffice(t *testing.T) {
	f := newFixture(t)
	start := time.UnixMilli(f.now.Load()).Add(-time.Hour).UTC().Format(time.RFC3339)
	settings := `{"out_of_office":{"enabled":true,"start":"` + start + `","text":"Bin im Urlaub.\nGrüße"}}`
	mb := f.mailbox(store.KindHosted, "chef@makler.example", false, settings)
	plain := "From: Kunde <k@example.org>\nTo: chef@makler.example\nSubject: Frage\nMessage-ID: <%s@example.org>\n%s\nx\n"
	cases := []struct {
		name    string
		envFrom string
		extra   string
		replies int
	}{
		{"first mail gets a reply", "k@example.org", "", 1},
		{"second within the period does not", "k@example.org", "", 0},
		{"bounce", "", "", 0},
		{"mailer daemon", "MAILER-DAEMON@example.org", "", 0},
		{"auto-submitted", "a@example.org", "Auto-Submitted: auto-replied\n", 0},
		{"auto-submitted no is a person", "b@example.org", "Auto-Submitted: no\n", 1},
		{"list-id", "c@example.org", "List-Id: <news.example.org>\n", 0},
		{"list-unsubscribe", "d@example.org", "List-Unsubscribe: <mailto:u@example.org>\n", 0},
		{"precedence bulk", "e@example.org", "Precedence: bulk\n", 0},
		{"precedence junk", "g@example.org", "Precedence: junk\n", 0},
		{"list owner", "owner-news@example.org", "", 0},
	}
	for i, c := range cases {
		out := f.deliver(strings.Replace(strings.Replace(plain, "%s", string(rune('a'+i)), 1), "%s", c.extra, 1), c.envFrom, mb)
		if len(out.AutoReplies) != c.replies {
			t.Errorf("%s: %d replies, want %d", c.name, len(out.AutoReplies), c.replies)
		}
	}
	// After the period the sender is answered again.
	f.now.Add((8 * 24 * time.Hour).Milliseconds())
	if out := f.deliver(strings.Replace(strings.Replace(plain, "%s", "later", 1), "%s", "", 1), "k@example.org", mb); len(out.AutoReplies) != 1 {
		t.Errorf("after the period: %d replies", len(out.AutoReplies))
	}
	// Every reply went to the outbound queue in the delivery's transaction; none is left pending.
	var pending []store.AutoReply
	var queued []store.QueueEntry
	f.tx(func(tx *store.Tx) error {
		var err error
		if pending, err = tx.PendingAutoReplies(f.ctx, 10); err != nil {
			return err
		}
		queued, err = tx.ClaimOutbound(f.ctx, "test", tx.Now()+60_000, 100)
		return err
	})
	if len(pending) != 0 {
		t.Errorf("%d replies left pending", len(pending))
	}
	if len(queued) != 3 {
		t.Fatalf("%d queue rows, want 3", len(queued))
	}
	var raw, replyID string
	for _, e := range queued {
		if e.Kind != store.QueueKindAutoReply || e.EnvelopeFrom != "" || len(e.Recipients) != 1 {
			t.Errorf("queue row %+v", e)
		}
		if strings.Contains(string(e.Raw), "In-Reply-To: <a@example.org>") {
			raw, replyID = string(e.Raw), e.HeaderMessageID
		}
	}
	// The stored reply is an outgoing message in the received message's conversation.
	f.tx(func(tx *store.Tx) error {
		msgs, err := tx.MessagesByMessageID(f.ctx, mb.TenantID, []string{"a@example.org", replyID})
		if err != nil {
			return err
		}
		if len(msgs) != 2 || msgs[0].ThreadID != msgs[1].ThreadID {
			t.Errorf("received message and reply: %+v", msgs)
		}
		for _, m := range msgs {
			if m.MessageID == replyID && (m.Direction != store.DirectionOut || m.Folder != "Sent") {
				t.Errorf("reply stored as %+v", m)
			}
		}
		return nil
	})
	for _, want := range []string{"Auto-Submitted: auto-replied\r\n", "In-Reply-To: <a@example.org>\r\n", "Subject: Auto: Frage\r\n", "To: <k@example.org>\r\n", "Bin im Urlaub.\r\nGr=C3=BC=C3=9Fe"} {
		if !strings.Contains(raw, want) {
			t.Errorf("reply lacks %q:\n%s", want, raw)
		}
	}
}

func TestOutOfOfficeWindow(t *testing.T) {
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	before, after := at.Add(-time.Hour), at.Add(time.Hour)
	cases := []struct {
		name string
		o    *OutOfOffice
		want bool
	}{
		{"nil", nil, false},
		{"disabled", &OutOfOffice{}, false},
		{"open", &OutOfOffice{Enabled: true}, true},
		{"started", &OutOfOffice{Enabled: true, Start: &before}, true},
		{"not yet", &OutOfOffice{Enabled: true, Start: &after}, false},
		{"ended", &OutOfOffice{Enabled: true, End: &before}, false},
		{"inside", &OutOfOffice{Enabled: true, Start: &before, End: &after}, true},
	}
	for _, c := range cases {
		if got := c.o.ActiveAt(at); got != c.want {
			t.Errorf("%s: %v", c.name, got)
		}
	}
}
