package outqueue

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"postfach/internal/core"
	"postfach/internal/mailout"
)

// signerTTL is how long a signing decision is reused: a domain verified a minute ago starts
// being signed within that time, without a key lookup per message.
const signerTTL = time.Minute

// signerCache remembers, per tenant and From: domain, the key that signs (or that none does).
type signerCache struct {
	mu      sync.Mutex
	entries map[string]cachedSigner
}

type cachedSigner struct {
	signer  core.DKIMSigner
	ok      bool
	expires time.Time
}

// sign adds a DKIM-Signature (X5) to every open job whose From: domain is a verified hosted
// domain of its tenant or the operator's domain. It runs at dequeue, so a retry carries a
// fresh signature over the same bytes. A key that cannot be loaded defers the job: sending
// unsigned mail from a domain that publishes a key would hurt its reputation.
func (w *worker) sign(ctx context.Context, jobs []*job) {
	q := w.q
	for _, j := range jobs {
		if j.done {
			continue
		}
		sg, ok, err := q.signerFor(ctx, j.e.TenantID, j.e.Raw)
		if err != nil {
			j.fail(true, fmt.Sprintf("dkim key: %v", err), j.plannedAt)
			continue
		}
		if !ok {
			continue
		}
		signed, err := mailout.Sign(j.e.Raw, sg.Domain, sg.Selector, sg.Key)
		if err != nil {
			j.fail(false, fmt.Sprintf("dkim: %v", err), 0)
			continue
		}
		j.e.Raw = signed
	}
}

func (q *Queue) signerFor(ctx context.Context, tenantID int64, raw []byte) (core.DKIMSigner, bool, error) {
	from := strings.ToLower(core.MessageFromDomain(raw))
	key := strconv.FormatInt(tenantID, 10) + "|" + from
	now := time.Now()
	q.signers.mu.Lock()
	c, hit := q.signers.entries[key]
	q.signers.mu.Unlock()
	if hit && now.Before(c.expires) {
		return c.signer, c.ok, nil
	}
	sg, ok, err := q.core.DKIMSignerFor(ctx, tenantID, from)
	if err != nil {
		return sg, false, err
	}
	q.signers.mu.Lock()
	if q.signers.entries == nil {
		q.signers.entries = map[string]cachedSigner{}
	}
	q.signers.entries[key] = cachedSigner{signer: sg, ok: ok, expires: now.Add(signerTTL)}
	q.signers.mu.Unlock()
	return sg, ok, nil
}
