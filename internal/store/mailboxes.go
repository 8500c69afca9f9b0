package store

import (
	"context"
	"fmt"
	"strings"
)

// Mailbox kinds.
const (
	KindSystem     = "system"     // the tenant's Systemmail-Box
	KindAdditional = "additional" // Zusätzliches Postfach (seed 000)
	KindAccount    = "account"    // mail account with inbound/outbound address (seed 002, 004)
	KindHosted     = "hosted"     // mailbox hosted on the tenant's own domain (seed 003)
)

// Mailbox is any address Postfach sends from or receives for.
type Mailbox struct {
	ID          int64        `json:"id"`
	TenantID    int64        `json:"tenant_id"`
	Kind        string       `json:"kind"`
	Address     string       `json:"address"`
	DisplayName string       `json:"display_name"`
	Reply       bool         `json:"reply"`      // Antwort
	Sender      bool         `json:"sender"`     // Absender
	Global      bool         `json:"global"`     // Global
	WithAuth    bool         `json:"with_auth"`  // mit Authentifizierung
	Restricted  bool         `json:"restricted"` // Benutzerrechte
	VIP         bool         `json:"vip"`
	Active      bool         `json:"active"`
	SMTP        SMTPSettings `json:"smtp"`
	Settings    string       `json:"-"` // JSON owned by the mail packages (fetch settings, folder mapping, out-of-office)
	CreatedAt   int64        `json:"created_at"`
	UpdatedAt   int64        `json:"updated_at"`
}

// SMTPSettings are the mailbox's own outgoing server (mit Authentifizierung). The password
// is stored encrypted; the store only ever sees ciphertext.
type SMTPSettings struct {
	Host              string `json:"host"`
	Port              int    `json:"port"`
	Security          string `json:"security"` // none, tls, starttls
	Auth              bool   `json:"auth"`
	Username          string `json:"username"`
	PasswordEncrypted []byte `json:"-"`
	HasPassword       bool   `json:"has_password"`
}

const mailboxCols = `id, tenant_id, kind, address, display_name, flag_reply, flag_sender, flag_global, with_auth, restricted, vip, active,
	smtp_host, smtp_port, smtp_security, smtp_auth, smtp_username, smtp_password, settings, created_at, updated_at`

func scanMailbox(s interface{ Scan(...any) error }) (Mailbox, error) {
	var m Mailbox
	err := s.Scan(&m.ID, &m.TenantID, &m.Kind, &m.Address, &m.DisplayName, &m.Reply, &m.Sender, &m.Global, &m.WithAuth, &m.Restricted, &m.VIP, &m.Active,
		&m.SMTP.Host, &m.SMTP.Port, &m.SMTP.Security, &m.SMTP.Auth, &m.SMTP.Username, &m.SMTP.PasswordEncrypted, &m.Settings, &m.CreatedAt, &m.UpdatedAt)
	m.SMTP.HasPassword = len(m.SMTP.PasswordEncrypted) > 0
	return m, mapErr(err)
}

// NormalizeAddress is the form addresses are stored and compared in: trimmed, lower case.
// The local part is technically case-sensitive (RFC 5321 §2.4) but no real system treats
// it so, and users expect "Info@" and "info@" to be one mailbox.
func NormalizeAddress(a string) string { return strings.ToLower(strings.TrimSpace(a)) }

// CreateMailbox inserts a mailbox of tenantID.
func (tx *Tx) CreateMailbox(ctx context.Context, tenantID int64, m Mailbox) (Mailbox, error) {
	m.TenantID = tenantID
	m.Address = NormalizeAddress(m.Address)
	m.CreatedAt, m.UpdatedAt = tx.now, tx.now
	if m.Settings == "" {
		m.Settings = "{}"
	}
	if m.SMTP.Security == "" {
		m.SMTP.Security = "starttls"
	}
	id, err := tx.insertID(ctx, `INSERT INTO mailboxes (tenant_id, kind, address, display_name, flag_reply, flag_sender, flag_global, with_auth, restricted, vip, active,
		smtp_host, smtp_port, smtp_security, smtp_auth, smtp_username, smtp_password, settings, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		tenantID, m.Kind, m.Address, m.DisplayName, m.Reply, m.Sender, m.Global, m.WithAuth, m.Restricted, m.VIP, m.Active,
		m.SMTP.Host, m.SMTP.Port, m.SMTP.Security, m.SMTP.Auth, m.SMTP.Username, nullBytes(m.SMTP.PasswordEncrypted), m.Settings, m.CreatedAt, m.UpdatedAt)
	if err != nil {
		return Mailbox{}, fmt.Errorf("create mailbox: %w", err)
	}
	m.ID = id
	m.SMTP.HasPassword = len(m.SMTP.PasswordEncrypted) > 0
	return m, nil
}

func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// UpdateMailbox writes every field; a nil PasswordEncrypted keeps the stored password.
func (tx *Tx) UpdateMailbox(ctx context.Context, tenantID int64, m Mailbox) error {
	m.Address = NormalizeAddress(m.Address)
	q := `UPDATE mailboxes SET address = ?, display_name = ?, flag_reply = ?, flag_sender = ?, flag_global = ?, with_auth = ?, restricted = ?, vip = ?, active = ?,
		smtp_host = ?, smtp_port = ?, smtp_security = ?, smtp_auth = ?, smtp_username = ?, settings = ?, updated_at = ?`
	args := []any{m.Address, m.DisplayName, m.Reply, m.Sender, m.Global, m.WithAuth, m.Restricted, m.VIP, m.Active,
		m.SMTP.Host, m.SMTP.Port, m.SMTP.Security, m.SMTP.Auth, m.SMTP.Username, m.Settings, tx.now}
	if m.SMTP.PasswordEncrypted != nil {
		q += `, smtp_password = ?`
		args = append(args, nullBytes(m.SMTP.PasswordEncrypted))
	}
	q += ` WHERE tenant_id = ? AND id = ?`
	args = append(args, tenantID, m.ID)
	res, err := tx.exec(ctx, q, args...)
	return affected(res, err, "update mailbox")
}

// Mailbox reads a mailbox owned by tenantID.
func (tx *Tx) Mailbox(ctx context.Context, tenantID, id int64) (Mailbox, error) {
	m, err := scanMailbox(tx.queryRow(ctx, `SELECT `+mailboxCols+` FROM mailboxes WHERE tenant_id = ? AND id = ?`, tenantID, id))
	if err != nil {
		return m, fmt.Errorf("mailbox %d: %w", id, err)
	}
	return m, nil
}

// MailboxVisible reads a mailbox that tenantID owns or that is global.
func (tx *Tx) MailboxVisible(ctx context.Context, tenantID, id int64) (Mailbox, error) {
	m, err := scanMailbox(tx.queryRow(ctx, `SELECT `+mailboxCols+` FROM mailboxes WHERE id = ? AND (tenant_id = ? OR flag_global = TRUE)`, id, tenantID))
	if err != nil {
		return m, fmt.Errorf("mailbox %d: %w", id, err)
	}
	return m, nil
}

// MailboxesFilter narrows Mailboxes.
type MailboxesFilter struct {
	Kind string // empty: every kind
}

// Mailboxes lists the mailboxes owned by tenantID.
func (tx *Tx) Mailboxes(ctx context.Context, tenantID int64, f MailboxesFilter) ([]Mailbox, error) {
	q := `SELECT ` + mailboxCols + ` FROM mailboxes WHERE tenant_id = ?`
	args := []any{tenantID}
	if f.Kind != "" {
		q += ` AND kind = ?`
		args = append(args, f.Kind)
	}
	rows, err := tx.query(ctx, q+` ORDER BY kind, address, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list mailboxes: %w", err)
	}
	return collect(rows, scanMailbox)
}

// GlobalMailboxes lists every mailbox flagged Global, of any tenant.
func (tx *Tx) GlobalMailboxes(ctx context.Context) ([]Mailbox, error) {
	rows, err := tx.query(ctx, `SELECT `+mailboxCols+` FROM mailboxes WHERE flag_global = TRUE ORDER BY address, id`)
	if err != nil {
		return nil, fmt.Errorf("list global mailboxes: %w", err)
	}
	return collect(rows, scanMailbox)
}

// MailboxesByAddress lists the mailboxes with an address, within reach of tenantID (own or global).
func (tx *Tx) MailboxesByAddress(ctx context.Context, tenantID int64, address string) ([]Mailbox, error) {
	rows, err := tx.query(ctx, `SELECT `+mailboxCols+` FROM mailboxes WHERE address = ? AND (tenant_id = ? OR flag_global = TRUE) ORDER BY id`,
		NormalizeAddress(address), tenantID)
	if err != nil {
		return nil, fmt.Errorf("mailboxes by address: %w", err)
	}
	return collect(rows, scanMailbox)
}

// CountMailboxes counts a tenant's mailboxes of one kind (for the quota).
func (tx *Tx) CountMailboxes(ctx context.Context, tenantID int64, kind string) (int, error) {
	var n int
	err := tx.queryRow(ctx, `SELECT COUNT(*) FROM mailboxes WHERE tenant_id = ? AND kind = ?`, tenantID, kind).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count mailboxes: %w", mapErr(err))
	}
	return n, nil
}

// DeleteMailbox removes a mailbox; its grants go with it.
func (tx *Tx) DeleteMailbox(ctx context.Context, tenantID, id int64) error {
	res, err := tx.exec(ctx, `DELETE FROM mailboxes WHERE tenant_id = ? AND id = ?`, tenantID, id)
	return affected(res, err, "delete mailbox")
}

func prefixed(prefix, cols string) string {
	parts := strings.Split(cols, ",")
	for i, p := range parts {
		parts[i] = prefix + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}
