package web

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"postfach/internal/core"
)

// Shared plumbing of the page handlers: loading the object a path names, reading write-only
// secrets and port numbers from forms, the status of a form with errors, and the
// delete-then-redirect of every confirmation page.

// loadByID reads the path's {id} and the object with that id through get (a core use case
// that checks the actor's tenant). On failure the error page is written and ok is false.
func loadByID[T any](u *UI, w http.ResponseWriter, r *http.Request, p *page, get func(context.Context, core.Actor, int64) (T, error)) (T, bool) {
	var zero T
	id, err := pathID(r, "id")
	if err == nil {
		var v T
		if v, err = get(r.Context(), *p.Actor, id); err == nil {
			return v, true
		}
	}
	u.fail(w, r, p, err)
	return zero, false
}

// showList renders a page whose data is one core listing.
func showList[T any](u *UI, w http.ResponseWriter, r *http.Request, p *page, title, nav, tmpl string, list func(context.Context, core.Actor) (T, error)) {
	data, err := list(r.Context(), *p.Actor)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	p.Title, p.Nav, p.Data = title, nav, data
	u.render(w, r, http.StatusOK, tmpl, p)
}

// deleteByID runs a confirmed deletion of the path's {id} and redirects to target.
func (u *UI) deleteByID(w http.ResponseWriter, r *http.Request, p *page, del func(context.Context, core.Actor, int64) error, target string) {
	id, err := pathID(r, "id")
	if err == nil {
		err = del(r.Context(), *p.Actor, id)
	}
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	u.redirect(w, r, target, "web.flash.deleted")
}

// formStatus is the status of a form shown again: the core error's, or 422 when the form
// failed the page's own checks (err nil, p.Errs filled).
func (p *page) formStatus(err error) int {
	if err != nil {
		return p.setErr(err)
	}
	p.Error = p.T("web.form.has_errors")
	return http.StatusUnprocessableEntity
}

// formSecret reads a write-only password field: a typed value replaces the stored secret,
// the "<name>_clear" box removes it, and an empty field keeps it (nil).
func formSecret(r *http.Request, name string) *string {
	if pw := r.PostForm.Get(name); pw != "" {
		return &pw
	}
	if r.PostForm.Get(name+"_clear") != "" {
		empty := ""
		return &empty
	}
	return nil
}

// formPort reads a port field; empty is 0 (the default port of the chosen encryption), and
// anything but a number is a field error of its own.
func formPort(r *http.Request, p *page, name string) *int {
	port := 0
	if s := strings.TrimSpace(r.PostForm.Get(name)); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			p.Errs[name] = p.T("error.bad_port")
		}
		port = n
	}
	return &port
}

// formWithout is the submitted form minus the named fields: passwords are never sent back.
func formWithout(r *http.Request, secrets ...string) url.Values {
	v := url.Values{}
	for k, vals := range r.PostForm {
		secret := false
		for _, s := range secrets {
			secret = secret || k == s
		}
		if !secret {
			v[k] = vals
		}
	}
	return v
}

// idPath builds a path from a prefix, an id and optional further segments.
func idPath(prefix string, id int64, rest ...string) string {
	s := prefix + "/" + strconv.FormatInt(id, 10)
	for _, r := range rest {
		s += "/" + r
	}
	return s
}

// setIf sets a checkbox value in v when on.
func setIf(v url.Values, name string, on bool) {
	if on {
		v.Set(name, "1")
	}
}
