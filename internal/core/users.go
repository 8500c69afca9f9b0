package core

import (
	"context"
	"net/http"
	"strings"

	"postfach/internal/store"
)

// UserInput creates or changes a user. Nil fields are left as they are on update.
type UserInput struct {
	Login       *string           `json:"login,omitempty"`
	DisplayName *string           `json:"display_name,omitempty"`
	Email       *string           `json:"email,omitempty"`
	ShortCode   *string           `json:"short_code,omitempty"`
	Role        *string           `json:"role,omitempty"`
	Profile     map[string]string `json:"profile,omitempty"`
	Lang        *string           `json:"lang,omitempty"`
	Active      *bool             `json:"active,omitempty"`
	Password    *string           `json:"password,omitempty"`
}

func applyUser(v *validator, u *store.User, in UserInput, create bool) {
	if in.Login != nil || create {
		u.Login = v.login("login", deref(in.Login))
	}
	if in.DisplayName != nil || create {
		u.DisplayName = v.text("display_name", deref(in.DisplayName), true, 120)
	}
	if in.Email != nil {
		u.Email = v.address("email", *in.Email, false)
	}
	if in.ShortCode != nil {
		u.ShortCode = v.text("short_code", *in.ShortCode, false, 16)
	}
	if in.Role != nil {
		u.Role = v.oneOf("role", *in.Role, store.RoleAdmin, store.RoleUser)
	} else if create {
		u.Role = store.RoleUser
	}
	if in.Profile != nil {
		p := map[string]string{}
		for k, val := range in.Profile {
			key := strings.TrimSpace(k)
			if key == "" || len(key) > 40 || strings.ContainsAny(key, "@(){}<>\r\n") {
				v.add(invalid("profile", "error.bad_profile_key", map[string]string{"value": k}))
				continue
			}
			p[key] = v.text("profile."+key, val, false, 500)
		}
		if len(p) > 50 {
			v.add(invalid("profile", "error.too_many", map[string]string{"max": "50"}))
		}
		u.Profile = p
	}
	if in.Lang != nil {
		if *in.Lang != "" {
			u.Lang = v.oneOf("lang", *in.Lang, "de", "en")
		} else {
			u.Lang = ""
		}
	}
	if in.Active != nil {
		u.Active = *in.Active
	} else if create {
		u.Active = true
	}
}

func checkPassword(v *validator, field, pw string) {
	if len(pw) < 10 {
		v.add(invalid(field, "error.password_too_short", map[string]string{"min": "10"}))
	} else if len(pw) > 200 {
		v.add(invalid(field, "error.too_long", map[string]string{"max": "200"}))
	}
}

// CheckPassword applies the rule for users' passwords to one given elsewhere (the demo's
// --demo-password), so that nothing is written before a password the rule refuses stops it.
func CheckPassword(field, pw string) error {
	v := &validator{}
	checkPassword(v, field, pw)
	return v.err()
}

// CreateUser adds a user to the actor's tenant (tenant admins and operators).
func (s *Service) CreateUser(ctx context.Context, a Actor, in UserInput) (store.User, error) {
	tid, err := adminTenant(a)
	if err != nil {
		return store.User{}, err
	}
	var v validator
	var u store.User
	applyUser(&v, &u, in, true)
	if in.Password != nil {
		checkPassword(&v, "password", *in.Password)
	}
	if err := v.err(); err != nil {
		return store.User{}, err
	}
	if in.Password != nil {
		if u.PasswordHash, err = HashPassword(*in.Password); err != nil {
			return store.User{}, err
		}
	}
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if u, err = tx.CreateUser(ctx, tid, u); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, tid, "user.create", idStr("user", u.ID), u.Login+" role="+u.Role)
	})
	return u, fromStore(err, "login", "error.duplicate")
}

// UpdateUser changes a user. Users may change their own name, language and profile;
// admins everything.
func (s *Service) UpdateUser(ctx context.Context, a Actor, id int64, in UserInput) (store.User, error) {
	self := a.Kind == ActorUser && a.UserID == id
	if !self {
		if err := requireAdmin(a); err != nil {
			return store.User{}, err
		}
	} else if in.Role != nil || in.Active != nil || in.Login != nil || in.Email != nil || in.ShortCode != nil {
		return store.User{}, errForbidden
	}
	tid, err := tenantOf(a)
	if err != nil {
		return store.User{}, err
	}
	var out store.User
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		u, err := tx.User(ctx, tid, id)
		if err != nil {
			return err
		}
		var v validator
		applyUser(&v, &u, in, false)
		if in.Password != nil {
			checkPassword(&v, "password", *in.Password)
		}
		if err := v.err(); err != nil {
			return err
		}
		if err := tx.UpdateUser(ctx, tid, u); err != nil {
			return err
		}
		if in.Password != nil {
			hash, err := HashPassword(*in.Password)
			if err != nil {
				return err
			}
			if err := tx.SetUserPassword(ctx, tid, id, hash); err != nil {
				return err
			}
		}
		out = u
		return s.audit(ctx, tx, a, tid, "user.update", idStr("user", id), u.Login+" role="+u.Role+" active="+boolStr(u.Active))
	})
	return out, fromStore(err, "login", "error.duplicate")
}

// User reads a user of the actor's tenant.
func (s *Service) User(ctx context.Context, a Actor, id int64) (store.User, error) {
	tid, err := tenantOf(a)
	if err != nil {
		return store.User{}, err
	}
	if a.Kind == ActorUser && a.UserID != id {
		// Users see colleagues only by name through groups and grants; details are for admins.
		if err := requireAdmin(a); err != nil {
			return store.User{}, notFound(nil)
		}
	}
	u, err := s.DB.Read().User(ctx, tid, id)
	return u, fromStore(err, "", "")
}

// Users lists the actor's tenant's users.
func (s *Service) Users(ctx context.Context, a Actor) ([]store.User, error) {
	tid, err := adminTenant(a)
	if err != nil {
		return nil, err
	}
	list, err := s.DB.Read().Users(ctx, tid)
	if list == nil {
		list = []store.User{}
	}
	return list, fromStore(err, "", "")
}

// DeleteUser removes a user; their grant history stays for VIP visibility of old mail.
func (s *Service) DeleteUser(ctx context.Context, a Actor, id int64) error {
	tid, err := adminTenant(a)
	if err != nil {
		return err
	}
	if a.UserID == id {
		return &Error{Status: http.StatusConflict, Key: "error.cannot_delete_self"}
	}
	return fromStore(s.DB.InTx(ctx, func(tx *store.Tx) error {
		u, err := tx.User(ctx, tid, id)
		if err != nil {
			return err
		}
		if err := tx.DeleteUser(ctx, tid, id); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, tid, "user.delete", idStr("user", id), u.Login)
	}), "", "")
}

// PictureInput is an uploaded profile picture (for @Bild(order,width,height)@).
type PictureInput struct {
	Order       int
	ContentType string
	Data        []byte
}

const maxPictureBytes = 2 << 20

// PutPicture stores a user's picture at a position.
func (s *Service) PutPicture(ctx context.Context, a Actor, userID int64, in PictureInput) (store.Picture, error) {
	if !(a.Kind == ActorUser && a.UserID == userID) {
		if err := requireAdmin(a); err != nil {
			return store.Picture{}, err
		}
	}
	tid, err := tenantOf(a)
	if err != nil {
		return store.Picture{}, err
	}
	if _, err := s.DB.Read().User(ctx, tid, userID); err != nil {
		return store.Picture{}, fromStore(err, "", "")
	}
	var v validator
	if in.Order < 0 || in.Order > 9 {
		v.add(invalid("order", "error.bad_picture_order", nil))
	}
	w, h, ctype, ok := imageInfo(in.Data)
	if !ok {
		v.add(invalid("picture", "error.bad_picture", nil))
	}
	if len(in.Data) > maxPictureBytes {
		v.add(invalid("picture", "error.picture_too_large", map[string]string{"max": "2 MB"}))
	}
	if err := v.err(); err != nil {
		return store.Picture{}, err
	}
	var p store.Picture
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.User(ctx, tid, userID); err != nil {
			return err
		}
		p, err = tx.PutPicture(ctx, tid, store.Picture{UserID: userID, Order: in.Order, ContentType: ctype, Data: in.Data, Width: w, Height: h})
		if err != nil {
			return err
		}
		return s.audit(ctx, tx, a, tid, "user.picture", idStr("user", userID), "order="+itoa(in.Order))
	})
	return p, fromStore(err, "", "")
}

// Pictures lists a user's pictures.
func (s *Service) Pictures(ctx context.Context, a Actor, userID int64) ([]store.Picture, error) {
	tid, err := tenantOf(a)
	if err != nil {
		return nil, err
	}
	if _, err := s.User(ctx, a, userID); err != nil {
		return nil, err
	}
	list, err := s.DB.Read().Pictures(ctx, tid, userID)
	if list == nil {
		list = []store.Picture{}
	}
	return list, fromStore(err, "", "")
}

// DeletePicture removes a user's picture.
func (s *Service) DeletePicture(ctx context.Context, a Actor, userID int64, order int) error {
	if !(a.Kind == ActorUser && a.UserID == userID) {
		if err := requireAdmin(a); err != nil {
			return err
		}
	}
	tid, err := tenantOf(a)
	if err != nil {
		return err
	}
	return fromStore(s.DB.InTx(ctx, func(tx *store.Tx) error {
		return tx.DeletePicture(ctx, tid, userID, order)
	}), "", "")
}
