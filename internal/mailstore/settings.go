package mailstore

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// MailboxSettings are the keys of a mailbox's settings JSON that received mail depends on.
// Other packages keep their own keys in the same object; this type reads only these two,
// and writers must keep keys they do not know.
type MailboxSettings struct {
	// PrivateOwner is the short code (Nutzerkürzel) of the user whose private account this
	// is (C3, "Privatkonto von"); empty for a shared account.
	PrivateOwner string `json:"private_owner,omitempty"`
	// OutOfOffice is the Abwesenheitsnotiz (H3).
	OutOfOffice *OutOfOffice `json:"out_of_office,omitempty"`
}

// OutOfOffice configures the automatic reply of a hosted mailbox or mail account.
type OutOfOffice struct {
	Enabled bool       `json:"enabled"`
	Start   *time.Time `json:"start,omitempty"` // optional: replies from this moment
	End     *time.Time `json:"end,omitempty"`   // optional: no replies from this moment
	Subject string     `json:"subject,omitempty"`
	Text    string     `json:"text"`
	// PeriodDays is how long a sender is not answered again (RFC 3834 §2 suggests 7 days).
	PeriodDays int `json:"period_days,omitempty"`
}

// DefaultReplyPeriod is RFC 3834's suggested minimum interval between replies to one sender.
const DefaultReplyPeriod = 7 * 24 * time.Hour

// ParseSettings reads the keys above from a mailbox's settings JSON.
func ParseSettings(raw string) (MailboxSettings, error) {
	var s MailboxSettings
	if strings.TrimSpace(raw) == "" {
		return s, nil
	}
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return s, fmt.Errorf("mailstore: mailbox settings: %w", err)
	}
	return s, nil
}

// ActiveAt reports whether the reply is switched on at t.
func (o *OutOfOffice) ActiveAt(t time.Time) bool {
	if o == nil || !o.Enabled {
		return false
	}
	if o.Start != nil && t.Before(*o.Start) {
		return false
	}
	if o.End != nil && !t.Before(*o.End) {
		return false
	}
	return true
}

// Period is the interval between two replies to the same sender.
func (o *OutOfOffice) Period() time.Duration {
	if o == nil || o.PeriodDays <= 0 {
		return DefaultReplyPeriod
	}
	return time.Duration(o.PeriodDays) * 24 * time.Hour
}
