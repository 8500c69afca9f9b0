package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"testing"

	"postfach/internal/api"
	"postfach/internal/config"
	"postfach/internal/core"
	"postfach/internal/server"
	"postfach/internal/store/storetest"
)

// env is a running handler with an operator, two tenants and their admins' tokens.
type env struct {
	t      *testing.T
	srv    *server.Server
	http   *httptest.Server
	tokenA string // API token of tenant A
	tokenB string // API token of tenant B
	opTok  string // operator session
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.DatabaseURL, _ = storetest.URL(t)
	srv, err := server.Open(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(context.Background()) })
	e := &env{t: t, srv: srv, http: httptest.NewServer(srv.Handler)}
	t.Cleanup(e.http.Close)
	sys := core.Actor{Kind: core.ActorSystem, Name: "test"}
	hash, _ := core.HashPassword("operator-pass-1")
	if err := srv.DB.InTx(ctx, func(tx *store_Tx) error { return createOperator(ctx, tx, hash) }); err != nil {
		t.Fatal(err)
	}
	for i, slug := range []string{"alpha", "beta"} {
		name := strings.ToUpper(slug[:1]) + slug[1:]
		tn, err := srv.Core.CreateTenant(ctx, sys, core.TenantInput{Name: &name, Slug: &slug})
		if err != nil {
			t.Fatal(err)
		}
		a, _ := core.AsOperatorIn(sys, tn.ID)
		tok, err := srv.Core.CreateAPIToken(ctx, a, "host app")
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			e.tokenA = tok.Token
		} else {
			e.tokenB = tok.Token
		}
	}
	var res api.LoginResult
	if code := e.do("POST", "/api/v1/login", "", `{"tenant":"","login":"op","password":"operator-pass-1"}`, &res); code != 200 {
		t.Fatalf("operator login: %d", code)
	}
	e.opTok = res.Token
	return e
}

// do calls the API; auth is an API token ("pf_…") or a session token.
func (e *env) do(method, path, auth, body string, out any) int {
	e.t.Helper()
	code, _ := e.call(method, path, auth, body, nil, out)
	return code
}

// call is raw that also decodes a 2xx answer into out (unless out is nil); an answer that
// is not JSON fails the test.
func (e *env) call(method, path, auth, body string, hdr map[string]string, out any) (int, []byte) {
	e.t.Helper()
	code, raw := e.raw(method, path, auth, body, hdr)
	if out != nil && code < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
	return code, raw
}

func (e *env) raw(method, path, auth, body string, hdr map[string]string) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, e.http.URL+path, rd)
	if strings.HasPrefix(auth, "pf_") {
		req.Header.Set("Authorization", "Bearer "+auth)
	} else if auth != "" {
		req.AddCookie(&http.Cookie{Name: "postfach_session", Value: auth})
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.http.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (e *env) mustCreate(path, auth, body string) int64 {
	e.t.Helper()
	var out struct {
		ID int64 `json:"id"`
	}
	code, raw := e.raw("POST", path, auth, body, nil)
	if code != 201 {
		e.t.Fatalf("POST %s: %d %s", path, code, raw)
	}
	_ = json.Unmarshal(raw, &out)
	return out.ID
}

func TestCreateThroughRead(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cases := []struct {
		path, body string
		check      []string // substrings expected in the GET answer
	}{
		{"/api/v1/users", `{"login":"brenner","display_name":"Barbara Renner","email":"cel-test09@celanio.example","short_code":"BR","profile":{"Telefon":"1"}}`, []string{`"login":"brenner"`, `"Telefon":"1"`}},
		{"/api/v1/groups", `{"name":"Vertrieb"}`, []string{`"name":"Vertrieb"`}},
		{"/api/v1/mailboxes", `{"address":"cel-test08@celanio.example","display_name":"Benutzergruppenverwaltung","sender":true,"reply":true,"with_auth":true,"smtp":{"host":"smtp.celanio.example","port":587,"security":"starttls","auth":true,"username":"u","password":"geheim-123"}}`, []string{`"has_password":true`, `"sender":true`}},
		{"/api/v1/templates", `{"name":"Einladung","subject":"Hallo","sender_key":"system"}`, []string{`"sender_key":"system"`}},
		{"/api/v1/contacts", `{"email":"kunde@example.org","name":"Kunde"}`, []string{`"email":"kunde@example.org"`}},
	}
	for _, tc := range cases {
		id := e.mustCreate(tc.path, e.tokenA, tc.body)
		code, raw := e.raw("GET", fmt.Sprintf("%s/%d", tc.path, id), e.tokenA, "", nil)
		if code != 200 {
			t.Fatalf("GET %s/%d: %d", tc.path, id, code)
		}
		for _, c := range tc.check {
			if !bytes.Contains(raw, []byte(c)) {
				t.Errorf("GET %s/%d lacks %s: %s", tc.path, id, c, raw)
			}
		}
		if bytes.Contains(raw, []byte("geheim")) || bytes.Contains(raw, []byte("password_hash")) {
			t.Errorf("secret leaked: %s", raw)
		}
	}
	code, raw := e.raw("GET", "/api/v1/openapi.json", "", "", nil)
	if code != 200 || !bytes.Contains(raw, []byte(`"openapi":"3.1.0"`)) {
		t.Fatalf("openapi: %d", code)
	}
}

// Bad input gets a 4xx naming the field and changes nothing.
func TestBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if code := e.do("POST", "/api/v1/mailboxes", e.tokenA, `{"address":"erste@celanio.example","sender":true}`, nil); code != 201 {
		t.Fatalf("first mailbox: %d", code)
	}
	cases := []struct {
		name, method, path, body string
		status                   int
		code, field              string
	}{
		{"unknown field", "POST", "/api/v1/users", `{"login":"x","display_name":"X","admin":true}`, 400, "error.unknown_field", "admin"},
		{"bad address", "POST", "/api/v1/users", `{"login":"x","display_name":"X","email":"not an address"}`, 422, "error.bad_address", "email"},
		{"address with display name", "POST", "/api/v1/mailboxes", `{"address":"Evil <e@x.example>"}`, 422, "error.bad_address", "address"},
		{"header injection in a name", "POST", "/api/v1/users", `{"login":"x","display_name":"Eve\r\nBcc: victim@example.org"}`, 422, "error.control_chars", "display_name"},
		{"header injection in a mailbox name", "POST", "/api/v1/mailboxes", `{"address":"x@celanio.example","display_name":"A\nB"}`, 422, "error.control_chars", "display_name"},
		{"over quota", "POST", "/api/v1/mailboxes", `{"address":"zweite@celanio.example","sender":true}`, 409, "error.mailbox_quota", ""},
		{"global is operator-only", "PATCH", "/api/v1/mailboxes/999999", `{"global":true}`, 404, "error.not_found", ""},
		{"wrong type", "POST", "/api/v1/groups", `{"name":5}`, 400, "error.expected_text", "name"},
		{"trailing data", "POST", "/api/v1/groups", `{"name":"a"}{"name":"b"}`, 400, "error.bad_request", ""},
		{"empty body", "POST", "/api/v1/groups", ``, 400, "error.bad_request", ""},
		{"bad duplicate policy", "PATCH", "/api/v1/tenants/1", `{"duplicate_policy":"random"}`, 403, "error.forbidden", ""},
		{"bad smtp port", "POST", "/api/v1/mailboxes", `{"address":"y@celanio.example","with_auth":true,"smtp":{"host":"smtp.x.example","port":70000}}`, 422, "error.bad_port", "smtp.port"},
		{"smtp host with scheme", "POST", "/api/v1/mailboxes", `{"address":"y@celanio.example","with_auth":true,"smtp":{"host":"smtp://x","port":25}}`, 422, "error.bad_host", "smtp.host"},
		{"short password", "POST", "/api/v1/users", `{"login":"kurz","display_name":"K","password":"123"}`, 422, "error.password_too_short", "password"},
	}
	before := e.counts()
	for _, tc := range cases {
		code, raw := e.raw(tc.method, tc.path, e.tokenA, tc.body, map[string]string{"Accept-Language": "de"})
		var body api.ErrorBody
		_ = json.Unmarshal(raw, &body)
		if code != tc.status || body.Error.Code != tc.code || body.Error.Field != tc.field {
			t.Errorf("%s: got %d %s field=%q (%s), want %d %s field=%q", tc.name, code, body.Error.Code, body.Error.Field, raw, tc.status, tc.code, tc.field)
		}
		if body.Error.Message == "" || strings.Contains(body.Error.Message, "[error.") {
			t.Errorf("%s: message %q", tc.name, body.Error.Message)
		}
	}
	if after := e.counts(); after != before {
		t.Fatalf("bad input changed data: %s → %s", before, after)
	}
	// The quota message names the quota, in the caller's language.
	_, raw := e.raw("POST", "/api/v1/mailboxes", e.tokenA, `{"address":"zweite@celanio.example"}`, map[string]string{"Accept-Language": "en"})
	if !bytes.Contains(raw, []byte("Your quota allows 1 additional mailbox")) {
		t.Errorf("English quota message: %s", raw)
	}
	// The operator may raise the quota; then the mailbox can be created.
	if code := e.do("PATCH", "/api/v1/tenants/1", e.opTok, `{"mailbox_quota":2}`, nil); code != 200 {
		t.Fatalf("raise quota: %d", code)
	}
	if code := e.do("POST", "/api/v1/mailboxes", e.tokenA, `{"address":"zweite@celanio.example"}`, nil); code != 201 {
		t.Fatalf("after raising the quota: %d", code)
	}
}

// A JSON value of the wrong kind is answered in the caller's language with the field and the
// kind of JSON value it takes, never with the Go type the server reads it into.
func TestWrongJSONTypeNamesFieldAndKind(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cases := []struct {
		path, body, code, field string
		de, en                  string
	}{
		{"/api/v1/messages", `{"user_id":1,"sender":"system","to":"x@example.org","subject":"x"}`, "error.expected_list", "to",
			"Feld „to“: erwartet eine Liste.", "Field “to”: expected a list."},
		{"/api/v1/messages", `{"user_id":1,"sender":"system","to":["x@example.org"],"subject":"x"}`, "error.expected_object", "to",
			"Feld „to“: erwartet ein Objekt.", "Field “to”: expected an object."},
		{"/api/v1/messages", `{"user_id":"eins","sender":"system","to":[],"subject":"x"}`, "error.expected_number", "user_id",
			"Feld „user_id“: erwartet eine Zahl.", "Field “user_id”: expected a number."},
		{"/api/v1/messages", `{"user_id":1,"sender":"system","to":[],"subject":["x"]}`, "error.expected_text", "subject",
			"Feld „subject“: erwartet einen Text.", "Field “subject”: expected a string."},
		{"/api/v1/mailboxes", `{"address":"y@celanio.example","sender":"ja"}`, "error.expected_bool", "sender",
			"Feld „sender“: erwartet true oder false.", "Field “sender”: expected true or false."},
		{"/api/v1/mailboxes", `{"address":"y@celanio.example","smtp":"smtp.x.example"}`, "error.expected_object", "smtp",
			"Feld „smtp“: erwartet ein Objekt.", "Field “smtp”: expected an object."},
	}
	for _, tc := range cases {
		for _, lang := range []string{"de", "en"} {
			code, raw := e.raw("POST", tc.path, e.tokenA, tc.body, map[string]string{"Accept-Language": lang})
			var body api.ErrorBody
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Fatalf("%s %s: %v (%s)", tc.body, lang, err, raw)
			}
			want := map[string]string{"de": tc.de, "en": tc.en}[lang]
			if code != 400 || body.Error.Code != tc.code || body.Error.Field != tc.field || body.Error.Message != want {
				t.Errorf("%s (%s): got %d %s field=%q %q, want 400 %s field=%q %q", tc.body, lang, code, body.Error.Code, body.Error.Field, body.Error.Message, tc.code, tc.field, want)
			}
			for _, goName := range []string{"core.", "[]", "SendAddress", "int64", "struct", "map["} {
				if bytes.Contains(raw, []byte(goName)) {
					t.Errorf("%s (%s): answer names a Go type (%s): %s", tc.body, lang, goName, raw)
				}
			}
		}
	}
}

func (e *env) counts() string {
	var s []string
	for _, table := range []string{"users", "user_groups", "mailboxes", "mailbox_grants", "templates", "contacts", "tenants"} {
		var n int
		if err := e.srv.DB.SQL().QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
			e.t.Fatal(err)
		}
		s = append(s, fmt.Sprintf("%s=%d", table, n))
	}
	return strings.Join(s, " ")
}

// TestTenantIsolation calls every route that takes an id with the ids of another tenant's
// records and expects 404: the route list comes from the router itself, so a new route is
// covered the day it is added.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ids := map[string]int64{
		"users":     e.mustCreate("/api/v1/users", e.tokenA, `{"login":"a1","display_name":"A1","email":"a1@alpha.example"}`),
		"groups":    e.mustCreate("/api/v1/groups", e.tokenA, `{"name":"G"}`),
		"mailboxes": e.mustCreate("/api/v1/mailboxes", e.tokenA, `{"address":"m@alpha.example","sender":true,"restricted":true}`),
		"templates": e.mustCreate("/api/v1/templates", e.tokenA, `{"name":"T"}`),
		"contacts":  e.mustCreate("/api/v1/contacts", e.tokenA, `{"email":"c@example.org"}`),
	}
	ids["grants"] = e.mustCreate(fmt.Sprintf("/api/v1/mailboxes/%d/grants", ids["mailboxes"]), e.tokenA, fmt.Sprintf(`{"user_id":%d}`, ids["users"]))
	var tok struct {
		ID int64 `json:"id"`
	}
	e.do("POST", "/api/v1/api-tokens", e.tokenA, `{"name":"second"}`, &tok)
	ids["api-tokens"] = tok.ID
	ids["members"] = ids["users"]
	ids["pictures"] = 0
	// Tenant B's own user, to fill parameters that must exist in B for the route to reach the lookup of A's record.
	bUser := e.mustCreate("/api/v1/users", e.tokenB, `{"login":"b1","display_name":"B1"}`)
	bGroup := e.mustCreate("/api/v1/groups", e.tokenB, `{"name":"GB"}`)

	a := api.New(e.srv.Core, nil)
	param := regexp.MustCompile(`\{([a-z]+)\}`)
	tested := 0
	for _, rt := range a.Routes() {
		if !strings.Contains(rt.Path, "{") || strings.HasPrefix(rt.Path, "/api/v1/tenants") {
			continue // tenants are the operator's; tenant admins get 403 there (checked below)
		}
		segs := strings.Split(strings.TrimPrefix(rt.Path, "/api/v1/"), "/")
		variants := []map[string]string{}
		// Variant 1: every id from tenant A. Variant 2: A's parent with B's child, where it applies.
		fill := func(foreignChild bool) map[string]string {
			vals := map[string]string{}
			for i, s := range segs {
				m := param.FindStringSubmatch(s)
				if m == nil {
					continue
				}
				res := segs[i-1]
				switch m[1] {
				case "order":
					vals[m[1]] = "0"
				case "user":
					vals[m[1]] = fmt.Sprint(ids["users"])
					if foreignChild {
						vals[m[1]] = fmt.Sprint(bUser)
					}
				case "grant":
					vals[m[1]] = fmt.Sprint(ids["grants"])
				default:
					vals[m[1]] = fmt.Sprint(ids[res])
				}
			}
			return vals
		}
		variants = append(variants, fill(false))
		if strings.Contains(rt.Path, "{user}") {
			v := fill(true)
			v["id"] = fmt.Sprint(bGroup) // B's own group with A's… no: B's group, B's user is fine; A's group with B's user:
			v["id"] = fmt.Sprint(ids["groups"])
			variants = append(variants, v)
		}
		for _, vals := range variants {
			path := param.ReplaceAllStringFunc(rt.Path, func(s string) string { return vals[s[1:len(s)-1]] })
			body := ""
			if rt.In != nil {
				body = sampleBody(rt.In)
			}
			code, raw := e.raw(rt.Method, path, e.tokenB, body, nil)
			if code != 404 {
				t.Errorf("%s %s (route %s) as another tenant: %d %s, want 404", rt.Method, path, rt.Path, code, raw)
			}
			tested++
		}
	}
	if tested < 20 {
		t.Fatalf("only %d routes with ids tested", tested)
	}
	for _, p := range []string{"/api/v1/tenants", "/api/v1/tenants/1"} {
		if code, _ := e.raw("PATCH", p, e.tokenB, `{"mailbox_quota":100}`, nil); code != 403 && code != 404 && code != 405 {
			t.Errorf("PATCH %s as tenant: %d", p, code)
		}
	}
	// And nothing of A changed.
	code, raw := e.raw("GET", fmt.Sprintf("/api/v1/users/%d", ids["users"]), e.tokenA, "", nil)
	if code != 200 || !bytes.Contains(raw, []byte(`"login":"a1"`)) {
		t.Fatalf("A's user after the attack: %d %s", code, raw)
	}
	code, raw = e.raw("GET", fmt.Sprintf("/api/v1/mailboxes/%d/grants", ids["mailboxes"]), e.tokenA, "", nil)
	if code != 200 || bytes.Contains(raw, []byte(`"valid_until"`)) {
		t.Fatalf("A's grant was ended by B: %s", raw)
	}
}

// sampleBody is a valid-looking body for a route's input type, so that a 404 comes from the
// tenant scope and not from validation.
func sampleBody(in any) string {
	switch in.(type) {
	case core.UserInput:
		return `{"display_name":"X"}`
	case core.GroupInput:
		return `{"name":"X"}`
	case core.MailboxInput:
		return `{"display_name":"X"}`
	case core.TemplateInput:
		return `{"name":"X"}`
	case core.ContactInput:
		return `{"name":"X"}`
	case core.GrantInput:
		return `{"user_id":1}`
	case api.PreviewInput:
		return `{}`
	}
	return `{}`
}

// TestOpenAPIMatchesRoutes checks the served document against the registered routes.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, raw := e.raw("GET", "/api/v1/openapi.json", "", "", nil)
	var doc struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var inDoc, inRouter []string
	for p, ops := range doc.Paths {
		for m := range ops {
			inDoc = append(inDoc, strings.ToUpper(m)+" "+p)
		}
	}
	for _, rt := range api.New(e.srv.Core, nil).Routes() {
		inRouter = append(inRouter, rt.Method+" "+rt.Path)
		// Every documented route answers (not the catch-all 404 of unknown paths).
		path := regexp.MustCompile(`\{[a-z]+\}`).ReplaceAllString(rt.Path, "1")
		if code, raw := e.raw(rt.Method, path, "", "", nil); code == 404 && bytes.Contains(raw, []byte("error.not_found")) && rt.Public {
			t.Errorf("%s %s is documented but not routed", rt.Method, rt.Path)
		}
	}
	sort.Strings(inDoc)
	sort.Strings(inRouter)
	if strings.Join(inDoc, "\n") != strings.Join(inRouter, "\n") {
		t.Fatalf("document and router differ:\n%v\n%v", inDoc, inRouter)
	}
	for _, name := range []string{"Mailbox", "UserInput", "ErrorBody", "Options"} {
		if _, ok := doc.Components.Schemas[name]; !ok {
			t.Errorf("schema %s missing", name)
		}
	}
	if bytes.Contains(raw, []byte("password_hash")) || bytes.Contains(raw, []byte("PasswordEncrypted")) {
		t.Errorf("document exposes secret fields")
	}
}

func TestSenderOptionsFollowGrants(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	uid := e.mustCreate("/api/v1/users", e.tokenA, `{"login":"paul","display_name":"Paul Schneller","email":"paul@alpha.example","password":"paul-password-1"}`)
	gid := e.mustCreate("/api/v1/groups", e.tokenA, `{"name":"Vertrieb"}`)
	mid := e.mustCreate("/api/v1/mailboxes", e.tokenA, `{"address":"vertrieb@alpha.example","display_name":"Vertrieb","sender":true,"restricted":true}`)
	var login api.LoginResult
	if code := e.do("POST", "/api/v1/login", "", `{"tenant":"alpha","login":"paul","password":"paul-password-1"}`, &login); code != 200 {
		t.Fatalf("login %d", code)
	}
	labels := func() string {
		var o struct {
			Senders []struct{ Label string } `json:"senders"`
		}
		e.do("GET", "/api/v1/me/sender-options", login.Token, "", &o)
		var l []string
		for _, s := range o.Senders {
			l = append(l, s.Label)
		}
		return strings.Join(l, "|")
	}
	if strings.Contains(labels(), "Vertrieb") {
		t.Fatal("restricted mailbox offered without grant")
	}
	var g struct{ ID int64 }
	e.do("POST", fmt.Sprintf("/api/v1/mailboxes/%d/grants", mid), e.tokenA, fmt.Sprintf(`{"group_id":%d}`, gid), &g)
	e.do("PUT", fmt.Sprintf("/api/v1/groups/%d/members/%d", gid, uid), e.tokenA, "", nil)
	if !strings.Contains(labels(), "Vertrieb (vertrieb@alpha.example)") {
		t.Fatalf("granted mailbox missing: %s", labels())
	}
	var ex core.Explanation
	e.do("GET", fmt.Sprintf("/api/v1/users/%d/explain?address=vertrieb@alpha.example", uid), login.Token, "", &ex)
	if !ex.Allowed {
		t.Fatalf("explain: %+v", ex)
	}
	e.do("DELETE", fmt.Sprintf("/api/v1/mailboxes/%d/grants/%d", mid, g.ID), e.tokenA, "", nil)
	if strings.Contains(labels(), "Vertrieb") {
		t.Fatal("mailbox still offered after the grant ended")
	}
	code, raw := e.raw("GET", fmt.Sprintf("/api/v1/users/%d/explain?address=vertrieb@alpha.example", uid), login.Token, "", map[string]string{"Accept-Language": "de"})
	if code != 200 || !bytes.Contains(raw, []byte("Benutzerrechte")) {
		t.Fatalf("explanation after revoke: %s", raw)
	}
	// A user may not look at another user's options.
	if code := e.do("GET", fmt.Sprintf("/api/v1/users/%d/sender-options", uid+1000), login.Token, "", nil); code != 404 {
		t.Fatalf("foreign user options: %d", code)
	}
}
