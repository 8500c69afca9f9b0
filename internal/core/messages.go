package core

import (
	"context"
	"net/http"

	"postfach/internal/mailstore"
	"postfach/internal/store"
)

// MessageListInput narrows a message list: by mailbox, by contact, by conversation, or the
// unassigned mail (A5). Before pages backwards by id.
type MessageListInput struct {
	MailboxID  int64 `json:"mailbox_id,omitempty"`
	ContactID  int64 `json:"contact_id,omitempty"`
	ThreadID   int64 `json:"thread_id,omitempty"`
	Unassigned bool  `json:"unassigned,omitempty"`
	Before     int64 `json:"before,omitempty"`
	Limit      int   `json:"limit,omitempty"`
}

// MessageList is one page of messages with the total the reader may see.
type MessageList struct {
	Messages []store.Message `json:"messages"`
	Total    int             `json:"total"`
}

// MessageDetail is one message with its raw source.
type MessageDetail struct {
	store.Message
	Raw string `json:"raw"`
}

// FileInput names the contact a message is filed at by hand.
type FileInput struct {
	ContactID int64 `json:"contact_id"`
}

// ErrOperatorReadsNoMail refuses the operator the content of a tenant's mail: the operator
// runs the service and may work inside a tenant's administration, but reading its mail is
// for the tenant's own people (privacy; see docs/architecture.md).
var ErrOperatorReadsNoMail = &Error{Status: http.StatusForbidden, Key: "error.operator_reads_no_mail"}

// viewer maps an actor to the visibility filter's viewer: people always get the filter;
// the host application's API token reads the whole tenant.
func viewer(a Actor) (mailstore.Viewer, error) {
	if a.isOperator() {
		return mailstore.Viewer{}, ErrOperatorReadsNoMail
	}
	tid, err := tenantOf(a)
	if err != nil {
		return mailstore.Viewer{}, err
	}
	switch a.Kind {
	case ActorToken:
		return mailstore.Viewer{TenantID: tid, Unfiltered: true}, nil
	case ActorUser, ActorAdmin:
		return mailstore.Viewer{TenantID: tid, UserID: a.UserID}, nil
	}
	return mailstore.Viewer{}, errForbidden
}

// MessageMailboxes names the mailboxes of messages the actor may read (id → address), for
// readers who may not list the tenant's mailboxes; see mailstore.MailboxNames.
func (s *Service) MessageMailboxes(ctx context.Context, a Actor, messageIDs []int64) (map[int64]string, error) {
	v, err := viewer(a)
	if err != nil {
		return nil, err
	}
	names, err := mailstore.MailboxNames(ctx, s.DB.Read(), v, messageIDs)
	if err != nil {
		return nil, fromStore(err, "", "")
	}
	return names, nil
}

// Messages lists the messages the actor may read.
func (s *Service) Messages(ctx context.Context, a Actor, in MessageListInput) (MessageList, error) {
	v, err := viewer(a)
	if err != nil {
		return MessageList{}, err
	}
	f := store.MessageFilter{MailboxID: in.MailboxID, ContactID: in.ContactID, ThreadID: in.ThreadID, Unassigned: in.Unassigned, BeforeID: in.Before, Limit: in.Limit}
	if f.Limit < 0 || f.Limit > 500 {
		return MessageList{}, invalid("limit", "error.inbound.limit", nil)
	}
	out := MessageList{Messages: []store.Message{}}
	rd := s.DB.Read()
	list, err := mailstore.List(ctx, rd, v, f)
	if err != nil {
		return out, fromStore(err, "", "")
	}
	count := f
	count.BeforeID = 0
	total, err := mailstore.Count(ctx, rd, v, count)
	if err != nil {
		return out, fromStore(err, "", "")
	}
	if list != nil {
		out.Messages = list
	}
	out.Total = total
	return out, nil
}

// Message reads one message; a message the actor may not read is "not found".
func (s *Service) Message(ctx context.Context, a Actor, id int64) (MessageDetail, error) {
	v, err := viewer(a)
	if err != nil {
		return MessageDetail{}, err
	}
	m, err := mailstore.Read(ctx, s.DB.Read(), v, id)
	if err != nil {
		return MessageDetail{}, fromStore(err, "", "")
	}
	raw := string(m.Raw)
	m.Raw = nil
	return MessageDetail{Message: m, Raw: raw}, nil
}

// FileMessage files a message the actor may read at a contact by hand (A5); the reason
// names who did it.
func (s *Service) FileMessage(ctx context.Context, a Actor, id int64, in FileInput) (store.Message, error) {
	v, err := viewer(a)
	if err != nil {
		return store.Message{}, err
	}
	if in.ContactID <= 0 {
		return store.Message{}, invalid("contact_id", "error.inbound.contact_required", nil)
	}
	var out store.Message
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		m, err := mailstore.FileAtContact(ctx, tx, v, id, in.ContactID, a.label())
		if err != nil {
			return err
		}
		out = m
		return s.audit(ctx, tx, a, v.TenantID, "message.file", idStr("message", id), idStr("contact", in.ContactID))
	})
	return out, fromStore(err, "", "")
}

// Quarantine lists the tenant's messages that could not be parsed (admins only).
func (s *Service) Quarantine(ctx context.Context, a Actor) ([]store.QuarantinedMessage, error) {
	if err := requireAdmin(a); err != nil {
		return nil, err
	}
	tid, err := tenantOf(a)
	if err != nil {
		return nil, err
	}
	list, err := s.DB.Read().QuarantineList(ctx, tid, 500)
	if err != nil {
		return nil, fromStore(err, "", "")
	}
	if list == nil {
		list = []store.QuarantinedMessage{}
	}
	return list, nil
}

// QuarantinedMessage returns one quarantined message with its raw bytes (admins only; the
// operator sees the list but not the content).
func (s *Service) QuarantinedMessage(ctx context.Context, a Actor, id int64) ([]byte, error) {
	if err := requireAdmin(a); err != nil {
		return nil, err
	}
	if a.isOperator() {
		return nil, ErrOperatorReadsNoMail
	}
	tid, err := tenantOf(a)
	if err != nil {
		return nil, err
	}
	q, err := s.DB.Read().QuarantinedRaw(ctx, tid, id)
	if err != nil {
		return nil, fromStore(err, "", "")
	}
	return q.Raw, nil
}
