package web

import (
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strconv"

	"postfach/internal/core"
	"postfach/internal/signature"
	"postfach/internal/store"
)

// Signaturen (C8): the general signature and per-user ones, an HTML editor with the list of
// placeholders, and the Vorschau with the real data of a user. The preview shows the HTML the
// core sanitised; the Content-Security-Policy forbids inline script and style as well, so even a
// sanitiser gap could not run script here.
func (u *UI) signatureRoutes(h func(string, role, handlerFunc)) {
	h("GET /signaturen", roleTenant, u.signaturePage)
	h("POST /signaturen", roleTenant, u.signatureSubmit)
}

type signatureData struct {
	Users        []store.User // admins choose whose signature; users edit their own
	Target       string       // "" for the general signature, else a user id
	Placeholders []string
	Preview      *signature.Rendered
	PreviewHTML  template.HTML // core's sanitised rendering
	PreviewUser  string
	HasGeneral   bool
}

func (u *UI) signatureData(r *http.Request, p *page, target string) (signatureData, string, error) {
	d := signatureData{Target: target}
	sigs, err := u.d.Core.Signatures(r.Context(), *p.Actor)
	if err != nil {
		return d, "", err
	}
	body := ""
	for _, s := range sigs {
		if s.UserID == nil {
			d.HasGeneral = true
		}
		if (s.UserID == nil && target == "") || (s.UserID != nil && strconv.FormatInt(*s.UserID, 10) == target) {
			body = s.BodyHTML
		}
	}
	profileKeys := map[string]bool{}
	if p.IsAdmin() {
		if d.Users, err = u.d.Core.Users(r.Context(), *p.Actor); err != nil {
			return d, "", err
		}
		for _, x := range d.Users {
			for k := range x.Profile {
				profileKeys[k] = true
			}
		}
	} else if me, err := u.d.Core.User(r.Context(), *p.Actor, p.Actor.UserID); err == nil {
		for k := range me.Profile {
			profileKeys[k] = true
		}
	}
	d.Placeholders = []string{"@Name@", "@Kuerzel@", "@EMail@", "@Bild@", "@Bild(0,100,200)@"}
	var extra []string
	for k := range profileKeys {
		extra = append(extra, "@"+k+"@")
	}
	sort.Strings(extra)
	d.Placeholders = append(d.Placeholders, extra...)
	return d, body, nil
}

// signatureTarget is whose signature the page edits: users only their own.
func signatureTarget(p *page, requested string) string {
	if !p.IsAdmin() {
		return strconv.FormatInt(p.Actor.UserID, 10)
	}
	if _, err := strconv.ParseInt(requested, 10, 64); err == nil {
		return requested
	}
	return ""
}

func (u *UI) signaturePage(w http.ResponseWriter, r *http.Request, p *page) {
	target := signatureTarget(p, r.URL.Query().Get("benutzer"))
	d, body, err := u.signatureData(r, p, target)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	p.Form = url.Values{"target": {target}, "body_html": {body}}
	p.Title, p.Nav, p.Data = "web.signatures.title", "signatures", d
	u.render(w, r, http.StatusOK, "signatures", p)
}

// previewUser picks whose data fills the preview: the signature's user, else the chosen one,
// else the admin themself, else the tenant's first user.
func previewUser(p *page, d signatureData, target, chosen string) int64 {
	for _, s := range []string{target, chosen} {
		if id, err := strconv.ParseInt(s, 10, 64); err == nil && id > 0 {
			return id
		}
	}
	if p.Actor.UserID != 0 {
		return p.Actor.UserID
	}
	if len(d.Users) > 0 {
		return d.Users[0].ID
	}
	return 0
}

func (u *UI) signatureSubmit(w http.ResponseWriter, r *http.Request, p *page) {
	target := signatureTarget(p, r.PostForm.Get("target"))
	body := r.PostForm.Get("body_html")
	d, _, err := u.signatureData(r, p, target)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	p.Form = url.Values{"target": {target}, "body_html": {body}, "preview_user": {r.PostForm.Get("preview_user")}}
	status := http.StatusOK
	if r.PostForm.Get("action") == "preview" {
		uid := previewUser(p, d, target, r.PostForm.Get("preview_user"))
		d.PreviewUser = strconv.FormatInt(uid, 10)
		rendered, err := u.d.Core.SignaturePreview(r.Context(), *p.Actor, uid, &body)
		if err != nil {
			status = p.setErr(err)
		} else {
			d.Preview = &rendered
			d.PreviewHTML = template.HTML(rendered.HTML)
		}
	} else {
		in := core.SignatureInput{BodyHTML: body}
		if id, err := strconv.ParseInt(target, 10, 64); err == nil {
			in.UserID = &id
		}
		if _, err := u.d.Core.PutSignature(r.Context(), *p.Actor, in); err != nil {
			status = p.setErr(err)
		} else {
			next := "/signaturen"
			if target != "" && p.IsAdmin() {
				next += "?benutzer=" + target
			}
			u.redirect(w, r, next, "web.flash.saved")
			return
		}
	}
	p.Title, p.Nav, p.Data = "web.signatures.title", "signatures", d
	u.render(w, r, status, "signatures", p)
}
