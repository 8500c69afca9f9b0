package store

import (
	"context"
	"fmt"
	"strings"
)

// Message directions.
const (
	DirectionIn  = "in"
	DirectionOut = "out"
)

// Roles in which a mailbox takes part in a message (message_mailboxes). The VIP rule (H7)
// protects a message that involves a VIP mailbox in any role; with the tenant option
// "no VIP protection for CC/BCC recipients" (H8) only RoleFrom and RoleTo protect.
const (
	RoleFrom = "from" // the message was sent from the mailbox
	RoleTo   = "to"   // the mailbox's address is in To:
	RoleCc   = "cc"   // the mailbox's address is in Cc:
	RoleBcc  = "bcc"  // envelope recipient only (Bcc, or a forward to an inbound address)
)

// Message is a stored mail, received or sent. Raw is loaded only by MessageRaw.
type Message struct {
	ID             int64  `json:"id"`
	TenantID       int64  `json:"tenant_id"`
	MailboxID      *int64 `json:"mailbox_id,omitempty"`
	Direction      string `json:"direction"`
	Folder         string `json:"folder"`
	MessageID      string `json:"message_id"`
	InReplyTo      string `json:"in_reply_to,omitempty"`
	ThreadID       int64  `json:"thread_id"` // id of the conversation's first message
	ContactID      *int64 `json:"contact_id,omitempty"`
	FiledReason    string `json:"filed_reason"`
	Journal        bool   `json:"journal"`
	PrivateOwnerID *int64 `json:"private_owner_id,omitempty"`
	SenderUserID   *int64 `json:"sender_user_id,omitempty"`
	From           string `json:"from"`
	To             string `json:"to"`
	Cc             string `json:"cc"`
	Subject        string `json:"subject"`
	SentAt         int64  `json:"sent_at"`
	Size           int64  `json:"size"`
	SHA256         string `json:"sha256"`
	Status         string `json:"status,omitempty"`
	CreatedAt      int64  `json:"created_at"`
	Raw            []byte `json:"-"`
	// IdempotencyKey is written by InsertMessage (the API's Idempotency-Key of a send) and
	// not read back; "" stores NULL. The unique index (tenant, key) turns a repeated key
	// into ErrConflict, which rolls the send back.
	IdempotencyKey string `json:"-"`
}

// messageCols selects a message without its raw bytes; every query aliases messages as m,
// because the visibility filter is written against that alias.
const messageCols = `m.id, m.tenant_id, m.mailbox_id, m.direction, m.folder, m.message_id, m.in_reply_to, COALESCE(m.thread_id, m.id),
	m.contact_id, m.filed_reason, m.journal, m.private_owner_id, m.sender_user_id, m.from_addr, m.to_addrs, m.cc_addrs, m.subject,
	m.sent_at, m.size, m.sha256, m.status, m.created_at`

func scanMessage(s interface{ Scan(...any) error }) (Message, error) {
	var m Message
	err := s.Scan(&m.ID, &m.TenantID, &m.MailboxID, &m.Direction, &m.Folder, &m.MessageID, &m.InReplyTo, &m.ThreadID,
		&m.ContactID, &m.FiledReason, &m.Journal, &m.PrivateOwnerID, &m.SenderUserID, &m.From, &m.To, &m.Cc, &m.Subject,
		&m.SentAt, &m.Size, &m.SHA256, &m.Status, &m.CreatedAt)
	return m, mapErr(err)
}

// InsertMessage stores a message of tenantID. A zero ThreadID starts a new conversation
// (stored as NULL and read back as the message's own id). CreatedAt defaults to the
// transaction's time.
func (tx *Tx) InsertMessage(ctx context.Context, tenantID int64, m Message) (Message, error) {
	m.TenantID = tenantID
	if m.CreatedAt == 0 {
		m.CreatedAt = tx.now
	}
	if m.Folder == "" {
		m.Folder = "INBOX"
	}
	var thread any
	if m.ThreadID != 0 {
		thread = m.ThreadID
	}
	var key any
	if m.IdempotencyKey != "" {
		key = m.IdempotencyKey
	}
	// The body goes to message_bodies (see schemaMessageBodies); messages.raw stays empty.
	id, err := tx.insertID(ctx, `INSERT INTO messages (tenant_id, mailbox_id, direction, folder, message_id, in_reply_to, thread_id, contact_id,
		filed_reason, journal, private_owner_id, sender_user_id, from_addr, to_addrs, cc_addrs, subject, sent_at, size, sha256, raw, status, created_at,
		idempotency_key)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		tenantID, m.MailboxID, m.Direction, m.Folder, m.MessageID, m.InReplyTo, thread, m.ContactID,
		m.FiledReason, m.Journal, m.PrivateOwnerID, m.SenderUserID, m.From, m.To, m.Cc, m.Subject, m.SentAt, m.Size, m.SHA256, []byte{}, m.Status, m.CreatedAt,
		key)
	if err != nil {
		return m, fmt.Errorf("insert message: %w", err)
	}
	raw := m.Raw
	if raw == nil {
		raw = []byte{}
	}
	if _, err := tx.exec(ctx, `INSERT INTO message_bodies (message_id, tenant_id, raw) VALUES (?, ?, ?)`, id, tenantID, raw); err != nil {
		return m, fmt.Errorf("insert message body: %w", err)
	}
	m.ID = id
	if m.ThreadID == 0 {
		m.ThreadID = id
	}
	return m, nil
}

// LinkMessageMailbox records that a mailbox of the tenant takes part in a message in a role.
func (tx *Tx) LinkMessageMailbox(ctx context.Context, tenantID, messageID, mailboxID int64, role string) error {
	_, err := tx.exec(ctx, `INSERT INTO message_mailboxes (tenant_id, message_id, mailbox_id, role) VALUES (?, ?, ?, ?)`,
		tenantID, messageID, mailboxID, role)
	if err != nil {
		return fmt.Errorf("link message mailbox: %w", err)
	}
	return nil
}

// MessagesByMessageID finds a tenant's messages whose Message-ID is one of ids (without
// angle brackets), newest first: the candidates a reply is threaded to.
func (tx *Tx) MessagesByMessageID(ctx context.Context, tenantID int64, ids []string) ([]Message, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := []any{tenantID}
	for _, id := range ids {
		args = append(args, id)
	}
	rows, err := tx.query(ctx, `SELECT `+messageCols+` FROM messages m WHERE m.tenant_id = ? AND m.message_id IN (`+placeholders(len(ids))+`)
		ORDER BY m.created_at DESC, m.id DESC`, args...)
	if err != nil {
		return nil, fmt.Errorf("messages by message-id: %w", err)
	}
	return collect(rows, scanMessage)
}

// RepliesTo lists a tenant's messages whose In-Reply-To names messageID (without angle
// brackets), except the message exceptID, oldest first.
func (tx *Tx) RepliesTo(ctx context.Context, tenantID int64, messageID string, exceptID int64) ([]Message, error) {
	// The literal in_reply_to <> '' lets both databases use the partial index.
	rows, err := tx.query(ctx, `SELECT `+messageCols+` FROM messages m WHERE m.tenant_id = ? AND m.in_reply_to = ? AND m.in_reply_to <> ''
		AND m.id <> ? ORDER BY m.id`, tenantID, messageID, exceptID)
	if err != nil {
		return nil, fmt.Errorf("replies to: %w", err)
	}
	return collect(rows, scanMessage)
}

// MoveThread puts every message of conversation from (the message with that id and those
// threaded to it) into conversation to.
func (tx *Tx) MoveThread(ctx context.Context, tenantID, from, to int64) error {
	// Two statements: with an OR the planner walks the tenant's whole thread index.
	if _, err := tx.exec(ctx, `UPDATE messages SET thread_id = ? WHERE tenant_id = ? AND thread_id = ?`, to, tenantID, from); err != nil {
		return fmt.Errorf("move thread: %w", err)
	}
	if _, err := tx.exec(ctx, `UPDATE messages SET thread_id = ? WHERE tenant_id = ? AND id = ? AND thread_id IS NULL`, to, tenantID, from); err != nil {
		return fmt.Errorf("move thread: %w", err)
	}
	return nil
}

// FindDuplicate returns the id of a stored message of the mailbox with the same Message-ID
// and content hash: a sender that retries after a lost 250 must not store the message twice.
func (tx *Tx) FindDuplicate(ctx context.Context, tenantID, mailboxID int64, messageID, sha string) (int64, error) {
	var id int64
	err := tx.queryRow(ctx, `SELECT id FROM messages WHERE tenant_id = ? AND message_id = ? AND mailbox_id = ? AND sha256 = ? ORDER BY id LIMIT 1`,
		tenantID, messageID, mailboxID, sha).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("find duplicate: %w", mapErr(err))
	}
	return id, nil
}

// FileMessage files a message at a contact (contactID nil: unassigned) with the reason shown
// to users.
func (tx *Tx) FileMessage(ctx context.Context, tenantID, id int64, contactID *int64, reason string) error {
	res, err := tx.exec(ctx, `UPDATE messages SET contact_id = ?, filed_reason = ? WHERE tenant_id = ? AND id = ?`, contactID, reason, tenantID, id)
	return affected(res, err, "file message")
}

// MessageFilter narrows a message list. Zero fields do not filter.
type MessageFilter struct {
	MailboxID  int64
	ContactID  int64
	ThreadID   int64
	Unassigned bool // only messages filed at no contact
	BeforeID   int64
	Limit      int
}

// MessageQuery is a list or count of a tenant's messages restricted by a row filter on the
// alias m (the visibility filter; empty: none).
type MessageQuery struct {
	TenantID    int64
	Filter      MessageFilter
	Where       string
	WhereArgs   []any
	IncludeRaw  bool
	OnlyOneByID int64
}

func (q MessageQuery) build(cols string) (string, []any) {
	var b strings.Builder
	b.WriteString(`SELECT ` + cols + ` FROM messages m WHERE m.tenant_id = ?`)
	args := []any{q.TenantID}
	f := q.Filter
	add := func(cond string, v ...any) { b.WriteString(" AND " + cond); args = append(args, v...) }
	if q.OnlyOneByID != 0 {
		add("m.id = ?", q.OnlyOneByID)
	}
	if f.MailboxID != 0 {
		add("(m.mailbox_id = ? OR EXISTS (SELECT 1 FROM message_mailboxes x WHERE x.message_id = m.id AND x.mailbox_id = ?))", f.MailboxID, f.MailboxID)
	}
	if f.ContactID != 0 {
		// A4: a message filed at several contacts lists under each (message_contacts).
		add("(m.contact_id = ? OR EXISTS (SELECT 1 FROM message_contacts x WHERE x.message_id = m.id AND x.contact_id = ?))", f.ContactID, f.ContactID)
	}
	if f.ThreadID != 0 {
		add("(m.thread_id = ? OR m.id = ?)", f.ThreadID, f.ThreadID)
	}
	if f.Unassigned {
		add("m.contact_id IS NULL")
	}
	if f.BeforeID != 0 {
		add("m.id < ?", f.BeforeID)
	}
	if q.Where != "" {
		add("("+q.Where+")", q.WhereArgs...)
	}
	return b.String(), args
}

// Messages lists messages newest first.
func (tx *Tx) Messages(ctx context.Context, q MessageQuery) ([]Message, error) {
	sqlText, args := q.build(messageCols)
	limit := q.Filter.Limit
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	rows, err := tx.query(ctx, sqlText+fmt.Sprintf(` ORDER BY m.id DESC LIMIT %d`, limit), args...)
	if err != nil {
		return nil, fmt.Errorf("list messages: %w", err)
	}
	return collect(rows, scanMessage)
}

// CountMessages counts what Messages would list without the limit.
func (tx *Tx) CountMessages(ctx context.Context, q MessageQuery) (int, error) {
	sqlText, args := q.build("COUNT(*)")
	var n int
	if err := tx.queryRow(ctx, sqlText, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count messages: %w", mapErr(err))
	}
	return n, nil
}

// MessageWhere reads one message that passes the query's row filter, with its raw bytes.
func (tx *Tx) MessageWhere(ctx context.Context, q MessageQuery, id int64) (Message, error) {
	q.OnlyOneByID = id
	sqlText, args := q.build(messageCols + `, (SELECT b.raw FROM message_bodies b WHERE b.message_id = m.id AND b.tenant_id = m.tenant_id)`)
	var m Message
	row := tx.queryRow(ctx, sqlText, args...)
	err := row.Scan(&m.ID, &m.TenantID, &m.MailboxID, &m.Direction, &m.Folder, &m.MessageID, &m.InReplyTo, &m.ThreadID,
		&m.ContactID, &m.FiledReason, &m.Journal, &m.PrivateOwnerID, &m.SenderUserID, &m.From, &m.To, &m.Cc, &m.Subject,
		&m.SentAt, &m.Size, &m.SHA256, &m.Status, &m.CreatedAt, &m.Raw)
	if err != nil {
		return m, fmt.Errorf("message %d: %w", id, mapErr(err))
	}
	return m, nil
}

// UserIDByShortCode finds the active user with a short code (Nutzerkürzel), which names the
// owner of a private account (C3, "Privatkonto von").
func (tx *Tx) UserIDByShortCode(ctx context.Context, tenantID int64, code string) (int64, error) {
	var id int64
	err := tx.queryRow(ctx, `SELECT id FROM users WHERE tenant_id = ? AND short_code = ? ORDER BY id LIMIT 1`, tenantID, code).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("user with short code %q: %w", code, mapErr(err))
	}
	return id, nil
}

// HostedMailboxesByAddress lists the hosted mailboxes with an address, of any tenant (the MX
// serves every tenant's domains).
func (tx *Tx) HostedMailboxesByAddress(ctx context.Context, address string) ([]Mailbox, error) {
	rows, err := tx.query(ctx, `SELECT `+mailboxCols+` FROM mailboxes WHERE address = ? AND kind = ? ORDER BY id`, NormalizeAddress(address), KindHosted)
	if err != nil {
		return nil, fmt.Errorf("hosted mailboxes by address: %w", err)
	}
	return collect(rows, scanMailbox)
}

// HostsDomain reports whether any hosted mailbox lives on domain, which tells an unknown
// user of ours (550 5.1.1) from a relay attempt (550 5.7.1).
func (tx *Tx) HostsDomain(ctx context.Context, domain string) (bool, error) {
	pattern := "%@" + likeEscape(strings.ToLower(domain))
	var n int
	err := tx.queryRow(ctx, `SELECT COUNT(*) FROM mailboxes WHERE kind = ? AND address LIKE ? ESCAPE '\'`, KindHosted, pattern).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("hosts domain: %w", mapErr(err))
	}
	return n > 0, nil
}

func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// ContactIDByEmail finds the id of the tenant's contact with an address (ErrNotFound when
// there is none).
func (tx *Tx) ContactIDByEmail(ctx context.Context, tenantID int64, email string) (int64, error) {
	var id int64
	err := tx.queryRow(ctx, `SELECT id FROM contacts WHERE tenant_id = ? AND email = ? ORDER BY id LIMIT 1`, tenantID, NormalizeAddress(email)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("contact %q: %w", email, mapErr(err))
	}
	return id, nil
}

// MailboxLink is one row of message_mailboxes.
type MailboxLink struct {
	MessageID int64
	MailboxID int64
	Role      string
}

// LinkMessageMailboxes records many (message, mailbox, role) rows of a tenant with one
// multi-row INSERT.
func (tx *Tx) LinkMessageMailboxes(ctx context.Context, tenantID int64, links []MailboxLink) error {
	if len(links) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString(`INSERT INTO message_mailboxes (tenant_id, message_id, mailbox_id, role) VALUES `)
	args := make([]any, 0, 4*len(links))
	for i, l := range links {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?)")
		args = append(args, tenantID, l.MessageID, l.MailboxID, l.Role)
	}
	if _, err := tx.exec(ctx, b.String(), args...); err != nil {
		return fmt.Errorf("link message mailboxes: %w", err)
	}
	return nil
}
