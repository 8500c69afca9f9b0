// Package httpx holds what the web UI and the JSON API share at the HTTP edge: who the
// caller is (session cookie or API token), the request's language, security headers and
// cross-origin protection, and the mapping of core errors to status codes. Handlers stay
// thin: they decode, call one core function and encode.
package httpx

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"postfach/internal/core"
	"postfach/internal/i18n"
)

// SessionCookie is the name of the login cookie.
const SessionCookie = "postfach_session"

// LangCookie remembers a language chosen in the UI.
const LangCookie = "postfach_lang"

type ctxKey int

const (
	actorKey ctxKey = iota
	langKey
	tokenKey
)

// Auth resolves the caller of every request and stores it in the context. It never refuses
// a request itself; handlers decide with RequireActor.
type Auth struct {
	Core            *core.Service
	InsecureCookies bool
	Log             *slog.Logger
}

// Middleware attaches the actor (if any) and the language to the request context.
func (au *Auth) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		var actor *core.Actor
		if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
			if a, err := au.Core.TokenActor(ctx, strings.TrimSpace(strings.TrimPrefix(h, "Bearer "))); err == nil {
				actor = &a
			}
		} else if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
			if a, err := au.Core.Session(ctx, c.Value); err == nil {
				actor = &a
				ctx = context.WithValue(ctx, tokenKey, c.Value)
			}
		}
		lang := RequestLang(r, actor)
		if actor != nil {
			actor.RemoteIP = RemoteIP(r)
			actor.Lang = lang
			ctx = context.WithValue(ctx, actorKey, *actor)
		}
		ctx = context.WithValue(ctx, langKey, lang)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// RequestLang picks the language: an explicit choice (cookie), then the user's setting,
// then the browser's Accept-Language, then German.
func RequestLang(r *http.Request, a *core.Actor) string {
	if c, err := r.Cookie(LangCookie); err == nil && c.Value != "" {
		return i18n.Normalize(c.Value)
	}
	if a != nil && a.Lang != "" {
		return i18n.Normalize(a.Lang)
	}
	return i18n.FromAcceptLanguage(r.Header.Get("Accept-Language"))
}

// ActorFrom returns the authenticated caller, if any.
func ActorFrom(ctx context.Context) (core.Actor, bool) {
	a, ok := ctx.Value(actorKey).(core.Actor)
	return a, ok
}

// SessionToken returns the caller's session cookie value (for logout and re-authentication).
func SessionToken(ctx context.Context) string {
	s, _ := ctx.Value(tokenKey).(string)
	return s
}

// Lang returns the request's language.
func Lang(ctx context.Context) string {
	if l, ok := ctx.Value(langKey).(string); ok {
		return l
	}
	return i18n.Languages[0]
}

// RemoteIP is the client's address (no proxy headers: a deployment behind a proxy should
// terminate at one we trust, which is a configuration we do not guess).
func RemoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// SetSessionCookie writes the login cookie: HttpOnly, SameSite=Lax, Secure unless the
// operator runs plain HTTP on a non-local address.
func (au *Auth) SetSessionCookie(w http.ResponseWriter, token string, ttl time.Duration) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: token, Path: "/", HttpOnly: true, Secure: !au.InsecureCookies,
		SameSite: http.SameSiteLaxMode, MaxAge: int(ttl.Seconds())})
}

// ClearSessionCookie removes the login cookie.
func (au *Auth) ClearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", HttpOnly: true, Secure: !au.InsecureCookies, SameSite: http.SameSiteLaxMode, MaxAge: -1})
}

// SecurityHeaders sets the headers every response carries. The CSP forbids inline script
// and foreign origins; the UI's scripts are files under /static/.
func SecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}

// CrossOrigin refuses cross-origin unsafe requests (CSRF) using the browser's
// Sec-Fetch-Site and Origin headers; requests without them (API clients) pass.
func CrossOrigin(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
	}))
	return cop.Handler(next)
}

// Status maps a core error to its HTTP status.
func Status(err error) int {
	if fe := core.FieldErrors(err); len(fe) > 1 {
		return http.StatusUnprocessableEntity
	}
	return core.AsError(err).Status
}
