package api

import (
	"net/http"

	"postfach/internal/core"
	"postfach/internal/webhooks"
)

// webhookRoutes are the webhook endpoints of a tenant (X1), for tenant admins. Every id is
// resolved inside the caller's tenant, so another tenant's id is 404. The signing secret is
// in the creation response only.
func (a *API) webhookRoutes() []Route {
	s := a.core
	rt := func(method, path, summary string, status int, in, out any, handle func(*http.Request, core.Actor) (any, error)) Route {
		return Route{Method: method, Path: path, Tag: "webhooks", Summary: summary, Status: status, In: in, Out: out, handle: handle}
	}
	return []Route{
		rt("GET", "/api/v1/webhooks", "List webhook endpoints (secrets never)", 200, nil, []webhooks.Endpoint{},
			get(func(r *http.Request, a core.Actor) ([]webhooks.Endpoint, error) { return s.Webhooks(r.Context(), a) })),
		rt("POST", "/api/v1/webhooks", "Register an endpoint for message.received, message.sent and/or message.bounced; the signing secret is shown once", 201,
			core.WebhookInput{}, core.CreatedWebhook{},
			h(func(r *http.Request, a core.Actor, in core.WebhookInput) (core.CreatedWebhook, error) {
				return s.CreateWebhook(r.Context(), a, in)
			})),
		rt("GET", "/api/v1/webhooks/{id}", "Read a webhook endpoint", 200, nil, webhooks.Endpoint{},
			get(withID("id", func(r *http.Request, a core.Actor, id int64) (webhooks.Endpoint, error) {
				return s.Webhook(r.Context(), a, id)
			}))),
		rt("PATCH", "/api/v1/webhooks/{id}", "Change an endpoint's URL, events, description or active flag", 200, core.WebhookInput{}, webhooks.Endpoint{},
			idBody("id", func(r *http.Request, a core.Actor, id int64, in core.WebhookInput) (webhooks.Endpoint, error) {
				return s.UpdateWebhook(r.Context(), a, id, in)
			})),
		rt("DELETE", "/api/v1/webhooks/{id}", "Delete an endpoint and the events still waiting for it", 204, nil, nil,
			delByID("id", s.DeleteWebhook)),
		rt("GET", "/api/v1/webhooks/{id}/deliveries", "Recent deliveries of an endpoint: state, attempts, last status and error", 200, nil, []webhooks.Delivery{},
			get(withID("id", func(r *http.Request, a core.Actor, id int64) ([]webhooks.Delivery, error) {
				return s.WebhookDeliveries(r.Context(), a, id)
			}))),
	}
}
