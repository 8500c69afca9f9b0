package api

import (
	"net/http"
	"strconv"

	"postfach/internal/core"
	"postfach/internal/store"
)

// QuarantineRaw is the source of a quarantined message.
type QuarantineRaw struct {
	Raw string `json:"raw"`
}

// mailRoutes are the endpoints of received and sent messages: lists and reads through the
// visibility filter, filing by hand, and the quarantine for admins.
func (a *API) mailRoutes() []Route {
	s := a.core
	return []Route{
		{Method: "GET", Path: "/api/v1/messages", Tag: "messages", Status: 200,
			Summary: "Messages the caller may read, newest first: by mailbox, contact, conversation, or the unassigned ones",
			Query:   []string{"mailbox_id", "contact_id", "thread_id", "unassigned", "before", "limit"},
			Out:     core.MessageList{}, handle: get(func(r *http.Request, act core.Actor) (core.MessageList, error) {
				in, err := messageListQuery(r)
				if err != nil {
					return core.MessageList{}, err
				}
				return s.Messages(r.Context(), act, in)
			})},
		{Method: "GET", Path: "/api/v1/messages/{id}", Tag: "messages", Status: 200,
			Summary: "One message with its source (404 when the caller may not read it)",
			Out:     core.MessageDetail{}, handle: get(withID("id", func(r *http.Request, act core.Actor, id int64) (core.MessageDetail, error) {
				return s.Message(r.Context(), act, id)
			}))},
		{Method: "POST", Path: "/api/v1/messages/{id}/file", Tag: "messages", Status: 200,
			Summary: "File a message at a contact by hand (unassigned mail)",
			In:      core.FileInput{}, Out: store.Message{}, handle: idBody("id", func(r *http.Request, act core.Actor, id int64, in core.FileInput) (store.Message, error) {
				return s.FileMessage(r.Context(), act, id, in)
			})},
		{Method: "GET", Path: "/api/v1/quarantine", Tag: "messages", Status: 200,
			Summary: "Received messages that could not be parsed, kept raw (admins)",
			Out:     []store.QuarantinedMessage{}, handle: get(func(r *http.Request, act core.Actor) ([]store.QuarantinedMessage, error) {
				return s.Quarantine(r.Context(), act)
			})},
		{Method: "GET", Path: "/api/v1/quarantine/{id}", Tag: "messages", Status: 200,
			Summary: "The source of a quarantined message (admins)",
			Out:     QuarantineRaw{}, handle: get(withID("id", func(r *http.Request, act core.Actor, id int64) (QuarantineRaw, error) {
				raw, err := s.QuarantinedMessage(r.Context(), act, id)
				return QuarantineRaw{Raw: string(raw)}, err
			}))},
	}
}

func messageListQuery(r *http.Request) (core.MessageListInput, error) {
	q := r.URL.Query()
	var in core.MessageListInput
	ints := map[string]*int64{"mailbox_id": &in.MailboxID, "contact_id": &in.ContactID, "thread_id": &in.ThreadID, "before": &in.Before}
	for name, dst := range ints {
		if v := q.Get(name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return in, badQuery(name)
			}
			*dst = n
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return in, badQuery("limit")
		}
		in.Limit = n
	}
	if v := q.Get("unassigned"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return in, badQuery("unassigned")
		}
		in.Unassigned = b
	}
	return in, nil
}

func badQuery(name string) error {
	return &core.Error{Status: http.StatusBadRequest, Key: "error.bad_request", Field: name, Params: map[string]string{"detail": name + " has an invalid value"}}
}
