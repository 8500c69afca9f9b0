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
		_, err = tx.Exec(ctx, `INSERT INTO messages (tenant_id, mailbox_id, direction, raw, journal, created_at) VALUES (?, ?, 'in', ?, TRUE, 1)`,
			tn.ID, m.ID, []byte("Subject: ü\r\n\r\n\x00binary\xff"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
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
	var raw []byte
	var journal bool
	if err := dst.Read().QueryRow(ctx, `SELECT raw, journal FROM messages`).Scan(&raw, &journal); err != nil || string(raw) != "Subject: ü\r\n\r\n\x00binary\xff" || !journal {
		t.Errorf("restored message %q %v %v", raw, journal, err)
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
