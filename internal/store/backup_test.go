package store_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"postfach/internal/store"
	"postfach/internal/store/storetest"
)

func seedForBackup(t testing.TB, db *store.DB) {
	t.Helper()
	ctx := context.Background()
	err := db.InTx(ctx, func(tx *store.Tx) error {
		tn, err := tx.CreateTenant(ctx, store.Tenant{Name: "Firma", Slug: "firma", MailboxQuota: 1})
		if err != nil {
			return err
		}
		m, err := tx.CreateMailbox(ctx, tn.ID, store.Mailbox{Kind: store.KindAccount, Address: "a@firma.example", Active: true,
			SMTP: store.SMTPSettings{PasswordEncrypted: []byte{0, 1, 2, 0xff}}})
		if err != nil {
			return err
		}
		_, err = tx.InsertMessage(ctx, tn.ID, store.Message{MailboxID: &m.ID, Direction: store.DirectionIn, Journal: true, CreatedAt: 1,
			Raw: []byte(backupBody)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

const backupBody = "Subject: ü\r\n\r\n\x00binary\xff"

// restoredBody reads the one message of a restored database with its body.
func restoredBody(t *testing.T, db *store.DB) (body, leftInMessages []byte, journal bool) {
	t.Helper()
	err := db.Read().QueryRow(context.Background(), `SELECT b.raw, m.raw, m.journal FROM messages m JOIN message_bodies b ON b.message_id = m.id`).
		Scan(&body, &leftInMessages, &journal)
	if err != nil {
		t.Fatalf("restored message: %v", err)
	}
	return body, leftInMessages, journal
}

func TestBackupRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := storetest.Open(t)
	seedForBackup(t, src)
	var buf bytes.Buffer
	res, err := src.Backup(ctx, &buf, []byte("key"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows["messages"] != 1 || res.Rows["tenants"] != 1 || res.Manifest.SchemaVersion != store.LatestVersion() {
		t.Fatalf("backup %+v", res)
	}
	dst := storetest.Open(t)
	got, err := dst.Restore(ctx, bytes.NewReader(buf.Bytes()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Key) != "key" || got.Rows["mailboxes"] != 1 || got.Rows["messages"] != 1 {
		t.Errorf("restored %v, key %q", got.Rows, got.Key)
	}
	if raw, left, journal := restoredBody(t, dst); string(raw) != backupBody || len(left) != 0 || !journal {
		t.Errorf("restored message %q (messages.raw %q) journal %v", raw, left, journal)
	}
	m, err := dst.Read().MailboxesByAddress(ctx, 1, "a@firma.example")
	if err != nil || len(m) != 1 || !bytes.Equal(m[0].SMTP.PasswordEncrypted, []byte{0, 1, 2, 0xff}) {
		t.Errorf("restored mailbox %+v %v", m, err)
	}
	if _, err := dst.Restore(ctx, bytes.NewReader(buf.Bytes()), nil); !errors.Is(err, store.ErrNotEmpty) {
		t.Errorf("restore into a full database: %v", err)
	}
	// A truncated backup changes nothing.
	empty := storetest.Open(t)
	if _, err := empty.Restore(ctx, bytes.NewReader(buf.Bytes()[:buf.Len()/2]), nil); err == nil {
		t.Errorf("truncated backup restored")
	}
	var n int
	_ = empty.Read().QueryRow(ctx, `SELECT COUNT(*) FROM tenants`).Scan(&n)
	if n != 0 {
		t.Errorf("truncated backup left %d tenants", n)
	}
}

// A backup taken before message bodies had their own table (schema 12: the body in
// messages.raw) restores with the body moved to message_bodies.
func TestRestoreOfABackupWithBodiesInMessages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := storetest.Open(t)
	seedForBackup(t, src)
	err := src.InTx(ctx, func(tx *store.Tx) error {
		for _, q := range []string{
			`UPDATE messages SET raw = (SELECT b.raw FROM message_bodies b WHERE b.message_id = messages.id)`,
			`DELETE FROM message_bodies`,
			`DELETE FROM schema_migrations WHERE version >= 13`,
		} {
			if _, err := tx.Exec(ctx, q); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	res, err := src.Backup(ctx, &buf, nil)
	if err != nil || res.Manifest.SchemaVersion != 12 {
		t.Fatalf("backup: version %d, %v", res.Manifest.SchemaVersion, err)
	}
	dst := storetest.Open(t)
	if _, err := dst.Restore(ctx, bytes.NewReader(buf.Bytes()), nil); err != nil {
		t.Fatal(err)
	}
	if raw, left, _ := restoredBody(t, dst); string(raw) != backupBody || len(left) != 0 {
		t.Errorf("restored body %q, left in messages.raw %q", raw, left)
	}
}

var errRollback = errors.New("roll back")

// FuzzRestore feeds arbitrary bytes to the backup reader: it must fail cleanly or restore,
// never panic, and a failed restore leaves the database empty. Every restore is rolled
// back at the end so that each input meets an empty database.
func FuzzRestore(f *testing.F) {
	db := storetest.Open(f)
	src := storetest.Open(f)
	seedForBackup(f, src)
	var buf bytes.Buffer
	if _, err := src.Backup(context.Background(), &buf, nil); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte{})
	f.Add([]byte("\x1f\x8b\x08\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		_, err := db.Restore(ctx, bytes.NewReader(data), func(*store.Tx, store.RestoreResult) error { return errRollback })
		if errors.Is(err, store.ErrNotEmpty) {
			t.Fatalf("an earlier restore was not rolled back: %v", err)
		}
		var n int
		_ = db.Read().QueryRow(ctx, `SELECT COUNT(*) FROM tenants`).Scan(&n)
		if n != 0 {
			t.Fatalf("restore (%v) left %d tenants", err, n)
		}
	})
}

// Mail without a Message-ID stored before version 14 had a random one; a rescan finds it by
// its hash among the account's rows from before that version, and nowhere else.
func TestMessageByHashBeforeV14(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.Open(t)
	var applied int64
	if err := db.Read().QueryRow(ctx, `SELECT applied_at FROM schema_migrations WHERE version = 14`).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	var tid, mb, other, old int64
	err := db.InTx(ctx, func(tx *store.Tx) error {
		tn, err := tx.CreateTenant(ctx, store.Tenant{Name: "Firma", Slug: "firma", MailboxQuota: 2})
		if err != nil {
			return err
		}
		tid = tn.ID
		for i, addr := range []string{"a@firma.example", "b@firma.example"} {
			m, err := tx.CreateMailbox(ctx, tid, store.Mailbox{Kind: store.KindAccount, Address: addr, Active: true})
			if err != nil {
				return err
			}
			if i == 0 {
				mb = m.ID
			} else {
				other = m.ID
			}
		}
		o, err := tx.InsertMessage(ctx, tid, store.Message{MailboxID: &mb, Direction: store.DirectionIn, MessageID: "20241123150405.0a1b2c@mx.example",
			SHA256: "hash-old", Raw: []byte("x"), CreatedAt: applied - 1000})
		old = o.ID
		if err != nil {
			return err
		}
		_, err = tx.InsertMessage(ctx, tid, store.Message{MailboxID: &mb, Direction: store.DirectionIn, MessageID: "new@example.org",
			SHA256: "hash-new", Raw: []byte("y"), CreatedAt: applied + 1000})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	tx := db.Read()
	if id, err := tx.MessageByHashBeforeV14(ctx, tid, mb, "hash-old"); err != nil || id != old {
		t.Errorf("old message: id %d, %v, want %d", id, err, old)
	}
	for _, tc := range []struct {
		mailbox int64
		sha     string
	}{{mb, "hash-new"}, {other, "hash-old"}, {mb, "hash-none"}} {
		if id, err := tx.MessageByHashBeforeV14(ctx, tid, tc.mailbox, tc.sha); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%+v: id %d, %v, want not found", tc, id, err)
		}
	}
}
