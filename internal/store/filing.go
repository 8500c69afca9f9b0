package store

import (
	"context"
	"fmt"
	"strings"
)

// ContactIDsByEmails finds the tenant's contacts for a list of addresses in one statement:
// the first contact (lowest id) per address, in the order of the addresses; addresses
// without a contact are left out.
func (tx *Tx) ContactIDsByEmails(ctx context.Context, tenantID int64, emails []string) ([]int64, error) {
	if len(emails) == 0 {
		return nil, nil
	}
	norm := make([]string, len(emails))
	args := []any{tenantID}
	for i, e := range emails {
		norm[i] = NormalizeAddress(e)
		args = append(args, norm[i])
	}
	rows, err := tx.query(ctx, `SELECT email, MIN(id) FROM contacts WHERE tenant_id = ? AND email IN (`+placeholders(len(norm))+`) GROUP BY email`, args...)
	if err != nil {
		return nil, fmt.Errorf("contacts by emails: %w", err)
	}
	type pair struct {
		email string
		id    int64
	}
	got, err := collect(rows, func(s interface{ Scan(...any) error }) (pair, error) {
		var p pair
		return p, s.Scan(&p.email, &p.id)
	})
	if err != nil {
		return nil, fmt.Errorf("contacts by emails: %w", err)
	}
	byEmail := make(map[string]int64, len(got))
	for _, p := range got {
		byEmail[strings.ToLower(p.email)] = p.id
	}
	var out []int64
	seen := map[int64]bool{}
	for _, e := range norm {
		if id, ok := byEmail[strings.ToLower(e)]; ok && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, nil
}

// LinkMessageContacts files a message at each of the contacts (A4), in one statement.
func (tx *Tx) LinkMessageContacts(ctx context.Context, tenantID, messageID int64, contactIDs []int64) error {
	if len(contactIDs) == 0 {
		return nil
	}
	var b strings.Builder
	args := make([]any, 0, 3*len(contactIDs))
	for i, c := range contactIDs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?)")
		args = append(args, tenantID, messageID, c)
	}
	if _, err := tx.exec(ctx, `INSERT INTO message_contacts (tenant_id, message_id, contact_id) VALUES `+b.String()+
		` ON CONFLICT DO NOTHING`, args...); err != nil {
		return fmt.Errorf("link message contacts: %w", err)
	}
	return nil
}

// MessageContactIDs lists the contacts a message is filed at through the link table.
func (tx *Tx) MessageContactIDs(ctx context.Context, tenantID, messageID int64) ([]int64, error) {
	rows, err := tx.query(ctx, `SELECT contact_id FROM message_contacts WHERE tenant_id = ? AND message_id = ? ORDER BY contact_id`, tenantID, messageID)
	if err != nil {
		return nil, fmt.Errorf("message contacts: %w", err)
	}
	return collect(rows, func(s interface{ Scan(...any) error }) (int64, error) {
		var id int64
		return id, s.Scan(&id)
	})
}
