// Package web is Postfach's server-rendered UI in German and English: login, the operator's
// tenant pages, Administration (Basisdaten with the Zusätzliche Postfächer, Benutzer und
// Gruppen, Mail-Accounts with their Abruf tab, Quarantäne, Audit-Log), the Kommunikationsmanager,
// Nachrichten (received and sent mail a user may read, and filing unassigned mail by hand),
// Vorlagen and Signaturen.
//
// Every page is an html/template file embedded from templates/, one Go file per page area.
// Handlers decode a form, call one core use case and render; permissions, validation and the
// audit log are core's. The pages work without JavaScript: static/app.js only reveals and
// hides fields and submits small forms in place. The Content-Security-Policy forbids inline
// script and style, so there is none. Cross-origin POSTs are refused before any handler runs
// (httpx.CrossOrigin); every state change is a POST.
package web

import (
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"postfach/internal/core"
	"postfach/internal/httpx"
	"postfach/internal/i18n"
	"postfach/internal/store"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Deps is what the UI needs from the rest of the program.
type Deps struct {
	Core *core.Service
	Auth *httpx.Auth
	Text *i18n.Catalog
	Log  *slog.Logger
}

// UI serves the pages.
type UI struct {
	d     Deps
	pages map[string]*template.Template
	// posts lists every POST pattern registered, for the cross-origin test.
	posts []string
	gets  []string
}

// opTenantCookie holds the tenant an operator works in ("als Mandant arbeiten").
const opTenantCookie = "postfach_op_tenant"

// New builds the UI and parses its templates; a broken template is a build defect.
func New(d Deps) *UI {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Text == nil && d.Core != nil {
		d.Text = d.Core.Text
	}
	u := &UI{d: d, pages: map[string]*template.Template{}}
	base := template.Must(template.New("layout.html").Funcs(template.FuncMap{"dict": dict, "list": func(v ...string) []string { return v }}).ParseFS(templateFiles, "templates/layout.html"))
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		panic(err) // embedded: cannot fail at run time
	}
	for _, name := range names {
		short := strings.TrimSuffix(strings.TrimPrefix(name, "templates/"), ".html")
		if short == "layout" {
			continue
		}
		u.pages[short] = template.Must(template.Must(base.Clone()).ParseFS(templateFiles, name))
	}
	return u
}

// role is who may open a page.
type role int

const (
	rolePublic   role = iota
	roleUser          // any logged-in user or admin of a tenant
	roleAdmin         // tenant admin, or the operator working in a tenant
	roleOperator      // the operator
	roleTenant        // a user or admin of a tenant, or the operator working in one
	roleMail          // a reader of mail (a user or admin of a tenant); the operator is shown why not
)

type handlerFunc func(w http.ResponseWriter, r *http.Request, p *page)

// Register adds the UI's routes to mux.
func (u *UI) Register(mux *http.ServeMux) {
	static, _ := fs.Sub(staticFiles, "static")
	fileServer := http.StripPrefix("/static/", http.FileServerFS(static))
	mux.Handle("GET /static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		fileServer.ServeHTTP(w, r)
	}))
	h := func(pattern string, rl role, fn handlerFunc) {
		method, path, _ := strings.Cut(pattern, " ")
		if method == http.MethodPost {
			u.posts = append(u.posts, path)
		} else {
			u.gets = append(u.gets, path)
		}
		mux.Handle(pattern, u.wrap(rl, fn))
	}
	h("GET /{$}", rolePublic, u.home)
	u.authRoutes(h)
	u.operatorRoutes(h)
	u.mailboxRoutes(h)
	u.userRoutes(h)
	u.accountRoutes(h)
	u.messageRoutes(h)
	u.hostedRoutes(h)
	u.composeRoutes(h)
	u.templateRoutes(h)
	u.signatureRoutes(h)
	u.auditRoutes(h)
}

// PostRoutes lists the patterns of every form target (for tests).
func (u *UI) PostRoutes() []string { return append([]string(nil), u.posts...) }

// GetRoutes lists the patterns of every page (for tests).
func (u *UI) GetRoutes() []string { return append([]string(nil), u.gets...) }

// wrap resolves the actor, enforces the page's role and prepares the page data.
func (u *UI) wrap(rl role, fn handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := &page{Lang: httpx.Lang(r.Context()), text: u.d.Text, Errs: map[string]string{}, Form: url.Values{}, Path: r.URL.Path}
		if a, ok := httpx.ActorFrom(r.Context()); ok {
			if a.IsOperator() {
				if c, err := r.Cookie(opTenantCookie); err == nil {
					if id, err := strconv.ParseInt(c.Value, 10, 64); err == nil {
						if t, err := u.d.Core.Tenant(r.Context(), a, id); err == nil {
							a, _ = core.AsOperatorIn(a, t.ID)
							p.Tenant = &t
						}
					}
				}
			} else if t, err := u.d.Core.Tenant(r.Context(), a, a.TenantID); err == nil {
				p.Tenant = &t
			}
			p.Actor = &a
		}
		if rl != rolePublic && p.Actor == nil {
			target := "/login?next=" + url.QueryEscape(r.URL.RequestURI())
			if c, err := r.Cookie(httpx.SessionCookie); err == nil && c.Value != "" {
				// The cookie is there but the session is gone: it expired or was ended.
				u.d.Auth.ClearSessionCookie(w)
				target += "&abgelaufen=1"
			}
			http.Redirect(w, r, target, http.StatusSeeOther)
			return
		}
		if p.Actor != nil && !p.allowed(rl) {
			u.fail(w, r, p, &core.Error{Status: http.StatusForbidden, Key: "error.forbidden"})
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 4<<20)
			if err := r.ParseMultipartForm(4 << 20); err != nil && err != http.ErrNotMultipart {
				u.fail(w, r, p, &core.Error{Status: http.StatusBadRequest, Key: "error.too_large"})
				return
			}
		}
		p.Flash = u.popFlash(w, r)
		fn(w, r, p)
	})
}

// page is what every template gets.
type page struct {
	Lang   string
	Title  string // i18n key
	Nav    string // active navigation entry
	Path   string
	Actor  *core.Actor
	Tenant *store.Tenant
	Flash  string // a translated success message
	Error  string // a translated error that concerns no single field
	Errs   map[string]string
	Form   url.Values
	Data   any
	text   *i18n.Catalog
}

// T translates key; params come as name, value pairs.
func (p *page) T(key string, params ...any) string {
	var m map[string]string
	if len(params) > 1 {
		m = make(map[string]string, len(params)/2)
		for i := 0; i+1 < len(params); i += 2 {
			m[fmt.Sprint(params[i])] = fmt.Sprint(params[i+1])
		}
	}
	return p.text.T(p.Lang, key, m)
}

// Err is the translated error of a form field, if any.
func (p *page) Err(field string) string { return p.Errs[field] }

// V is the value of a form field, as typed or as stored.
func (p *page) V(field string) string { return p.Form.Get(field) }

// Vs are the values of a repeated form field.
func (p *page) Vs(field string) []string { return p.Form[field] }

// Checked reports whether a checkbox is ticked.
func (p *page) Checked(field string) bool {
	v := p.Form.Get(field)
	return v != "" && v != "0" && v != "false"
}

// Sel reports whether value is chosen in a select or radio group.
func (p *page) Sel(field, value string) bool {
	for _, v := range p.Form[field] {
		if v == value {
			return true
		}
	}
	return false
}

// Other languages for the switch.
func (p *page) Languages() []string { return i18n.Languages }

func (p *page) IsOperator() bool { return p.Actor != nil && p.Actor.IsOperator() }

// IsAdmin reports whether the actor administers the tenant shown.
func (p *page) IsAdmin() bool {
	if p.Actor == nil {
		return false
	}
	if p.Actor.IsOperator() {
		return p.Actor.TenantID != 0
	}
	return p.Actor.IsTenantAdmin()
}

// IsTenantUser reports whether the actor is a user (or admin) of a tenant, who can compose.
func (p *page) IsTenantUser() bool {
	return p.Actor != nil && !p.Actor.IsOperator() && p.Actor.UserID != 0
}

func (p *page) allowed(rl role) bool {
	switch rl {
	case roleUser:
		return p.IsTenantUser()
	case roleAdmin:
		return p.IsAdmin()
	case roleOperator:
		return p.IsOperator()
	case roleTenant:
		return p.IsTenantUser() || p.IsAdmin()
	case roleMail:
		return p.IsTenantUser() || p.IsOperator()
	}
	return true
}

// Date formats a Unix-millisecond time for the page's language.
func (p *page) Date(ms int64) string {
	t := time.UnixMilli(ms).Local()
	if p.Lang == "de" {
		return t.Format("02.01.2006 15:04")
	}
	return t.Format("2006-01-02 15:04")
}

// setErr records a core error on the page: field errors beside their fields, the rest on top.
func (p *page) setErr(err error) int {
	fields := core.FieldErrors(err)
	for _, fe := range fields {
		if _, seen := p.Errs[fe.Field]; !seen {
			p.Errs[fe.Field] = p.text.T(p.Lang, fe.Key, fe.Params)
		}
	}
	ce := core.AsError(err)
	if len(fields) == 0 {
		p.Error = p.text.T(p.Lang, ce.Key, ce.Params)
	} else {
		p.Error = p.text.T(p.Lang, "web.form.has_errors", nil)
	}
	if len(fields) > 1 {
		return http.StatusUnprocessableEntity
	}
	return ce.Status
}

// render writes a page with the given status.
func (u *UI) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	t, ok := u.pages[name]
	if !ok {
		u.d.Log.Error("web: unknown page template", "page", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout.html", p); err != nil {
		u.d.Log.Error("web: render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// fail renders an error page for an error that ends the request.
func (u *UI) fail(w http.ResponseWriter, r *http.Request, p *page, err error) {
	ce := core.AsError(err)
	if ce.Status >= 500 {
		u.d.Log.Error("web: request failed", "path", r.URL.Path, "err", err)
	}
	p.Title = "web.error.title"
	p.Error = p.text.T(p.Lang, ce.Key, ce.Params)
	status := ce.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	u.render(w, r, status, "error", p)
}

// flashCookie carries a success message across the redirect after a POST.
const flashCookie = "postfach_flash"

// redirect answers a successful POST with a redirect and a message key for the next page.
func (u *UI) redirect(w http.ResponseWriter, r *http.Request, target, flashKey string) {
	if flashKey != "" {
		http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: flashKey, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: 60})
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

func (u *UI) popFlash(w http.ResponseWriter, r *http.Request) string {
	c, err := r.Cookie(flashCookie)
	if err != nil || c.Value == "" {
		return ""
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: -1})
	// Only our own message keys: the cookie is not a way to put text on the page.
	if !strings.HasPrefix(c.Value, "web.flash.") || !u.d.Text.Has(c.Value) {
		return ""
	}
	return u.d.Text.T(httpx.Lang(r.Context()), c.Value, nil)
}

// home sends everyone to their start page.
func (u *UI) home(w http.ResponseWriter, r *http.Request, p *page) {
	switch {
	case p.Actor == nil:
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	case p.IsOperator() && p.Actor.TenantID == 0:
		http.Redirect(w, r, "/betreiber/mandanten", http.StatusSeeOther)
	case p.IsOperator():
		http.Redirect(w, r, "/admin", http.StatusSeeOther)
	default:
		http.Redirect(w, r, "/kommunikation", http.StatusSeeOther)
	}
}

// pathID reads a numeric path value; a malformed one is simply not found.
func pathID(r *http.Request, name string) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, &core.Error{Status: http.StatusNotFound, Key: "error.not_found"}
	}
	return id, nil
}

// formBool is a ticked checkbox.
func formBool(r *http.Request, name string) *bool {
	v := r.PostForm.Get(name) != ""
	return &v
}

func formStr(r *http.Request, name string) *string {
	v := r.PostForm.Get(name)
	return &v
}

// ids parses the non-empty numeric values of a repeated field.
func ids(values []string) []int64 {
	var out []int64
	seen := map[int64]bool{}
	for _, v := range values {
		if id, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && id > 0 && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// dict builds the argument map of the form field templates: name, value pairs.
func dict(kv ...any) map[string]any {
	m := make(map[string]any, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		m[fmt.Sprint(kv[i])] = kv[i+1]
	}
	return m
}
