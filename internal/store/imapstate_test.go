package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"postfach/internal/store"
	"postfach/internal/store/storetest"
)

// imapFixture is a tenant with one hosted mailbox and its default IMAP folders.
type imapFixture struct {
	db  *store.DB
	ctx context.Context
	mb  store.Mailbox
}

func newIMAPFixture(t *testing.T) imapFixture {
	t.Helper()
	f := imapFixture{db: storetest.Open(t), ctx: context.Background()}
	err := f.db.InTx(f.ctx, func(tx *store.Tx) error {
		tn, err := tx.CreateTenant(f.ctx, store.Tenant{Name: "A", Slug: "a", MailboxQuota: 5})
		if err != nil {
			return err
		}
		if f.mb, err = tx.CreateMailbox(f.ctx, tn.ID, store.Mailbox{Kind: store.KindHosted, Address: "info@a.example", Active: true}); err != nil {
			return err
		}
		if err := tx.EnsureIMAPFolders(f.ctx, tn.ID, f.mb.ID); err != nil {
			return err
		}
		return tx.EnsureIMAPFolders(f.ctx, tn.ID, f.mb.ID) // idempotent
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f imapFixture) folder(t *testing.T, name string) store.IMAPFolder {
	t.Helper()
	fo, err := f.db.Read().IMAPFolderByName(f.ctx, f.mb.ID, name)
	if err != nil {
		t.Fatal(err)
	}
	return fo
}

// message stores a message of the mailbox (received or sent) without an IMAP entry.
func (f imapFixture) message(t *testing.T, tx *store.Tx, direction string) store.Message {
	t.Helper()
	m, err := tx.InsertMessage(f.ctx, f.mb.TenantID, store.Message{MailboxID: &f.mb.ID, Direction: direction, Subject: "x", Size: 10, Raw: []byte("Subject: x\r\n\r\n")})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (f imapFixture) add(t *testing.T, folder store.IMAPFolder, n int) []uint32 {
	t.Helper()
	var uids []uint32
	err := f.db.InTx(f.ctx, func(tx *store.Tx) error {
		var news []store.NewIMAPEntry
		for i := 0; i < n; i++ {
			news = append(news, store.NewIMAPEntry{MessageID: f.message(t, tx, store.DirectionIn).ID, Flags: "", InternalDate: 1, Size: 10})
		}
		var err error
		uids, err = tx.AddIMAPEntries(f.ctx, folder, news)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return uids
}

func uidsOf(entries []store.IMAPEntry) []uint32 {
	out := []uint32{}
	for _, e := range entries {
		out = append(out, e.UID)
	}
	return out
}

func equalUIDs(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestIMAPFoldersAndUIDValidity(t *testing.T) {
	t.Parallel()
	f := newIMAPFixture(t)
	folders, err := f.db.Read().IMAPFolders(f.ctx, f.mb.ID)
	if err != nil || len(folders) != len(store.DefaultIMAPFolders) {
		t.Fatalf("folders %+v %v", folders, err)
	}
	for _, fo := range folders {
		if fo.UIDValidity == 0 || fo.UIDNext != 1 || !fo.Subscribed {
			t.Errorf("new folder %+v", fo)
		}
	}
	if f.folder(t, "inbox").Name != "INBOX" || f.folder(t, "Sent").SpecialUse != `\Sent` {
		t.Error("INBOX is case-insensitive and Sent has \\Sent")
	}
	if _, err := f.db.Read().IMAPFolderByName(f.ctx, f.mb.ID, "sent"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("other folder names are case-sensitive: %v", err)
	}

	// A folder deleted and created again under the same name gets a new UIDVALIDITY
	// (RFC 9051 §2.3.1.1), so clients drop what they cached under the old one.
	base := time.Now()
	f.db.SetClock(func() time.Time { return base })
	var kunden store.IMAPFolder
	err = f.db.InTx(f.ctx, func(tx *store.Tx) error {
		kunden, err = tx.CreateIMAPFolder(f.ctx, f.mb.TenantID, f.mb.ID, "Kunden")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	err = f.db.InTx(f.ctx, func(tx *store.Tx) error {
		_, err := tx.CreateIMAPFolder(f.ctx, f.mb.TenantID, f.mb.ID, "Kunden")
		return err
	})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second Kunden: %v", err)
	}
	f.add(t, kunden, 2)
	// RENAME keeps UIDs and UIDVALIDITY.
	if err := f.db.InTx(f.ctx, func(tx *store.Tx) error { return tx.RenameIMAPFolder(f.ctx, f.mb.ID, kunden.ID, "Kunden/Alt") }); err != nil {
		t.Fatal(err)
	}
	renamed := f.folder(t, "Kunden/Alt")
	if renamed.UIDValidity != kunden.UIDValidity || renamed.UIDNext != 3 {
		t.Errorf("renamed %+v, was %+v", renamed, kunden)
	}
	f.db.SetClock(func() time.Time { return base.Add(2 * time.Second) })
	var again store.IMAPFolder
	err = f.db.InTx(f.ctx, func(tx *store.Tx) error {
		if err := tx.DeleteIMAPFolder(f.ctx, f.mb.ID, renamed.ID); err != nil {
			return err
		}
		again, err = tx.CreateIMAPFolder(f.ctx, f.mb.TenantID, f.mb.ID, "Kunden/Alt")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if again.UIDValidity == kunden.UIDValidity || again.UIDNext != 1 {
		t.Errorf("recreated folder %+v, old UIDVALIDITY %d", again, kunden.UIDValidity)
	}
	if entries, _ := f.db.Read().IMAPEntries(f.ctx, again.ID); len(entries) != 0 {
		t.Errorf("recreated folder shows the old messages: %+v", entries)
	}
}

func TestIMAPUIDsFlagsAndExpunge(t *testing.T) {
	t.Parallel()
	f := newIMAPFixture(t)
	inbox, trash := f.folder(t, "INBOX"), f.folder(t, "Trash")
	if got := f.add(t, inbox, 3); !equalUIDs(got, []uint32{1, 2, 3}) {
		t.Fatalf("first UIDs %v", got)
	}
	// UIDs count per folder.
	if got := f.add(t, trash, 1); !equalUIDs(got, []uint32{1}) {
		t.Fatalf("trash UIDs %v", got)
	}
	if got := f.add(t, inbox, 2); !equalUIDs(got, []uint32{4, 5}) {
		t.Fatalf("next UIDs %v", got)
	}
	modseq0, err := f.db.Read().IMAPFolderModseq(f.ctx, inbox.ID)
	if err != nil {
		t.Fatal(err)
	}

	// Flags: one new modseq for the change, visible in the changes since the old one.
	err = f.db.InTx(f.ctx, func(tx *store.Tx) error {
		return tx.SetIMAPFlags(f.ctx, inbox.ID, map[uint32]string{2: `\Seen`, 4: `\Flagged \Seen`})
	})
	if err != nil {
		t.Fatal(err)
	}
	modseq1, _ := f.db.Read().IMAPFolderModseq(f.ctx, inbox.ID)
	if modseq1 <= modseq0 {
		t.Fatalf("modseq %d after %d", modseq1, modseq0)
	}
	changes, err := f.db.Read().IMAPChangesSince(f.ctx, inbox.ID, modseq0)
	if err != nil || !equalUIDs(uidsOf(changes), []uint32{2, 4}) || changes[1].Flags != `\Flagged \Seen` {
		t.Fatalf("changes %+v %v", changes, err)
	}

	// Expunge: gone from the list, a tombstone in the changes, the UID never given again.
	if err := f.db.InTx(f.ctx, func(tx *store.Tx) error { return tx.ExpungeIMAPEntries(f.ctx, inbox.ID, []uint32{4, 5}) }); err != nil {
		t.Fatal(err)
	}
	entries, err := f.db.Read().IMAPEntries(f.ctx, inbox.ID)
	if err != nil || !equalUIDs(uidsOf(entries), []uint32{1, 2, 3}) {
		t.Fatalf("after expunge %v %v", uidsOf(entries), err)
	}
	changes, _ = f.db.Read().IMAPChangesSince(f.ctx, inbox.ID, modseq1)
	if len(changes) != 2 || !changes[0].Expunged || !changes[1].Expunged {
		t.Fatalf("expunge changes %+v", changes)
	}
	// Flags of an expunged entry are not written back.
	if err := f.db.InTx(f.ctx, func(tx *store.Tx) error {
		return tx.SetIMAPFlags(f.ctx, inbox.ID, map[uint32]string{4: `\Deleted`})
	}); err != nil {
		t.Fatal(err)
	}
	if changes, _ = f.db.Read().IMAPChangesSince(f.ctx, inbox.ID, modseq1); len(changes) != 2 || changes[0].Flags != `\Flagged \Seen` {
		t.Fatalf("expunged entry changed: %+v", changes)
	}
	if got := f.add(t, inbox, 1); !equalUIDs(got, []uint32{6}) {
		t.Fatalf("UID after expunge %v, want 6", got)
	}
	if fo := f.folder(t, "INBOX"); fo.UIDNext != 7 {
		t.Fatalf("UIDNEXT %d", fo.UIDNext)
	}
}

// TestIMAPAssignNew checks the lazy UID assignment of stored mail: received mail to INBOX,
// sent mail to Sent as seen, each message once even when sessions assign concurrently.
func TestIMAPAssignNew(t *testing.T) {
	t.Parallel()
	f := newIMAPFixture(t)
	const n = 40
	err := f.db.InTx(f.ctx, func(tx *store.Tx) error {
		for i := 0; i < n; i++ {
			f.message(t, tx, store.DirectionIn)
		}
		f.message(t, tx, store.DirectionOut)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- f.db.InTx(f.ctx, func(tx *store.Tx) error {
				_, err := tx.AssignNewIMAPEntries(f.ctx, f.mb)
				return err
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	inbox, err := f.db.Read().IMAPEntries(f.ctx, f.folder(t, "INBOX").ID)
	if err != nil || len(inbox) != n {
		t.Fatalf("INBOX has %d entries, want %d (%v)", len(inbox), n, err)
	}
	seen := map[int64]bool{}
	for i, e := range inbox {
		if e.UID != uint32(i+1) || seen[e.MessageID] {
			t.Fatalf("entry %d: %+v (duplicate %v)", i, e, seen[e.MessageID])
		}
		seen[e.MessageID] = true
	}
	sent, _ := f.db.Read().IMAPEntries(f.ctx, f.folder(t, "Sent").ID)
	if len(sent) != 1 || sent[0].Flags != `\Seen` {
		t.Fatalf("Sent %+v", sent)
	}
	left, err := f.db.Read().UnassignedMessages(f.ctx, f.mb.TenantID, f.mb.ID, 10)
	if err != nil || len(left) != 0 {
		t.Fatalf("unassigned after assignment: %d %v", len(left), err)
	}
	var changed bool
	if err := f.db.InTx(f.ctx, func(tx *store.Tx) error {
		changed, err = tx.AssignNewIMAPEntries(f.ctx, f.mb)
		return err
	}); err != nil || changed {
		t.Fatalf("second assignment changed=%v %v", changed, err)
	}
	// An expunged message is not offered again.
	if err := f.db.InTx(f.ctx, func(tx *store.Tx) error {
		return tx.ExpungeIMAPEntries(f.ctx, f.folder(t, "INBOX").ID, []uint32{1})
	}); err != nil {
		t.Fatal(err)
	}
	if left, _ := f.db.Read().UnassignedMessages(f.ctx, f.mb.TenantID, f.mb.ID, 10); len(left) != 0 {
		t.Fatalf("expunged message offered again: %d", len(left))
	}
}

// TestUIDValidityGrowsForAFolderCreatedAgain re-creates folders within the same second:
// after a delete, after a rename, and a default folder a client deleted. Each new folder
// must get a greater UIDVALIDITY than the one it replaces (RFC 9051 §2.3.1.1).
func TestUIDValidityGrowsForAFolderCreatedAgain(t *testing.T) {
	t.Parallel()
	f := newIMAPFixture(t)
	second := time.UnixMilli(1_800_000_000_000)
	f.db.SetClock(func() time.Time { return second })
	in := func(fn func(tx *store.Tx) error) {
		t.Helper()
		if err := f.db.InTx(f.ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	var first, again, renamedAway, afterRename store.IMAPFolder
	in(func(tx *store.Tx) (err error) {
		first, err = tx.CreateIMAPFolder(f.ctx, f.mb.TenantID, f.mb.ID, "Projekte")
		return err
	})
	in(func(tx *store.Tx) error { return tx.DeleteIMAPFolder(f.ctx, f.mb.ID, first.ID) })
	in(func(tx *store.Tx) (err error) {
		again, err = tx.CreateIMAPFolder(f.ctx, f.mb.TenantID, f.mb.ID, "Projekte")
		return err
	})
	if again.UIDValidity <= first.UIDValidity {
		t.Fatalf("re-created after delete: UIDVALIDITY %d, before %d", again.UIDValidity, first.UIDValidity)
	}
	in(func(tx *store.Tx) error { return tx.RenameIMAPFolder(f.ctx, f.mb.ID, again.ID, "Archiv") })
	in(func(tx *store.Tx) (err error) {
		renamedAway, err = tx.IMAPFolderByID(f.ctx, f.mb.ID, again.ID)
		if err != nil {
			return err
		}
		afterRename, err = tx.CreateIMAPFolder(f.ctx, f.mb.TenantID, f.mb.ID, "Projekte")
		return err
	})
	if afterRename.UIDValidity <= renamedAway.UIDValidity {
		t.Fatalf("created after rename: UIDVALIDITY %d, renamed folder %d", afterRename.UIDValidity, renamedAway.UIDValidity)
	}
	var trash, trashAgain store.IMAPFolder
	in(func(tx *store.Tx) (err error) {
		if trash, err = tx.IMAPFolderByName(f.ctx, f.mb.ID, "Trash"); err != nil {
			return err
		}
		if err := tx.DeleteIMAPFolder(f.ctx, f.mb.ID, trash.ID); err != nil {
			return err
		}
		if err := tx.EnsureIMAPFolders(f.ctx, f.mb.TenantID, f.mb.ID); err != nil {
			return err
		}
		trashAgain, err = tx.IMAPFolderByName(f.ctx, f.mb.ID, "Trash")
		return err
	})
	if trashAgain.UIDValidity <= trash.UIDValidity {
		t.Fatalf("default folder re-created: UIDVALIDITY %d, before %d", trashAgain.UIDValidity, trash.UIDValidity)
	}
}
