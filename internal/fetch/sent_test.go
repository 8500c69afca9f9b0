package fetch

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"postfach/internal/core"
	"postfach/internal/store"
	"postfach/internal/store/storetest"
	"postfach/internal/testpeers"
)

// sentRow is what the test reads back about a stored message.
type sentRow struct {
	id          int64
	direction   string
	folder      string
	status      string
	threadID    int64
	contactID   *int64
	filedReason string
}

func messageByHeaderID(t *testing.T, db *store.DB, tenantID int64, headerID string) []sentRow {
	t.Helper()
	return queryRows(t, db, func(r *sentRow) []any {
		return []any{&r.id, &r.direction, &r.folder, &r.status, &r.threadID, &r.contactID, &r.filedReason}
	}, `SELECT id, direction, folder, status, COALESCE(thread_id, id), contact_id, filed_reason
		FROM messages WHERE tenant_id = ? AND message_id = ? ORDER BY id`, tenantID, headerID)
}

// sentAccount gives the shared Dovecot the user and returns a fixture with that user's IMAP
// account (see imapAccount), its Sent folder mapped to mapped; "" leaves the folder the
// server marks \Sent.
func sentAccount(t *testing.T, dv *testpeers.Dovecot, user, mapped string, del bool) (*fixture, int64) {
	t.Helper()
	dv.SetPassword(t, user, "pw-"+user)
	fx := newFixture(t, storetest.Open(t), dv)
	id := fx.imapAccount(t, dv, user, "starttls", del)
	if mapped != "" {
		if _, err := fx.svc.UpdateAccount(context.Background(), fx.admin, id, core.AccountInput{Folders: &core.FolderInput{Sent: ptr(mapped)}}); err != nil {
			t.Fatal(err)
		}
	}
	return fx, id
}

// TestDovecotSentFolder: mail in the account's Sent folder (C9) is the user's sent mail. It is
// stored as outgoing, filed at the contact of every To/Cc recipient (A4) and threaded, so
// that the customer's reply in INBOX joins its conversation (X3). A copy Postfach put into
// the Sent folder itself (its Message-ID is already stored as sent by this account) is not
// stored twice, and a rescan after a UIDVALIDITY change stores nothing again. The mapped
// folder counts; without a mapping the folder the server marks \Sent does.
func TestDovecotSentFolder(t *testing.T) {
	t.Parallel()
	dv := testpeers.StartDovecot(t, map[string]string{})
	for i, tc := range []struct {
		name   string
		mapped string // the user's Sent mapping; "" uses the server's \Sent folder
		folder string // where the server keeps sent mail
	}{
		{"mapped", "Gesendete Elemente", "Gesendete Elemente"},
		{"special-use", "", "Sent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			user := fmt.Sprintf("sent%d", i)
			address := user + "@firma.example"
			fx, id := sentAccount(t, dv, user, tc.mapped, false)
			var contacts []int64
			for _, email := range []string{"kundin@example.org", "partner@example.org"} {
				c, err := fx.svc.CreateContact(ctx, fx.admin, core.ContactInput{Email: ptr(email)})
				if err != nil {
					t.Fatal(err)
				}
				contacts = append(contacts, c.ID)
			}
			// Postfach sent one message itself and put a copy into the Sent folder; the copy's
			// bytes differ (the signed message), its Message-ID is the same.
			var ownID int64
			if err := fx.db.InTx(ctx, func(tx *store.Tx) error {
				m, err := tx.InsertMessage(ctx, fx.tenant, store.Message{MailboxID: &id, Direction: store.DirectionOut, Folder: "Sent",
					MessageID: "own-1@firma.example", From: address, To: "kundin@example.org", Subject: "Rechnung", SHA256: "x",
					Raw: []byte("Subject: Rechnung\r\n\r\n"), Status: store.QueueSent})
				ownID = m.ID
				return err
			}); err != nil {
				t.Fatal(err)
			}
			sent := fmt.Sprintf("From: Sven <%s>\r\nTo: Kundin <kundin@example.org>\r\nCc: partner@example.org\r\nSubject: Angebot\r\n"+
				"Message-ID: <angebot-%d@firma.example>\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\n\r\nAnbei das Angebot.\r\n", address, i)
			dv.Append(t, user, tc.folder, []byte(sent))
			dv.Append(t, user, tc.folder, []byte("DKIM-Signature: v=1; d=firma.example\r\nFrom: "+address+"\r\nTo: kundin@example.org\r\n"+
				"Subject: Rechnung\r\nMessage-ID: <own-1@firma.example>\r\n\r\nRechnung\r\n"))
			if _, err := fx.svc.FetchAccountNow(ctx, fx.admin, id, true); err != nil {
				t.Fatal(err)
			}
			if _, err := fx.f.RunSource(ctx, id); err != nil {
				t.Fatal(err)
			}
			if _, err := fx.svc.SetAccountFolderImport(ctx, fx.admin, id, []core.FolderImport{{Name: tc.folder, Import: true}}); err != nil {
				t.Fatal(err)
			}
			// The customer's reply arrives in INBOX, which sorts before "Sent": the Sent folder
			// is fetched first all the same, so that the reply finds what it answers.
			dv.Append(t, user, "INBOX", []byte(fmt.Sprintf("From: Kundin <kundin@example.org>\r\nTo: %s\r\nSubject: Re: Angebot\r\n"+
				"Message-ID: <antwort-%d@example.org>\r\nIn-Reply-To: <angebot-%d@firma.example>\r\n\r\nDanke!\r\n", address, i, i)))
			res, err := fx.f.RunSource(ctx, id)
			if err != nil || res.Imported != 2 || res.Duplicates != 1 {
				t.Fatalf("fetch of %q and INBOX: %+v, %v; want the sent message and the reply imported and Postfach's own copy recognised", tc.folder, res, err)
			}

			got := messageByHeaderID(t, fx.db, fx.tenant, fmt.Sprintf("angebot-%d@firma.example", i))
			if len(got) != 1 {
				t.Fatalf("sent message stored %d times", len(got))
			}
			s := got[0]
			if s.direction != store.DirectionOut || s.folder != "Sent" || s.status != store.QueueSent {
				t.Errorf("sent message stored as direction %q, folder %q, status %q; want out, Sent, sent", s.direction, s.folder, s.status)
			}
			if s.contactID == nil || *s.contactID != contacts[0] || s.filedReason != "recipient" {
				t.Errorf("sent message filed at %v (%q), want the To: contact %d", s.contactID, s.filedReason, contacts[0])
			}
			linked := queryRows(t, fx.db, column[int64], `SELECT contact_id FROM message_contacts WHERE tenant_id = ? AND message_id = ? ORDER BY contact_id`, fx.tenant, s.id)
			if !slices.Equal(linked, contacts) {
				t.Errorf("sent message filed at contacts %v, want To and Cc %v", linked, contacts)
			}
			from := queryRows(t, fx.db, column[int64], `SELECT mailbox_id FROM message_mailboxes WHERE tenant_id = ? AND message_id = ? AND role = 'from'`, fx.tenant, s.id)
			if !slices.Equal(from, []int64{id}) {
				t.Errorf("sent message's sending mailbox links %v, want the account %d", from, id)
			}
			if own := messageByHeaderID(t, fx.db, fx.tenant, "own-1@firma.example"); len(own) != 1 || own[0].id != ownID {
				t.Errorf("Postfach's own sent message stored again from the Sent folder: %+v", own)
			}
			reply := messageByHeaderID(t, fx.db, fx.tenant, fmt.Sprintf("antwort-%d@example.org", i))
			if len(reply) != 1 || reply[0].direction != store.DirectionIn || reply[0].threadID != s.threadID {
				t.Errorf("reply %+v, want incoming in the sent message's thread %d", reply, s.threadID)
			}

			// A renumbered Sent folder is scanned again without storing anything twice.
			dv.Doveadm(t, "mailbox", "update", "--uid-validity", "777", "-u", user, tc.folder)
			if res := fx.fetchNow(t, id); res.Imported != 0 || res.Duplicates != 2 {
				t.Fatalf("rescan of %q: %+v, want 2 recognised", tc.folder, res)
			}
		})
	}
}

// TestDovecotQuarantineRescan: a message that cannot be parsed is kept once in the quarantine.
// A changed UIDVALIDITY, which makes the folder be scanned again, brings the same bytes back:
// they are recognised (by SHA-256, as parsed mail is) and not quarantined a second time.
func TestDovecotQuarantineRescan(t *testing.T) {
	t.Parallel()
	dv, fx, id := dovecotAccount(t, "quirin", "starttls", false)
	ctx := context.Background()
	dv.Append(t, "quirin", "INBOX", []byte("kein Kopf, keine Felder\r\n\r\nText\r\n"))
	dv.Append(t, "quirin", "INBOX", message(1, "q"))
	if res := fx.fetchNow(t, id); res.Imported != 2 {
		t.Fatalf("first fetch: %+v", res)
	}
	count := func() int {
		var n int
		if err := fx.db.Read().QueryRow(ctx, `SELECT COUNT(*) FROM quarantine WHERE tenant_id = ?`, fx.tenant).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 1 {
		t.Fatalf("quarantine holds %d messages after the first fetch, want 1", n)
	}
	dv.Doveadm(t, "mailbox", "update", "--uid-validity", "9191", "-u", "quirin", "INBOX")
	res := fx.fetchNow(t, id)
	if n := count(); n != 1 {
		t.Fatalf("quarantine holds %d messages after the rescan, want 1", n)
	}
	if res.Imported != 0 || res.Duplicates != 2 {
		t.Fatalf("rescan: %+v, want both messages recognised", res)
	}
}

// TestDovecotSentKeptOnServer: "delete on server" (C4) never deletes the user's sent mail.
// The mapped Sent folder and a folder the server marks \Sent keep their messages, while the
// messages of INBOX and of another chosen folder are deleted after their import.
func TestDovecotSentKeptOnServer(t *testing.T) {
	t.Parallel()
	dv := testpeers.StartDovecot(t, map[string]string{})
	for i, tc := range []struct {
		name   string
		mapped string   // the user's Sent mapping; "" uses the server's \Sent folder
		kept   []string // folders whose mail stays on the server
	}{
		{"mapped", "Gesendete Elemente", []string{"Gesendete Elemente", "Sent"}},
		{"special-use", "", []string{"Sent"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			user := fmt.Sprintf("keep%d", i)
			fx, id := sentAccount(t, dv, user, tc.mapped, true)
			deleted := []string{"INBOX", "Archive"}
			for n, folder := range append(slices.Clone(tc.kept), deleted...) {
				dv.Append(t, user, folder, message(n, user))
			}
			if _, err := fx.svc.FetchAccountNow(ctx, fx.admin, id, true); err != nil {
				t.Fatal(err)
			}
			// The first run synchronises the folders and imports INBOX, the default.
			if res, err := fx.f.RunSource(ctx, id); err != nil || res.Imported != 1 || res.Deleted != 1 {
				t.Fatalf("first fetch: %+v, %v; want INBOX imported and deleted", res, err)
			}
			var choose []core.FolderImport
			for _, folder := range append(slices.Clone(tc.kept), "Archive") {
				choose = append(choose, core.FolderImport{Name: folder, Import: true})
			}
			if _, err := fx.svc.SetAccountFolderImport(ctx, fx.admin, id, choose); err != nil {
				t.Fatal(err)
			}
			res := fx.fetchNow(t, id)
			if want := len(tc.kept) + 1; res.Imported != want || res.Deleted != 1 {
				t.Fatalf("fetch of the chosen folders: %+v, want %d imported and only Archive's message deleted", res, want)
			}
			for _, folder := range tc.kept {
				if n := serverCount(t, dv, user, folder); n != 1 {
					t.Errorf("%q keeps %d messages on the server, want its sent mail kept", folder, n)
				}
			}
			for _, folder := range deleted {
				if n := serverCount(t, dv, user, folder); n != 0 {
					t.Errorf("%q keeps %d messages on the server, want them deleted", folder, n)
				}
			}
			// A second run neither fetches the kept sent mail again nor deletes it.
			if res := fx.fetchNow(t, id); res.Imported != 0 || res.Duplicates != 0 || res.Deleted != 0 {
				t.Fatalf("second fetch: %+v, want nothing", res)
			}
			for _, folder := range tc.kept {
				if n := serverCount(t, dv, user, folder); n != 1 {
					t.Errorf("%q keeps %d messages after the second run, want 1", folder, n)
				}
			}
		})
	}
}
