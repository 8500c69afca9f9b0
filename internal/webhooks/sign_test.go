package webhooks

import (
	"errors"
	"strconv"
	"testing"
	"time"
)

func TestVerify(t *testing.T) {
	now := time.Unix(1_750_000_000, 0)
	body := []byte(`{"id":"evt_1"}`)
	ts := strconv.FormatInt(now.Unix(), 10)
	good := Sign("secret", now.Unix(), body)
	cases := []struct {
		name      string
		secret    string
		signature string
		timestamp string
		body      []byte
		want      error
	}{
		{"valid", "secret", good, ts, body, nil},
		{"wrong secret", "other", good, ts, body, ErrBadSignature},
		{"changed body", "secret", good, ts, []byte(`{"id":"evt_2"}`), ErrBadSignature},
		{"timestamp swapped", "secret", good, strconv.FormatInt(now.Unix()-1, 10), body, ErrBadSignature},
		{"too old", "secret", Sign("secret", now.Unix()-600, body), strconv.FormatInt(now.Unix()-600, 10), body, ErrStale},
		{"from the future", "secret", Sign("secret", now.Unix()+600, body), strconv.FormatInt(now.Unix()+600, 10), body, ErrStale},
		{"no timestamp", "secret", good, "", body, ErrStale},
		{"no prefix", "secret", good[len("sha256="):], ts, body, ErrBadSignature},
	}
	for _, c := range cases {
		err := Verify(c.secret, c.signature, c.timestamp, c.body, now, DefaultTolerance)
		if !errors.Is(err, c.want) || (c.want == nil && err != nil) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
}

// FuzzVerify: arbitrary header values never panic and never verify without the secret's
// signature.
func FuzzVerify(f *testing.F) {
	f.Add("sha256=00", "1750000000", []byte("{}"))
	f.Add("", "", []byte(nil))
	f.Add("sha256="+Sign("k", 1750000000, []byte("x")), "1750000000", []byte("x"))
	f.Add("sha256=zz", "-9223372036854775808", []byte("x"))
	now := time.Unix(1_750_000_000, 0)
	f.Fuzz(func(t *testing.T, signature, timestamp string, body []byte) {
		err := Verify("k", signature, timestamp, body, now, DefaultTolerance)
		if err == nil {
			ts, _ := strconv.ParseInt(timestamp, 10, 64)
			if Sign("k", ts, body) != signature && Sign("k", ts, body) != trimmed(signature) {
				t.Fatalf("verified a foreign signature %q", signature)
			}
		}
	})
}

func trimmed(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
