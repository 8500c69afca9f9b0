// Package pop3d is the database side of POP3 for hosted mailboxes: the pop3.Backend that
// authenticates through core.AuthenticateHosted and shows the INBOX of the mailbox's IMAP
// view as the maildrop. A POP3 DELE is an IMAP expunge from INBOX (the stored message
// stays, it may be filed at a contact), so IMAP and POP3 clients agree on what is left.
package pop3d

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"

	"postfach/internal/core"
	"postfach/internal/mailhub"
	"postfach/internal/pop3"
	"postfach/internal/store"
)

// Backend implements pop3.Backend.
type Backend struct {
	Core *core.Service
	Hub  *mailhub.Hub
}

// Authenticate checks the full address and password and opens the maildrop.
func (b *Backend) Authenticate(ctx context.Context, user, pass string, remoteIP netip.Addr) (pop3.Mailbox, error) {
	p, err := b.Core.AuthenticateHosted(ctx, "pop3", user, pass, remoteIP)
	switch {
	case errors.Is(err, core.ErrHostedAuthFailed):
		return nil, pop3.ErrAuthFailed
	case errors.Is(err, core.ErrHostedThrottled):
		return nil, fmt.Errorf("%w: too many failed logins", pop3.ErrTemporarilyUnavailable)
	case err != nil:
		return nil, fmt.Errorf("%w: %v", pop3.ErrTemporarilyUnavailable, err)
	}
	db := b.Core.DB
	err = db.InTx(ctx, func(tx *store.Tx) error { return tx.EnsureIMAPFolders(ctx, p.Mailbox.TenantID, p.Mailbox.ID) })
	if err != nil {
		return nil, fmt.Errorf("%w: %v", pop3.ErrTemporarilyUnavailable, err)
	}
	inbox, err := db.Read().IMAPFolderByName(ctx, p.Mailbox.ID, "INBOX")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", pop3.ErrTemporarilyUnavailable, err)
	}
	m := &maildrop{b: b, p: p, inbox: inbox, sub: b.Hub.Subscribe(p.Mailbox.ID), done: make(chan struct{}), stop: make(chan struct{})}
	go m.watch()
	return m, nil
}

type maildrop struct {
	b     *Backend
	p     core.HostedPrincipal
	inbox store.IMAPFolder
	sub   *mailhub.Sub
	done  chan struct{}
	stop  chan struct{}
	byUID map[string]store.IMAPEntry
}

// watch ends the session when the password changes (H11).
func (m *maildrop) watch() {
	select {
	case <-m.stop:
	case <-m.sub.Revoked:
		ok, err := m.b.Core.HostedPasswordCurrent(context.Background(), m.p.Mailbox.ID, m.p.Generation)
		if err != nil || !ok {
			close(m.done)
		}
	}
}

// uidl is the POP3 unique id: UIDVALIDITY and UID, stable for the life of the message
// in INBOX (RFC 1939 §7).
func (m *maildrop) uidl(e store.IMAPEntry) string {
	return strconv.FormatUint(uint64(m.inbox.UIDValidity), 10) + "." + strconv.FormatUint(uint64(e.UID), 10)
}

func (m *maildrop) Messages(ctx context.Context) ([]pop3.MessageInfo, error) {
	if err := assignNew(ctx, m.b.Core.DB, m.p.Mailbox); err != nil {
		return nil, err
	}
	entries, err := m.b.Core.DB.Read().IMAPEntries(ctx, m.inbox.ID)
	if err != nil {
		return nil, fmt.Errorf("pop3d: %w", err)
	}
	m.byUID = map[string]store.IMAPEntry{}
	out := make([]pop3.MessageInfo, 0, len(entries))
	for _, e := range entries {
		id := m.uidl(e)
		m.byUID[id] = e
		out = append(out, pop3.MessageInfo{UID: id, Size: e.Size})
	}
	return out, nil
}

func (m *maildrop) Open(ctx context.Context, uid string) (io.ReadCloser, error) {
	e, ok := m.byUID[uid]
	if !ok {
		return nil, fmt.Errorf("pop3d: no message %s", uid)
	}
	raw, err := m.b.Core.DB.Read().MessageRawByID(ctx, m.p.Mailbox.TenantID, e.MessageID)
	if err != nil {
		return nil, fmt.Errorf("pop3d: %w", err)
	}
	return io.NopCloser(bytes.NewReader(raw)), nil
}

func (m *maildrop) Delete(ctx context.Context, uids []string) error {
	var list []uint32
	for _, u := range uids {
		if e, ok := m.byUID[u]; ok {
			list = append(list, e.UID)
		}
	}
	err := m.b.Core.DB.InTx(ctx, func(tx *store.Tx) error { return tx.ExpungeIMAPEntries(ctx, m.inbox.ID, list) })
	if err != nil {
		return fmt.Errorf("pop3d: %w", err)
	}
	m.b.Hub.Publish(ctx, mailhub.KindChanged, m.p.Mailbox.ID)
	return nil
}

func (m *maildrop) Close() error {
	close(m.stop)
	m.sub.Close()
	return nil
}

func (m *maildrop) Done() <-chan struct{} { return m.done }

// assignNew gives INBOX UIDs to received mail that has none yet, like the IMAP server does.
func assignNew(ctx context.Context, db *store.DB, mb store.Mailbox) error {
	probe, err := db.Read().UnassignedMessages(ctx, mb.TenantID, mb.ID, 1)
	if err != nil || len(probe) == 0 {
		return err
	}
	return db.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.AssignNewIMAPEntries(ctx, mb)
		return err
	})
}
