package api_test

import (
	"fmt"
	"strings"
	"testing"

	"postfach/internal/core"
	"postfach/internal/store"
)

// TestAccountsAPI walks the account endpoints as the host application does: create with
// secrets (never echoed), list, the two-step delete, merge, and a foreign tenant's 404s.
func TestAccountsAPI(t *testing.T) {
	e := newEnv(t)
	// German answers, so the test also sees the translated texts.
	hdr := map[string]string{"Accept-Language": "de", "Content-Type": "application/json"}
	call := func(token, method, path, body string, out any) (int, string) {
		t.Helper()
		code, raw := e.call(method, path, token, body, hdr, out)
		return code, string(raw)
	}

	var a, b core.Account
	code, raw := call(e.tokenA, "POST", "/api/v1/accounts", `{"address":"alt@kunde.example","sender_name":"Alt",
		"receive":{"type":"pop3","host":"pop.kunde.example","username":"alt","password":"streng-geheim","delete_on_server":true},
		"send":{"host":"smtp.kunde.example","security":"tls","auth":true,"username":"alt","password":"auch-geheim"}}`, &a)
	if code != 201 || strings.Contains(raw, "geheim") || !a.Receive.HasPassword || a.Receive.Port != 110 || a.Send.Port != 465 {
		t.Fatalf("create: %d %s", code, raw)
	}
	if code, _ := call(e.tokenA, "POST", "/api/v1/accounts", `{"address":"neu@kunde.example"}`, &b); code != 201 {
		t.Fatalf("create second: %d", code)
	}
	if code, raw := call(e.tokenA, "POST", "/api/v1/accounts", `{"address":"x@kunde.example","colour":"red"}`, nil); code != 400 || !strings.Contains(raw, "colour") {
		t.Errorf("unknown field: %d %s", code, raw)
	}
	var list []core.Account
	if code, _ := call(e.tokenA, "GET", "/api/v1/accounts", "", &list); code != 200 || len(list) != 2 {
		t.Fatalf("list: %d %+v", code, list)
	}
	var off core.Account
	if code, _ := call(e.tokenA, "PUT", fmt.Sprintf("/api/v1/accounts/%d/active", a.ID), `{"active":false}`, &off); code != 200 || off.Active || !off.Receive.HasPassword {
		t.Errorf("deactivate: %d %+v", code, off)
	}

	// Every account route with an id answers 404 to the other tenant.
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/api/v1/accounts/%d", ""},
		{"PATCH", "/api/v1/accounts/%d", `{"sender_name":"x"}`},
		{"PUT", "/api/v1/accounts/%d/active", `{"active":true}`},
		{"GET", "/api/v1/accounts/%d/delete-preview", ""},
		{"POST", "/api/v1/accounts/%d/delete", `{"confirm":"x"}`},
		{"GET", "/api/v1/accounts/%d/merge-preview?target_id=1", ""},
		{"POST", "/api/v1/accounts/%d/merge", `{"target_id":1,"confirm":"x"}`},
		{"GET", "/api/v1/accounts/%d/domain", ""},
		{"POST", "/api/v1/accounts/%d/domain-check", ""},
		{"POST", "/api/v1/accounts/%d/connection-test", `{"protocol":"smtp"}`},
	} {
		if code, raw := call(e.tokenB, r.method, fmt.Sprintf(r.path, a.ID), r.body, nil); code != 404 {
			t.Errorf("%s %s as another tenant: %d %s", r.method, r.path, code, raw)
		}
	}

	// Merge a into b, with the preview's token.
	var mp core.MergePreview
	if code, raw := call(e.tokenA, "GET", fmt.Sprintf("/api/v1/accounts/%d/merge-preview?target_id=%d", a.ID, b.ID), "", &mp); code != 200 || !strings.Contains(mp.Message, "neu@kunde.example") {
		t.Fatalf("merge preview: %d %s", code, raw)
	}
	var mr store.MergeResult
	if code, raw := call(e.tokenA, "POST", fmt.Sprintf("/api/v1/accounts/%d/merge", a.ID), fmt.Sprintf(`{"target_id":%d,"confirm":%q}`, b.ID, mp.Confirm), &mr); code != 200 || mr.Aliases != 1 {
		t.Fatalf("merge: %d %s", code, raw)
	}
	// Delete b in two steps.
	var dp core.DeletePreview
	if code, _ := call(e.tokenA, "GET", fmt.Sprintf("/api/v1/accounts/%d/delete-preview", b.ID), "", &dp); code != 200 || !strings.Contains(dp.Message, "0 Nachrichten") {
		t.Fatalf("delete preview: %d %+v", code, dp)
	}
	if code, raw := call(e.tokenA, "POST", fmt.Sprintf("/api/v1/accounts/%d/delete", b.ID), `{"confirm":"falsch"}`, nil); code != 409 || !strings.Contains(raw, "Bestätigung") {
		t.Errorf("unconfirmed delete: %d %s", code, raw)
	}
	if code, _ := call(e.tokenA, "POST", fmt.Sprintf("/api/v1/accounts/%d/delete", b.ID), fmt.Sprintf(`{"confirm":%q}`, dp.Confirm), nil); code != 200 {
		t.Errorf("delete: %d", code)
	}
	if code, _ := call(e.tokenA, "GET", "/api/v1/accounts", "", &list); code != 200 || len(list) != 0 {
		t.Errorf("after delete: %d %+v", code, list)
	}
}
