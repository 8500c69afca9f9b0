package core

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"postfach/internal/mailstore"
	"postfach/internal/store"
)

// The Abwesenheitsnotiz (H3) of a hosted mailbox or mail account, as the UI reads and writes
// it. It lives in the mailbox's settings JSON under "out_of_office" (read by the inbound
// auto-reply); every other key of that JSON belongs to other packages and is kept.

const settingsKeyOutOfOffice = "out_of_office"

// outOfOfficeMailbox reads a mailbox that may have an out-of-office reply.
func outOfOfficeMailbox(ctx context.Context, tx *store.Tx, tid, id int64) (store.Mailbox, error) {
	m, err := tx.Mailbox(ctx, tid, id)
	if err != nil {
		return m, err
	}
	if m.Kind != store.KindHosted && m.Kind != store.KindAccount {
		return m, notFound(fmt.Errorf("mailbox %d has no out-of-office reply", id))
	}
	return m, nil
}

// OutOfOffice reads a mailbox's Abwesenheitsnotiz; a mailbox without one gets the zero value.
func (s *Service) OutOfOffice(ctx context.Context, a Actor, id int64) (mailstore.OutOfOffice, error) {
	tid, err := adminTenant(a)
	if err != nil {
		return mailstore.OutOfOffice{}, err
	}
	m, err := outOfOfficeMailbox(ctx, s.DB.Read(), tid, id)
	if err != nil {
		return mailstore.OutOfOffice{}, fromStore(err, "", "")
	}
	ms, err := mailstore.ParseSettings(m.Settings)
	if err != nil || ms.OutOfOffice == nil {
		return mailstore.OutOfOffice{}, nil
	}
	return *ms.OutOfOffice, nil
}

// SetOutOfOffice validates and stores a mailbox's Abwesenheitsnotiz. Field names carry the
// prefix "ooo." so that a form can mark them.
func (s *Service) SetOutOfOffice(ctx context.Context, a Actor, id int64, o mailstore.OutOfOffice) error {
	tid, err := adminTenant(a)
	if err != nil {
		return err
	}
	var v validator
	o.Subject = v.text("ooo.subject", o.Subject, false, 200)
	if strings.ContainsAny(o.Subject, "\r\n") {
		v.add(invalid("ooo.subject", "error.control_chars", nil))
	}
	o.Text = v.text("ooo.text", o.Text, o.Enabled, 20000)
	if o.PeriodDays < 0 || o.PeriodDays > 365 {
		v.add(invalid("ooo.period_days", "web.ooo.period_range", nil))
	}
	if o.Start != nil && o.End != nil && !o.End.After(*o.Start) {
		v.add(invalid("ooo.end", "web.ooo.end_before_start", nil))
	}
	if err := v.err(); err != nil {
		return err
	}
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		m, err := outOfOfficeMailbox(ctx, tx, tid, id)
		if err != nil {
			return err
		}
		keys := map[string]json.RawMessage{}
		if strings.TrimSpace(m.Settings) != "" {
			if err := json.Unmarshal([]byte(m.Settings), &keys); err != nil {
				return fmt.Errorf("core: mailbox settings: %w", err)
			}
		}
		b, err := json.Marshal(o)
		if err != nil {
			return fmt.Errorf("core: out-of-office: %w", err)
		}
		keys[settingsKeyOutOfOffice] = b
		raw, err := json.Marshal(keys)
		if err != nil {
			return fmt.Errorf("core: mailbox settings: %w", err)
		}
		m.Settings = string(raw)
		m.SMTP.PasswordEncrypted = nil // keep the stored SMTP password
		if err := tx.UpdateMailbox(ctx, tid, m); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, tid, "mailbox.out_of_office", idStr("mailbox", id), fmt.Sprintf("enabled=%t", o.Enabled))
	})
	return fromStore(err, "", "")
}
