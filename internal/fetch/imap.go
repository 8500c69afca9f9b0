package fetch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"postfach/internal/mailout"
	"postfach/internal/mailstore"
	"postfach/internal/store"
)

// imapSession is a logged-in IMAP connection and its unilateral "new mail" signal.
type imapSession struct {
	c       *imapclient.Client
	newMail chan struct{}
}

func (r *sourceRun) imapConnect(ctx context.Context) (*imapSession, error) {
	user, secret, oauth, err := r.credentials(ctx)
	if err != nil {
		return nil, err
	}
	conn, err := r.dial(ctx)
	if err != nil {
		return nil, err
	}
	s := &imapSession{newMail: make(chan struct{}, 1)}
	opts := &imapclient.Options{
		TLSConfig: r.f.tlsConfig(r.as.Receive.Host),
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					select {
					case s.newMail <- struct{}{}:
					default:
					}
				}
			},
		},
	}
	// Stop a hung server from holding the source forever: closing the connection makes
	// every pending command fail.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if r.as.Receive.Security == "starttls" {
		// RFC 9051 §6.2.1; the client verifies the certificate (C5).
		s.c, err = imapclient.NewStartTLS(conn, opts)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("fetch: imap starttls: %w", err)
		}
	} else {
		s.c = imapclient.New(conn, opts)
		if err := s.c.WaitGreeting(); err != nil {
			s.c.Close()
			return nil, fmt.Errorf("fetch: imap greeting: %w", err)
		}
	}
	if s.c.State() == imap.ConnStateAuthenticated {
		return s, nil // PREAUTH
	}
	caps := s.c.Caps()
	switch {
	case oauth && caps.Has(imap.Cap("AUTH=XOAUTH2")):
		err = s.c.Authenticate(mailout.NewXOAuth2Client(user, secret))
	case oauth:
		err = errors.New("server offers no XOAUTH2")
	default:
		err = s.c.Login(user, secret).Wait()
	}
	if err != nil {
		s.c.Close()
		return nil, fmt.Errorf("fetch: imap login: %w", err)
	}
	return s, nil
}

func (r *sourceRun) imap(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := r.imapConnect(ctx)
	if err != nil {
		return err
	}
	defer s.c.Close()
	context.AfterFunc(ctx, func() { s.c.Close() })

	if r.src.WantFolders || r.src.FoldersSyncedAt == 0 {
		if err := r.syncFolders(ctx, s.c); err != nil {
			return err
		}
	}
	for {
		folders, err := r.f.DB.Read().ImportFolders(ctx, r.mb.TenantID, r.mb.ID)
		if err != nil {
			return fmt.Errorf("fetch: %w", err)
		}
		sent, keep, err := r.sentFolders(ctx)
		if err != nil {
			return err
		}
		for _, folder := range sentFirst(folders, sent) {
			if err := r.imapFolder(ctx, s.c, folder, folder == sent, keep[folder]); err != nil {
				return fmt.Errorf("fetch: folder %q: %w", folder, err)
			}
		}
		// X6: push instead of polling where the server offers IDLE (RFC 2177).
		if r.f.NoIdle || !s.c.Caps().Has(imap.CapIdle) || !slices.Contains(folders, "INBOX") {
			break
		}
		r.idled = true
		again, err := r.idle(ctx, s)
		if err != nil || !again {
			return err
		}
	}
	_ = s.c.Logout().Wait()
	return nil
}

// syncFolders stores the server's folder list (C10) with the special-use attributes
// (RFC 6154) that suggest the drafts/trash/sent mapping (C9).
func (r *sourceRun) syncFolders(ctx context.Context, c *imapclient.Client) error {
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		return fmt.Errorf("fetch: list: %w", err)
	}
	var folders []store.AccountFolder
	for _, l := range list {
		f := store.AccountFolder{Name: l.Mailbox, Selectable: true}
		if l.Delim != 0 {
			f.Delimiter = string(l.Delim)
		}
		if strings.EqualFold(f.Name, "INBOX") {
			f.Name = "INBOX"
		}
		for _, a := range l.Attrs {
			switch a {
			case imap.MailboxAttrNoSelect, imap.MailboxAttrNonExistent:
				f.Selectable = false
			case imap.MailboxAttrDrafts, imap.MailboxAttrSent, imap.MailboxAttrTrash, imap.MailboxAttrJunk, imap.MailboxAttrArchive, imap.MailboxAttrAll, imap.MailboxAttrFlagged:
				f.SpecialUse = string(a)
			}
		}
		folders = append(folders, f)
	}
	err = r.commit(ctx, func(tx *store.Tx) error { return tx.ReplaceAccountFolders(ctx, r.mb.TenantID, r.mb.ID, folders) })
	if err != nil {
		return err
	}
	r.res.Folders = len(folders)
	return nil
}

// sentFolders names the server folder that holds the user's sent mail (C9): the folder the
// user mapped as Sent, else the one the server marks \Sent (RFC 6154); "" when there is none.
// keep holds the folders whose mail "delete on server" (C4) never deletes: that folder and
// every folder the server marks \Sent, also when the user mapped another one. Users keep
// their sent items in Outlook or on the phone; Postfach only copies them.
func (r *sourceRun) sentFolders(ctx context.Context) (sent string, keep map[string]bool, err error) {
	folders, err := r.f.DB.Read().AccountFolders(ctx, r.mb.TenantID, r.mb.ID)
	if err != nil {
		return "", nil, fmt.Errorf("fetch: %w", err)
	}
	keep = map[string]bool{}
	for _, f := range folders {
		if f.SpecialUse == string(imap.MailboxAttrSent) && f.Name != "INBOX" {
			keep[f.Name] = true
			if sent == "" {
				sent = f.Name
			}
		}
	}
	if name := r.as.Folders.Sent; name != "" {
		sent = name
		if strings.EqualFold(name, "INBOX") {
			sent = "" // received mail is never sent mail, whatever the mapping says
		}
	}
	if sent != "" {
		keep[sent] = true
	}
	return sent, keep, nil
}

// sentFirst puts the Sent folder first, so that a customer's reply fetched in the same run
// finds the sent message it answers and joins its conversation (X3).
func sentFirst(folders []string, sent string) []string {
	i := slices.Index(folders, sent)
	if sent == "" || i <= 0 {
		return folders
	}
	out := append([]string{sent}, folders[:i]...)
	return append(out, folders[i+1:]...)
}

// fetchedBatch is one transaction's worth of fetched messages, in UID order.
type fetchedBatch struct {
	uids []imap.UID
	msgs []*mailstore.Prepared
	err  error
}

// imapFolder imports a folder's new mail; sent says it is the Sent folder, keep that its mail
// stays on the server whatever "delete on server" says (the user's sent mail).
func (r *sourceRun) imapFolder(ctx context.Context, c *imapclient.Client, folder string, sent, keep bool) error {
	del := r.as.Receive.DeleteOnServer && !keep
	// EXAMINE when we never change the folder: not even \Recent moves. BODY.PEEK keeps
	// \Seen as it was either way.
	sel, err := c.Select(folder, &imap.SelectOptions{ReadOnly: !del}).Wait()
	if err != nil {
		return fmt.Errorf("select: %w", err)
	}
	validity := sel.UIDValidity
	if folder == "INBOX" {
		r.inboxUIDNext = sel.UIDNext
	}
	st, err := r.f.DB.Read().IMAPFolderState(ctx, r.mb.ID, folder)
	if errors.Is(err, store.ErrNotFound) || (err == nil && st.UIDValidity != validity) {
		// First import, or RFC 9051 §2.3.1.1: the server renumbered the folder. Start over;
		// content dedup keeps the rescan from storing anything twice.
		if err := r.commit(ctx, func(tx *store.Tx) error { return tx.ResetIMAPFolder(ctx, r.mb.ID, folder, validity) }); err != nil {
			return err
		}
		st = store.IMAPFolderState{UIDValidity: validity}
	} else if err != nil {
		return err
	}
	// A first import brings old mail: no out-of-office replies to it.
	quiet := st.HighestUID == 0
	if del {
		// Our UIDs stored but not yet expunged: a crash between commit and expunge.
		pending, err := r.f.DB.Read().IMAPUIDsToExpunge(ctx, r.mb.ID, folder, validity)
		if err != nil {
			return err
		}
		if err := r.expunge(ctx, c, folder, validity, pending); err != nil {
			return err
		}
	}
	if sel.NumMessages == 0 {
		return nil
	}
	// UID FETCH n:* (UID RFC822.SIZE): the new messages and their sizes in one round trip.
	// "n:*" also matches the highest UID when it is below n (RFC 9051 §6.4.9), hence the filter.
	var set imap.UIDSet
	set.AddRange(imap.UID(st.HighestUID+1), 0)
	list, err := c.Fetch(set, &imap.FetchOptions{UID: true, RFC822Size: true}).Collect()
	if err != nil {
		return fmt.Errorf("fetch sizes: %w", err)
	}
	type item struct {
		uid  imap.UID
		size int64
	}
	var items []item
	for _, m := range list {
		if uint32(m.UID) <= st.HighestUID {
			continue
		}
		if m.RFC822Size > r.f.MaxMessageBytes {
			r.warn = fmt.Errorf("fetch: message UID %d in %q has %d bytes, over the limit of %d; left on the server", m.UID, folder, m.RFC822Size, r.f.MaxMessageBytes)
			continue
		}
		items = append(items, item{m.UID, m.RFC822Size})
	}
	slices.SortFunc(items, func(a, b item) int { return int(a.uid) - int(b.uid) })
	var batches [][]imap.UID
	var cur []imap.UID
	var curBytes int64
	for _, it := range items {
		if len(cur) > 0 && (len(cur) >= r.f.BatchMessages || curBytes+it.size > r.f.BatchBytes) {
			batches = append(batches, cur)
			cur, curBytes = nil, 0
		}
		cur = append(cur, it.uid)
		curBytes += it.size
	}
	if len(cur) > 0 {
		batches = append(batches, cur)
	}

	// The next batch downloads while this one commits.
	ch := make(chan fetchedBatch, 1)
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		defer close(ch)
		for _, uids := range batches {
			b := r.fetchBodies(c, uids, quiet)
			select {
			case ch <- b:
			case <-fctx.Done():
				return
			}
			if b.err != nil {
				return
			}
		}
	}()
	var stored []uint32
	for b := range ch {
		if b.err != nil {
			return b.err
		}
		err := r.commit(ctx, func(tx *store.Tx) error {
			batch := mailstore.NewBatch(tx)
			for i, uid := range b.uids {
				id, err := r.storeMessage(ctx, tx, batch, folder, sent, b.msgs[i])
				if err != nil {
					return err
				}
				if err := tx.RecordIMAPUID(ctx, r.mb.ID, folder, validity, uint32(uid), id); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, u := range b.uids {
			stored = append(stored, uint32(u))
		}
	}
	if del {
		return r.expunge(ctx, c, folder, validity, stored)
	}
	return nil
}

func (r *sourceRun) fetchBodies(c *imapclient.Client, uids []imap.UID, quiet bool) fetchedBatch {
	b := fetchedBatch{uids: uids}
	msgs, err := c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{UID: true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil {
		b.err = fmt.Errorf("fetch bodies: %w", err)
		return b
	}
	byUID := make(map[imap.UID][]byte, len(msgs))
	for _, m := range msgs {
		if len(m.BodySection) > 0 {
			byUID[m.UID] = m.BodySection[0].Bytes
		}
	}
	// A UID that vanished meanwhile (expunged by another client) is simply not imported.
	kept := b.uids[:0:0]
	for _, u := range uids {
		if raw, ok := byUID[u]; ok {
			kept = append(kept, u)
			b.msgs = append(b.msgs, r.prepare("imap", raw, quiet))
		}
	}
	b.uids = kept
	return b
}

// expunge deletes our own committed UIDs on the server (C4). With UIDPLUS (RFC 4315 §2.1)
// UID EXPUNGE removes exactly them. Without it, EXPUNGE would remove every \Deleted
// message, also ones another client marked: we then expunge only if no other message is
// \Deleted, and otherwise leave ours flagged and say why.
func (r *sourceRun) expunge(ctx context.Context, c *imapclient.Client, folder string, validity uint32, uids []uint32) error {
	if len(uids) == 0 {
		return nil
	}
	for len(uids) > 0 {
		n := min(len(uids), 1000)
		chunk := uids[:n]
		uids = uids[n:]
		set := imap.UIDSet{}
		for _, u := range chunk {
			set.AddNum(imap.UID(u))
		}
		if err := c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
			return fmt.Errorf("store \\Deleted: %w", err)
		}
		if c.Caps().Has(imap.CapUIDPlus) {
			if err := c.UIDExpunge(set).Close(); err != nil {
				return fmt.Errorf("uid expunge: %w", err)
			}
		} else {
			res, err := c.UIDSearch(&imap.SearchCriteria{Flag: []imap.Flag{imap.FlagDeleted}}, nil).Wait()
			if err != nil {
				return fmt.Errorf("search deleted: %w", err)
			}
			for _, u := range res.AllUIDs() {
				if !set.Contains(u) {
					r.warn = fmt.Errorf("fetch: %q has messages marked deleted by another client and the server lacks UIDPLUS; our messages stay flagged until they are gone", folder)
					return nil
				}
			}
			if err := c.Expunge().Close(); err != nil {
				return fmt.Errorf("expunge: %w", err)
			}
		}
		if err := r.commit(ctx, func(tx *store.Tx) error { return tx.MarkIMAPExpunged(ctx, r.mb.ID, folder, validity, chunk) }); err != nil {
			return err
		}
		r.res.Deleted += len(chunk)
	}
	return nil
}

// idle waits in IDLE on INBOX until new mail, a "fetch now", the IdleFor limit or the end
// of ctx, renewing the lease meanwhile. It reports whether to fetch again.
func (r *sourceRun) idle(ctx context.Context, s *imapSession) (bool, error) {
	sel, err := s.c.Select("INBOX", &imap.SelectOptions{ReadOnly: !r.as.Receive.DeleteOnServer}).Wait()
	if err != nil {
		return false, fmt.Errorf("fetch: select INBOX: %w", err)
	}
	select {
	case <-s.newMail: // EXISTS of the SELECT itself
	default:
	}
	if sel.UIDNext != r.inboxUIDNext {
		// Mail arrived after the fetch and before this SELECT: IDLE would report nothing
		// new for it (the server has told us already), so fetch again first.
		return true, nil
	}
	if r.onIdle != nil {
		r.onIdle()
	}
	cmd, err := s.c.Idle()
	if err != nil {
		return false, fmt.Errorf("fetch: idle: %w", err)
	}
	renew := time.NewTicker(r.f.Lease / 3)
	defer renew.Stop()
	limit := time.NewTimer(r.f.IdleFor)
	defer limit.Stop()
	again := false
wait:
	for {
		select {
		case <-s.newMail:
			again = true
			break wait
		case <-limit.C:
			break wait
		case <-ctx.Done():
			break wait
		case <-renew.C:
			if err := r.commit(ctx, func(tx *store.Tx) error { return nil }); err != nil {
				_ = cmd.Close()
				return false, err
			}
			src, err := r.f.DB.Read().FetchSource(ctx, r.mb.ID)
			if err == nil && (src.DueAt == 0 || src.WantFolders) {
				r.src = src
				again = true
				if err := r.commit(ctx, func(tx *store.Tx) error {
					return tx.ClearFetchDue(ctx, r.mb.ID, r.f.Holder, tx.Now()+r.f.Lease.Milliseconds())
				}); err != nil {
					_ = cmd.Close()
					return false, err
				}
				break wait
			}
		}
	}
	if err := cmd.Close(); err != nil {
		return false, fmt.Errorf("fetch: idle done: %w", err)
	}
	if err := cmd.Wait(); err != nil {
		return false, fmt.Errorf("fetch: idle: %w", err)
	}
	if again && r.src.WantFolders {
		if err := r.syncFolders(ctx, s.c); err != nil {
			return false, err
		}
		r.src.WantFolders = false
	}
	return again && ctx.Err() == nil, nil
}
