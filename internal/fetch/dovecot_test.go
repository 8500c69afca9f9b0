package fetch

import (
	"context"
	"strings"
	"testing"

	"postfach/internal/core"
	"postfach/internal/store"
	"postfach/internal/store/storetest"
	"postfach/internal/testpeers"
)

// TestDovecot fetches from a real Dovecot over IMAP and POP3 with every encryption, keeping
// and deleting on the server, and checks the import rules: each message exactly once, \Seen
// set by another client does not matter, a changed UIDVALIDITY rescans without duplicates.
func TestDovecot(t *testing.T) {
	t.Parallel()
	dv := testpeers.StartDovecot(t, map[string]string{})
	cases := []struct {
		name     string
		typ      string
		addr     func() string
		security string
		del      bool
	}{
		{"imap plain keep", core.ReceiveIMAP, func() string { return dv.IMAPAddr }, "none", false},
		{"imap starttls delete", core.ReceiveIMAP, func() string { return dv.IMAPAddr }, "starttls", true},
		{"imaps keep", core.ReceiveIMAP, func() string { return dv.IMAPSAddr }, "tls", false},
		{"pop3 stls keep", core.ReceivePOP3, func() string { return dv.POP3Addr }, "starttls", false},
		{"pop3s delete", core.ReceivePOP3, func() string { return dv.POP3SAddr }, "tls", true},
		{"pop3 plain delete", core.ReceivePOP3, func() string { return dv.POP3Addr }, "none", true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			user := "u" + string(rune('a'+i))
			dv.SetPassword(t, user, "secret-"+user)
			fx := newFixture(t, storetest.Open(t), dv)
			id := fx.account(t, user+"@firma.example", tc.typ, tc.addr(), tc.security, user, "secret-"+user, tc.del)
			want := map[string]int{}
			for n := 0; n < 3; n++ {
				raw := message(n, user)
				dv.Append(t, user, "INBOX", raw)
				want[hashOf(raw)] = 1
			}
			// Another client read them all: \Seen is not our "imported" marker.
			dv.Doveadm(t, "flags", "add", "-u", user, `\Seen`, "mailbox", "INBOX", "ALL")

			res := fx.fetchNow(t, id)
			if res.Imported != 3 {
				t.Fatalf("first fetch imported %d, want 3 (%+v)", res.Imported, res)
			}
			left := serverCount(t, dv, user, "INBOX")
			if tc.del && left != 0 || !tc.del && left != 3 {
				t.Fatalf("server keeps %d messages with delete=%v", left, tc.del)
			}
			if res := fx.fetchNow(t, id); res.Imported != 0 || res.Duplicates != 0 {
				t.Fatalf("second fetch: %+v, want nothing", res)
			}
			raw := message(10, user)
			dv.Append(t, user, "INBOX", raw)
			want[hashOf(raw)] = 1
			if res := fx.fetchNow(t, id); res.Imported != 1 {
				t.Fatalf("fetch after one new message: %+v", res)
			}
			got := storedHashes(t, fx.db, id)
			if len(got) != len(want) {
				t.Fatalf("stored %v, want %v", got, want)
			}
			for h, n := range got {
				if want[h] != 1 || n != 1 {
					t.Fatalf("stored %s %d times (appended: %v)", h, n, want[h] == 1)
				}
			}
		})
	}
}

func TestDovecotUIDValidityChange(t *testing.T) {
	t.Parallel()
	dv, fx, id := dovecotAccount(t, "ulla", "starttls", false)
	dv.Append(t, "ulla", "INBOX", message(1, "v"))
	dv.Append(t, "ulla", "INBOX", message(2, "v"))
	// The same bytes without a Message-ID twice would be one message; distinct ones are two.
	dv.Append(t, "ulla", "INBOX", []byte("From: a@example.org\r\nSubject: no id\r\n\r\nbody\r\n"))
	if res := fx.fetchNow(t, id); res.Imported != 3 {
		t.Fatalf("first fetch: %+v", res)
	}
	dv.Doveadm(t, "mailbox", "update", "--uid-validity", "4242", "-u", "ulla", "INBOX")
	dv.Append(t, "ulla", "INBOX", message(3, "v"))
	res := fx.fetchNow(t, id)
	if res.Imported != 1 || res.Duplicates != 3 {
		t.Fatalf("after UIDVALIDITY change: %+v, want 1 imported and 3 recognised", res)
	}
	st, err := fx.db.Read().IMAPFolderState(context.Background(), id, "INBOX")
	if err != nil || st.UIDValidity != 4242 {
		t.Fatalf("folder state %+v, %v", st, err)
	}
	if n := len(storedHashes(t, fx.db, id)); n != 4 {
		t.Fatalf("stored %d distinct messages, want 4", n)
	}
}

// TestDovecotFolders synchronises the folder list (C10), suggests the special-use mapping
// (C9), and imports a chosen folder besides INBOX.
func TestDovecotFolders(t *testing.T) {
	t.Parallel()
	dv, fx, id := dovecotAccount(t, "olaf", "tls", false)
	ctx := context.Background()
	for _, f := range []string{"Sent", "Drafts", "Archive"} {
		dv.Doveadm(t, "mailbox", "create", "-u", "olaf", f)
	}
	dv.Append(t, "olaf", "Archive", message(1, "archiv"))
	dv.Append(t, "olaf", "INBOX", message(2, "inbox"))

	st, err := fx.svc.FetchAccountNow(ctx, fx.admin, id, true)
	if err != nil || !st.Pending {
		t.Fatalf("fetch now: %+v, %v", st, err)
	}
	if _, err := fx.f.RunSource(ctx, id); err != nil {
		t.Fatal(err)
	}
	st, err = fx.svc.AccountFetchStatus(ctx, fx.admin, id)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range st.Folders {
		names = append(names, f.Name)
	}
	if strings.Join(names, ",") != "Archive,Drafts,INBOX,Sent" || st.Suggested.Sent != "Sent" || st.Suggested.Drafts != "Drafts" || st.Pending {
		t.Fatalf("status after sync: folders %v, suggested %+v, pending %v", names, st.Suggested, st.Pending)
	}
	if _, err := fx.svc.SetAccountFolderImport(ctx, fx.admin, id, []core.FolderImport{{Name: "Archive", Import: true}}); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.svc.SetAccountFolderImport(ctx, fx.admin, id, []core.FolderImport{{Name: "Nope", Import: true}}); err == nil {
		t.Fatal("unknown folder accepted")
	}
	res, err := fx.f.RunSource(ctx, id)
	if err != nil || res.Imported != 1 {
		t.Fatalf("fetch of Archive: %+v, %v", res, err)
	}
	var folder string
	if err := fx.db.Read().QueryRow(ctx, `SELECT folder FROM messages WHERE mailbox_id = ? AND subject LIKE 'archiv%'`, id).Scan(&folder); err != nil || folder != "Archive" {
		t.Fatalf("archived message in folder %q, %v", folder, err)
	}
}

// TestInactiveAndUnverified: an inactive account is not fetched (A1); a server whose
// certificate we cannot verify is refused (C5).
func TestInactiveAndUnverified(t *testing.T) {
	t.Parallel()
	dv, fx, id := dovecotAccount(t, "ines", "tls", true)
	ctx := context.Background()
	dv.Append(t, "ines", "INBOX", message(1, "i"))
	if _, err := fx.svc.SetAccountActive(ctx, fx.admin, id, false); err != nil {
		t.Fatal(err)
	}
	if res := fx.fetchNow(t, id); res.Imported != 0 || serverCount(t, dv, "ines", "INBOX") != 1 {
		t.Fatalf("inactive account fetched: %+v", res)
	}
	if _, err := fx.svc.SetAccountActive(ctx, fx.admin, id, true); err != nil {
		t.Fatal(err)
	}
	fx.f.RootCAs = nil // the system roots do not know the test CA
	if err := fx.db.InTx(ctx, func(tx *store.Tx) error { return tx.MarkFetchDue(ctx, fx.tenant, id, false) }); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.f.RunSource(ctx, id); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("unverified certificate: %v", err)
	}
	if serverCount(t, dv, "ines", "INBOX") != 1 {
		t.Fatal("message left the server")
	}
	src, _ := fx.db.Read().FetchSource(ctx, id)
	if src.LastError == "" || src.Failures != 1 {
		t.Fatalf("source after failure: %+v", src)
	}
}
