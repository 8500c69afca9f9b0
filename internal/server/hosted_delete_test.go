package server

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"postfach/internal/core"
	"postfach/internal/mailstore"
	"postfach/internal/store"
)

// TestHostedDelete deletes a hosted mailbox with an open IMAP session: the preview counts
// what goes and what stays, a stale token is refused, journal-filed mail stays at the
// contact, mail also delivered to another mailbox stays there, the session ends and the
// password stops working.
func TestHostedDelete(t *testing.T) {
	f := startMail(t)
	ctx := context.Background()
	db := f.srv.DB
	second, err := f.srv.Core.CreateHostedMailbox(ctx, f.admin, core.HostedInput{Address: ptr("verkauf@makler.example")})
	if err != nil {
		t.Fatal(err)
	}
	deliver := func(raw string, boxes ...store.Mailbox) int64 {
		t.Helper()
		var id int64
		err := db.InTx(ctx, func(tx *store.Tx) error {
			out, err := mailstore.Deliver(ctx, tx, mailstore.Delivery{Source: "smtp", EnvelopeFrom: "kunde@example.org", Mailboxes: boxes, Raw: []byte(raw), Hostname: "localhost"})
			if err == nil {
				id = out.Messages[0].ID
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	journal := deliver("From: kunde@example.org\r\nTo: info@makler.example\r\nSubject: Vertrag\r\nMessage-ID: <j1@example.org>\r\n\r\nim Journal\r\n", f.box)
	if _, err := db.SQL().Exec(db.Rebind(`UPDATE messages SET journal = TRUE WHERE id = ?`), journal); err != nil {
		t.Fatal(err)
	}
	shared := deliver("From: kunde@example.org\r\nTo: info@makler.example, verkauf@makler.example\r\nSubject: An beide\r\nMessage-ID: <s1@example.org>\r\n\r\nan beide\r\n", f.box, second.Mailbox)

	// An IMAP session that stays open during the deletion.
	ready, end := f.openIMAPSession(t)
	if ready != "ready 3" {
		t.Fatalf("python: %q", ready)
	}

	p, err := f.srv.Core.HostedDeletePreview(ctx, f.admin, f.box.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := (store.HostedDeleteCounts{Deleted: 1, Kept: 1, Shared: 1}); p.Counts != want || p.Confirm == "" {
		t.Fatalf("preview %+v, want %+v", p, want)
	}
	// Mail that arrives after the preview changes the token: the admin must look again.
	deliver("From: kunde@example.org\r\nTo: info@makler.example\r\nSubject: Nachzuegler\r\nMessage-ID: <late@example.org>\r\n\r\nspaet\r\n", f.box)
	var ce *core.Error
	if _, err := f.srv.Core.DeleteHostedMailbox(ctx, f.admin, f.box.ID, p.Confirm); !errors.As(err, &ce) || ce.Status != http.StatusConflict {
		t.Fatalf("delete with a stale token: %v", err)
	}
	if _, err := f.srv.Core.HostedDeletePreview(ctx, core.Actor{Kind: core.ActorAdmin, TenantID: f.other.TenantID, UserID: 1}, f.box.ID); err == nil {
		t.Fatal("another tenant's admin previewed the deletion")
	}
	if p, err = f.srv.Core.HostedDeletePreview(ctx, f.admin, f.box.ID); err != nil || p.Counts.Deleted != 2 {
		t.Fatalf("second preview: %+v %v", p, err)
	}
	done, err := f.srv.Core.DeleteHostedMailbox(ctx, f.admin, f.box.ID, p.Confirm)
	if err != nil || done != p.Counts {
		t.Fatalf("delete: %+v %v (preview %+v)", done, err, p.Counts)
	}

	if rest := end(); !strings.Contains(rest, "closed") {
		t.Errorf("open IMAP session after the deletion: %s", rest)
	}
	if _, err := db.Read().Mailbox(ctx, f.box.TenantID, f.box.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("mailbox still there: %v", err)
	}
	home := func(id int64) (int64, bool) {
		var mb *int64
		err := db.SQL().QueryRow(db.Rebind(`SELECT mailbox_id FROM messages WHERE id = ?`), id).Scan(&mb)
		if err != nil {
			return 0, false
		}
		if mb == nil {
			return 0, true
		}
		return *mb, true
	}
	if mb, ok := home(journal); !ok || mb != 0 {
		t.Errorf("journal-filed message: exists %v, mailbox %d (want kept, detached)", ok, mb)
	}
	if mb, ok := home(shared); !ok || mb != second.Mailbox.ID {
		t.Errorf("shared message: exists %v, mailbox %d (want kept in %d)", ok, mb, second.Mailbox.ID)
	}
	var left, audits int
	if err := db.SQL().QueryRow(db.Rebind(`SELECT COUNT(*) FROM messages WHERE tenant_id = ? AND subject IN ('Anfrage Wohnung', 'Nachzuegler')`), f.box.TenantID).Scan(&left); err != nil || left != 0 {
		t.Errorf("deleted messages left: %d %v", left, err)
	}
	if err := db.SQL().QueryRow(db.Rebind(`SELECT COUNT(*) FROM audit_log WHERE tenant_id = ? AND action = 'hosted.delete'`), f.box.TenantID).Scan(&audits); err != nil || audits != 1 {
		t.Errorf("audit rows: %d %v", audits, err)
	}
	out, err := f.runPy(t, pyPrelude+`
try:
    m = imaplib.IMAP4_SSL("localhost", int(os.environ["IMAPS"]), ssl_context=ctx); m.login(U, P); print("login accepted")
except imaplib.IMAP4.error:
    print("login refused")
`)
	if err != nil || !strings.Contains(out, "login refused") {
		t.Errorf("login after the deletion: %v %s", err, out)
	}
}
