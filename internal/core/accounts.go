package core

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"postfach/internal/store"
)

// Mail accounts (seed 002 "Mail-Accounts", seed 004 "E-Mail Konto anlegen"): a mailbox of
// kind account with an inbound and an outbound p-address on the operator's domain, receive
// settings (IMAP/POP3, fetched by the fetch package) and send settings (its own SMTP server,
// or the system transport when none is set). The receive and folder settings live in the
// mailbox's settings JSON under the keys "receive", "private_owner" and "folders"; other
// keys of that JSON belong to other packages and are kept untouched.

// Receive types. The Office 365 and Gmail types log in with OAuth2 (XOAUTH2) instead of a
// password (C2).
const (
	ReceiveNone      = ""
	ReceiveIMAP      = "imap"
	ReceivePOP3      = "pop3"
	ReceiveIMAPO365  = "imap_o365"
	ReceivePOP3O365  = "pop3_o365"
	ReceiveIMAPGmail = "imap_gmail"
	ReceivePOP3Gmail = "pop3_gmail"
)

// ReceiveTypes lists every receive type in the order a form offers them.
func ReceiveTypes() []string {
	return []string{ReceiveNone, ReceiveIMAP, ReceivePOP3, ReceiveIMAPO365, ReceivePOP3O365, ReceiveIMAPGmail, ReceivePOP3Gmail}
}

// IsIMAPType reports whether a receive type fetches over IMAP (rather than POP3).
func IsIMAPType(receiveType string) bool {
	switch receiveType {
	case ReceiveIMAP, ReceiveIMAPO365, ReceiveIMAPGmail:
		return true
	}
	return false
}

// gmailServer is Google's public IMAP or POP3 endpoint, both with implicit TLS; a Gmail
// account left without a host gets it.
func gmailServer(receiveType string) (host string, port int, ok bool) {
	switch receiveType {
	case ReceiveIMAPGmail:
		return "imap.gmail.com", 993, true
	case ReceivePOP3Gmail:
		return "pop.gmail.com", 995, true
	}
	return "", 0, false
}

// ReceiveSettings are how Postfach fetches an account's mail (C1, C2, C4, C5), as stored.
type ReceiveSettings struct {
	Type     string `json:"type"`
	Host     string `json:"host,omitempty"`
	Port     int    `json:"port,omitempty"`
	Security string `json:"security,omitempty"` // none, tls (SSL/TLS), starttls
	Username string `json:"username,omitempty"`
	// PasswordSealed is the password encrypted with ReceiveSecretContext; never shown.
	PasswordSealed []byte `json:"password_sealed,omitempty"`
	// DeleteOnServer is "E-Mails auf dem Server löschen": delete a fetched message on the
	// server after it is committed here. A restore switches it off (C4).
	DeleteOnServer bool `json:"delete_on_server"`
}

// FolderSettings map the server's folders (C9).
type FolderSettings struct {
	Drafts     string `json:"drafts"`
	Trash      string `json:"trash"`
	Sent       string `json:"sent"`
	CopyToSent bool   `json:"copy_to_sent"` // file a copy of sent mail in the Sent folder
}

// AccountSettings is the account part of a mailbox's settings JSON.
type AccountSettings struct {
	Receive ReceiveSettings `json:"receive"`
	// PrivateOwner is "Privatkonto von": a user's short code; empty for a shared account (C3).
	PrivateOwner string         `json:"private_owner,omitempty"`
	Folders      FolderSettings `json:"folders"`
}

// ParseAccountSettings reads the account part of a mailbox's settings JSON.
func ParseAccountSettings(raw string) (AccountSettings, error) {
	var as AccountSettings
	if strings.TrimSpace(raw) == "" {
		return as, nil
	}
	if err := json.Unmarshal([]byte(raw), &as); err != nil {
		return as, fmt.Errorf("account settings: %w", err)
	}
	return as, nil
}

// mergeAccountSettings writes as into the settings JSON raw, keeping every other key.
func mergeAccountSettings(raw string, as AccountSettings) (string, error) {
	m := map[string]json.RawMessage{}
	if strings.TrimSpace(raw) != "" {
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			return "", fmt.Errorf("account settings: %w", err)
		}
	}
	put := func(key string, v any) error {
		b, err := json.Marshal(v)
		m[key] = b
		return err
	}
	if err := put("receive", as.Receive); err != nil {
		return "", err
	}
	if err := put("folders", as.Folders); err != nil {
		return "", err
	}
	if as.PrivateOwner == "" {
		delete(m, "private_owner")
	} else if err := put("private_owner", as.PrivateOwner); err != nil {
		return "", err
	}
	b, err := json.Marshal(m)
	return string(b), err
}

// ReceiveSecretContext binds a sealed receive password to its tenant.
func ReceiveSecretContext(tenantID int64) string {
	return "tenant:" + itoa(int(tenantID)) + "/account-receive"
}

// Account is the API's and the UI's view of a mail account. Secrets are never part of it:
// has_password says whether one is stored.
type Account struct {
	ID              int64          `json:"id"`
	Address         string         `json:"address"`
	SenderName      string         `json:"sender_name"`
	Active          bool           `json:"active"`
	InboundAddress  string         `json:"inbound_address"`  // "p14@…": customers forward replies here
	OutboundAddress string         `json:"outbound_address"` // "p14.out@…": envelope sender of the system transport
	Receive         ReceiveView    `json:"receive"`
	Send            SendView       `json:"send"`
	PrivateOwner    string         `json:"private_owner"`
	Folders         FolderSettings `json:"folders"`
	Messages        int            `json:"messages"`
	Domain          string         `json:"domain"`
	DomainStatus    DomainSummary  `json:"domain_status"`
	CreatedAt       int64          `json:"created_at"`
	UpdatedAt       int64          `json:"updated_at"`
}

// ReceiveView is ReceiveSettings without the secret.
type ReceiveView struct {
	Type           string `json:"type"`
	Host           string `json:"host"`
	Port           int    `json:"port"`
	Security       string `json:"security"`
	Username       string `json:"username"`
	HasPassword    bool   `json:"has_password"`
	DeleteOnServer bool   `json:"delete_on_server"`
}

// SendView is the account's sending setup. Transport "system" sends through Postfach with
// the outbound address as envelope sender; "own_smtp" through the account's server.
type SendView struct {
	Transport   string `json:"transport"`
	Host        string `json:"host"`
	Port        int    `json:"port"`
	Security    string `json:"security"`
	Auth        bool   `json:"auth"`
	Username    string `json:"username"`
	HasPassword bool   `json:"has_password"`
}

// ReceiveInput changes receive settings; Password is write-only (nil keeps, "" removes).
type ReceiveInput struct {
	Type           *string `json:"type,omitempty"`
	Host           *string `json:"host,omitempty"`
	Port           *int    `json:"port,omitempty"`
	Security       *string `json:"security,omitempty"`
	Username       *string `json:"username,omitempty"`
	Password       *string `json:"password,omitempty"`
	DeleteOnServer *bool   `json:"delete_on_server,omitempty"`
}

// FolderInput changes the folder mapping.
type FolderInput struct {
	Drafts     *string `json:"drafts,omitempty"`
	Trash      *string `json:"trash,omitempty"`
	Sent       *string `json:"sent,omitempty"`
	CopyToSent *bool   `json:"copy_to_sent,omitempty"`
}

// AccountInput creates or changes a mail account. Absent fields keep their value. Send with
// an empty host means the system transport.
type AccountInput struct {
	Address      *string       `json:"address,omitempty"`
	SenderName   *string       `json:"sender_name,omitempty"`
	Active       *bool         `json:"active,omitempty"`
	Receive      *ReceiveInput `json:"receive,omitempty"`
	Send         *SMTPInput    `json:"send,omitempty"`
	PrivateOwner *string       `json:"private_owner,omitempty"`
	Folders      *FolderInput  `json:"folders,omitempty"`
}

// accountChange is a validated AccountInput: what to write and which secrets changed.
type accountChange struct {
	receivePassword *string
	sendPassword    *string
	changes         []string // for the audit detail, never values of secrets
}

func defaultPort(security string, plain, implicit, starttls int) int {
	switch security {
	case "tls":
		return implicit
	case "starttls":
		return starttls
	}
	return plain
}

// applyAccount validates in and applies it to m and as.
func (s *Service) applyAccount(v *validator, m *store.Mailbox, as *AccountSettings, in AccountInput, create bool) accountChange {
	var ch accountChange
	if in.Address != nil || create {
		m.Address = v.address("address", deref(in.Address), true)
		ch.changes = append(ch.changes, "address="+m.Address)
	}
	if in.SenderName != nil {
		m.DisplayName = v.text("sender_name", *in.SenderName, false, 120)
		ch.changes = append(ch.changes, "sender_name")
	}
	if in.Active != nil {
		m.Active = *in.Active
		ch.changes = append(ch.changes, "active="+boolStr(m.Active))
	} else if create {
		m.Active = true
	}
	if r := in.Receive; r != nil {
		rs := &as.Receive
		if r.Type != nil {
			rs.Type = v.oneOf("receive.type", *r.Type, ReceiveTypes()...)
		}
		if r.Host != nil {
			rs.Host = strings.TrimSpace(strings.ToLower(*r.Host))
		}
		if r.Port != nil {
			rs.Port = *r.Port
		}
		if r.Security != nil {
			rs.Security = v.oneOf("receive.security", *r.Security, "none", "tls", "starttls")
		}
		if r.Username != nil {
			rs.Username = v.text("receive.username", *r.Username, false, 254)
		}
		if r.DeleteOnServer != nil {
			rs.DeleteOnServer = *r.DeleteOnServer
			ch.changes = append(ch.changes, "delete_on_server="+boolStr(rs.DeleteOnServer))
		}
		if r.Password != nil {
			if len(*r.Password) > 1000 {
				v.add(invalid("receive.password", "error.too_long", map[string]string{"max": "1000"}))
			}
			ch.receivePassword = r.Password
		}
		ch.changes = append(ch.changes, "receive")
	}
	if rs := &as.Receive; rs.Type != ReceiveNone {
		if host, port, ok := gmailServer(rs.Type); ok && rs.Host == "" {
			rs.Host, rs.Port, rs.Security = host, port, "tls"
		}
		if rs.Security == "" {
			rs.Security = "none" // seed 004: "Programmstandard ist keine Verschlüsselung"
		}
		rs.Host = v.host("receive.host", rs.Host)
		if rs.Port == 0 {
			if IsIMAPType(rs.Type) {
				rs.Port = defaultPort(rs.Security, 143, 993, 143)
			} else {
				rs.Port = defaultPort(rs.Security, 110, 995, 110)
			}
		}
		v.port("receive.port", rs.Port)
		if rs.Username == "" {
			v.add(invalid("receive.username", "error.required", nil))
		}
	}
	if sm := in.Send; sm != nil {
		if sm.Host != nil {
			m.SMTP.Host = strings.TrimSpace(strings.ToLower(*sm.Host))
		}
		if sm.Port != nil {
			m.SMTP.Port = *sm.Port
		}
		if sm.Security != nil {
			m.SMTP.Security = v.oneOf("send.security", *sm.Security, "none", "tls", "starttls")
		}
		if sm.Auth != nil {
			m.SMTP.Auth = *sm.Auth
		}
		if sm.Username != nil {
			m.SMTP.Username = v.text("send.username", *sm.Username, false, 254)
		}
		if sm.Password != nil {
			if len(*sm.Password) > 1000 {
				v.add(invalid("send.password", "error.too_long", map[string]string{"max": "1000"}))
			}
			ch.sendPassword = sm.Password
		}
		ch.changes = append(ch.changes, "send")
	}
	if m.SMTP.Security == "" {
		m.SMTP.Security = "none"
	}
	m.WithAuth = m.SMTP.Host != ""
	if m.WithAuth {
		m.SMTP.Host = v.host("send.host", m.SMTP.Host)
		if m.SMTP.Port == 0 {
			m.SMTP.Port = defaultPort(m.SMTP.Security, 25, 465, 587)
		}
		v.port("send.port", m.SMTP.Port)
		if m.SMTP.Auth && m.SMTP.Username == "" && OAuthProviderFor(as.Receive.Type) != "" {
			// An OAuth2 account logs in to its SMTP server as the user who signed in (C2).
			m.SMTP.Username = as.Receive.Username
		}
		if m.SMTP.Auth && m.SMTP.Username == "" {
			v.add(invalid("send.username", "error.required", nil))
		}
	}
	if in.PrivateOwner != nil {
		as.PrivateOwner = v.text("private_owner", *in.PrivateOwner, false, 32)
		ch.changes = append(ch.changes, "private_owner="+as.PrivateOwner)
	}
	if f := in.Folders; f != nil {
		if f.Drafts != nil {
			as.Folders.Drafts = v.text("folders.drafts", *f.Drafts, false, 200)
		}
		if f.Trash != nil {
			as.Folders.Trash = v.text("folders.trash", *f.Trash, false, 200)
		}
		if f.Sent != nil {
			as.Folders.Sent = v.text("folders.sent", *f.Sent, false, 200)
		}
		if f.CopyToSent != nil {
			as.Folders.CopyToSent = *f.CopyToSent
		}
		ch.changes = append(ch.changes, "folders")
	}
	return ch
}

// sealAccountSecrets encrypts changed passwords into m and as.
func (s *Service) sealAccountSecrets(tid int64, m *store.Mailbox, as *AccountSettings, ch *accountChange) error {
	m.SMTP.PasswordEncrypted = nil // keep the stored one unless a new one is given
	if ch.receivePassword != nil {
		sealed, err := s.Secrets.SealString(ReceiveSecretContext(tid), *ch.receivePassword)
		if err != nil {
			return err
		}
		if *ch.receivePassword == "" {
			sealed = nil
		}
		as.Receive.PasswordSealed = sealed
		ch.changes = append(ch.changes, "receive_password=changed")
	}
	if ch.sendPassword != nil {
		sealed, err := s.Secrets.SealString(smtpSecretContext(tid), *ch.sendPassword)
		if err != nil {
			return err
		}
		if *ch.sendPassword == "" || sealed == nil {
			sealed = []byte{} // empty, not nil: the store then clears the column
		}
		m.SMTP.PasswordEncrypted = sealed
		ch.changes = append(ch.changes, "send_password=changed")
	}
	return nil
}

// checkPrivateOwner makes sure "Privatkonto von" names a user of the tenant.
func checkPrivateOwner(ctx context.Context, tx *store.Tx, tid int64, code string) error {
	if code == "" {
		return nil
	}
	users, err := tx.Users(ctx, tid)
	if err != nil {
		return err
	}
	for _, u := range users {
		if strings.EqualFold(u.ShortCode, code) {
			return nil
		}
	}
	return invalid("private_owner", "error.account_private_owner_unknown", map[string]string{"value": code})
}

// AccountDomain is the domain part of an address, lower case.
func AccountDomain(address string) string {
	_, domain, _ := strings.Cut(address, "@")
	return strings.ToLower(domain)
}

// CreateAccount adds a mail account (A2, A3). It is offered as sender and reply-to to the
// tenant's users (flags Absender and Antwort) and gets its p-addresses.
func (s *Service) CreateAccount(ctx context.Context, a Actor, in AccountInput) (Account, error) {
	if err := requireAdmin(a); err != nil {
		return Account{}, err
	}
	tid, err := tenantOf(a)
	if err != nil {
		return Account{}, err
	}
	var v validator
	m := store.Mailbox{Kind: store.KindAccount, Sender: true, Reply: true, SMTP: store.SMTPSettings{Auth: true}}
	var as AccountSettings
	ch := s.applyAccount(&v, &m, &as, in, true)
	if err := v.err(); err != nil {
		return Account{}, err
	}
	if err := s.sealAccountSecrets(tid, &m, &as, &ch); err != nil {
		return Account{}, err
	}
	if m.Settings, err = mergeAccountSettings("{}", as); err != nil {
		return Account{}, err
	}
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		if err := checkPrivateOwner(ctx, tx, tid, as.PrivateOwner); err != nil {
			return err
		}
		if m, err = tx.CreateMailbox(ctx, tid, m); err != nil {
			return err
		}
		if err := tx.EnsureDomainCheck(ctx, tid, AccountDomain(m.Address)); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, tid, "account.create", idStr("mailbox", m.ID), strings.Join(ch.changes, " "))
	})
	if err != nil {
		return Account{}, fromStore(err, "address", "error.duplicate")
	}
	return s.Account(ctx, a, m.ID)
}

// UpdateAccount changes an account; absent fields and passwords keep their values.
func (s *Service) UpdateAccount(ctx context.Context, a Actor, id int64, in AccountInput) (Account, error) {
	if err := requireAdmin(a); err != nil {
		return Account{}, err
	}
	tid, err := tenantOf(a)
	if err != nil {
		return Account{}, err
	}
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		m, err := accountMailbox(ctx, tx, tid, id)
		if err != nil {
			return err
		}
		as, err := ParseAccountSettings(m.Settings)
		if err != nil {
			return err
		}
		var v validator
		ch := s.applyAccount(&v, &m, &as, in, false)
		if err := v.err(); err != nil {
			return err
		}
		if err := checkPrivateOwner(ctx, tx, tid, as.PrivateOwner); err != nil {
			return err
		}
		if err := s.sealAccountSecrets(tid, &m, &as, &ch); err != nil {
			return err
		}
		if m.Settings, err = mergeAccountSettings(m.Settings, as); err != nil {
			return err
		}
		if err := tx.UpdateMailbox(ctx, tid, m); err != nil {
			return err
		}
		if err := tx.EnsureDomainCheck(ctx, tid, AccountDomain(m.Address)); err != nil {
			return err
		}
		if ch.receivePassword != nil || ch.sendPassword != nil {
			// Secret changes get their own entry so the audit page can filter for them (X4).
			if err := s.audit(ctx, tx, a, tid, "account.secret_change", idStr("mailbox", id), secretDetail(ch)); err != nil {
				return err
			}
		}
		return s.audit(ctx, tx, a, tid, "account.update", idStr("mailbox", id), strings.Join(ch.changes, " "))
	})
	if err != nil {
		return Account{}, fromStore(err, "address", "error.duplicate")
	}
	return s.Account(ctx, a, id)
}

func secretDetail(ch accountChange) string {
	var parts []string
	if ch.receivePassword != nil {
		parts = append(parts, "receive_password")
	}
	if ch.sendPassword != nil {
		parts = append(parts, "send_password")
	}
	return strings.Join(parts, " ")
}

// SetAccountActive switches an account on or off (A1). All its data stays; an inactive
// account's inbound address refuses mail and it is not fetched.
func (s *Service) SetAccountActive(ctx context.Context, a Actor, id int64, active bool) (Account, error) {
	return s.UpdateAccount(ctx, a, id, AccountInput{Active: &active})
}

// accountMailbox reads a mailbox of the tenant that is a mail account; any other kind is
// "not found" here so that account endpoints cannot change other mailboxes.
func accountMailbox(ctx context.Context, tx *store.Tx, tid, id int64) (store.Mailbox, error) {
	m, err := tx.Mailbox(ctx, tid, id)
	if err != nil {
		return m, err
	}
	if m.Kind != store.KindAccount {
		return m, notFound(fmt.Errorf("mailbox %d is a %s mailbox, not an account", id, m.Kind))
	}
	return m, nil
}

func (s *Service) accountView(m store.Mailbox, messages int, checks map[string]store.DomainCheck, lang string) Account {
	as, err := ParseAccountSettings(m.Settings)
	if err != nil {
		s.Log.Warn("account settings unreadable", "mailbox", m.ID, "err", err)
	}
	acc := Account{
		ID: m.ID, Address: m.Address, SenderName: m.DisplayName, Active: m.Active,
		InboundAddress:  store.InboundAddress(m.ID, s.InboundDomain),
		OutboundAddress: store.OutboundAddress(m.ID, s.InboundDomain),
		Receive: ReceiveView{Type: as.Receive.Type, Host: as.Receive.Host, Port: as.Receive.Port, Security: as.Receive.Security,
			Username: as.Receive.Username, HasPassword: len(as.Receive.PasswordSealed) > 0, DeleteOnServer: as.Receive.DeleteOnServer},
		Send:         SendView{Transport: "system"},
		PrivateOwner: as.PrivateOwner, Folders: as.Folders, Messages: messages,
		Domain: AccountDomain(m.Address), CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt,
	}
	if m.WithAuth {
		acc.Send = SendView{Transport: "own_smtp", Host: m.SMTP.Host, Port: m.SMTP.Port, Security: m.SMTP.Security,
			Auth: m.SMTP.Auth, Username: m.SMTP.Username, HasPassword: m.SMTP.HasPassword}
	}
	dc, ok := checks[acc.Domain]
	if !ok {
		dc = store.DomainCheck{Domain: acc.Domain}
	}
	acc.DomainStatus = s.domainSummary(dc, lang)
	return acc
}

// Accounts lists the tenant's mail accounts with status, message count and domain check (A1, A8).
func (s *Service) Accounts(ctx context.Context, a Actor) ([]Account, error) {
	if err := requireAdmin(a); err != nil {
		return nil, err
	}
	tid, err := tenantOf(a)
	if err != nil {
		return nil, err
	}
	tx := s.DB.Read()
	list, err := tx.Mailboxes(ctx, tid, store.MailboxesFilter{Kind: store.KindAccount})
	if err != nil {
		return nil, fromStore(err, "", "")
	}
	counts, err := tx.MessageCountsByMailbox(ctx, tid)
	if err != nil {
		return nil, fromStore(err, "", "")
	}
	checks, err := domainCheckMap(ctx, tx, tid)
	if err != nil {
		return nil, fromStore(err, "", "")
	}
	out := make([]Account, 0, len(list))
	for _, m := range list {
		out = append(out, s.accountView(m, counts[m.ID], checks, a.Lang))
	}
	return out, nil
}

func domainCheckMap(ctx context.Context, tx *store.Tx, tid int64) (map[string]store.DomainCheck, error) {
	list, err := tx.DomainChecks(ctx, tid)
	if err != nil {
		return nil, err
	}
	out := make(map[string]store.DomainCheck, len(list))
	for _, d := range list {
		out[d.Domain] = d
	}
	return out, nil
}

// Account reads one mail account.
func (s *Service) Account(ctx context.Context, a Actor, id int64) (Account, error) {
	if err := requireAdmin(a); err != nil {
		return Account{}, err
	}
	tid, err := tenantOf(a)
	if err != nil {
		return Account{}, err
	}
	tx := s.DB.Read()
	m, err := accountMailbox(ctx, tx, tid, id)
	if err != nil {
		return Account{}, fromStore(err, "", "")
	}
	counts, err := tx.AccountMessageCounts(ctx, tid, id)
	if err != nil {
		return Account{}, fromStore(err, "", "")
	}
	checks, err := domainCheckMap(ctx, tx, tid)
	if err != nil {
		return Account{}, fromStore(err, "", "")
	}
	return s.accountView(m, counts.Total, checks, a.Lang), nil
}

// ReceivePassword opens an account's stored receive password for the fetcher. Never for display.
func (s *Service) ReceivePassword(m store.Mailbox) (string, error) {
	as, err := ParseAccountSettings(m.Settings)
	if err != nil {
		return "", err
	}
	if len(as.Receive.PasswordSealed) == 0 {
		return "", nil
	}
	return s.Secrets.OpenString(ReceiveSecretContext(m.TenantID), as.Receive.PasswordSealed)
}

// DeletePreview is the second confirmation of a deletion (A6): what will be lost and kept.
type DeletePreview struct {
	AccountID int64                      `json:"account_id"`
	Address   string                     `json:"address"`
	Counts    store.AccountMessageCounts `json:"counts"`
	Message   string                     `json:"message"` // the confirmation text in the caller's language
	// Confirm must be sent back to delete; it changes when the counts change, so a deletion
	// never removes more than the user was shown.
	Confirm string `json:"confirm"`
}

func confirmToken(parts ...any) string {
	h := sha256.Sum256([]byte(fmt.Sprint(parts...)))
	return hex.EncodeToString(h[:10])
}

// AccountDeletePreview counts what deleting an account would delete and keep.
func (s *Service) AccountDeletePreview(ctx context.Context, a Actor, id int64) (DeletePreview, error) {
	if err := requireAdmin(a); err != nil {
		return DeletePreview{}, err
	}
	tid, err := tenantOf(a)
	if err != nil {
		return DeletePreview{}, err
	}
	tx := s.DB.Read()
	m, err := accountMailbox(ctx, tx, tid, id)
	if err != nil {
		return DeletePreview{}, fromStore(err, "", "")
	}
	c, err := tx.AccountMessageCounts(ctx, tid, id)
	if err != nil {
		return DeletePreview{}, fromStore(err, "", "")
	}
	return DeletePreview{AccountID: id, Address: m.Address, Counts: c, Confirm: confirmToken("delete", tid, id, c.Deleted, c.Kept),
		Message: s.Text.T(a.Lang, "account.delete.confirm", map[string]string{"address": m.Address, "deleted": itoa(c.Deleted), "kept": itoa(c.Kept)})}, nil
}

// DeleteAccountInput confirms a deletion with the token of the preview.
type DeleteAccountInput struct {
	Confirm string `json:"confirm"`
}

// DeleteAccount deletes an account and its messages, except those filed in a contact's
// journal, which stay readable at the contact (A6, C7). confirm must be the preview's token.
func (s *Service) DeleteAccount(ctx context.Context, a Actor, id int64, confirm string) (store.AccountMessageCounts, error) {
	if err := requireAdmin(a); err != nil {
		return store.AccountMessageCounts{}, err
	}
	tid, err := tenantOf(a)
	if err != nil {
		return store.AccountMessageCounts{}, err
	}
	var done store.AccountMessageCounts
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		m, err := accountMailbox(ctx, tx, tid, id)
		if err != nil {
			return err
		}
		c, err := tx.AccountMessageCounts(ctx, tid, id)
		if err != nil {
			return err
		}
		if confirm != confirmToken("delete", tid, id, c.Deleted, c.Kept) {
			return &Error{Status: http.StatusConflict, Key: "error.account_confirm", Field: "confirm", Params: map[string]string{"field": "confirm"}}
		}
		if done, err = tx.DeleteAccountMessages(ctx, tid, id); err != nil {
			return err
		}
		if err := tx.DeleteMailbox(ctx, tid, id); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, tid, "account.delete", idStr("mailbox", id),
			fmt.Sprintf("%s deleted=%d kept=%d", m.Address, done.Deleted, done.Kept))
	})
	return done, fromStore(err, "", "")
}

// MergePreview is the confirmation of a merge (A7).
type MergePreview struct {
	Source   Account `json:"source"`
	Target   Account `json:"target"`
	Messages int     `json:"messages"` // messages that move to the target
	Message  string  `json:"message"`
	Confirm  string  `json:"confirm"`
}

// MergeInput names the target of a merge and confirms it with the preview's token.
type MergeInput struct {
	TargetID int64  `json:"target_id"`
	Confirm  string `json:"confirm,omitempty"`
}

// AccountMergePreview says what merging source into target would move.
func (s *Service) AccountMergePreview(ctx context.Context, a Actor, source, target int64) (MergePreview, error) {
	if err := requireAdmin(a); err != nil {
		return MergePreview{}, err
	}
	tid, err := tenantOf(a)
	if err != nil {
		return MergePreview{}, err
	}
	if source == target {
		return MergePreview{}, invalid("target_id", "error.account_merge_same", nil)
	}
	src, err := s.Account(ctx, a, source)
	if err != nil {
		return MergePreview{}, err
	}
	dst, err := s.Account(ctx, a, target)
	if err != nil {
		if AsError(err).Status == http.StatusNotFound {
			return MergePreview{}, invalid("target_id", "error.account_merge_target", nil)
		}
		return MergePreview{}, err
	}
	return MergePreview{Source: src, Target: dst, Messages: src.Messages, Confirm: confirmToken("merge", tid, source, target, src.Messages),
		Message: s.Text.T(a.Lang, "account.merge.confirm", map[string]string{"source": src.Address, "target": dst.Address, "count": itoa(src.Messages)})}, nil
}

// MergeAccounts moves every message, thread and contact filing of source to target in one
// transaction, keeps the source's inbound address delivering to the target, and deletes the
// source (A7). confirm must be the preview's token.
func (s *Service) MergeAccounts(ctx context.Context, a Actor, source int64, in MergeInput) (store.MergeResult, error) {
	if err := requireAdmin(a); err != nil {
		return store.MergeResult{}, err
	}
	tid, err := tenantOf(a)
	if err != nil {
		return store.MergeResult{}, err
	}
	if source == in.TargetID {
		return store.MergeResult{}, invalid("target_id", "error.account_merge_same", nil)
	}
	var res store.MergeResult
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		var err error
		res, err = s.mergeInTx(ctx, tx, a, tid, source, in)
		return err
	})
	return res, fromStore(err, "", "")
}

func (s *Service) mergeInTx(ctx context.Context, tx *store.Tx, a Actor, tid, source int64, in MergeInput) (store.MergeResult, error) {
	src, err := accountMailbox(ctx, tx, tid, source)
	if err != nil {
		return store.MergeResult{}, err
	}
	dst, err := accountMailbox(ctx, tx, tid, in.TargetID)
	if err != nil {
		return store.MergeResult{}, invalid("target_id", "error.account_merge_target", nil)
	}
	c, err := tx.AccountMessageCounts(ctx, tid, source)
	if err != nil {
		return store.MergeResult{}, err
	}
	if in.Confirm != confirmToken("merge", tid, source, in.TargetID, c.Total) {
		return store.MergeResult{}, &Error{Status: http.StatusConflict, Key: "error.account_confirm", Field: "confirm", Params: map[string]string{"field": "confirm"}}
	}
	res, err := tx.MergeAccounts(ctx, tid, source, in.TargetID)
	if err != nil {
		return res, err
	}
	if res.GrantsEnded > 0 {
		if err := s.audit(ctx, tx, a, tid, "grant.end", idStr("mailbox", source), fmt.Sprintf("%d grants ended by merge into mailbox:%d", res.GrantsEnded, dst.ID)); err != nil {
			return res, err
		}
	}
	return res, s.audit(ctx, tx, a, tid, "account.merge", idStr("mailbox", source),
		fmt.Sprintf("%s into %s (mailbox:%d) messages=%d queue=%d aliases=%d", src.Address, dst.Address, dst.ID, res.Messages, res.QueueRows, res.Aliases))
}
