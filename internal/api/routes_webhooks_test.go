package api_test

import (
	"strconv"
	"strings"
	"testing"
)

// TestWebhooksAPI registers an endpoint as the host application does: the secret comes
// back once, never in reads; internal addresses and unknown events are refused; another
// tenant sees 404.
func TestWebhooksAPI(t *testing.T) {
	e := newEnv(t)
	var created struct {
		ID     int64    `json:"id"`
		Secret string   `json:"secret"`
		Events []string `json:"events"`
	}
	body := `{"url":"https://crm.example.com/hooks/postfach","events":["message.received","message.bounced"]}`
	if code := e.do("POST", "/api/v1/webhooks", e.tokenA, body, &created); code != 201 {
		t.Fatalf("create: %d", code)
	}
	if !strings.HasPrefix(created.Secret, "whsec_") || len(created.Events) != 2 {
		t.Fatalf("created %+v", created)
	}
	path := "/api/v1/webhooks/" + strconv.FormatInt(created.ID, 10)
	for _, p := range []string{"/api/v1/webhooks", path} {
		code, raw := e.raw("GET", p, e.tokenA, "", nil)
		if code != 200 || strings.Contains(string(raw), created.Secret) || strings.Contains(string(raw), "secret") {
			t.Fatalf("GET %s: %d %s", p, code, raw)
		}
	}
	if code := e.do("GET", path, e.tokenB, "", nil); code != 404 {
		t.Fatalf("foreign tenant read: %d", code)
	}
	if code := e.do("PATCH", path, e.tokenB, `{"active":false}`, nil); code != 404 {
		t.Fatalf("foreign tenant change: %d", code)
	}
	if code := e.do("PATCH", path, e.tokenA, `{"events":["message.sent"]}`, &created); code != 200 || len(created.Events) != 1 || created.Events[0] != "message.sent" {
		t.Fatalf("change events: %d %+v", code, created)
	}
	for name, bad := range map[string]string{
		"loopback":      `{"url":"http://127.0.0.1:8080/x","events":["message.received"]}`,
		"metadata":      `{"url":"http://169.254.169.254/latest","events":["message.received"]}`,
		"scheme":        `{"url":"ftp://crm.example.com/x","events":["message.received"]}`,
		"user info":     `{"url":"https://u:p@crm.example.com/x","events":["message.received"]}`,
		"unknown event": `{"url":"https://crm.example.com/x","events":["message.deleted"]}`,
		"no events":     `{"url":"https://crm.example.com/x"}`,
	} {
		if code, raw := e.raw("POST", "/api/v1/webhooks", e.tokenA, bad, nil); code != 422 {
			t.Errorf("%s: %d %s", name, code, raw)
		}
	}
	if code := e.do("GET", path+"/deliveries", e.tokenA, "", nil); code != 200 {
		t.Fatalf("deliveries: %d", code)
	}
	if code := e.do("DELETE", path, e.tokenB, "", nil); code != 404 {
		t.Fatalf("foreign delete: %d", code)
	}
	if code := e.do("DELETE", path, e.tokenA, "", nil); code != 204 {
		t.Fatalf("delete: %d", code)
	}
}
