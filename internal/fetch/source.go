package fetch

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/emersion/go-imap/v2"

	"postfach/internal/core"
	"postfach/internal/mailstore"
	"postfach/internal/netguard"
	"postfach/internal/store"
)

// sourceRun is one leased run of one source.
type sourceRun struct {
	f     *Fetcher
	src   store.FetchSource
	mb    store.Mailbox
	as    core.AccountSettings
	res   Result
	idled bool
	// onIdle is called when the run starts waiting in IDLE (the loop frees a worker slot).
	onIdle func()
	warn   error // a problem that did not stop the run (a message over the size limit)
	// inboxUIDNext is INBOX's UIDNEXT as the last fetch of it saw it: IDLE starts only when
	// the SELECT before it still reports that, so mail that arrived between the fetch and
	// IDLE is not left waiting for the next timed run.
	inboxUIDNext imap.UID
}

func (r *sourceRun) run(ctx context.Context) (Result, error) {
	mb, err := r.f.DB.Read().MailboxByID(ctx, r.src.MailboxID)
	if err != nil {
		return r.res, fmt.Errorf("fetch: %w", err)
	}
	// A1: an inactive account keeps its data but is not fetched.
	if mb.Kind != store.KindAccount || !mb.Active {
		return r.res, nil
	}
	r.mb = mb
	if r.as, err = core.ParseAccountSettings(mb.Settings); err != nil {
		return r.res, fmt.Errorf("fetch: %w", err)
	}
	switch r.as.Receive.Type {
	case core.ReceiveNone:
		return r.res, nil
	case core.ReceiveIMAP, core.ReceiveIMAPO365, core.ReceiveIMAPGmail:
		err = r.imap(ctx)
	case core.ReceivePOP3, core.ReceivePOP3O365, core.ReceivePOP3Gmail:
		err = r.pop3(ctx)
	default:
		err = fmt.Errorf("%w: receive type %q", errNotConfigured, r.as.Receive.Type)
	}
	if err == nil && r.warn != nil {
		err = r.warn
	}
	return r.res, err
}

// credentials returns the login: a password, or an OAuth2 access token (refreshed when due).
func (r *sourceRun) credentials(ctx context.Context) (user, secret string, oauth bool, err error) {
	rs := r.as.Receive
	if rs.Host == "" || rs.Username == "" {
		return "", "", false, errNotConfigured
	}
	if p := core.OAuthProviderFor(rs.Type); p != "" {
		tok, err := r.f.Core.AccountAccessToken(ctx, r.mb, p)
		return rs.Username, tok, true, err
	}
	pw, err := r.f.Core.ReceivePassword(r.mb)
	if err != nil {
		return "", "", false, fmt.Errorf("fetch: open password: %w", err)
	}
	return rs.Username, pw, false, nil
}

// dial connects through the guard (user-supplied host) and, for SSL/TLS, handshakes with a
// verified certificate.
func (r *sourceRun) dial(ctx context.Context) (net.Conn, error) {
	rs := r.as.Receive
	d := &netguard.Dialer{Policy: r.f.Network}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(rs.Host, strconv.Itoa(rs.Port)))
	if err != nil {
		return nil, fmt.Errorf("fetch: connect: %w", err)
	}
	if rs.Security == "tls" {
		tc := tls.Client(conn, r.f.tlsConfig(rs.Host))
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("fetch: tls: %w", err)
		}
		return tc, nil
	}
	return conn, nil
}

// commit runs fn in a transaction that first renews the lease: if another instance took the
// source over (this one stalled past its lease), nothing is committed.
func (r *sourceRun) commit(ctx context.Context, fn func(tx *store.Tx) error) error {
	err := r.f.DB.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.RenewFetchLease(ctx, r.mb.ID, r.f.Holder, tx.Now()+r.f.Lease.Milliseconds()); err != nil {
			return fmt.Errorf("fetch: lease lost: %w", err)
		}
		return fn(tx)
	})
	return err
}

// prepare hashes and parses a downloaded message; it needs no database, so it runs while the
// previous batch commits.
func (r *sourceRun) prepare(source string, raw []byte, quiet bool) *mailstore.Prepared {
	return mailstore.Prepare(mailstore.Delivery{Source: source, Mailboxes: []store.Mailbox{r.mb}, Raw: raw,
		Hostname: r.f.Hostname, NoAutoReply: quiet})
}

// storeMessage stores one fetched message in the batch's transaction unless the account
// already has the same content (Message-ID and SHA-256 of the raw bytes), also in the
// quarantine. Mail of the Sent folder (sent) is stored as the user's sent mail. It returns the
// message's id, nil when it went to the quarantine.
func (r *sourceRun) storeMessage(ctx context.Context, tx *store.Tx, b *mailstore.Batch, folder string, sent bool, m *mailstore.Prepared) (*int64, error) {
	if id, found, err := r.earlierCopy(ctx, tx, sent, m); err != nil || found {
		if found {
			r.res.Duplicates++
		}
		return id, err
	}
	deliver := b.Deliver
	if sent {
		deliver = b.DeliverSent
	}
	st, err := deliver(ctx, m)
	if err != nil {
		return nil, err
	}
	if len(st.Messages) == 0 {
		r.res.Imported++ // kept raw in the quarantine
		return nil, nil
	}
	sm := st.Messages[0]
	if sm.Duplicate {
		r.res.Duplicates++
		return &sm.ID, nil
	}
	r.res.Imported++
	if !sent && folder != "" && folder != "INBOX" {
		if err := tx.SetMessageFolder(ctx, r.mb.TenantID, sm.ID, folder); err != nil {
			return nil, err
		}
	}
	return &sm.ID, nil
}

// earlierCopy finds what the delivery does not look for itself. Received mail is recognised
// by the delivery (Message-ID and hash); asked here are a copy in the account's Sent mail
// (whose delivery matches Postfach's own sent copies by Message-ID only), mail without a
// Message-ID stored before schema version 14 under a random id, and the quarantine, whose
// repeat the delivery would count as imported.
func (r *sourceRun) earlierCopy(ctx context.Context, tx *store.Tx, sent bool, m *mailstore.Prepared) (*int64, bool, error) {
	tid, mb := r.mb.TenantID, r.mb.ID
	if m.Unparsable() {
		if _, err := tx.QuarantinedByHash(ctx, &tid, &mb, m.SHA256()); err == nil {
			return nil, true, nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return nil, false, err
		}
		return nil, false, nil
	}
	id, err := int64(0), store.ErrNotFound
	if sent {
		id, err = tx.FindDuplicate(ctx, tid, mb, m.MessageID(), m.SHA256())
	}
	if errors.Is(err, store.ErrNotFound) && !m.HasOwnMessageID() {
		id, err = tx.MessageByHashBeforeV14(ctx, tid, mb, m.SHA256())
	}
	switch {
	case err == nil:
		return &id, true, nil
	case errors.Is(err, store.ErrNotFound):
		return nil, false, nil
	}
	return nil, false, err
}
