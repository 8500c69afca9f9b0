package api

import (
	"net/http"
	"strconv"

	"postfach/internal/core"
)

// sendRoutes are the endpoints of sending (M1, X2): queue a message, list the outbound
// queue, and follow one message's delivery with its attempt log.
func (a *API) sendRoutes() []Route {
	s := a.core
	return []Route{
		{Method: "POST", Path: "/api/v1/messages", Tag: "send", Status: http.StatusAccepted,
			Summary: "Send a message: checked against the sender policy, stored and queued before the answer (202). " +
				"An Idempotency-Key header makes retries of the request safe: a repeated key answers with the first message.",
			In: core.SendInput{}, Out: core.SendResult{}, handle: h(func(r *http.Request, act core.Actor, in core.SendInput) (core.SendResult, error) {
				if k := r.Header.Get("Idempotency-Key"); k != "" {
					in.IdempotencyKey = k
				}
				return s.Send(r.Context(), act, in)
			})},
		{Method: "GET", Path: "/api/v1/queue", Tag: "send", Status: 200,
			Summary: "The outbound queue, newest first: queued, sending, sent, deferred (next attempt, last error), failed, refused. " +
				"Admins and tokens see the tenant's, users their own sends",
			Query: []string{"state", "limit"},
			Out:   []core.QueueItem{}, handle: get(func(r *http.Request, act core.Actor) ([]core.QueueItem, error) {
				in := core.QueueInput{State: r.URL.Query().Get("state")}
				if v := r.URL.Query().Get("limit"); v != "" {
					n, err := strconv.Atoi(v)
					if err != nil || n < 1 {
						return nil, badQuery("limit")
					}
					in.Limit = n
				}
				return s.Queue(r.Context(), act, in)
			})},
		{Method: "GET", Path: "/api/v1/messages/{id}/delivery", Tag: "send", Status: 200,
			Summary: "Delivery state of a sent message per recipient, with every attempt and the servers' answers",
			Out:     core.Delivery{}, handle: get(withID("id", func(r *http.Request, act core.Actor, id int64) (core.Delivery, error) {
				return s.MessageDelivery(r.Context(), act, id)
			}))},
		{Method: "GET", Path: "/api/v1/dkim", Tag: "send", Status: 200,
			Summary: "The DKIM TXT record to publish for a domain of the tenant (or, for the operator, the operator's domain); " +
				"the signing key is generated on first use. Mail from verified hosted domains and the operator's domain is signed with it",
			Query: []string{"domain"},
			Out:   core.DKIMRecordView{}, handle: get(func(r *http.Request, act core.Actor) (core.DKIMRecordView, error) {
				return s.DKIMRecord(r.Context(), act, r.URL.Query().Get("domain"))
			})},
	}
}
