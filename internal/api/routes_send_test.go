package api_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"postfach/internal/core"
)

// TestSendAPI queues a message with an Idempotency-Key, repeats the request, lists the queue
// and reads the delivery state; another tenant gets 404 for it.
func TestSendAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	uid := e.mustCreate("/api/v1/users", e.tokenA, `{"login":"s1","display_name":"S1","email":"s1@alpha.example"}`)
	body := fmt.Sprintf(`{"user_id":%d,"sender":"system","to":[{"address":"kunde@example.org"}],"subject":"Hallo","text":"Text"}`, uid)
	var first, again core.SendResult
	for _, out := range []*core.SendResult{&first, &again} {
		code, raw := e.raw("POST", "/api/v1/messages", e.tokenA, body, map[string]string{"Idempotency-Key": "k-1"})
		if code != 202 {
			t.Fatalf("send: %d %s", code, raw)
		}
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatal(err)
		}
	}
	if first.Repeated || !again.Repeated || again.ID != first.ID || first.State != "queued" || first.MessageID == "" {
		t.Fatalf("first %+v, repeated %+v", first, again)
	}
	var queue []core.QueueItem
	if code := e.do("GET", "/api/v1/queue", e.tokenA, "", &queue); code != 200 || len(queue) != 1 || queue[0].MessageID != first.ID {
		t.Fatalf("queue: %d %+v", code, queue)
	}
	var d core.Delivery
	path := fmt.Sprintf("/api/v1/messages/%d/delivery", first.ID)
	if code := e.do("GET", path, e.tokenA, "", &d); code != 200 || d.State != "queued" || len(d.Recipients) != 1 {
		t.Fatalf("delivery: %d %+v", code, d)
	}
	if code, _ := e.raw("GET", path, e.tokenB, "", nil); code != 404 {
		t.Fatalf("other tenant reads the delivery: %d", code)
	}
	if code, raw := e.raw("POST", "/api/v1/messages", e.tokenA, fmt.Sprintf(`{"user_id":%d,"sender":"system","to":[],"subject":"x"}`, uid), nil); code != 422 {
		t.Fatalf("no recipients: %d %s", code, raw)
	}
}

// TestDKIMRecordAPI shows the DKIM TXT record of a tenant's domain, the same on every call;
// another tenant cannot read it.
func TestDKIMRecordAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustCreate("/api/v1/domains", e.tokenA, `{"domain":"dkim-alpha.example"}`)
	var first, again core.DKIMRecordView
	for _, out := range []*core.DKIMRecordView{&first, &again} {
		if code := e.do("GET", "/api/v1/dkim?domain=dkim-alpha.example", e.tokenA, "", out); code != 200 {
			t.Fatalf("dkim record: %d", code)
		}
	}
	if first != again || first.Type != "TXT" || first.Name != first.Selector+"._domainkey.dkim-alpha.example" ||
		!strings.HasPrefix(first.Value, "v=DKIM1; k=rsa; p=") {
		t.Fatalf("records %+v and %+v", first, again)
	}
	if code, _ := e.raw("GET", "/api/v1/dkim?domain=dkim-alpha.example", e.tokenB, "", nil); code != 404 {
		t.Fatalf("other tenant reads the record: %d", code)
	}
}
