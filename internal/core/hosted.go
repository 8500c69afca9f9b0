package core

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"postfach/internal/policy"
	"postfach/internal/store"
)

// Hosted mailboxes on the tenant's own domain (H2, H4–H7, H9–H11). The mailbox row is an
// ordinary mailbox of kind hosted; its password lives in hosted_credentials. The protocol
// servers (IMAP, POP3, submission) call AuthenticateHosted and CheckSubmissionSender; the
// UI and the API call the rest.

// HostingDeps are what the hosted-mailbox use cases need from the running server. The
// zero value works: the system resolver, "localhost", no credential mail.
type HostingDeps struct {
	Resolver     TXTResolver   // domain verification; nil: the system resolver
	Endpoints    MailEndpoints // shown to users and sent with the credentials (H9, H10)
	SPFInclude   string        // the include: our SPF record offers; empty: _spf.<hostname>
	DKIMSelector string
	// Mailer sends the credentials mail (H9); nil refuses with a clear error until the
	// outbound queue is wired in.
	Mailer CredentialMailer
	// CredentialsChanged is told when a mailbox's password changed, so that open IMAP,
	// POP3 and submission sessions with the old one end (H11).
	CredentialsChanged func(ctx context.Context, mailboxID int64)
}

// MailEndpoints are the server names and ports mail clients connect to.
type MailEndpoints struct {
	Hostname          string `json:"hostname"`
	IMAPPort          int    `json:"imap_port"`     // STARTTLS
	IMAPTLSPort       int    `json:"imap_tls_port"` // implicit TLS
	POP3Port          int    `json:"pop3_port"`
	POP3TLSPort       int    `json:"pop3_tls_port"`
	SubmissionPort    int    `json:"submission_port"`
	SubmissionTLSPort int    `json:"submission_tls_port"`
}

// CredentialMailer hands a plain-text mail to the outbound queue.
type CredentialMailer interface {
	SendCredentials(ctx context.Context, tenantID, mailboxID int64, to, subject, body string) error
}

// Throttle of mail-protocol logins. Limits count failures in a sliding window; beyond
// them a login is refused before its password is hashed, so guessing costs the attacker
// the same and us nothing. There is no per-account lockout: an attacker must not be able
// to lock a mailbox's owner out.
const (
	AuthWindow          = 15 * time.Minute
	AuthMaxFailsIP      = 10
	AuthMaxFailsPrefix  = 100
	hostedPasswordBytes = 26 // rand.Text: 26 base32 characters, 130 bits
)

// Errors of AuthenticateHosted.
var (
	ErrHostedAuthFailed = errors.New("hosted: authentication failed")
	ErrHostedThrottled  = errors.New("hosted: too many failed logins from this network")
)

func hostedSecretContext(tenantID, mailboxID int64) string {
	return fmt.Sprintf("tenant:%d/hosted-password/%d", tenantID, mailboxID)
}

// HostedInput creates or changes a hosted mailbox. Address is set only on creation.
type HostedInput struct {
	Address     *string `json:"address,omitempty"`
	DisplayName *string `json:"display_name,omitempty"` // the e-mail name recipients see (H6)
	VIP         *bool   `json:"vip,omitempty"`          // H7
	Active      *bool   `json:"active,omitempty"`       // Postfach aktiv (H4)
}

// HostedCreated is a new mailbox with its password, shown this once.
type HostedCreated struct {
	Mailbox  store.Mailbox `json:"mailbox"`
	Password string        `json:"password"`
}

// HostedDetail is the detail view of a hosted mailbox (H2).
type HostedDetail struct {
	Mailbox           store.Mailbox `json:"mailbox"`
	Grants            GrantList     `json:"grants"` // Zugeordnete Benutzer, with history (H5)
	Endpoints         MailEndpoints `json:"endpoints"`
	Username          string        `json:"username"` // always the full address (H10)
	PasswordChangedAt int64         `json:"password_changed_at"`
}

func generatePassword() string { return rand.Text() }

// CreateHostedMailbox creates a hosted mailbox on a verified domain of the actor's tenant
// and generates its password, returned once.
func (s *Service) CreateHostedMailbox(ctx context.Context, a Actor, in HostedInput) (HostedCreated, error) {
	tid, err := adminTenant(a)
	if err != nil {
		return HostedCreated{}, err
	}
	var v validator
	m := store.Mailbox{Kind: store.KindHosted, Active: true, Sender: true, Reply: true, Restricted: true}
	m.Address = v.address("address", deref(in.Address), true)
	if in.DisplayName != nil {
		m.DisplayName = v.text("display_name", *in.DisplayName, false, 120)
	}
	if in.VIP != nil {
		m.VIP = *in.VIP
	}
	if in.Active != nil {
		m.Active = *in.Active
	}
	if err := v.err(); err != nil {
		return HostedCreated{}, err
	}
	password := generatePassword()
	hash, err := HashPassword(password)
	if err != nil {
		return HostedCreated{}, err
	}
	_, domain, _ := strings.Cut(m.Address, "@")
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		d, err := tx.TenantDomainByName(ctx, tid, domain)
		if err != nil || !d.Verified() {
			return invalid("address", "error.domain_not_verified", map[string]string{"domain": domain})
		}
		if m, err = tx.CreateMailbox(ctx, tid, m); err != nil {
			return err
		}
		sealed, err := s.Secrets.SealString(hostedSecretContext(tid, m.ID), password)
		if err != nil {
			return err
		}
		if _, err := tx.SetHostedCredential(ctx, tid, m.ID, sealed, hash); err != nil {
			return err
		}
		if err := tx.EnsureIMAPFolders(ctx, tid, m.ID); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, tid, "hosted.create", idStr("mailbox", m.ID), m.Address)
	})
	if err != nil {
		return HostedCreated{}, fromStore(err, "address", "error.duplicate")
	}
	return HostedCreated{Mailbox: m, Password: password}, nil
}

func (s *Service) hostedOf(ctx context.Context, tx *store.Tx, tid, id int64) (store.Mailbox, error) {
	m, err := tx.Mailbox(ctx, tid, id)
	if err != nil {
		return m, err
	}
	if m.Kind != store.KindHosted {
		return m, notFound(fmt.Errorf("mailbox %d is not hosted", id))
	}
	return m, nil
}

// HostedMailboxes lists the tenant's hosted mailboxes.
func (s *Service) HostedMailboxes(ctx context.Context, a Actor) ([]store.Mailbox, error) {
	tid, err := adminTenant(a)
	if err != nil {
		return nil, err
	}
	list, err := s.DB.Read().Mailboxes(ctx, tid, store.MailboxesFilter{Kind: store.KindHosted})
	if err != nil {
		return nil, fromStore(err, "", "")
	}
	if list == nil {
		list = []store.Mailbox{}
	}
	return list, nil
}

// HostedMailbox is the detail view: settings, assigned users with history, server names.
func (s *Service) HostedMailbox(ctx context.Context, a Actor, id int64) (HostedDetail, error) {
	tid, err := adminTenant(a)
	if err != nil {
		return HostedDetail{}, err
	}
	tx := s.DB.Read()
	m, err := s.hostedOf(ctx, tx, tid, id)
	if err != nil {
		return HostedDetail{}, fromStore(err, "", "")
	}
	grants, err := s.Grants(ctx, a, id)
	if err != nil {
		return HostedDetail{}, err
	}
	cred, err := tx.HostedCredential(ctx, tid, id)
	if err != nil {
		return HostedDetail{}, fromStore(err, "", "")
	}
	return HostedDetail{Mailbox: m, Grants: grants, Endpoints: s.Hosting.Endpoints, Username: m.Address, PasswordChangedAt: cred.UpdatedAt}, nil
}

// UpdateHostedMailbox changes the e-mail name, VIP and Postfach aktiv. Switching a
// mailbox off stops delivery at once (the inbound server reads active at RCPT); sending
// from it keeps working.
func (s *Service) UpdateHostedMailbox(ctx context.Context, a Actor, id int64, in HostedInput) (store.Mailbox, error) {
	tid, err := adminTenant(a)
	if err != nil {
		return store.Mailbox{}, err
	}
	if in.Address != nil {
		return store.Mailbox{}, invalid("address", "error.hosted_address_fixed", nil)
	}
	var m store.Mailbox
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if m, err = s.hostedOf(ctx, tx, tid, id); err != nil {
			return err
		}
		var v validator
		if in.DisplayName != nil {
			m.DisplayName = v.text("display_name", *in.DisplayName, false, 120)
		}
		if err := v.err(); err != nil {
			return err
		}
		if in.VIP != nil {
			m.VIP = *in.VIP
		}
		if in.Active != nil {
			m.Active = *in.Active
		}
		if err := tx.UpdateMailbox(ctx, tid, m); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, tid, "hosted.update", idStr("mailbox", id),
			fmt.Sprintf("name=%q vip=%t active=%t", m.DisplayName, m.VIP, m.Active))
	})
	return m, fromStore(err, "", "")
}

// reauthenticate checks the actor's own password again before a secret is shown (H11).
func (s *Service) reauthenticate(ctx context.Context, a Actor, password string) error {
	tx := s.DB.Read()
	hash := ""
	switch {
	case a.Kind == ActorOperator:
		if op, err := tx.Operator(ctx, a.OperatorID); err == nil {
			hash = op.PasswordHash
		}
	case a.UserID != 0:
		if u, err := tx.User(ctx, a.TenantID, a.UserID); err == nil {
			hash = u.PasswordHash
		}
	}
	if hash == "" || !VerifyPassword(hash, password) {
		return &Error{Status: http.StatusForbidden, Key: "error.reauth_failed", Field: "password", Params: map[string]string{"field": "password"}}
	}
	return nil
}

// ShowHostedPassword reveals a mailbox's password after the actor entered their own
// password again (Passwort anzeigen, H11). Every view is in the audit log.
func (s *Service) ShowHostedPassword(ctx context.Context, a Actor, id int64, ownPassword string) (string, error) {
	tid, err := adminTenant(a)
	if err != nil {
		return "", err
	}
	if err := s.reauthenticate(ctx, a, ownPassword); err != nil {
		_ = s.DB.InTx(ctx, func(tx *store.Tx) error {
			return s.audit(ctx, tx, a, tid, "hosted.password.show_refused", idStr("mailbox", id), "re-authentication failed")
		})
		return "", err
	}
	var password string
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		if _, err := s.hostedOf(ctx, tx, tid, id); err != nil {
			return err
		}
		c, err := tx.HostedCredential(ctx, tid, id)
		if err != nil {
			return err
		}
		if password, err = s.Secrets.OpenString(hostedSecretContext(tid, id), c.PasswordSealed); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, tid, "hosted.password.show", idStr("mailbox", id), "")
	})
	return password, fromStore(err, "", "")
}

// RegenerateHostedPassword replaces a mailbox's password (neues Passwort generieren). The
// old one stops working at once: logins check the new hash, and open IMAP, POP3 and
// submission sessions are told to end.
func (s *Service) RegenerateHostedPassword(ctx context.Context, a Actor, id int64) (string, error) {
	tid, err := adminTenant(a)
	if err != nil {
		return "", err
	}
	password := generatePassword()
	hash, err := HashPassword(password)
	if err != nil {
		return "", err
	}
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		if _, err := s.hostedOf(ctx, tx, tid, id); err != nil {
			return err
		}
		sealed, err := s.Secrets.SealString(hostedSecretContext(tid, id), password)
		if err != nil {
			return err
		}
		gen, err := tx.SetHostedCredential(ctx, tid, id, sealed, hash)
		if err != nil {
			return err
		}
		return s.audit(ctx, tx, a, tid, "hosted.password.regenerate", idStr("mailbox", id), "generation "+itoa(int(gen)))
	})
	if err != nil {
		return "", fromStore(err, "", "")
	}
	if s.Hosting.CredentialsChanged != nil {
		s.Hosting.CredentialsChanged(ctx, id)
	}
	return password, nil
}

// HostedDeletePreview is the second confirmation of deleting a hosted mailbox: what will
// be lost and what is kept, like an account's (A6).
type HostedDeletePreview struct {
	MailboxID int64                    `json:"mailbox_id"`
	Address   string                   `json:"address"`
	Counts    store.HostedDeleteCounts `json:"counts"`
	Message   string                   `json:"message"` // the confirmation text in the caller's language
	// Confirm must be sent back to delete; it changes when the counts change, so a deletion
	// never removes more than the admin was shown.
	Confirm string `json:"confirm"`
}

// HostedDeleteInput confirms a deletion with the token of the preview.
type HostedDeleteInput struct {
	Confirm string `json:"confirm"`
}

func hostedDeleteToken(tid, id int64, c store.HostedDeleteCounts) string {
	return confirmToken("hosted-delete", tid, id, c.Deleted, c.Kept, c.Shared)
}

// HostedDeletePreview counts what deleting a hosted mailbox would delete and keep.
func (s *Service) HostedDeletePreview(ctx context.Context, a Actor, id int64) (HostedDeletePreview, error) {
	tid, err := adminTenant(a)
	if err != nil {
		return HostedDeletePreview{}, err
	}
	tx := s.DB.Read()
	m, err := s.hostedOf(ctx, tx, tid, id)
	if err != nil {
		return HostedDeletePreview{}, fromStore(err, "", "")
	}
	c, err := tx.HostedDeleteCounts(ctx, tid, id)
	if err != nil {
		return HostedDeletePreview{}, fromStore(err, "", "")
	}
	return HostedDeletePreview{MailboxID: id, Address: m.Address, Counts: c, Confirm: hostedDeleteToken(tid, id, c),
		Message: s.Text.T(a.Lang, "hosted.delete.confirm", map[string]string{"address": m.Address,
			"deleted": itoa(c.Deleted), "kept": itoa(c.Kept), "shared": itoa(c.Shared)})}, nil
}

// DeleteHostedMailbox deletes a hosted mailbox: its password, IMAP folders and the messages
// whose home it is, except those filed in a contact's journal (kept at the contact, A6,
// C7) and those also delivered to another mailbox (which stay there). Open IMAP, POP3 and
// submission sessions end at once. confirm must be the preview's token.
func (s *Service) DeleteHostedMailbox(ctx context.Context, a Actor, id int64, confirm string) (store.HostedDeleteCounts, error) {
	tid, err := adminTenant(a)
	if err != nil {
		return store.HostedDeleteCounts{}, err
	}
	var c store.HostedDeleteCounts
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		m, err := s.hostedOf(ctx, tx, tid, id)
		if err != nil {
			return err
		}
		if c, err = tx.HostedDeleteCounts(ctx, tid, id); err != nil {
			return err
		}
		if confirm != hostedDeleteToken(tid, id, c) {
			return &Error{Status: http.StatusConflict, Key: "error.account_confirm", Field: "confirm", Params: map[string]string{"field": "confirm"}}
		}
		if c.Shared, err = tx.HandOverSharedMessages(ctx, tid, id); err != nil {
			return err
		}
		done, err := tx.DeleteAccountMessages(ctx, tid, id)
		if err != nil {
			return err
		}
		c.Deleted, c.Kept = done.Deleted, done.Kept
		if err := tx.DeleteMailbox(ctx, tid, id); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, tid, "hosted.delete", idStr("mailbox", id),
			fmt.Sprintf("%s deleted=%d kept=%d shared=%d", m.Address, c.Deleted, c.Kept, c.Shared))
	})
	if err != nil {
		return store.HostedDeleteCounts{}, fromStore(err, "", "")
	}
	if s.Hosting.CredentialsChanged != nil {
		s.Hosting.CredentialsChanged(ctx, id)
	}
	return c, nil
}

// CredentialsInput is the Zugangsdaten versenden form (H9).
type CredentialsInput struct {
	To              string `json:"to"`
	IncludePassword bool   `json:"include_password"` // only on explicit choice
	OwnPassword     string `json:"own_password,omitempty"`
}

// CredentialsText is the mail that carries the access data; the password only when asked.
func CredentialsText(address string, e MailEndpoints, password string) (subject, body string) {
	var b strings.Builder
	fmt.Fprintf(&b, "Access data for the mailbox %s\r\n\r\n", address)
	fmt.Fprintf(&b, "User name: %s\r\n", address)
	if password != "" {
		fmt.Fprintf(&b, "Password: %s\r\n", password)
	} else {
		b.WriteString("Password: ask your administrator (not sent by mail)\r\n")
	}
	fmt.Fprintf(&b, "\r\nIncoming mail (IMAP): %s, port %d (SSL/TLS) or %d (STARTTLS)\r\n", e.Hostname, e.IMAPTLSPort, e.IMAPPort)
	fmt.Fprintf(&b, "Incoming mail (POP3): %s, port %d (SSL/TLS) or %d (STARTTLS)\r\n", e.Hostname, e.POP3TLSPort, e.POP3Port)
	fmt.Fprintf(&b, "Outgoing mail (SMTP): %s, port %d (SSL/TLS) or %d (STARTTLS), authentication required\r\n",
		e.Hostname, e.SubmissionTLSPort, e.SubmissionPort)
	return "Access data for " + address, b.String()
}

// SendHostedCredentials sends the server names, ports, user name and, on explicit choice
// (which needs re-authentication like showing it), the password to an address (H9).
func (s *Service) SendHostedCredentials(ctx context.Context, a Actor, id int64, in CredentialsInput) error {
	tid, err := adminTenant(a)
	if err != nil {
		return err
	}
	var v validator
	to := v.address("to", in.To, true)
	if err := v.err(); err != nil {
		return err
	}
	m, err := s.hostedOf(ctx, s.DB.Read(), tid, id)
	if err != nil {
		return fromStore(err, "", "")
	}
	password := ""
	if in.IncludePassword {
		if password, err = s.ShowHostedPassword(ctx, a, id, in.OwnPassword); err != nil {
			return err
		}
	}
	if s.Hosting.Mailer == nil {
		return &Error{Status: http.StatusServiceUnavailable, Key: "error.outbound_unavailable"}
	}
	subject, body := CredentialsText(m.Address, s.Hosting.Endpoints, password)
	if err := s.Hosting.Mailer.SendCredentials(ctx, tid, id, to, subject, body); err != nil {
		return fmt.Errorf("core: send credentials: %w", err)
	}
	return fromStore(s.DB.InTx(ctx, func(tx *store.Tx) error {
		return s.audit(ctx, tx, a, tid, "hosted.credentials.send", idStr("mailbox", id),
			fmt.Sprintf("to=%s password=%t", to, in.IncludePassword))
	}), "", "")
}

// HostedPrincipal is who logged in on IMAP, POP3 or submission: a hosted mailbox, with the
// password generation the login used.
type HostedPrincipal struct {
	Mailbox    store.Mailbox
	Generation int64
}

// ThrottlePrefix is the network an address is counted with: /24 for IPv4, /56 for IPv6
// (what one customer line typically gets).
func ThrottlePrefix(ip netip.Addr) string {
	ip = ip.Unmap()
	bits := 24
	if ip.Is6() {
		bits = 56
	}
	p, err := ip.Prefix(bits)
	if err != nil {
		return ip.String()
	}
	return p.String()
}

// AuthenticateHosted checks a mail-protocol login: the full address as user name (H10)
// and the mailbox's password. Every attempt is logged; beyond the throttle's limits for
// the address or its prefix the attempt is refused without hashing.
func (s *Service) AuthenticateHosted(ctx context.Context, protocol, username, password string, remoteIP netip.Addr) (HostedPrincipal, error) {
	ip := remoteIP.Unmap().String()
	prefix := ThrottlePrefix(remoteIP)
	username = store.NormalizeAddress(username)
	if len(username) > 254 {
		username = username[:254]
	}
	log := func(outcome string, mailboxID *int64) {
		err := s.DB.InTx(ctx, func(tx *store.Tx) error {
			return tx.LogAuthAttempt(ctx, store.AuthAttempt{Protocol: protocol, Username: username, RemoteIP: ip, Prefix: prefix, Outcome: outcome, MailboxID: mailboxID})
		})
		if err != nil {
			s.Log.Warn("auth attempt not logged", "err", err)
		}
	}
	since := s.Now().Add(-AuthWindow).UnixMilli()
	byIP, byPrefix, err := s.DB.Read().FailedAuthSince(ctx, ip, prefix, since)
	if err != nil {
		return HostedPrincipal{}, fmt.Errorf("core: %w", err)
	}
	if byIP >= AuthMaxFailsIP || byPrefix >= AuthMaxFailsPrefix {
		log(store.AuthThrottled, nil)
		return HostedPrincipal{}, ErrHostedThrottled
	}
	login, err := s.DB.Read().HostedLoginByAddress(ctx, username)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			return HostedPrincipal{}, fmt.Errorf("core: %w", err)
		}
		VerifyPassword(dummyHash, password) // same cost as a known user: no user enumeration by timing
		log(store.AuthFailed, nil)
		return HostedPrincipal{}, ErrHostedAuthFailed
	}
	id := login.Mailbox.ID
	if !VerifyPassword(login.PasswordHash, password) {
		log(store.AuthFailed, &id)
		return HostedPrincipal{}, ErrHostedAuthFailed
	}
	log(store.AuthOK, &id)
	return HostedPrincipal{Mailbox: login.Mailbox, Generation: login.Generation}, nil
}

// HostedPasswordCurrent reports whether a session's password generation is still current.
func (s *Service) HostedPasswordCurrent(ctx context.Context, mailboxID, generation int64) (bool, error) {
	gen, err := s.DB.Read().HostedGeneration(ctx, mailboxID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil // the mailbox was deleted
	}
	if err != nil {
		return false, fmt.Errorf("core: %w", err)
	}
	return gen == generation, nil
}

// CheckSubmissionSender decides whether a login with a hosted mailbox's password may use an
// address as envelope sender or in From: (M1 at submission). The mailbox's own address is
// always allowed; any other address must be one that a user assigned to the mailbox may
// send as, by the same policy as the compose form. Addresses of other tenants never pass.
func (s *Service) CheckSubmissionSender(ctx context.Context, p HostedPrincipal, address string) (policy.Decision, error) {
	address = store.NormalizeAddress(address)
	if address == p.Mailbox.Address {
		return policy.Decision{Allowed: true, Rule: "policy.allowed", Params: map[string]string{"address": address}}, nil
	}
	users, err := s.DB.Read().AssignedUserIDs(ctx, p.Mailbox.TenantID, p.Mailbox.ID)
	if err != nil {
		return policy.Decision{}, fmt.Errorf("core: %w", err)
	}
	last := policy.Decision{Rule: "policy.not_a_mailbox", Params: map[string]string{"address": address}}
	for _, uid := range users {
		d, err := s.Policy.Explain(ctx, p.Mailbox.TenantID, uid, address, policy.RoleSender)
		if err != nil {
			return policy.Decision{}, fmt.Errorf("core: %w", err)
		}
		if d.Allowed {
			return d, nil
		}
		last = d
	}
	return last, nil
}
