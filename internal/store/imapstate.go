package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// IMAPFolder is one folder of a hosted mailbox's IMAP view (RFC 9051 §2.3.1.1: UIDVALIDITY
// and UIDNEXT; RFC 7162 §3.1.1: HIGHESTMODSEQ, which we also use to find changes).
type IMAPFolder struct {
	ID            int64
	TenantID      int64
	MailboxID     int64
	Name          string
	SpecialUse    string // \Sent, \Drafts, \Trash, \Junk or empty
	UIDValidity   uint32
	UIDNext       uint32
	HighestModseq int64
	Subscribed    bool
}

// IMAPEntry is a message in a folder under a UID.
type IMAPEntry struct {
	ID           int64 // row id
	UID          uint32
	MessageID    int64 // messages.id
	Flags        string
	Modseq       int64
	Expunged     bool
	InternalDate int64
	Size         int64
}

// DefaultIMAPFolders are created for every hosted mailbox; messages received land in INBOX,
// messages sent from the mailbox in Sent.
var DefaultIMAPFolders = []struct{ Name, SpecialUse string }{
	{"INBOX", ""}, {"Sent", `\Sent`}, {"Drafts", `\Drafts`}, {"Trash", `\Trash`}, {"Junk", `\Junk`},
}

const imapFolderCols = `id, tenant_id, mailbox_id, name, special_use, uid_validity, uid_next, highest_modseq, subscribed`

func scanIMAPFolder(s interface{ Scan(...any) error }) (IMAPFolder, error) {
	var f IMAPFolder
	var validity, next int64
	err := s.Scan(&f.ID, &f.TenantID, &f.MailboxID, &f.Name, &f.SpecialUse, &validity, &next, &f.HighestModseq, &f.Subscribed)
	f.UIDValidity, f.UIDNext = uint32(validity), uint32(next)
	return f, mapErr(err)
}

// uidValidity derives a folder's UIDVALIDITY from the creation time in seconds.
func uidValidity(nowMillis int64) int64 { return (nowMillis / 1000) & 0x7fffffff }

// schemaIMAPUIDValidity keeps, per mailbox, the last UIDVALIDITY given to a folder. The
// creation second alone repeats when a folder is deleted (or renamed) and created again
// under the same name within one second, and RFC 9051 §2.3.1.1 wants the new one greater.
const schemaIMAPUIDValidity = `ALTER TABLE mailboxes ADD COLUMN imap_uid_validity BIGINT NOT NULL DEFAULT 0`

// nextUIDValidity hands out a UIDVALIDITY for a new folder of the mailbox: the creation
// second, or one more than the last one given when that is not greater. The update locks
// the mailbox row, so concurrent creations (other instances) take turns.
func (tx *Tx) nextUIDValidity(ctx context.Context, mailboxID int64) (int64, error) {
	now := uidValidity(tx.now)
	var v int64
	err := tx.queryRow(ctx, `UPDATE mailboxes SET imap_uid_validity = CASE WHEN imap_uid_validity + 1 > ? THEN imap_uid_validity + 1 ELSE ? END
		WHERE id = ? RETURNING imap_uid_validity`, now, now, mailboxID).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("next uidvalidity: %w", mapErr(err))
	}
	return v, nil
}

// EnsureIMAPFolders creates the default folders of a hosted mailbox that are missing (all of
// them at its first login; one a client deleted at a later one).
func (tx *Tx) EnsureIMAPFolders(ctx context.Context, tenantID, mailboxID int64) error {
	rows, err := tx.query(ctx, `SELECT name FROM imap_folders WHERE mailbox_id = ?`, mailboxID)
	if err != nil {
		return fmt.Errorf("ensure imap folders: %w", err)
	}
	have, err := collect(rows, func(r interface{ Scan(...any) error }) (string, error) {
		var n string
		return n, r.Scan(&n)
	})
	if err != nil {
		return fmt.Errorf("ensure imap folders: %w", err)
	}
	var v int64
	for _, f := range DefaultIMAPFolders {
		if slices.Contains(have, f.Name) {
			continue
		}
		if v == 0 {
			if v, err = tx.nextUIDValidity(ctx, mailboxID); err != nil {
				return err
			}
		}
		_, err := tx.exec(ctx, `INSERT INTO imap_folders (tenant_id, mailbox_id, name, special_use, uid_validity, created_at)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (mailbox_id, name) DO NOTHING`,
			tenantID, mailboxID, f.Name, f.SpecialUse, v, tx.now)
		if err != nil {
			return fmt.Errorf("ensure imap folder %s: %w", f.Name, err)
		}
	}
	return nil
}

// IMAPFolders lists a mailbox's folders by name.
func (tx *Tx) IMAPFolders(ctx context.Context, mailboxID int64) ([]IMAPFolder, error) {
	rows, err := tx.query(ctx, `SELECT `+imapFolderCols+` FROM imap_folders WHERE mailbox_id = ? ORDER BY name`, mailboxID)
	if err != nil {
		return nil, fmt.Errorf("imap folders: %w", err)
	}
	return collect(rows, scanIMAPFolder)
}

// IMAPFolderByName reads one folder; INBOX is case-insensitive (RFC 9051 §5.1).
func (tx *Tx) IMAPFolderByName(ctx context.Context, mailboxID int64, name string) (IMAPFolder, error) {
	if strings.EqualFold(name, "INBOX") {
		name = "INBOX"
	}
	f, err := scanIMAPFolder(tx.queryRow(ctx, `SELECT `+imapFolderCols+` FROM imap_folders WHERE mailbox_id = ? AND name = ?`, mailboxID, name))
	if err != nil {
		return f, fmt.Errorf("imap folder %q: %w", name, err)
	}
	return f, nil
}

// IMAPFolderByID reads one folder of a mailbox.
func (tx *Tx) IMAPFolderByID(ctx context.Context, mailboxID, id int64) (IMAPFolder, error) {
	f, err := scanIMAPFolder(tx.queryRow(ctx, `SELECT `+imapFolderCols+` FROM imap_folders WHERE mailbox_id = ? AND id = ?`, mailboxID, id))
	if err != nil {
		return f, fmt.Errorf("imap folder %d: %w", id, err)
	}
	return f, nil
}

// CreateIMAPFolder adds a user folder; an existing name is ErrConflict.
func (tx *Tx) CreateIMAPFolder(ctx context.Context, tenantID, mailboxID int64, name string) (IMAPFolder, error) {
	v, err := tx.nextUIDValidity(ctx, mailboxID)
	if err != nil {
		return IMAPFolder{}, fmt.Errorf("create imap folder: %w", err)
	}
	id, err := tx.insertID(ctx, `INSERT INTO imap_folders (tenant_id, mailbox_id, name, uid_validity, created_at) VALUES (?, ?, ?, ?, ?)`,
		tenantID, mailboxID, name, v, tx.now)
	if err != nil {
		return IMAPFolder{}, fmt.Errorf("create imap folder: %w", err)
	}
	return tx.IMAPFolderByID(ctx, mailboxID, id)
}

// DeleteIMAPFolder removes a folder. Its messages become tombstones without a folder, so
// they are not offered again in INBOX.
func (tx *Tx) DeleteIMAPFolder(ctx context.Context, mailboxID, folderID int64) error {
	if _, err := tx.exec(ctx, `UPDATE imap_messages SET folder_id = NULL, expunged = TRUE WHERE mailbox_id = ? AND folder_id = ?`, mailboxID, folderID); err != nil {
		return fmt.Errorf("delete imap folder: %w", err)
	}
	res, err := tx.exec(ctx, `DELETE FROM imap_folders WHERE mailbox_id = ? AND id = ?`, mailboxID, folderID)
	return affected(res, err, "delete imap folder")
}

// RenameIMAPFolder renames a folder; UIDs and UIDVALIDITY stay.
func (tx *Tx) RenameIMAPFolder(ctx context.Context, mailboxID, folderID int64, name string) error {
	res, err := tx.exec(ctx, `UPDATE imap_folders SET name = ? WHERE mailbox_id = ? AND id = ?`, name, mailboxID, folderID)
	return affected(res, err, "rename imap folder")
}

// SubscribeIMAPFolder sets the subscription flag.
func (tx *Tx) SubscribeIMAPFolder(ctx context.Context, mailboxID, folderID int64, on bool) error {
	res, err := tx.exec(ctx, `UPDATE imap_folders SET subscribed = ? WHERE mailbox_id = ? AND id = ?`, on, mailboxID, folderID)
	return affected(res, err, "subscribe imap folder")
}

// bumpFolder reserves n UIDs and one new modseq of a folder; the row lock it takes
// serialises writers of one folder on PostgreSQL (SQLite serialises all writers).
func (tx *Tx) bumpFolder(ctx context.Context, folderID int64, n int) (firstUID uint32, modseq int64, err error) {
	var next int64
	err = tx.queryRow(ctx, `UPDATE imap_folders SET uid_next = uid_next + ?, highest_modseq = highest_modseq + 1 WHERE id = ?
		RETURNING uid_next, highest_modseq`, n, folderID).Scan(&next, &modseq)
	if err != nil {
		return 0, 0, fmt.Errorf("bump imap folder: %w", mapErr(err))
	}
	return uint32(next) - uint32(n), modseq, nil
}

// NewIMAPEntry is a message to put into a folder.
type NewIMAPEntry struct {
	MessageID    int64
	Flags        string
	InternalDate int64
	Size         int64
}

// AddIMAPEntries puts messages into a folder under fresh UIDs, in order; it returns the UIDs.
func (tx *Tx) AddIMAPEntries(ctx context.Context, f IMAPFolder, entries []NewIMAPEntry) ([]uint32, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	first, modseq, err := tx.bumpFolder(ctx, f.ID, len(entries))
	if err != nil {
		return nil, err
	}
	uids := make([]uint32, len(entries))
	for i, e := range entries {
		uids[i] = first + uint32(i)
		_, err := tx.exec(ctx, `INSERT INTO imap_messages (tenant_id, mailbox_id, folder_id, uid, message_id, flags, modseq, internal_date, size)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, f.TenantID, f.MailboxID, f.ID, uids[i], e.MessageID, e.Flags, modseq, e.InternalDate, e.Size)
		if err != nil {
			return nil, fmt.Errorf("add imap entry: %w", err)
		}
	}
	return uids, nil
}

// UnassignedMessages lists up to limit messages of a mailbox (received for it or sent from
// it) that have no IMAP entry yet, oldest first: mail the inbound server stored since the
// last look. Membership is the store's usual mailbox filter.
func (tx *Tx) UnassignedMessages(ctx context.Context, tenantID, mailboxID int64, limit int) ([]Message, error) {
	// A set difference, not NOT EXISTS: both databases run it as one pass over the mailbox's
	// rows whatever their statistics say. PostgreSQL planned the anti-join as a nested loop
	// while its statistics of a young table were stale, and the probe grew quadratically.
	rows, err := tx.query(ctx, `SELECT `+messageCols+` FROM messages m WHERE m.tenant_id = ? AND m.id IN (
			SELECT id FROM messages WHERE tenant_id = ? AND mailbox_id = ?
			UNION SELECT message_id FROM message_mailboxes WHERE tenant_id = ? AND mailbox_id = ?
			EXCEPT SELECT message_id FROM imap_messages WHERE mailbox_id = ?)
		ORDER BY m.id LIMIT `+fmt.Sprint(limit), tenantID, tenantID, mailboxID, tenantID, mailboxID, mailboxID)
	if err != nil {
		return nil, fmt.Errorf("unassigned messages: %w", err)
	}
	return collect(rows, scanMessage)
}

const imapEntryCols = `id, uid, message_id, flags, modseq, expunged, internal_date, size`

func scanIMAPEntry(s interface{ Scan(...any) error }) (IMAPEntry, error) {
	var e IMAPEntry
	var uid int64
	err := s.Scan(&e.ID, &uid, &e.MessageID, &e.Flags, &e.Modseq, &e.Expunged, &e.InternalDate, &e.Size)
	e.UID = uint32(uid)
	return e, mapErr(err)
}

// IMAPEntries lists the live messages of a folder by UID.
func (tx *Tx) IMAPEntries(ctx context.Context, folderID int64) ([]IMAPEntry, error) {
	rows, err := tx.query(ctx, `SELECT `+imapEntryCols+` FROM imap_messages WHERE folder_id = ? AND expunged = FALSE ORDER BY uid`, folderID)
	if err != nil {
		return nil, fmt.Errorf("imap entries: %w", err)
	}
	return collect(rows, scanIMAPEntry)
}

// IMAPChangesSince lists the entries of a folder changed after modseq, expunged ones included.
func (tx *Tx) IMAPChangesSince(ctx context.Context, folderID, modseq int64) ([]IMAPEntry, error) {
	rows, err := tx.query(ctx, `SELECT `+imapEntryCols+` FROM imap_messages WHERE folder_id = ? AND modseq > ? ORDER BY uid`, folderID, modseq)
	if err != nil {
		return nil, fmt.Errorf("imap changes: %w", err)
	}
	return collect(rows, scanIMAPEntry)
}

// IMAPFolderModseq reads a folder's highest modseq (the cheap "anything new?" probe).
func (tx *Tx) IMAPFolderModseq(ctx context.Context, folderID int64) (int64, error) {
	var m int64
	if err := tx.queryRow(ctx, `SELECT highest_modseq FROM imap_folders WHERE id = ?`, folderID).Scan(&m); err != nil {
		return 0, fmt.Errorf("imap folder modseq: %w", mapErr(err))
	}
	return m, nil
}

// SetIMAPFlags writes new flag strings for entries of a folder (keyed by UID) under one new
// modseq.
func (tx *Tx) SetIMAPFlags(ctx context.Context, folderID int64, flags map[uint32]string) error {
	if len(flags) == 0 {
		return nil
	}
	_, modseq, err := tx.bumpFolder(ctx, folderID, 0)
	if err != nil {
		return err
	}
	for uid, fl := range flags {
		if _, err := tx.exec(ctx, `UPDATE imap_messages SET flags = ?, modseq = ? WHERE folder_id = ? AND uid = ? AND expunged = FALSE`,
			fl, modseq, folderID, uid); err != nil {
			return fmt.Errorf("set imap flags: %w", err)
		}
	}
	return nil
}

// ExpungeIMAPEntries turns entries of a folder into tombstones under one new modseq.
func (tx *Tx) ExpungeIMAPEntries(ctx context.Context, folderID int64, uids []uint32) error {
	if len(uids) == 0 {
		return nil
	}
	_, modseq, err := tx.bumpFolder(ctx, folderID, 0)
	if err != nil {
		return err
	}
	args := []any{modseq, folderID}
	for _, u := range uids {
		args = append(args, u)
	}
	_, err = tx.exec(ctx, `UPDATE imap_messages SET expunged = TRUE, modseq = ? WHERE folder_id = ? AND uid IN (`+placeholders(len(uids))+`)`, args...)
	if err != nil {
		return fmt.Errorf("expunge imap entries: %w", err)
	}
	return nil
}

// MessageRawByID reads the raw bytes of one of a tenant's messages.
func (tx *Tx) MessageRawByID(ctx context.Context, tenantID, id int64) ([]byte, error) {
	var raw []byte
	if err := tx.queryRow(ctx, `SELECT raw FROM message_bodies WHERE tenant_id = ? AND message_id = ?`, tenantID, id).Scan(&raw); err != nil {
		return nil, fmt.Errorf("message raw %d: %w", id, mapErr(err))
	}
	return raw, nil
}

// AssignNewIMAPEntries gives UIDs to a hosted mailbox's mail that has none yet: received
// mail goes to INBOX, mail sent from the mailbox to Sent (seen). The INBOX row is locked
// first (an UPDATE that changes nothing), so that two sessions on any instances never
// assign one message twice. It reports whether anything was assigned.
func (tx *Tx) AssignNewIMAPEntries(ctx context.Context, mb Mailbox) (bool, error) {
	inbox, err := tx.IMAPFolderByName(ctx, mb.ID, "INBOX")
	if err != nil {
		return false, err
	}
	if _, err := tx.exec(ctx, `UPDATE imap_folders SET uid_next = uid_next WHERE id = ?`, inbox.ID); err != nil {
		return false, fmt.Errorf("lock inbox: %w", err)
	}
	sent, err := tx.IMAPFolderByName(ctx, mb.ID, "Sent")
	if err != nil {
		return false, err
	}
	changed := false
	for {
		msgs, err := tx.UnassignedMessages(ctx, mb.TenantID, mb.ID, 500)
		if err != nil || len(msgs) == 0 {
			return changed, err
		}
		var in, out []NewIMAPEntry
		for _, m := range msgs {
			e := NewIMAPEntry{MessageID: m.ID, InternalDate: m.CreatedAt, Size: m.Size}
			if m.Direction == DirectionOut {
				e.Flags = `\Seen`
				out = append(out, e)
			} else {
				in = append(in, e)
			}
		}
		if _, err := tx.AddIMAPEntries(ctx, inbox, in); err != nil {
			return changed, err
		}
		if _, err := tx.AddIMAPEntries(ctx, sent, out); err != nil {
			return changed, err
		}
		changed = true
		if len(msgs) < 500 {
			return changed, nil
		}
	}
}
