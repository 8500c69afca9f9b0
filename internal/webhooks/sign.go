package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Request headers of a webhook delivery.
const (
	HeaderSignature = "X-Postfach-Signature" // "sha256=" + hex HMAC-SHA256 of "<timestamp>.<body>"
	HeaderTimestamp = "X-Postfach-Timestamp" // Unix seconds when the request was signed
	HeaderEvent     = "X-Postfach-Event"     // the event name
	HeaderEventID   = "X-Postfach-Event-Id"  // the event id: the same on every retry
	HeaderAttempt   = "X-Postfach-Attempt"   // 1 for the first try
)

// DefaultTolerance is how far a receiver should accept a timestamp from its own clock:
// a captured request cannot be replayed later than this.
const DefaultTolerance = 5 * time.Minute

// Errors of Verify.
var (
	ErrBadSignature = errors.New("webhooks: signature does not match")
	ErrStale        = errors.New("webhooks: timestamp outside the tolerance")
)

// SecretContext is the secrets.Box context of a tenant's endpoint secrets: a sealed secret
// moved to another tenant's row does not open.
func SecretContext(tenantID int64) string { return "webhook-secret:" + strconv.FormatInt(tenantID, 10) }

// Sign returns the signature header value for body sent at timestamp (Unix seconds).
// Signing the timestamp with the body keeps an old request from being replayed with a
// fresh timestamp.
func Sign(secret string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(timestamp, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a received request as a receiver should: the timestamp header within
// tolerance of now, and the signature header equal (in constant time) to Sign's.
func Verify(secret, signature, timestamp string, body []byte, now time.Time, tolerance time.Duration) error {
	ts, err := strconv.ParseInt(strings.TrimSpace(timestamp), 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q", ErrStale, timestamp)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return ErrStale
	}
	want := Sign(secret, ts, body)
	if !hmac.Equal([]byte(want), []byte(strings.TrimSpace(signature))) {
		return ErrBadSignature
	}
	return nil
}
