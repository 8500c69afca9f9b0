package core

import (
	"context"

	"postfach/internal/store"
)

// GlobalMailboxes lists every mailbox flagged Global, of every tenant (operator only): the
// operator's page of global mailboxes. SMTP secrets stay sealed; the page shows no settings.
func (s *Service) GlobalMailboxes(ctx context.Context, a Actor) ([]store.Mailbox, error) {
	if err := requireOperator(a); err != nil {
		return nil, err
	}
	list, err := s.DB.Read().GlobalMailboxes(ctx)
	if err != nil {
		return nil, fromStore(err, "", "")
	}
	for i := range list {
		list[i].SMTP.PasswordEncrypted = nil
	}
	if list == nil {
		list = []store.Mailbox{}
	}
	return list, nil
}
