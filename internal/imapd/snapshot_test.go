package imapd

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"postfach/internal/store"
)

// folderModel is the folder as the database keeps it: every entry ever added, expunged
// ones as tombstones, each with the modseq of its last change.
type folderModel struct {
	rows    []store.IMAPEntry
	modseq  int64
	uidNext uint32
}

func (m *folderModel) bump() int64 { m.modseq++; return m.modseq }

func (m *folderModel) live() []store.IMAPEntry {
	var out []store.IMAPEntry
	for _, r := range m.rows {
		if !r.Expunged {
			out = append(out, r)
		}
	}
	return out
}

func (m *folderModel) changesSince(modseq int64) []store.IMAPEntry {
	var out []store.IMAPEntry
	for _, r := range m.rows {
		if r.Modseq > modseq {
			out = append(out, r)
		}
	}
	return out
}

// TestSnapshotApplyMatchesAFullRead changes a folder at random (appends, flag changes,
// expunges, several per modseq and several modseqs between looks) and checks after each
// round that the snapshot brought forward by the changes equals a fresh read of the live
// entries.
func TestSnapshotApplyMatchesAFullRead(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	m := &folderModel{modseq: 1, uidNext: 1}
	snap := &folderSnapshot{uidValidity: 7, modseq: m.modseq}
	for round := 0; round < 600; round++ {
		for op := rng.IntN(6); op >= 0; op-- {
			live := m.live()
			switch k := rng.IntN(3); {
			case k == 0 || len(live) == 0:
				ms := m.bump()
				for n := rng.IntN(3) + 1; n > 0; n-- {
					m.rows = append(m.rows, store.IMAPEntry{UID: m.uidNext, Modseq: ms, Size: int64(m.uidNext)})
					m.uidNext++
				}
			case k == 1:
				ms := m.bump()
				uid := live[rng.IntN(len(live))].UID
				for i := range m.rows {
					if m.rows[i].UID == uid {
						m.rows[i].Flags, m.rows[i].Modseq = fmt.Sprintf(`\Seen $r%d`, round), ms
					}
				}
			default:
				ms := m.bump()
				uid := live[rng.IntN(len(live))].UID
				for i := range m.rows {
					if m.rows[i].UID == uid {
						m.rows[i].Expunged, m.rows[i].Modseq = true, ms
					}
				}
			}
		}
		snap = snap.apply(m.changesSince(snap.modseq))
		if want := m.live(); !slices.Equal(snap.entries, want) {
			t.Fatalf("round %d: snapshot\n%v\nfull read\n%v", round, snap.entries, want)
		}
		if snap.modseq != m.modseq {
			t.Fatalf("round %d: snapshot modseq %d, folder %d", round, snap.modseq, m.modseq)
		}
	}
}

func TestSnapshotsDropAFolderThatIsNotTheSameAnyMore(t *testing.T) {
	fs := newFolderSnapshots(2)
	fs.publish(1, &folderSnapshot{uidValidity: 5, modseq: 9, entries: []store.IMAPEntry{{UID: 1}}})
	// A newer snapshot of the same folder is not replaced by an older one.
	fs.publish(1, &folderSnapshot{uidValidity: 5, modseq: 3})
	if got := fs.byID[1].modseq; got != 9 {
		t.Fatalf("modseq %d after publishing an older snapshot", got)
	}
	// A folder with another UIDVALIDITY replaces it whatever its modseq.
	fs.publish(1, &folderSnapshot{uidValidity: 6, modseq: 1})
	if got := fs.byID[1]; got.uidValidity != 6 || len(got.entries) != 0 {
		t.Fatalf("snapshot %+v", got)
	}
	// The limit holds: the least recently used goes.
	fs.publish(2, &folderSnapshot{uidValidity: 1, modseq: 1})
	fs.publish(3, &folderSnapshot{uidValidity: 1, modseq: 1})
	if len(fs.byID) != 2 || fs.byID[1] != nil {
		t.Fatalf("kept %d snapshots, folder 1 kept: %v", len(fs.byID), fs.byID[1] != nil)
	}
}
