package store

import (
	"context"
	"fmt"
)

// Roles of a backend user. Operators are kept in their own table: they belong to no tenant.
const (
	RoleAdmin = "admin" // tenant admin
	RoleUser  = "user"
)

// User is a Backend-Benutzer of one tenant.
type User struct {
	ID           int64             `json:"id"`
	TenantID     int64             `json:"tenant_id"`
	Login        string            `json:"login"`
	DisplayName  string            `json:"display_name"`
	Email        string            `json:"email"`
	ShortCode    string            `json:"short_code"`
	Role         string            `json:"role"`
	Profile      map[string]string `json:"profile"`
	Lang         string            `json:"lang"`
	Active       bool              `json:"active"`
	CreatedAt    int64             `json:"created_at"`
	PasswordHash string            `json:"-"`
}

const userCols = `id, tenant_id, login, display_name, email, short_code, role, profile, lang, active, created_at, password_hash`

func scanUser(s interface{ Scan(...any) error }) (User, error) {
	var u User
	var profile string
	err := s.Scan(&u.ID, &u.TenantID, &u.Login, &u.DisplayName, &u.Email, &u.ShortCode, &u.Role, &profile, &u.Lang, &u.Active, &u.CreatedAt, &u.PasswordHash)
	if err != nil {
		return u, mapErr(err)
	}
	u.Profile = decodeProfile(profile)
	return u, nil
}

// CreateUser inserts a user of tenantID.
func (tx *Tx) CreateUser(ctx context.Context, tenantID int64, u User) (User, error) {
	u.TenantID = tenantID
	u.CreatedAt = tx.now
	id, err := tx.insertID(ctx, `INSERT INTO users (tenant_id, login, display_name, email, short_code, role, profile, lang, active, created_at, password_hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, tenantID, u.Login, u.DisplayName, u.Email, u.ShortCode, u.Role, encodeProfile(u.Profile), u.Lang, u.Active, u.CreatedAt, u.PasswordHash)
	if err != nil {
		return User{}, fmt.Errorf("create user: %w", err)
	}
	u.ID = id
	return u, nil
}

// UpdateUser changes a user's editable fields (not the password).
func (tx *Tx) UpdateUser(ctx context.Context, tenantID int64, u User) error {
	res, err := tx.exec(ctx, `UPDATE users SET login = ?, display_name = ?, email = ?, short_code = ?, role = ?, profile = ?, lang = ?, active = ?
		WHERE tenant_id = ? AND id = ?`, u.Login, u.DisplayName, u.Email, u.ShortCode, u.Role, encodeProfile(u.Profile), u.Lang, u.Active, tenantID, u.ID)
	return affected(res, err, "update user")
}

// SetUserPassword stores a new password hash.
func (tx *Tx) SetUserPassword(ctx context.Context, tenantID, userID int64, hash string) error {
	res, err := tx.exec(ctx, `UPDATE users SET password_hash = ? WHERE tenant_id = ? AND id = ?`, hash, tenantID, userID)
	return affected(res, err, "set password")
}

// User reads one user of tenantID.
func (tx *Tx) User(ctx context.Context, tenantID, id int64) (User, error) {
	u, err := scanUser(tx.queryRow(ctx, `SELECT `+userCols+` FROM users WHERE tenant_id = ? AND id = ?`, tenantID, id))
	if err != nil {
		return u, fmt.Errorf("user %d: %w", id, err)
	}
	return u, nil
}

// UserByLogin finds a user of tenantID by login name.
func (tx *Tx) UserByLogin(ctx context.Context, tenantID int64, login string) (User, error) {
	u, err := scanUser(tx.queryRow(ctx, `SELECT `+userCols+` FROM users WHERE tenant_id = ? AND login = ?`, tenantID, login))
	if err != nil {
		return u, fmt.Errorf("user %q: %w", login, err)
	}
	return u, nil
}

// Users lists the users of tenantID by login.
func (tx *Tx) Users(ctx context.Context, tenantID int64) ([]User, error) {
	rows, err := tx.query(ctx, `SELECT `+userCols+` FROM users WHERE tenant_id = ? ORDER BY login`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return collect(rows, scanUser)
}

// DeleteUser removes a user; grants, memberships and sessions go with it.
func (tx *Tx) DeleteUser(ctx context.Context, tenantID, id int64) error {
	if _, err := tx.exec(ctx, `DELETE FROM sessions WHERE tenant_id = ? AND user_id = ?`, tenantID, id); err != nil {
		return fmt.Errorf("delete user sessions: %w", err)
	}
	res, err := tx.exec(ctx, `DELETE FROM users WHERE tenant_id = ? AND id = ?`, tenantID, id)
	return affected(res, err, "delete user")
}

// Picture is a profile picture of a user, used by the @Bild(order,width,height)@ placeholder.
type Picture struct {
	ID          int64  `json:"id"`
	UserID      int64  `json:"user_id"`
	Order       int    `json:"order"`
	ContentType string `json:"content_type"`
	Width       int    `json:"width"`
	Height      int    `json:"height"`
	Data        []byte `json:"-"`
}

// PutPicture stores (or replaces) the picture at position ord.
func (tx *Tx) PutPicture(ctx context.Context, tenantID int64, p Picture) (Picture, error) {
	if _, err := tx.exec(ctx, `DELETE FROM user_pictures WHERE tenant_id = ? AND user_id = ? AND ord = ?`, tenantID, p.UserID, p.Order); err != nil {
		return p, fmt.Errorf("replace picture: %w", err)
	}
	id, err := tx.insertID(ctx, `INSERT INTO user_pictures (tenant_id, user_id, ord, content_type, data, width, height) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		tenantID, p.UserID, p.Order, p.ContentType, p.Data, p.Width, p.Height)
	if err != nil {
		return p, fmt.Errorf("store picture: %w", err)
	}
	p.ID = id
	return p, nil
}

// Pictures lists a user's pictures in order, with their data.
func (tx *Tx) Pictures(ctx context.Context, tenantID, userID int64) ([]Picture, error) {
	rows, err := tx.query(ctx, `SELECT id, user_id, ord, content_type, width, height, data FROM user_pictures WHERE tenant_id = ? AND user_id = ? ORDER BY ord`, tenantID, userID)
	if err != nil {
		return nil, fmt.Errorf("list pictures: %w", err)
	}
	return collect(rows, func(s interface{ Scan(...any) error }) (Picture, error) {
		var p Picture
		err := s.Scan(&p.ID, &p.UserID, &p.Order, &p.ContentType, &p.Width, &p.Height, &p.Data)
		return p, mapErr(err)
	})
}

// DeletePicture removes one picture.
func (tx *Tx) DeletePicture(ctx context.Context, tenantID, userID int64, ord int) error {
	res, err := tx.exec(ctx, `DELETE FROM user_pictures WHERE tenant_id = ? AND user_id = ? AND ord = ?`, tenantID, userID, ord)
	return affected(res, err, "delete picture")
}

// Operator is a login of the provider running Postfach.
type Operator struct {
	ID           int64  `json:"id"`
	Login        string `json:"login"`
	DisplayName  string `json:"display_name"`
	Lang         string `json:"lang"`
	PasswordHash string `json:"-"`
}

// CreateOperator inserts an operator login.
func (tx *Tx) CreateOperator(ctx context.Context, o Operator) (Operator, error) {
	id, err := tx.insertID(ctx, `INSERT INTO operators (login, display_name, password_hash, lang, created_at) VALUES (?, ?, ?, ?, ?)`,
		o.Login, o.DisplayName, o.PasswordHash, o.Lang, tx.now)
	if err != nil {
		return o, fmt.Errorf("create operator: %w", err)
	}
	o.ID = id
	return o, nil
}

// OperatorByLogin finds an operator.
func (tx *Tx) OperatorByLogin(ctx context.Context, login string) (Operator, error) {
	var o Operator
	err := tx.queryRow(ctx, `SELECT id, login, display_name, lang, password_hash FROM operators WHERE login = ?`, login).
		Scan(&o.ID, &o.Login, &o.DisplayName, &o.Lang, &o.PasswordHash)
	if err != nil {
		return o, fmt.Errorf("operator %q: %w", login, mapErr(err))
	}
	return o, nil
}

// Operator reads an operator by id.
func (tx *Tx) Operator(ctx context.Context, id int64) (Operator, error) {
	var o Operator
	err := tx.queryRow(ctx, `SELECT id, login, display_name, lang, password_hash FROM operators WHERE id = ?`, id).
		Scan(&o.ID, &o.Login, &o.DisplayName, &o.Lang, &o.PasswordHash)
	if err != nil {
		return o, fmt.Errorf("operator %d: %w", id, mapErr(err))
	}
	return o, nil
}
