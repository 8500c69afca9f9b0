package store

import (
	"context"
	"fmt"
)

// Template is a Vorlage: subject and body with a preselected sender and reply-to option.
// The option keys are the policy engine's keys ("system", "mailbox:12", "own").
type Template struct {
	ID        int64  `json:"id"`
	TenantID  int64  `json:"tenant_id"`
	Name      string `json:"name"`
	Subject   string `json:"subject"`
	BodyText  string `json:"body_text"`
	BodyHTML  string `json:"body_html"`
	SenderKey string `json:"sender_key"`
	ReplyKey  string `json:"reply_key"`
	CreatedAt int64  `json:"created_at"`
	UpdatedAt int64  `json:"updated_at"`
}

const templateCols = `id, tenant_id, name, subject, body_text, body_html, sender_key, reply_key, created_at, updated_at`

func scanTemplate(s interface{ Scan(...any) error }) (Template, error) {
	var t Template
	err := s.Scan(&t.ID, &t.TenantID, &t.Name, &t.Subject, &t.BodyText, &t.BodyHTML, &t.SenderKey, &t.ReplyKey, &t.CreatedAt, &t.UpdatedAt)
	return t, mapErr(err)
}

// CreateTemplate inserts a template.
func (tx *Tx) CreateTemplate(ctx context.Context, tenantID int64, t Template) (Template, error) {
	t.TenantID, t.CreatedAt, t.UpdatedAt = tenantID, tx.now, tx.now
	id, err := tx.insertID(ctx, `INSERT INTO templates (tenant_id, name, subject, body_text, body_html, sender_key, reply_key, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, tenantID, t.Name, t.Subject, t.BodyText, t.BodyHTML, t.SenderKey, t.ReplyKey, t.CreatedAt, t.UpdatedAt)
	if err != nil {
		return t, fmt.Errorf("create template: %w", err)
	}
	t.ID = id
	return t, nil
}

// UpdateTemplate writes a template.
func (tx *Tx) UpdateTemplate(ctx context.Context, tenantID int64, t Template) error {
	res, err := tx.exec(ctx, `UPDATE templates SET name = ?, subject = ?, body_text = ?, body_html = ?, sender_key = ?, reply_key = ?, updated_at = ?
		WHERE tenant_id = ? AND id = ?`, t.Name, t.Subject, t.BodyText, t.BodyHTML, t.SenderKey, t.ReplyKey, tx.now, tenantID, t.ID)
	return affected(res, err, "update template")
}

// Template reads one template.
func (tx *Tx) Template(ctx context.Context, tenantID, id int64) (Template, error) {
	t, err := scanTemplate(tx.queryRow(ctx, `SELECT `+templateCols+` FROM templates WHERE tenant_id = ? AND id = ?`, tenantID, id))
	if err != nil {
		return t, fmt.Errorf("template %d: %w", id, err)
	}
	return t, nil
}

// Templates lists a tenant's templates by name.
func (tx *Tx) Templates(ctx context.Context, tenantID int64) ([]Template, error) {
	rows, err := tx.query(ctx, `SELECT `+templateCols+` FROM templates WHERE tenant_id = ? ORDER BY name`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list templates: %w", err)
	}
	return collect(rows, scanTemplate)
}

// DeleteTemplate removes a template.
func (tx *Tx) DeleteTemplate(ctx context.Context, tenantID, id int64) error {
	res, err := tx.exec(ctx, `DELETE FROM templates WHERE tenant_id = ? AND id = ?`, tenantID, id)
	return affected(res, err, "delete template")
}

// Signature is the general signature (UserID nil) or a user's own one.
type Signature struct {
	ID        int64  `json:"id"`
	TenantID  int64  `json:"tenant_id"`
	UserID    *int64 `json:"user_id,omitempty"`
	BodyHTML  string `json:"body_html"`
	UpdatedAt int64  `json:"updated_at"`
}

// PutSignature creates or replaces the signature for (tenant, user).
func (tx *Tx) PutSignature(ctx context.Context, tenantID int64, userID *int64, bodyHTML string) (Signature, error) {
	s := Signature{TenantID: tenantID, UserID: userID, BodyHTML: bodyHTML, UpdatedAt: tx.now}
	var res interface{ RowsAffected() (int64, error) }
	var err error
	if userID == nil {
		res, err = tx.exec(ctx, `UPDATE signatures SET body_html = ?, updated_at = ? WHERE tenant_id = ? AND user_id IS NULL`, bodyHTML, tx.now, tenantID)
	} else {
		res, err = tx.exec(ctx, `UPDATE signatures SET body_html = ?, updated_at = ? WHERE tenant_id = ? AND user_id = ?`, bodyHTML, tx.now, tenantID, *userID)
	}
	if err != nil {
		return s, fmt.Errorf("put signature: %w", err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return tx.SignatureFor(ctx, tenantID, userID)
	}
	id, err := tx.insertID(ctx, `INSERT INTO signatures (tenant_id, user_id, body_html, updated_at) VALUES (?, ?, ?, ?)`, tenantID, userID, bodyHTML, tx.now)
	if err != nil {
		return s, fmt.Errorf("put signature: %w", err)
	}
	s.ID = id
	return s, nil
}

// SignatureFor reads exactly the signature of (tenant, user) — nil user: the general one.
func (tx *Tx) SignatureFor(ctx context.Context, tenantID int64, userID *int64) (Signature, error) {
	var s Signature
	var row interface{ Scan(...any) error }
	if userID == nil {
		row = tx.queryRow(ctx, `SELECT id, tenant_id, user_id, body_html, updated_at FROM signatures WHERE tenant_id = ? AND user_id IS NULL`, tenantID)
	} else {
		row = tx.queryRow(ctx, `SELECT id, tenant_id, user_id, body_html, updated_at FROM signatures WHERE tenant_id = ? AND user_id = ?`, tenantID, *userID)
	}
	if err := row.Scan(&s.ID, &s.TenantID, &s.UserID, &s.BodyHTML, &s.UpdatedAt); err != nil {
		return s, fmt.Errorf("signature: %w", mapErr(err))
	}
	return s, nil
}

// HasSignature reports whether a send of the user would carry a signature: the tenant's
// general one or the user's own (one statement, asked on every send).
func (tx *Tx) HasSignature(ctx context.Context, tenantID, userID int64) (bool, error) {
	var n int
	err := tx.queryRow(ctx, `SELECT COUNT(*) FROM signatures WHERE tenant_id = ? AND (user_id IS NULL OR user_id = ?)`, tenantID, userID).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("has signature: %w", mapErr(err))
	}
	return n > 0, nil
}

// Signatures lists a tenant's signatures, the general one first.
func (tx *Tx) Signatures(ctx context.Context, tenantID int64) ([]Signature, error) {
	rows, err := tx.query(ctx, `SELECT id, tenant_id, user_id, body_html, updated_at FROM signatures WHERE tenant_id = ? ORDER BY COALESCE(user_id, 0)`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list signatures: %w", err)
	}
	return collect(rows, func(r interface{ Scan(...any) error }) (Signature, error) {
		var s Signature
		err := r.Scan(&s.ID, &s.TenantID, &s.UserID, &s.BodyHTML, &s.UpdatedAt)
		return s, mapErr(err)
	})
}

// DeleteSignature removes the signature of (tenant, user).
func (tx *Tx) DeleteSignature(ctx context.Context, tenantID int64, userID *int64) error {
	var res interface {
		RowsAffected() (int64, error)
		LastInsertId() (int64, error)
	}
	var err error
	if userID == nil {
		res, err = tx.exec(ctx, `DELETE FROM signatures WHERE tenant_id = ? AND user_id IS NULL`, tenantID)
	} else {
		res, err = tx.exec(ctx, `DELETE FROM signatures WHERE tenant_id = ? AND user_id = ?`, tenantID, *userID)
	}
	return affected(res, err, "delete signature")
}
