package web

import (
	"net/http"
	"net/url"
	"strings"

	"postfach/internal/core"
	"postfach/internal/httpx"
	"postfach/internal/i18n"
)

func (u *UI) authRoutes(h func(string, role, handlerFunc)) {
	h("GET /login", rolePublic, u.loginPage)
	h("POST /login", rolePublic, u.login)
	h("POST /logout", rolePublic, u.logout)
	h("POST /sprache", rolePublic, u.switchLanguage)
}

func (u *UI) loginPage(w http.ResponseWriter, r *http.Request, p *page) {
	p.Title = "web.login.title"
	p.Form.Set("next", safeNext(r.URL.Query().Get("next")))
	if r.URL.Query().Get("abgelaufen") != "" {
		p.Error = p.T("error.session_expired")
	}
	u.render(w, r, http.StatusOK, "login", p)
}

func (u *UI) login(w http.ResponseWriter, r *http.Request, p *page) {
	in := core.LoginInput{Tenant: r.PostForm.Get("tenant"), Login: r.PostForm.Get("login"), Password: r.PostForm.Get("password"), RemoteIP: httpx.RemoteIP(r)}
	token, _, err := u.d.Core.Login(r.Context(), in)
	if err != nil {
		p.Title = "web.login.title"
		p.Form = url.Values{"tenant": {in.Tenant}, "login": {in.Login}, "next": {safeNext(r.PostForm.Get("next"))}}
		// The message never says which of tenant, login or password was wrong.
		status := p.setErr(err)
		u.render(w, r, status, "login", p)
		return
	}
	u.d.Auth.SetSessionCookie(w, token, u.d.Core.SessionTTL)
	http.SetCookie(w, &http.Cookie{Name: opTenantCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	next := safeNext(r.PostForm.Get("next"))
	if next == "" {
		next = "/"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (u *UI) logout(w http.ResponseWriter, r *http.Request, p *page) {
	if tok := httpx.SessionToken(r.Context()); tok != "" {
		if err := u.d.Core.Logout(r.Context(), tok); err != nil {
			u.d.Log.Warn("web: logout", "err", err)
		}
	}
	u.d.Auth.ClearSessionCookie(w)
	http.SetCookie(w, &http.Cookie{Name: opTenantCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	u.redirect(w, r, "/login", "web.flash.logged_out")
}

// switchLanguage remembers the choice in a cookie and, for a tenant's user, in the profile.
func (u *UI) switchLanguage(w http.ResponseWriter, r *http.Request, p *page) {
	lang := i18n.Normalize(r.PostForm.Get("lang"))
	http.SetCookie(w, &http.Cookie{Name: httpx.LangCookie, Value: lang, Path: "/", MaxAge: 365 * 24 * 3600, HttpOnly: true,
		Secure: !u.d.Auth.InsecureCookies, SameSite: http.SameSiteLaxMode})
	if p.Actor != nil && !p.Actor.IsOperator() && p.Actor.UserID != 0 {
		if _, err := u.d.Core.UpdateUser(r.Context(), *p.Actor, p.Actor.UserID, core.UserInput{Lang: &lang}); err != nil {
			u.d.Log.Warn("web: save language", "err", err)
		}
	}
	next := safeNext(r.PostForm.Get("next"))
	if next == "" {
		next = "/"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// safeNext accepts only a path on this site, so the login form cannot redirect elsewhere.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || strings.ContainsAny(next, "\r\n") {
		return ""
	}
	return next
}
