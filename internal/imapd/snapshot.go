package imapd

import (
	"context"
	"slices"
	"sync"
	"time"

	"postfach/internal/store"
)

// folderSnapshots keeps, per folder, the last list of live entries any session of this
// instance read, with the modseq it is current to. SELECT used to read every entry of the
// folder from the database; a phone or Outlook selects INBOX again and again, and the cost
// grew with the mailbox. Now SELECT reads only the entries changed since the snapshot
// (modseqs only grow, expunges stay as tombstones) and merges them.
//
// The database stays the truth: a snapshot is only ever brought forward by what the
// database says changed after it, and it is dropped when the folder does not look like
// the same folder any more (other UIDVALIDITY, a modseq lower than the snapshot's).
type folderSnapshots struct {
	mu    sync.Mutex
	byID  map[int64]*folderSnapshot
	limit int
}

// folderSnapshot is immutable once published; sessions take copies of entries.
type folderSnapshot struct {
	uidValidity uint32
	modseq      int64
	entries     []store.IMAPEntry // live entries by UID
	used        time.Time
}

func newFolderSnapshots(limit int) *folderSnapshots {
	return &folderSnapshots{byID: map[int64]*folderSnapshot{}, limit: limit}
}

// entries returns a private copy of the folder's live entries and the modseq they are
// current to (at least f.HighestModseq as read before).
func (fs *folderSnapshots) entries(ctx context.Context, tx *store.Tx, f store.IMAPFolder) ([]store.IMAPEntry, int64, error) {
	fs.mu.Lock()
	snap := fs.byID[f.ID]
	fs.mu.Unlock()
	var next *folderSnapshot
	if snap != nil && snap.uidValidity == f.UIDValidity && snap.modseq <= f.HighestModseq {
		if snap.modseq == f.HighestModseq {
			next = snap
		} else {
			changes, err := tx.IMAPChangesSince(ctx, f.ID, snap.modseq)
			if err != nil {
				return nil, 0, err
			}
			next = snap.apply(changes)
		}
	} else {
		all, err := tx.IMAPEntries(ctx, f.ID)
		if err != nil {
			return nil, 0, err
		}
		next = &folderSnapshot{uidValidity: f.UIDValidity, modseq: f.HighestModseq, entries: all}
		for _, e := range all {
			next.modseq = max(next.modseq, e.Modseq)
		}
	}
	fs.publish(f.ID, next)
	return slices.Clone(next.entries), next.modseq, nil
}

// apply returns a new snapshot: the old one with changes (entries whose modseq is above
// the old snapshot's, tombstones included) merged in.
func (snap *folderSnapshot) apply(changes []store.IMAPEntry) *folderSnapshot {
	next := &folderSnapshot{uidValidity: snap.uidValidity, modseq: snap.modseq}
	changed := make(map[uint32]store.IMAPEntry, len(changes))
	for _, c := range changes {
		changed[c.UID] = c
		next.modseq = max(next.modseq, c.Modseq)
	}
	next.entries = make([]store.IMAPEntry, 0, len(snap.entries)+len(changes))
	for _, e := range snap.entries {
		if c, ok := changed[e.UID]; ok {
			delete(changed, e.UID)
			if c.Expunged {
				continue
			}
			e = c
		}
		next.entries = append(next.entries, e)
	}
	added := false
	for _, c := range changes {
		if _, ok := changed[c.UID]; ok && !c.Expunged {
			next.entries = append(next.entries, c)
			added = true
		}
	}
	if added {
		slices.SortFunc(next.entries, func(a, b store.IMAPEntry) int { return int(int64(a.UID) - int64(b.UID)) })
	}
	return next
}

// publish keeps snap as the folder's newest, unless a newer one is already there, and
// drops the least recently used snapshots beyond the limit.
func (fs *folderSnapshots) publish(folderID int64, snap *folderSnapshot) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if cur := fs.byID[folderID]; cur != nil && cur.uidValidity == snap.uidValidity && cur.modseq > snap.modseq {
		cur.used = time.Now()
		return
	}
	snap.used = time.Now()
	fs.byID[folderID] = snap
	for len(fs.byID) > fs.limit {
		var oldest int64
		var at time.Time
		for id, s := range fs.byID {
			if at.IsZero() || s.used.Before(at) {
				oldest, at = id, s.used
			}
		}
		delete(fs.byID, oldest)
	}
}
