package imapd

import (
	"bufio"
	"bytes"
	"errors"
	"sort"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message/textproto"

	"postfach/internal/mailhub"
	"postfach/internal/store"
)

// selected is the session's view of the selected folder: the entries it has announced, in
// sequence order (RFC 9051 §2.3.1.2), and the folder modseq it reflects.
type selected struct {
	folder    store.IMAPFolder
	readOnly  bool
	entries   []store.IMAPEntry
	modseq    int64
	lastLook  time.Time
	searchRes imap.UIDSet
}

func (s *selected) indexOf(uid uint32) int {
	i := sort.Search(len(s.entries), func(i int) bool { return s.entries[i].UID >= uid })
	if i < len(s.entries) && s.entries[i].UID == uid {
		return i
	}
	return -1
}

func (s *selected) maxUID() uint32 {
	if len(s.entries) == 0 {
		return 0
	}
	return s.entries[len(s.entries)-1].UID
}

// resolve turns a sequence or UID set into entry indexes, "*" meaning the last message.
func (s *selected) resolve(numSet imap.NumSet) []int {
	var out []int
	if imap.IsSearchRes(numSet) {
		numSet = s.searchRes
	}
	switch set := numSet.(type) {
	case imap.SeqSet:
		n := uint32(len(s.entries))
		for _, r := range set {
			start, stop := r.Start, r.Stop
			if start == 0 {
				start = n
			}
			if stop == 0 {
				stop = n
			}
			if start > stop {
				start, stop = stop, start
			}
			for seq := start; seq <= stop && seq <= n; seq++ {
				if seq >= 1 {
					out = append(out, int(seq-1))
				}
			}
		}
	case imap.UIDSet:
		max := s.maxUID()
		for _, r := range set {
			start, stop := uint32(r.Start), uint32(r.Stop)
			if start == 0 {
				start = max
			}
			if stop == 0 {
				stop = max
			}
			if start > stop {
				start, stop = stop, start
			}
			lo := sort.Search(len(s.entries), func(i int) bool { return s.entries[i].UID >= start })
			for i := lo; i < len(s.entries) && s.entries[i].UID <= stop; i++ {
				out = append(out, i)
			}
		}
	}
	sort.Ints(out)
	uniq := out[:0]
	for i, v := range out {
		if i == 0 || v != out[i-1] {
			uniq = append(uniq, v)
		}
	}
	return uniq
}

func (sess *session) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	sess.sel = nil
	f, err := sess.folder(name)
	if err != nil {
		return nil, err
	}
	if err := sess.syncNewIfDue(); err != nil {
		return nil, sess.internal(err)
	}
	tx := sess.srv.db().Read()
	if f, err = tx.IMAPFolderByID(sess.ctx, sess.p.Mailbox.ID, f.ID); err != nil {
		return nil, sess.internal(err)
	}
	entries, modseq, err := sess.srv.snapshots.entries(sess.ctx, tx, f)
	if err != nil {
		return nil, sess.internal(err)
	}
	sel := &selected{folder: f, readOnly: options != nil && options.ReadOnly, entries: entries, modseq: modseq, lastLook: time.Now()}
	// Drop a signal that predates this snapshot.
	select {
	case <-sess.sub.Changed:
	default:
	}
	sess.sel = sel
	data := &imap.SelectData{
		Flags:          []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft},
		PermanentFlags: []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft, imap.FlagWildcard},
		NumMessages:    uint32(len(entries)),
		UIDNext:        imap.UID(f.UIDNext),
		UIDValidity:    f.UIDValidity,
	}
	for i, e := range entries {
		if !hasFlag(parseFlags(e.Flags), imap.FlagSeen) {
			data.FirstUnseenSeqNum = uint32(i + 1)
			break
		}
	}
	return data, nil
}

func (sess *session) Unselect() error {
	sess.sel = nil
	return nil
}

// Poll reports what changed since the session last looked (RFC 9051 §7: EXISTS, EXPUNGE,
// FETCH FLAGS). It looks at the database only after a signal or after the poll interval.
func (sess *session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	return sess.poll(w, allowExpunge, false)
}

func (sess *session) poll(w *imapserver.UpdateWriter, allowExpunge, force bool) error {
	sel := sess.sel
	if sel == nil {
		return nil
	}
	signalled := false
	select {
	case <-sess.sub.Changed:
		signalled = true
	default:
	}
	if !force && !signalled && time.Since(sel.lastLook) < sess.srv.cfg.PollInterval {
		return nil
	}
	sel.lastLook = time.Now()
	// Looking for mail without a UID costs a scan of the mailbox: only on a new-mail signal
	// or once per poll interval (the inbound server on SQLite sends no signal).
	if err := sess.syncNewIfDue(); err != nil {
		return sess.internal(err)
	}
	tx := sess.srv.db().Read()
	ms, err := tx.IMAPFolderModseq(sess.ctx, sel.folder.ID)
	if err != nil {
		return sess.internal(err)
	}
	if ms <= sel.modseq {
		return nil
	}
	changes, err := tx.IMAPChangesSince(sess.ctx, sel.folder.ID, sel.modseq)
	if err != nil {
		return sess.internal(err)
	}
	var expunged []int
	for _, c := range changes {
		if c.Expunged {
			if i := sel.indexOf(c.UID); i >= 0 {
				expunged = append(expunged, i)
			}
		}
	}
	if len(expunged) > 0 && !allowExpunge {
		// RFC 9051 §7.5.1: no EXPUNGE during FETCH, STORE or SEARCH; look again after the
		// next command.
		sel.lastLook = time.Time{}
		return nil
	}
	// Expunges first, from the highest sequence number down, so each number is still right.
	sort.Sort(sort.Reverse(sort.IntSlice(expunged)))
	for _, i := range expunged {
		if err := w.WriteExpunge(uint32(i + 1)); err != nil {
			return err
		}
		sel.entries = append(sel.entries[:i], sel.entries[i+1:]...)
	}
	added := false
	for _, c := range changes {
		sel.modseq = max(sel.modseq, c.Modseq)
		if c.Expunged {
			continue
		}
		i := sel.indexOf(c.UID)
		switch {
		case i >= 0 && sel.entries[i].Flags != c.Flags:
			sel.entries[i].Flags = c.Flags
			if err := w.WriteMessageFlags(uint32(i+1), imap.UID(c.UID), parseFlags(c.Flags)); err != nil {
				return err
			}
		case i < 0 && c.UID > sel.maxUID():
			sel.entries = append(sel.entries, c)
			added = true
		}
	}
	sel.modseq = max(sel.modseq, ms)
	if added {
		return w.WriteNumMessages(uint32(len(sel.entries)))
	}
	return nil
}

// Idle waits for signals and reports changes until the client says DONE (RFC 2177).
func (sess *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	if sess.sel == nil {
		<-stop
		return nil
	}
	tick := time.NewTicker(sess.srv.cfg.PollInterval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return nil
		case <-sess.sub.Changed:
		case <-tick.C:
		}
		if err := sess.poll(w, true, true); err != nil {
			return err
		}
	}
}

// raw reads a message's bytes.
func (sess *session) raw(e store.IMAPEntry) ([]byte, error) {
	return sess.srv.db().Read().MessageRawByID(sess.ctx, sess.p.Mailbox.TenantID, e.MessageID)
}

func needsRaw(o *imap.FetchOptions) bool {
	return o.Envelope || o.BodyStructure != nil || len(o.BodySection) > 0 || len(o.BinarySection) > 0 || len(o.BinarySectionSize) > 0
}

// Fetch writes its responses corked (cork.go).
func (sess *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	return sess.corked(func() error { return sess.fetchCorked(w, numSet, options) })
}

func (sess *session) fetchCorked(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	sel := sess.sel
	markSeen := false
	for _, bs := range options.BodySection {
		if !bs.Peek {
			markSeen = !sel.readOnly
		}
	}
	idx := sel.resolve(numSet)
	if markSeen {
		changed := map[uint32]string{}
		for _, i := range idx {
			fl := parseFlags(sel.entries[i].Flags)
			if !hasFlag(fl, imap.FlagSeen) {
				nf := formatFlags(append(fl, imap.FlagSeen))
				changed[sel.entries[i].UID] = nf
				sel.entries[i].Flags = nf
			}
		}
		if err := sess.writeFlags(changed); err != nil {
			return err
		}
		if len(changed) > 0 {
			options.Flags = true
		}
	}
	for _, i := range idx {
		e := sel.entries[i]
		rw := w.CreateMessage(uint32(i + 1))
		rw.WriteUID(imap.UID(e.UID))
		if options.Flags {
			rw.WriteFlags(parseFlags(e.Flags))
		}
		if options.InternalDate {
			rw.WriteInternalDate(time.UnixMilli(e.InternalDate))
		}
		if options.RFC822Size {
			rw.WriteRFC822Size(e.Size)
		}
		if needsRaw(options) {
			raw, err := sess.raw(e)
			if err != nil {
				if errors.Is(err, store.ErrNotFound) {
					raw = nil
				} else {
					return sess.internal(err)
				}
			}
			if err := writeBody(rw, raw, options); err != nil {
				return err
			}
		}
		if err := rw.Close(); err != nil {
			return err
		}
	}
	return nil
}

func writeBody(rw *imapserver.FetchResponseWriter, raw []byte, options *imap.FetchOptions) error {
	if options.Envelope {
		h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
		if err == nil {
			rw.WriteEnvelope(imapserver.ExtractEnvelope(h))
		} else {
			rw.WriteEnvelope(&imap.Envelope{})
		}
	}
	if options.BodyStructure != nil {
		rw.WriteBodyStructure(imapserver.ExtractBodyStructure(bytes.NewReader(raw)))
	}
	for _, bs := range options.BodySection {
		part := imapserver.ExtractBodySection(bytes.NewReader(raw), bs)
		wc := rw.WriteBodySection(bs, int64(len(part)))
		if _, err := wc.Write(part); err != nil {
			return err
		}
		if err := wc.Close(); err != nil {
			return err
		}
	}
	for _, bs := range options.BinarySection {
		part := imapserver.ExtractBinarySection(bytes.NewReader(raw), bs)
		wc := rw.WriteBinarySection(bs, int64(len(part)))
		if _, err := wc.Write(part); err != nil {
			return err
		}
		if err := wc.Close(); err != nil {
			return err
		}
	}
	for _, bss := range options.BinarySectionSize {
		rw.WriteBinarySectionSize(bss, imapserver.ExtractBinarySectionSize(bytes.NewReader(raw), bss))
	}
	return nil
}

func (sess *session) writeFlags(changed map[uint32]string) error {
	if len(changed) == 0 {
		return nil
	}
	err := sess.srv.db().InTx(sess.ctx, func(tx *store.Tx) error { return tx.SetIMAPFlags(sess.ctx, sess.sel.folder.ID, changed) })
	if err != nil {
		return sess.internal(err)
	}
	sess.srv.cfg.Hub.Publish(sess.ctx, mailhub.KindChanged, sess.p.Mailbox.ID)
	return nil
}

// Store writes its responses corked (cork.go).
func (sess *session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) error {
	return sess.corked(func() error { return sess.storeCorked(w, numSet, flags, options) })
}

func (sess *session) storeCorked(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) error {
	sel := sess.sel
	if sel.readOnly {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Folder is read-only"}
	}
	idx := sel.resolve(numSet)
	changed := map[uint32]string{}
	for _, i := range idx {
		cur := parseFlags(sel.entries[i].Flags)
		var next []imap.Flag
		switch flags.Op {
		case imap.StoreFlagsSet:
			next = flags.Flags
		case imap.StoreFlagsAdd:
			next = append(cur, flags.Flags...)
		case imap.StoreFlagsDel:
			for _, f := range cur {
				if !hasFlag(flags.Flags, f) {
					next = append(next, f)
				}
			}
		}
		nf := formatFlags(next)
		if nf != sel.entries[i].Flags {
			changed[sel.entries[i].UID] = nf
			sel.entries[i].Flags = nf
		}
	}
	if err := sess.writeFlags(changed); err != nil {
		return err
	}
	if flags.Silent {
		return nil
	}
	for _, i := range idx {
		rw := w.CreateMessage(uint32(i + 1))
		rw.WriteUID(imap.UID(sel.entries[i].UID))
		rw.WriteFlags(parseFlags(sel.entries[i].Flags))
		if err := rw.Close(); err != nil {
			return err
		}
	}
	return nil
}

// copyTo puts the selected entries into another folder under new UIDs (RFC 4315 COPYUID).
func (sess *session) copyTo(tx *store.Tx, idx []int, dest store.IMAPFolder) (*imap.CopyData, error) {
	sel := sess.sel
	var news []store.NewIMAPEntry
	var src imap.UIDSet
	for _, i := range idx {
		e := sel.entries[i]
		news = append(news, store.NewIMAPEntry{MessageID: e.MessageID, Flags: e.Flags, InternalDate: e.InternalDate, Size: e.Size})
		src.AddNum(imap.UID(e.UID))
	}
	uids, err := tx.AddIMAPEntries(sess.ctx, dest, news)
	if err != nil {
		return nil, err
	}
	var dst imap.UIDSet
	for _, u := range uids {
		dst.AddNum(imap.UID(u))
	}
	return &imap.CopyData{UIDValidity: dest.UIDValidity, SourceUIDs: src, DestUIDs: dst}, nil
}

func (sess *session) destination(name string) (store.IMAPFolder, error) {
	f, err := sess.folder(name)
	if err == errNoSuchMailbox {
		return f, errTryCreate
	}
	return f, err
}

func (sess *session) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	f, err := sess.destination(dest)
	if err != nil {
		return nil, err
	}
	idx := sess.sel.resolve(numSet)
	var data *imap.CopyData
	err = sess.srv.db().InTx(sess.ctx, func(tx *store.Tx) error {
		var err error
		data, err = sess.copyTo(tx, idx, f)
		return err
	})
	if err != nil {
		return nil, sess.internal(err)
	}
	sess.srv.cfg.Hub.Publish(sess.ctx, mailhub.KindChanged, sess.p.Mailbox.ID)
	return data, nil
}

// Move is COPY plus EXPUNGE of the sources in one transaction (RFC 6851).
// Move writes its responses corked (cork.go).
func (sess *session) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	return sess.corked(func() error { return sess.moveCorked(w, numSet, dest) })
}

func (sess *session) moveCorked(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	f, err := sess.destination(dest)
	if err != nil {
		return err
	}
	sel := sess.sel
	if sel.readOnly {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Folder is read-only"}
	}
	if f.ID == sel.folder.ID {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Source and destination are the same folder"}
	}
	idx := sel.resolve(numSet)
	var data *imap.CopyData
	err = sess.srv.db().InTx(sess.ctx, func(tx *store.Tx) error {
		var err error
		if data, err = sess.copyTo(tx, idx, f); err != nil {
			return err
		}
		uids := make([]uint32, len(idx))
		for k, i := range idx {
			uids[k] = sel.entries[i].UID
		}
		return tx.ExpungeIMAPEntries(sess.ctx, sel.folder.ID, uids)
	})
	if err != nil {
		return sess.internal(err)
	}
	sess.srv.cfg.Hub.Publish(sess.ctx, mailhub.KindChanged, sess.p.Mailbox.ID)
	if err := w.WriteCopyData(data); err != nil {
		return err
	}
	for k := len(idx) - 1; k >= 0; k-- {
		i := idx[k]
		if err := w.WriteExpunge(uint32(i + 1)); err != nil {
			return err
		}
		sel.entries = append(sel.entries[:i], sel.entries[i+1:]...)
	}
	return nil
}

// Expunge removes the messages flagged \Deleted (all, or those in uids for UID EXPUNGE,
// RFC 4315 §2.1).
// Expunge writes its responses corked (cork.go).
func (sess *session) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	return sess.corked(func() error { return sess.expungeCorked(w, uids) })
}

func (sess *session) expungeCorked(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	sel := sess.sel
	if sel.readOnly {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Folder is read-only"}
	}
	var idx []int
	var gone []uint32
	for i, e := range sel.entries {
		if uids != nil && !uids.Contains(imap.UID(e.UID)) {
			continue
		}
		if hasFlag(parseFlags(e.Flags), imap.FlagDeleted) {
			idx = append(idx, i)
			gone = append(gone, e.UID)
		}
	}
	if len(gone) == 0 {
		return nil
	}
	if err := sess.srv.db().InTx(sess.ctx, func(tx *store.Tx) error { return tx.ExpungeIMAPEntries(sess.ctx, sel.folder.ID, gone) }); err != nil {
		return sess.internal(err)
	}
	sess.srv.cfg.Hub.Publish(sess.ctx, mailhub.KindChanged, sess.p.Mailbox.ID)
	for k := len(idx) - 1; k >= 0; k-- {
		i := idx[k]
		if err := w.WriteExpunge(uint32(i + 1)); err != nil {
			return err
		}
		sel.entries = append(sel.entries[:i], sel.entries[i+1:]...)
	}
	return nil
}
