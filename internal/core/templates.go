package core

import (
	"context"
	"net/http"

	"postfach/internal/policy"
	"postfach/internal/signature"
	"postfach/internal/store"
)

// TemplateInput creates or changes a Vorlage.
type TemplateInput struct {
	Name      *string `json:"name,omitempty"`
	Subject   *string `json:"subject,omitempty"`
	BodyText  *string `json:"body_text,omitempty"`
	BodyHTML  *string `json:"body_html,omitempty"`
	SenderKey *string `json:"sender_key,omitempty"`
	ReplyKey  *string `json:"reply_key,omitempty"`
}

func applyTemplate(v *validator, sanitizer *signature.Sanitizer, t *store.Template, in TemplateInput, create bool) {
	if in.Name != nil || create {
		t.Name = v.text("name", deref(in.Name), true, 120)
	}
	if in.Subject != nil {
		t.Subject = v.text("subject", *in.Subject, false, 500)
	}
	if in.BodyText != nil {
		t.BodyText = *in.BodyText
	}
	if in.BodyHTML != nil {
		t.BodyHTML = sanitizer.Sanitize(*in.BodyHTML)
	}
	if in.SenderKey != nil {
		t.SenderKey = v.text("sender_key", *in.SenderKey, false, 100)
	}
	if in.ReplyKey != nil {
		t.ReplyKey = v.text("reply_key", *in.ReplyKey, false, 100)
	}
}

// checkTemplateKeys makes sure a preselection names an option the editing user may use:
// a template must not become a way around the sender policy. Admins and tokens may save any
// key of their tenant; the check at send time applies to whoever uses the template.
func (s *Service) checkTemplateKeys(ctx context.Context, a Actor, tid int64, t store.Template) error {
	for field, key := range map[string]string{"sender_key": t.SenderKey, "reply_key": t.ReplyKey} {
		if key == "" || key == policy.KeySystem || key == policy.KeyOwn {
			continue
		}
		id, ok := parseMailboxKey(key)
		if !ok {
			return invalid(field, "error.bad_option", map[string]string{"value": key})
		}
		if _, err := s.DB.Read().MailboxVisible(ctx, tid, id); err != nil {
			return invalid(field, "error.bad_option", map[string]string{"value": key})
		}
	}
	return nil
}

func parseMailboxKey(key string) (int64, bool) {
	const p = "mailbox:"
	if len(key) <= len(p) || key[:len(p)] != p {
		return 0, false
	}
	var id int64
	for _, c := range key[len(p):] {
		if c < '0' || c > '9' || id > 1<<50 {
			return 0, false
		}
		id = id*10 + int64(c-'0')
	}
	return id, true
}

// CreateTemplate adds a template.
func (s *Service) CreateTemplate(ctx context.Context, a Actor, in TemplateInput) (store.Template, error) {
	tid, err := adminTenant(a)
	if err != nil {
		return store.Template{}, err
	}
	var v validator
	var t store.Template
	applyTemplate(&v, s.sanitizer, &t, in, true)
	if err := v.err(); err != nil {
		return t, err
	}
	if err := s.checkTemplateKeys(ctx, a, tid, t); err != nil {
		return t, err
	}
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if t, err = tx.CreateTemplate(ctx, tid, t); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, tid, "template.create", idStr("template", t.ID), t.Name)
	})
	return t, fromStore(err, "name", "error.duplicate")
}

// UpdateTemplate changes a template.
func (s *Service) UpdateTemplate(ctx context.Context, a Actor, id int64, in TemplateInput) (store.Template, error) {
	tid, err := adminTenant(a)
	if err != nil {
		return store.Template{}, err
	}
	var out store.Template
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		t, err := tx.Template(ctx, tid, id)
		if err != nil {
			return err
		}
		var v validator
		applyTemplate(&v, s.sanitizer, &t, in, false)
		if err := v.err(); err != nil {
			return err
		}
		if err := s.checkTemplateKeys(ctx, a, tid, t); err != nil {
			return err
		}
		if err := tx.UpdateTemplate(ctx, tid, t); err != nil {
			return err
		}
		out = t
		return s.audit(ctx, tx, a, tid, "template.update", idStr("template", id), t.Name)
	})
	return out, fromStore(err, "name", "error.duplicate")
}

// Template reads a template (every user of the tenant may use templates).
func (s *Service) Template(ctx context.Context, a Actor, id int64) (store.Template, error) {
	tid, err := tenantOf(a)
	if err != nil {
		return store.Template{}, err
	}
	t, err := s.DB.Read().Template(ctx, tid, id)
	return t, fromStore(err, "", "")
}

// Templates lists the tenant's templates.
func (s *Service) Templates(ctx context.Context, a Actor) ([]store.Template, error) {
	tid, err := tenantOf(a)
	if err != nil {
		return nil, err
	}
	list, err := s.DB.Read().Templates(ctx, tid)
	if list == nil {
		list = []store.Template{}
	}
	return list, fromStore(err, "", "")
}

// DeleteTemplate removes a template.
func (s *Service) DeleteTemplate(ctx context.Context, a Actor, id int64) error {
	tid, err := adminTenant(a)
	if err != nil {
		return err
	}
	return fromStore(s.DB.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.DeleteTemplate(ctx, tid, id); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, tid, "template.delete", idStr("template", id), "")
	}), "", "")
}

// SignatureInput sets a signature. UserID nil: the general one.
type SignatureInput struct {
	UserID   *int64 `json:"user_id,omitempty"`
	BodyHTML string `json:"body_html"`
}

// PutSignature stores the general signature (admins) or a user's own (admins, or the user).
func (s *Service) PutSignature(ctx context.Context, a Actor, in SignatureInput) (store.Signature, error) {
	self := in.UserID != nil && a.Kind == ActorUser && a.UserID == *in.UserID
	if !self {
		if err := requireAdmin(a); err != nil {
			return store.Signature{}, err
		}
	}
	tid, err := tenantOf(a)
	if err != nil {
		return store.Signature{}, err
	}
	if len(in.BodyHTML) > 200_000 {
		return store.Signature{}, invalid("body_html", "error.too_long", map[string]string{"max": "200000"})
	}
	// Placeholders survive sanitising: they are plain text between @ signs.
	body := s.sanitizer.Sanitize(in.BodyHTML)
	var out store.Signature
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		if in.UserID != nil {
			if _, err := tx.User(ctx, tid, *in.UserID); err != nil {
				return err
			}
		}
		var err error
		if out, err = tx.PutSignature(ctx, tid, in.UserID, body); err != nil {
			return err
		}
		target := "signature:general"
		if in.UserID != nil {
			target = idStr("signature:user", *in.UserID)
		}
		return s.audit(ctx, tx, a, tid, "signature.put", target, "")
	})
	return out, fromStore(err, "", "")
}

// Signatures lists the tenant's signatures (admins), or the general and own one (users).
func (s *Service) Signatures(ctx context.Context, a Actor) ([]store.Signature, error) {
	tid, err := tenantOf(a)
	if err != nil {
		return nil, err
	}
	list, err := s.DB.Read().Signatures(ctx, tid)
	if err != nil {
		return nil, fromStore(err, "", "")
	}
	out := []store.Signature{}
	for _, sig := range list {
		if requireAdmin(a) == nil || sig.UserID == nil || *sig.UserID == a.UserID {
			out = append(out, sig)
		}
	}
	return out, nil
}

// DeleteSignature removes a signature.
func (s *Service) DeleteSignature(ctx context.Context, a Actor, userID *int64) error {
	self := userID != nil && a.Kind == ActorUser && a.UserID == *userID
	if !self {
		if err := requireAdmin(a); err != nil {
			return err
		}
	}
	tid, err := tenantOf(a)
	if err != nil {
		return err
	}
	return fromStore(s.DB.InTx(ctx, func(tx *store.Tx) error { return tx.DeleteSignature(ctx, tid, userID) }), "", "")
}

// SanitizeHTML cleans user-written HTML (message bodies, previews) with the same policy as
// signatures and templates, built once per Service.
func (s *Service) SanitizeHTML(html string) string { return s.sanitizer.Sanitize(html) }

// SignaturePreview renders the signature a user would send, with their real data (Vorschau).
// body overrides the stored text, so the editor can preview unsaved changes.
func (s *Service) SignaturePreview(ctx context.Context, a Actor, userID int64, body *string) (signature.Rendered, error) {
	if !(a.Kind == ActorUser && a.UserID == userID) {
		if err := requireAdmin(a); err != nil {
			return signature.Rendered{}, err
		}
	}
	tid, err := tenantOf(a)
	if err != nil {
		return signature.Rendered{}, err
	}
	r, err := s.renderSignature(ctx, tid, userID, body, signature.ForPreview)
	return r, err
}

// RenderSignature renders the signature for sending (cid: pictures with inline parts).
func (s *Service) RenderSignature(ctx context.Context, tenantID, userID int64) (signature.Rendered, error) {
	return s.renderSignature(ctx, tenantID, userID, nil, signature.ForMail)
}

func (s *Service) renderSignature(ctx context.Context, tid, userID int64, body *string, mode signature.Mode) (signature.Rendered, error) {
	tx := s.DB.Read()
	u, err := tx.User(ctx, tid, userID)
	if err != nil {
		return signature.Rendered{}, fromStore(err, "", "")
	}
	pics, err := tx.Pictures(ctx, tid, userID)
	if err != nil {
		return signature.Rendered{}, fromStore(err, "", "")
	}
	text := ""
	if body != nil {
		text = *body
	} else {
		var general, own *store.Signature
		if g, err := tx.SignatureFor(ctx, tid, nil); err == nil {
			general = &g
		}
		if o, err := tx.SignatureFor(ctx, tid, &userID); err == nil {
			own = &o
		}
		text = signature.Choose(general, own)
	}
	return s.sanitizer.Render(text, u, pics, mode), nil
}

var errNoUser = &Error{Status: http.StatusBadRequest, Key: "error.user_required"}
