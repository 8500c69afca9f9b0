package imapd

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"postfach/internal/core"
	"postfach/internal/mailhub"
	"postfach/internal/mailstore"
	"postfach/internal/store"
)

// session is one IMAP connection.
type session struct {
	srv    *Server
	conn   *imapserver.Conn
	ctx    context.Context
	remote netip.Addr

	p        core.HostedPrincipal
	loggedIn bool
	sub      *mailhub.Sub
	stop     chan struct{}
	sel      *selected
	lastSync time.Time // when syncNew last ran; zero before the first look
}

var _ imapserver.SessionIMAP4rev2 = (*session)(nil)

func (sess *session) Close() error {
	if sess.stop != nil {
		close(sess.stop)
	}
	if sess.sub != nil {
		sess.sub.Close()
	}
	return nil
}

func (sess *session) Login(username, password string) error {
	if sess.loggedIn {
		return &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Already logged in"}
	}
	p, err := sess.srv.cfg.Core.AuthenticateHosted(sess.ctx, "imap", username, password, sess.remote)
	switch {
	case errors.Is(err, core.ErrHostedThrottled):
		return errThrottled
	case errors.Is(err, core.ErrHostedAuthFailed):
		return imapserver.ErrAuthFailed
	case err != nil:
		return sess.internal(err)
	}
	sess.p, sess.loggedIn = p, true
	sess.sub = sess.srv.cfg.Hub.Subscribe(p.Mailbox.ID)
	sess.stop = make(chan struct{})
	go sess.watchRevocation(p.Generation)
	if err := sess.srv.db().InTx(sess.ctx, func(tx *store.Tx) error {
		return tx.EnsureIMAPFolders(sess.ctx, p.Mailbox.TenantID, p.Mailbox.ID)
	}); err != nil {
		return sess.internal(err)
	}
	return nil
}

// watchRevocation ends the connection when the mailbox gets a new password (H11). The
// signal may come from another instance, or may be lost; then the periodic check of the
// generation ends the session within the poll interval of the next command.
func (sess *session) watchRevocation(gen int64) {
	sub, stop := sess.sub, sess.stop
	select {
	case <-stop:
	case <-sub.Revoked:
		ok, err := sess.srv.cfg.Core.HostedPasswordCurrent(context.Background(), sess.p.Mailbox.ID, gen)
		if err == nil && ok {
			return
		}
		_ = sess.conn.Bye("Password changed, please log in again")
	}
}

func (sess *session) AppendLimit() uint32 { return sess.srv.cfg.MaxAppendSize }

func (sess *session) Namespace() (*imap.NamespaceData, error) {
	return &imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Prefix: "", Delim: delim}}}, nil
}

const delim = '/'

func (sess *session) folder(name string) (store.IMAPFolder, error) {
	f, err := sess.srv.db().Read().IMAPFolderByName(sess.ctx, sess.p.Mailbox.ID, name)
	if errors.Is(err, store.ErrNotFound) {
		return f, errNoSuchMailbox
	}
	if err != nil {
		return f, sess.internal(err)
	}
	return f, nil
}

func validFolderName(name string) bool {
	if name == "" || len(name) > 200 || strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") || strings.Contains(name, "//") {
		return false
	}
	return !strings.ContainsAny(name, "*%\r\n\x00")
}

func (sess *session) Create(name string, _ *imap.CreateOptions) error {
	name = strings.TrimSuffix(name, string(delim))
	if strings.EqualFold(name, "INBOX") {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists, Text: "INBOX exists"}
	}
	if !validFolderName(name) {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Invalid folder name"}
	}
	err := sess.srv.db().InTx(sess.ctx, func(tx *store.Tx) error {
		_, err := tx.CreateIMAPFolder(sess.ctx, sess.p.Mailbox.TenantID, sess.p.Mailbox.ID, name)
		return err
	})
	if errors.Is(err, store.ErrConflict) {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists, Text: "Folder exists"}
	}
	if err != nil {
		return sess.internal(err)
	}
	return nil
}

func (sess *session) Delete(name string) error {
	f, err := sess.folder(name)
	if err != nil {
		return err
	}
	if f.Name == "INBOX" || f.SpecialUse != "" {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "This folder cannot be deleted"}
	}
	if err := sess.srv.db().InTx(sess.ctx, func(tx *store.Tx) error { return tx.DeleteIMAPFolder(sess.ctx, sess.p.Mailbox.ID, f.ID) }); err != nil {
		return sess.internal(err)
	}
	return nil
}

func (sess *session) Rename(name, newName string, _ *imap.RenameOptions) error {
	f, err := sess.folder(name)
	if err != nil {
		return err
	}
	if f.Name == "INBOX" || strings.EqualFold(newName, "INBOX") || !validFolderName(newName) {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Cannot rename to or from INBOX"}
	}
	err = sess.srv.db().InTx(sess.ctx, func(tx *store.Tx) error { return tx.RenameIMAPFolder(sess.ctx, sess.p.Mailbox.ID, f.ID, newName) })
	if errors.Is(err, store.ErrConflict) {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists, Text: "Folder exists"}
	}
	if err != nil {
		return sess.internal(err)
	}
	return nil
}

func (sess *session) subscribe(name string, on bool) error {
	f, err := sess.folder(name)
	if err != nil {
		return err
	}
	if err := sess.srv.db().InTx(sess.ctx, func(tx *store.Tx) error { return tx.SubscribeIMAPFolder(sess.ctx, sess.p.Mailbox.ID, f.ID, on) }); err != nil {
		return sess.internal(err)
	}
	return nil
}

func (sess *session) Subscribe(name string) error   { return sess.subscribe(name, true) }
func (sess *session) Unsubscribe(name string) error { return sess.subscribe(name, false) }

// List writes its responses corked (cork.go).
func (sess *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	return sess.corked(func() error { return sess.listCorked(w, ref, patterns, options) })
}

func (sess *session) listCorked(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	if len(patterns) == 0 {
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: delim})
	}
	folders, err := sess.srv.db().Read().IMAPFolders(sess.ctx, sess.p.Mailbox.ID)
	if err != nil {
		return sess.internal(err)
	}
	for _, f := range folders {
		match := false
		for _, pat := range patterns {
			if imapserver.MatchList(f.Name, delim, ref, pat) {
				match = true
			}
		}
		if !match || (options.SelectSubscribed && !f.Subscribed) || (options.SelectSpecialUse && f.SpecialUse == "") {
			continue
		}
		data := imap.ListData{Mailbox: f.Name, Delim: delim}
		if f.Subscribed && (options.ReturnSubscribed || options.SelectSubscribed) {
			data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
		}
		if f.SpecialUse != "" {
			data.Attrs = append(data.Attrs, imap.MailboxAttr(f.SpecialUse))
		}
		if options.ReturnStatus != nil {
			st, err := sess.status(f, options.ReturnStatus)
			if err != nil {
				return err
			}
			data.Status = st
		}
		if err := w.WriteList(&data); err != nil {
			return err
		}
	}
	return nil
}

func (sess *session) status(f store.IMAPFolder, options *imap.StatusOptions) (*imap.StatusData, error) {
	if err := sess.syncNewIfDue(); err != nil {
		return nil, sess.internal(err)
	}
	tx := sess.srv.db().Read()
	counts := options.NumMessages || options.NumUnseen || options.NumDeleted || options.Size || options.NumRecent
	if options.UIDNext || counts {
		var err error
		if f, err = tx.IMAPFolderByID(sess.ctx, sess.p.Mailbox.ID, f.ID); err != nil {
			return nil, sess.internal(err)
		}
	}
	data := &imap.StatusData{Mailbox: f.Name, UIDNext: imap.UID(f.UIDNext), UIDValidity: f.UIDValidity}
	if counts {
		entries, _, err := sess.srv.snapshots.entries(sess.ctx, tx, f)
		if err != nil {
			return nil, sess.internal(err)
		}
		var n, unseen, deleted uint32
		var size int64
		for _, e := range entries {
			n++
			size += e.Size
			fl := parseFlags(e.Flags)
			if !hasFlag(fl, imap.FlagSeen) {
				unseen++
			}
			if hasFlag(fl, imap.FlagDeleted) {
				deleted++
			}
		}
		zero := uint32(0)
		if options.NumMessages {
			data.NumMessages = &n
		}
		if options.NumUnseen {
			data.NumUnseen = &unseen
		}
		if options.NumDeleted {
			data.NumDeleted = &deleted
		}
		if options.Size {
			data.Size = &size
		}
		if options.NumRecent {
			data.NumRecent = &zero
		}
	}
	return data, nil
}

func (sess *session) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	f, err := sess.folder(name)
	if err != nil {
		return nil, err
	}
	return sess.status(f, options)
}

// syncNewIfDue runs syncNew on the session's first look, after a new-mail signal, or once
// per poll interval (the inbound server on SQLite sends no signal): its probe scans the
// mailbox's messages, too much to do on every SELECT and STATUS of a busy client.
func (sess *session) syncNewIfDue() error {
	if !sess.lastSync.IsZero() && !sess.sub.TakeNewMail() && time.Since(sess.lastSync) < sess.srv.cfg.PollInterval {
		return nil
	}
	sess.lastSync = time.Now()
	return sess.syncNew()
}

// syncNew gives UIDs to mail of the mailbox that has none yet (store.AssignNewIMAPEntries),
// after a cheap read-only probe so that the common case writes nothing.
func (sess *session) syncNew() error {
	mb := sess.p.Mailbox
	db := sess.srv.db()
	probe, err := db.Read().UnassignedMessages(sess.ctx, mb.TenantID, mb.ID, 1)
	if err != nil || len(probe) == 0 {
		return err
	}
	changed := false
	err = sess.srv.db().InTx(sess.ctx, func(tx *store.Tx) error {
		var err error
		changed, err = tx.AssignNewIMAPEntries(sess.ctx, mb)
		return err
	})
	if err == nil && changed {
		sess.srv.cfg.Hub.Publish(sess.ctx, mailhub.KindChanged, mb.ID)
	}
	return err
}

func (sess *session) Append(name string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	f, err := sess.folder(name)
	if err == errNoSuchMailbox {
		return nil, errTryCreate
	}
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, io.LimitReader(r, int64(sess.srv.cfg.MaxAppendSize)+1)); err != nil {
		return nil, err
	}
	if buf.Len() > int(sess.srv.cfg.MaxAppendSize) {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTooBig, Text: "Message too large"}
	}
	internal := time.Now()
	if !options.Time.IsZero() {
		internal = options.Time
	}
	flags := formatFlags(options.Flags)
	var uid uint32
	quarantined := false
	err = sess.srv.db().InTx(sess.ctx, func(tx *store.Tx) error {
		stored, err := mailstore.Deliver(sess.ctx, tx, mailstore.Delivery{
			Source: "imap-append", Mailboxes: []store.Mailbox{sess.p.Mailbox}, Raw: buf.Bytes(),
			Hostname: sess.srv.cfg.Hostname, NoAutoReply: true,
		})
		if err != nil {
			return err
		}
		if len(stored.Messages) == 0 {
			quarantined = true
			return nil
		}
		uids, err := tx.AddIMAPEntries(sess.ctx, f, []store.NewIMAPEntry{{
			MessageID: stored.Messages[0].ID, Flags: flags, InternalDate: internal.UnixMilli(), Size: int64(buf.Len()),
		}})
		if err != nil {
			return err
		}
		uid = uids[0]
		return nil
	})
	if err != nil {
		return nil, sess.internal(err)
	}
	if quarantined {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Message header cannot be parsed; kept for the administrator"}
	}
	sess.srv.cfg.Hub.Publish(sess.ctx, mailhub.KindChanged, sess.p.Mailbox.ID)
	return &imap.AppendData{UID: imap.UID(uid), UIDValidity: f.UIDValidity}, nil
}

// flags are stored as one space-separated string in a canonical order.
func parseFlags(s string) []imap.Flag {
	if s == "" {
		return []imap.Flag{}
	}
	parts := strings.Fields(s)
	out := make([]imap.Flag, len(parts))
	for i, p := range parts {
		out[i] = imap.Flag(p)
	}
	return out
}

// systemFlags are the flags with a backslash that RFC 9051 §2.3.2 defines; they compare
// case-insensitively and are stored in this spelling.
var systemFlags = [...]string{`\Seen`, `\Answered`, `\Flagged`, `\Deleted`, `\Draft`, `\Recent`}

func canonicalFlag(f imap.Flag) string {
	if strings.HasPrefix(string(f), `\`) {
		for _, sf := range systemFlags {
			if strings.EqualFold(string(f), sf) {
				return sf
			}
		}
	}
	return string(f)
}

// storableFlag reports whether a flag is "\" atom or atom (RFC 9051 §9 flag-keyword,
// flag-extension): only such flags can be written back in a FETCH response unquoted.
func storableFlag(f string) bool {
	atom := strings.TrimPrefix(f, `\`)
	if atom == "" {
		return false
	}
	for i := 0; i < len(atom); i++ {
		c := atom[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return false
		}
	}
	return true
}

func formatFlags(flags []imap.Flag) string {
	set := map[string]bool{}
	for _, f := range flags {
		c := canonicalFlag(f)
		if c == `\Recent` || !storableFlag(c) {
			continue
		}
		set[c] = true
	}
	list := make([]string, 0, len(set))
	for f := range set {
		list = append(list, f)
	}
	sort.Strings(list)
	return strings.Join(list, " ")
}

func hasFlag(flags []imap.Flag, f imap.Flag) bool {
	want := canonicalFlag(f)
	for _, x := range flags {
		if canonicalFlag(x) == want {
			return true
		}
	}
	return false
}
