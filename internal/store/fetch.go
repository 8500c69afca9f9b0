package store

import (
	"context"
	"fmt"
)

// FetchSource is the fetch bookkeeping of one mail account (schemaFetch).
type FetchSource struct {
	MailboxID       int64  `json:"mailbox_id"`
	TenantID        int64  `json:"tenant_id"`
	LeaseHolder     string `json:"-"`
	LeaseUntil      int64  `json:"lease_until"`
	DueAt           int64  `json:"due_at"`
	WantFolders     bool   `json:"want_folders"`
	Idle            bool   `json:"idle"`
	LastRunAt       int64  `json:"last_run_at"`
	LastOKAt        int64  `json:"last_ok_at"`
	LastError       string `json:"last_error"`
	Failures        int    `json:"failures"`
	Imported        int64  `json:"imported"`
	FoldersSyncedAt int64  `json:"folders_synced_at"`
}

const fetchSourceCols = `mailbox_id, tenant_id, lease_holder, lease_until, due_at, want_folders, idle, last_run_at, last_ok_at,
	last_error, failures, imported, folders_synced_at`

func scanFetchSource(s interface{ Scan(...any) error }) (FetchSource, error) {
	var f FetchSource
	err := s.Scan(&f.MailboxID, &f.TenantID, &f.LeaseHolder, &f.LeaseUntil, &f.DueAt, &f.WantFolders, &f.Idle, &f.LastRunAt, &f.LastOKAt,
		&f.LastError, &f.Failures, &f.Imported, &f.FoldersSyncedAt)
	return f, mapErr(err)
}

// SyncFetchSources gives every mail account a fetch_sources row; accounts without receive
// settings get one too and are skipped by the fetcher.
func (tx *Tx) SyncFetchSources(ctx context.Context) error {
	_, err := tx.exec(ctx, `INSERT INTO fetch_sources (mailbox_id, tenant_id)
		SELECT m.id, m.tenant_id FROM mailboxes m WHERE m.kind = 'account'
		AND NOT EXISTS (SELECT 1 FROM fetch_sources f WHERE f.mailbox_id = m.id)`)
	if err != nil {
		return fmt.Errorf("sync fetch sources: %w", err)
	}
	return nil
}

// DueFetchSources lists sources that are due and not leased by another holder.
func (tx *Tx) DueFetchSources(ctx context.Context, holder string, limit int) ([]int64, error) {
	rows, err := tx.query(ctx, `SELECT mailbox_id FROM fetch_sources WHERE due_at <= ? AND (lease_until < ? OR lease_holder = ?)
		ORDER BY due_at LIMIT ?`, tx.now, tx.now, holder, limit)
	if err != nil {
		return nil, fmt.Errorf("due fetch sources: %w", err)
	}
	return collect(rows, func(s interface{ Scan(...any) error }) (int64, error) {
		var id int64
		return id, s.Scan(&id)
	})
}

// ClaimFetchSource takes the lease of a due source for holder until `until`. The UPDATE's
// condition is re-evaluated under the row lock on both databases, so of several instances
// racing for one source exactly one gets a row back.
func (tx *Tx) ClaimFetchSource(ctx context.Context, mailboxID int64, holder string, until int64) (FetchSource, error) {
	// due_at moves to the lease's end: a crashed holder's source is due again when its lease
	// expires, and a "fetch now" during the run (due_at = 0) survives the release.
	res, err := tx.exec(ctx, `UPDATE fetch_sources SET lease_holder = ?, lease_until = ?, last_run_at = ?, due_at = ?
		WHERE mailbox_id = ? AND due_at <= ? AND (lease_until < ? OR lease_holder = ?)`,
		holder, until, tx.now, until, mailboxID, tx.now, tx.now, holder)
	if err := affected(res, err, "claim fetch source"); err != nil {
		return FetchSource{}, err
	}
	return tx.FetchSource(ctx, mailboxID)
}

// FetchSource reads one source.
func (tx *Tx) FetchSource(ctx context.Context, mailboxID int64) (FetchSource, error) {
	f, err := scanFetchSource(tx.queryRow(ctx, `SELECT `+fetchSourceCols+` FROM fetch_sources WHERE mailbox_id = ?`, mailboxID))
	if err != nil {
		return f, fmt.Errorf("fetch source: %w", err)
	}
	return f, nil
}

// FetchSourceOf reads a tenant's source (ErrNotFound when the account was never seen by a
// fetcher yet).
func (tx *Tx) FetchSourceOf(ctx context.Context, tenantID, mailboxID int64) (FetchSource, error) {
	f, err := scanFetchSource(tx.queryRow(ctx, `SELECT `+fetchSourceCols+` FROM fetch_sources WHERE tenant_id = ? AND mailbox_id = ?`, tenantID, mailboxID))
	if err != nil {
		return f, fmt.Errorf("fetch source: %w", err)
	}
	return f, nil
}

// RenewFetchLease extends holder's lease and reports ErrNotFound when the lease was lost.
// Every commit of fetched mail calls it first in its transaction: the fence that keeps a
// stalled instance from committing after another took over.
func (tx *Tx) RenewFetchLease(ctx context.Context, mailboxID int64, holder string, until int64) error {
	res, err := tx.exec(ctx, `UPDATE fetch_sources SET lease_until = ? WHERE mailbox_id = ? AND lease_holder = ? AND lease_until >= ?`,
		until, mailboxID, holder, tx.now)
	return affected(res, err, "renew fetch lease")
}

// FetchRunResult is what a run reports when it gives the lease back.
type FetchRunResult struct {
	Error    string // empty on success
	Imported int64
	NextDue  int64
	Idle     bool
}

// ReleaseFetchSource ends holder's lease, records the outcome and schedules the next run.
// A "fetch now" that arrived during the run (due_at = 0) is kept.
func (tx *Tx) ReleaseFetchSource(ctx context.Context, mailboxID int64, holder string, r FetchRunResult) error {
	q := `UPDATE fetch_sources SET lease_holder = '', lease_until = 0, idle = ?, imported = imported + ?,
		due_at = CASE WHEN due_at = 0 THEN 0 ELSE CAST(? AS BIGINT) END, `
	args := []any{r.Idle, r.Imported, r.NextDue}
	if r.Error == "" {
		q += `last_ok_at = ?, last_error = '', failures = 0`
		args = append(args, tx.now)
	} else {
		q += `last_error = ?, failures = failures + 1`
		args = append(args, r.Error)
	}
	args = append(args, mailboxID, holder)
	_, err := tx.exec(ctx, q+` WHERE mailbox_id = ? AND lease_holder = ?`, args...)
	if err != nil {
		return fmt.Errorf("release fetch source: %w", err)
	}
	return nil
}

// MarkFetchDue asks for a run as soon as possible; wantFolders also asks for the folder list.
func (tx *Tx) MarkFetchDue(ctx context.Context, tenantID, mailboxID int64, wantFolders bool) error {
	if _, err := tx.exec(ctx, `INSERT INTO fetch_sources (mailbox_id, tenant_id) SELECT id, tenant_id FROM mailboxes
		WHERE tenant_id = ? AND id = ? AND NOT EXISTS (SELECT 1 FROM fetch_sources WHERE mailbox_id = ?)`, tenantID, mailboxID, mailboxID); err != nil {
		return fmt.Errorf("mark fetch due: %w", err)
	}
	q := `UPDATE fetch_sources SET due_at = 0`
	if wantFolders {
		q += `, want_folders = TRUE`
	}
	res, err := tx.exec(ctx, q+` WHERE tenant_id = ? AND mailbox_id = ?`, tenantID, mailboxID)
	return affected(res, err, "mark fetch due")
}

// IMAPFolderState is the import position in one folder.
type IMAPFolderState struct {
	UIDValidity uint32
	HighestUID  uint32
}

// IMAPFolderState reads the state of a folder; ErrNotFound when it was never fetched.
func (tx *Tx) IMAPFolderState(ctx context.Context, mailboxID int64, folder string) (IMAPFolderState, error) {
	var s IMAPFolderState
	var v, h int64
	err := tx.queryRow(ctx, `SELECT uidvalidity, highest_uid FROM fetch_imap_folders WHERE mailbox_id = ? AND folder = ?`, mailboxID, folder).Scan(&v, &h)
	if err != nil {
		return s, fmt.Errorf("imap folder state: %w", mapErr(err))
	}
	return IMAPFolderState{UIDValidity: uint32(v), HighestUID: uint32(h)}, nil
}

// ResetIMAPFolder starts a folder over under a new UIDVALIDITY: UIDs of the old one mean
// nothing any more (RFC 9051 §2.3.1.1), so they are forgotten; dedup by content keeps
// the rescan from storing a message twice.
func (tx *Tx) ResetIMAPFolder(ctx context.Context, mailboxID int64, folder string, validity uint32) error {
	if _, err := tx.exec(ctx, `DELETE FROM fetch_imap_uids WHERE mailbox_id = ? AND folder = ? AND uidvalidity <> ?`, mailboxID, folder, int64(validity)); err != nil {
		return fmt.Errorf("reset imap folder: %w", err)
	}
	if _, err := tx.exec(ctx, `DELETE FROM fetch_imap_folders WHERE mailbox_id = ? AND folder = ?`, mailboxID, folder); err != nil {
		return fmt.Errorf("reset imap folder: %w", err)
	}
	if _, err := tx.exec(ctx, `INSERT INTO fetch_imap_folders (mailbox_id, folder, uidvalidity, highest_uid) VALUES (?, ?, ?, 0)`,
		mailboxID, folder, int64(validity)); err != nil {
		return fmt.Errorf("reset imap folder: %w", err)
	}
	return nil
}

// RecordIMAPUID remembers that uid of folder/validity is stored as messageID (nil: kept in
// the quarantine) and raises the folder's highest UID. A second record of the same UID is
// a conflict, which rolls the caller's transaction back.
func (tx *Tx) RecordIMAPUID(ctx context.Context, mailboxID int64, folder string, validity, uid uint32, messageID *int64) error {
	if _, err := tx.exec(ctx, `INSERT INTO fetch_imap_uids (mailbox_id, folder, uidvalidity, uid, message_id) VALUES (?, ?, ?, ?, ?)`,
		mailboxID, folder, int64(validity), int64(uid), messageID); err != nil {
		return fmt.Errorf("record imap uid: %w", err)
	}
	_, err := tx.exec(ctx, `UPDATE fetch_imap_folders SET highest_uid = ? WHERE mailbox_id = ? AND folder = ? AND uidvalidity = ? AND highest_uid < ?`,
		int64(uid), mailboxID, folder, int64(validity), int64(uid))
	if err != nil {
		return fmt.Errorf("record imap uid: %w", err)
	}
	return nil
}

// IMAPUIDsToExpunge lists the UIDs we stored and have not yet seen expunged on the server.
func (tx *Tx) IMAPUIDsToExpunge(ctx context.Context, mailboxID int64, folder string, validity uint32) ([]uint32, error) {
	rows, err := tx.query(ctx, `SELECT uid FROM fetch_imap_uids WHERE mailbox_id = ? AND folder = ? AND uidvalidity = ? AND expunged = FALSE ORDER BY uid`,
		mailboxID, folder, int64(validity))
	if err != nil {
		return nil, fmt.Errorf("imap uids to expunge: %w", err)
	}
	return collect(rows, func(s interface{ Scan(...any) error }) (uint32, error) {
		var u int64
		err := s.Scan(&u)
		return uint32(u), err
	})
}

// MarkIMAPExpunged records that uids are gone from the server.
func (tx *Tx) MarkIMAPExpunged(ctx context.Context, mailboxID int64, folder string, validity uint32, uids []uint32) error {
	for _, u := range uids {
		if _, err := tx.exec(ctx, `UPDATE fetch_imap_uids SET expunged = TRUE WHERE mailbox_id = ? AND folder = ? AND uidvalidity = ? AND uid = ?`,
			mailboxID, folder, int64(validity), int64(u)); err != nil {
			return fmt.Errorf("mark imap expunged: %w", err)
		}
	}
	return nil
}

// POP3UIDLs lists the UIDLs of a source that are stored here.
func (tx *Tx) POP3UIDLs(ctx context.Context, mailboxID int64) (map[string]bool, error) {
	rows, err := tx.query(ctx, `SELECT uidl FROM fetch_pop3_uidls WHERE mailbox_id = ?`, mailboxID)
	if err != nil {
		return nil, fmt.Errorf("pop3 uidls: %w", err)
	}
	list, err := collect(rows, func(s interface{ Scan(...any) error }) (string, error) {
		var u string
		return u, s.Scan(&u)
	})
	if err != nil {
		return nil, fmt.Errorf("pop3 uidls: %w", err)
	}
	out := make(map[string]bool, len(list))
	for _, u := range list {
		out[u] = true
	}
	return out, nil
}

// RecordPOP3UIDL remembers that the message with uidl is stored (a conflict on a second
// record rolls the caller's transaction back).
func (tx *Tx) RecordPOP3UIDL(ctx context.Context, mailboxID int64, uidl string, messageID *int64) error {
	if _, err := tx.exec(ctx, `INSERT INTO fetch_pop3_uidls (mailbox_id, uidl, message_id) VALUES (?, ?, ?)`, mailboxID, uidl, messageID); err != nil {
		return fmt.Errorf("record pop3 uidl: %w", err)
	}
	return nil
}

// ForgetPOP3UIDLs drops UIDLs that are no longer in the maildrop: a POP3 server never
// reuses a unique-id (RFC 1939 §7), so they cannot come back.
func (tx *Tx) ForgetPOP3UIDLs(ctx context.Context, mailboxID int64, gone []string) error {
	for _, u := range gone {
		if _, err := tx.exec(ctx, `DELETE FROM fetch_pop3_uidls WHERE mailbox_id = ? AND uidl = ?`, mailboxID, u); err != nil {
			return fmt.Errorf("forget pop3 uidls: %w", err)
		}
	}
	return nil
}

// MessageByHashBeforeV14 finds a message of the account with the same content hash among
// the messages stored before schema version 14. Mail without a Message-ID got a random one
// then (now one made from its hash, found by FindDuplicate), so a rescan can recognise such a
// message only by its hash. The range covers only those older rows.
func (tx *Tx) MessageByHashBeforeV14(ctx context.Context, tenantID, mailboxID int64, sha string) (int64, error) {
	var id int64
	err := tx.queryRow(ctx, `SELECT id FROM messages WHERE tenant_id = ? AND mailbox_id = ?
		AND created_at <= (SELECT applied_at FROM schema_migrations WHERE version = ?) AND sha256 = ? ORDER BY id LIMIT 1`,
		tenantID, mailboxID, hashIndexDroppedVersion, sha).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("message by hash: %w", mapErr(err))
	}
	return id, nil
}

// SentMessageByMessageID finds the tenant's outgoing message with a Message-ID sent from
// mailboxID: a message in the account's Sent folder that Postfach itself sent and copied
// there (C9) carries the Message-ID of the stored one, though not its bytes (the copy is
// the signed message).
func (tx *Tx) SentMessageByMessageID(ctx context.Context, tenantID, mailboxID int64, messageID string) (int64, error) {
	var id int64
	err := tx.queryRow(ctx, `SELECT id FROM messages WHERE tenant_id = ? AND message_id = ? AND mailbox_id = ? AND direction = ? ORDER BY id LIMIT 1`,
		tenantID, messageID, mailboxID, DirectionOut).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("sent message by message-id: %w", mapErr(err))
	}
	return id, nil
}

// SetMessageFolder records which server folder a fetched message came from.
func (tx *Tx) SetMessageFolder(ctx context.Context, tenantID, id int64, folder string) error {
	_, err := tx.exec(ctx, `UPDATE messages SET folder = ? WHERE tenant_id = ? AND id = ?`, folder, tenantID, id)
	if err != nil {
		return fmt.Errorf("set message folder: %w", err)
	}
	return nil
}

// AccountFolder is a folder of an account's server as last synchronised (C10).
type AccountFolder struct {
	Name       string `json:"name"`
	Delimiter  string `json:"delimiter"`
	SpecialUse string `json:"special_use"` // \Drafts, \Sent, \Trash … (RFC 6154), or empty
	Selectable bool   `json:"selectable"`
	Import     bool   `json:"import"`
	SeenAt     int64  `json:"seen_at"`
}

// AccountFolders lists an account's folders by name.
func (tx *Tx) AccountFolders(ctx context.Context, tenantID, mailboxID int64) ([]AccountFolder, error) {
	rows, err := tx.query(ctx, `SELECT name, delimiter, special_use, selectable, import, seen_at FROM account_folders
		WHERE tenant_id = ? AND mailbox_id = ? ORDER BY name`, tenantID, mailboxID)
	if err != nil {
		return nil, fmt.Errorf("account folders: %w", err)
	}
	return collect(rows, func(s interface{ Scan(...any) error }) (AccountFolder, error) {
		var f AccountFolder
		return f, s.Scan(&f.Name, &f.Delimiter, &f.SpecialUse, &f.Selectable, &f.Import, &f.SeenAt)
	})
}

// ReplaceAccountFolders stores the server's folder list, keeping the import choice of
// folders that still exist. INBOX is imported unless the user switched it off.
func (tx *Tx) ReplaceAccountFolders(ctx context.Context, tenantID, mailboxID int64, folders []AccountFolder) error {
	old, err := tx.AccountFolders(ctx, tenantID, mailboxID)
	if err != nil {
		return err
	}
	choice := map[string]bool{}
	for _, f := range old {
		choice[f.Name] = f.Import
	}
	if _, err := tx.exec(ctx, `DELETE FROM account_folders WHERE tenant_id = ? AND mailbox_id = ?`, tenantID, mailboxID); err != nil {
		return fmt.Errorf("replace account folders: %w", err)
	}
	for _, f := range folders {
		imp, known := choice[f.Name]
		if !known {
			imp = f.Name == "INBOX"
		}
		if _, err := tx.exec(ctx, `INSERT INTO account_folders (mailbox_id, tenant_id, name, delimiter, special_use, selectable, import, seen_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, mailboxID, tenantID, f.Name, f.Delimiter, f.SpecialUse, f.Selectable, imp && f.Selectable, tx.now); err != nil {
			return fmt.Errorf("replace account folders: %w", err)
		}
	}
	_, err = tx.exec(ctx, `UPDATE fetch_sources SET want_folders = FALSE, folders_synced_at = ? WHERE mailbox_id = ?`, tx.now, mailboxID)
	if err != nil {
		return fmt.Errorf("replace account folders: %w", err)
	}
	return nil
}

// SetAccountFolderImport chooses whether a folder is imported.
func (tx *Tx) SetAccountFolderImport(ctx context.Context, tenantID, mailboxID int64, name string, imp bool) error {
	res, err := tx.exec(ctx, `UPDATE account_folders SET import = ? WHERE tenant_id = ? AND mailbox_id = ? AND name = ? AND selectable = TRUE`,
		imp, tenantID, mailboxID, name)
	return affected(res, err, "set folder import")
}

// ImportFolders lists the folders to fetch; INBOX alone when the list was never synchronised.
func (tx *Tx) ImportFolders(ctx context.Context, tenantID, mailboxID int64) ([]string, error) {
	all, err := tx.AccountFolders(ctx, tenantID, mailboxID)
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return []string{"INBOX"}, nil
	}
	var out []string
	for _, f := range all {
		if f.Import {
			out = append(out, f.Name)
		}
	}
	return out, nil
}

// AccountOAuth is an account's OAuth2 grant (C2). TokenSealed holds the oauth2.Token JSON,
// sealed with the tenant's secrets context; State is OAuthOK or OAuthReauthorize.
type AccountOAuth struct {
	MailboxID   int64  `json:"mailbox_id"`
	TenantID    int64  `json:"tenant_id"`
	Provider    string `json:"provider"`
	TokenSealed []byte `json:"-"`
	ExpiresAt   int64  `json:"expires_at"`
	State       string `json:"state"`
	Error       string `json:"error"`
	UpdatedAt   int64  `json:"updated_at"`
}

// OAuth grant states.
const (
	OAuthOK          = "ok"
	OAuthReauthorize = "reauthorize" // the grant was revoked or never given: a user must sign in again
)

// AccountOAuth reads an account's grant; ErrNotFound when none was ever given.
func (tx *Tx) AccountOAuth(ctx context.Context, tenantID, mailboxID int64) (AccountOAuth, error) {
	var o AccountOAuth
	err := tx.queryRow(ctx, `SELECT mailbox_id, tenant_id, provider, token_sealed, expires_at, state, error, updated_at FROM account_oauth
		WHERE tenant_id = ? AND mailbox_id = ?`, tenantID, mailboxID).Scan(&o.MailboxID, &o.TenantID, &o.Provider, &o.TokenSealed, &o.ExpiresAt, &o.State, &o.Error, &o.UpdatedAt)
	if err != nil {
		return o, fmt.Errorf("account oauth: %w", mapErr(err))
	}
	return o, nil
}

// PutAccountOAuth writes an account's grant.
func (tx *Tx) PutAccountOAuth(ctx context.Context, o AccountOAuth) error {
	if _, err := tx.exec(ctx, `DELETE FROM account_oauth WHERE tenant_id = ? AND mailbox_id = ?`, o.TenantID, o.MailboxID); err != nil {
		return fmt.Errorf("put account oauth: %w", err)
	}
	_, err := tx.exec(ctx, `INSERT INTO account_oauth (mailbox_id, tenant_id, provider, token_sealed, expires_at, state, error, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, o.MailboxID, o.TenantID, o.Provider, nullBytes(o.TokenSealed), o.ExpiresAt, o.State, o.Error, tx.now)
	if err != nil {
		return fmt.Errorf("put account oauth: %w", err)
	}
	return nil
}

// OAuthApp is the operator's OAuth2 client registration at a provider.
type OAuthApp struct {
	Provider     string
	ClientID     string
	SecretSealed []byte
	AuthURL      string
	TokenURL     string
	Scopes       string // space-separated
}

// OAuthApp reads a provider's registration; ErrNotFound when the operator configured none.
func (tx *Tx) OAuthApp(ctx context.Context, provider string) (OAuthApp, error) {
	var a OAuthApp
	err := tx.queryRow(ctx, `SELECT provider, client_id, secret_sealed, auth_url, token_url, scopes FROM oauth_apps WHERE provider = ?`, provider).
		Scan(&a.Provider, &a.ClientID, &a.SecretSealed, &a.AuthURL, &a.TokenURL, &a.Scopes)
	if err != nil {
		return a, fmt.Errorf("oauth app: %w", mapErr(err))
	}
	return a, nil
}

// PutOAuthApp writes a provider's registration.
func (tx *Tx) PutOAuthApp(ctx context.Context, a OAuthApp) error {
	if _, err := tx.exec(ctx, `DELETE FROM oauth_apps WHERE provider = ?`, a.Provider); err != nil {
		return fmt.Errorf("put oauth app: %w", err)
	}
	_, err := tx.exec(ctx, `INSERT INTO oauth_apps (provider, client_id, secret_sealed, auth_url, token_url, scopes, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		a.Provider, a.ClientID, nullBytes(a.SecretSealed), a.AuthURL, a.TokenURL, a.Scopes, tx.now)
	if err != nil {
		return fmt.Errorf("put oauth app: %w", err)
	}
	return nil
}

// OAuthFlow is a started authorisation-code flow, found again by its state parameter.
type OAuthFlow struct {
	State       string
	TenantID    int64
	MailboxID   int64
	Provider    string
	Verifier    string // PKCE (RFC 7636)
	RedirectURL string
	ExpiresAt   int64
}

// PutOAuthFlow stores a started flow and drops expired ones.
func (tx *Tx) PutOAuthFlow(ctx context.Context, f OAuthFlow) error {
	if _, err := tx.exec(ctx, `DELETE FROM oauth_flows WHERE expires_at < ?`, tx.now); err != nil {
		return fmt.Errorf("put oauth flow: %w", err)
	}
	_, err := tx.exec(ctx, `INSERT INTO oauth_flows (state, tenant_id, mailbox_id, provider, verifier, redirect_url, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		f.State, f.TenantID, f.MailboxID, f.Provider, f.Verifier, f.RedirectURL, f.ExpiresAt)
	if err != nil {
		return fmt.Errorf("put oauth flow: %w", err)
	}
	return nil
}

// TakeOAuthFlow reads and deletes a flow that has not expired: a state is good for one use.
func (tx *Tx) TakeOAuthFlow(ctx context.Context, state string) (OAuthFlow, error) {
	var f OAuthFlow
	err := tx.queryRow(ctx, `SELECT state, tenant_id, mailbox_id, provider, verifier, redirect_url, expires_at FROM oauth_flows WHERE state = ? AND expires_at >= ?`,
		state, tx.now).Scan(&f.State, &f.TenantID, &f.MailboxID, &f.Provider, &f.Verifier, &f.RedirectURL, &f.ExpiresAt)
	if err != nil {
		return f, fmt.Errorf("oauth flow: %w", mapErr(err))
	}
	if _, err := tx.exec(ctx, `DELETE FROM oauth_flows WHERE state = ?`, state); err != nil {
		return f, fmt.Errorf("oauth flow: %w", err)
	}
	return f, nil
}

// MailboxByID reads a mailbox of any tenant: for background workers that hold only the id.
func (tx *Tx) MailboxByID(ctx context.Context, id int64) (Mailbox, error) {
	m, err := scanMailbox(tx.queryRow(ctx, `SELECT `+mailboxCols+` FROM mailboxes WHERE id = ?`, id))
	if err != nil {
		return m, fmt.Errorf("mailbox: %w", err)
	}
	return m, nil
}

// ClearFetchDue takes back a "fetch now" that a holder in IMAP IDLE is about to serve.
func (tx *Tx) ClearFetchDue(ctx context.Context, mailboxID int64, holder string, until int64) error {
	_, err := tx.exec(ctx, `UPDATE fetch_sources SET due_at = ? WHERE mailbox_id = ? AND lease_holder = ? AND due_at = 0`, until, mailboxID, holder)
	if err != nil {
		return fmt.Errorf("clear fetch due: %w", err)
	}
	return nil
}

// ReleaseHolderLeases makes every source leased by holder due again. An instance calls it
// when it starts: with a stable holder name, what it held before a crash is not being
// fetched by anyone, and need not wait for the lease to run out.
func (tx *Tx) ReleaseHolderLeases(ctx context.Context, holder string) error {
	_, err := tx.exec(ctx, `UPDATE fetch_sources SET lease_holder = '', lease_until = 0, due_at = 0 WHERE lease_holder = ?`, holder)
	if err != nil {
		return fmt.Errorf("release holder leases: %w", err)
	}
	return nil
}
