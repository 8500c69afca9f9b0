package core

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/netip"
	"net/url"
	"strings"

	"postfach/internal/netguard"
	"postfach/internal/store"
	"postfach/internal/webhooks"
)

// WebhookInput creates or changes a webhook endpoint (X1). Events lists event names
// (webhooks.Events); nil keeps them on update.
type WebhookInput struct {
	URL         *string  `json:"url,omitempty"`
	Events      []string `json:"events,omitempty"`
	Description *string  `json:"description,omitempty"`
	Active      *bool    `json:"active,omitempty"`
}

// CreatedWebhook is a new endpoint with its signing secret, shown this one time only.
type CreatedWebhook struct {
	webhooks.Endpoint
	Secret string `json:"secret"`
}

// validateWebhook checks the URL and events of an endpoint. A URL whose host is an IP
// literal the operator's policy refuses (loopback, private, metadata) is refused here
// already; host names are checked by the dialer at every delivery, because DNS answers change.
func (s *Service) validateWebhook(v *validator, e *webhooks.Endpoint, in WebhookInput, create bool) {
	if in.URL != nil || create {
		raw := strings.TrimSpace(deref(in.URL))
		e.URL = raw
		u, err := url.Parse(raw)
		switch {
		case raw == "":
			v.add(invalid("url", "error.required", nil))
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" || len(raw) > 2000:
			v.add(invalid("url", "webhook.error.bad_url", nil))
		default:
			host := u.Hostname()
			if _, err := netguard.NormalizeHost(host); err != nil {
				v.add(invalid("url", "webhook.error.bad_url", nil))
			} else if ip, err := netip.ParseAddr(host); err == nil {
				if err := netguard.CheckAddr(ip, s.ConnTest.Policy); err != nil {
					v.add(invalid("url", "webhook.error.forbidden_address", nil))
				}
			}
		}
	}
	if in.Events != nil || create {
		seen := map[string]bool{}
		e.Events = e.Events[:0]
		for _, ev := range in.Events {
			ev = strings.TrimSpace(ev)
			if !webhooks.KnownEvent(ev) {
				v.add(invalid("events", "webhook.error.unknown_event", map[string]string{"value": ev}))
				continue
			}
			if !seen[ev] {
				seen[ev] = true
				e.Events = append(e.Events, ev)
			}
		}
		if len(e.Events) == 0 && len(in.Events) == 0 {
			v.add(invalid("events", "error.required", nil))
		}
	}
	if in.Description != nil {
		e.Description = v.text("description", *in.Description, false, 200)
	}
	if in.Active != nil {
		e.Active = *in.Active
	} else if create {
		e.Active = true
	}
}

// CreateWebhook registers an endpoint of the actor's tenant and returns it with its new
// signing secret, which is stored sealed and never shown again.
func (s *Service) CreateWebhook(ctx context.Context, a Actor, in WebhookInput) (CreatedWebhook, error) {
	tid, err := adminTenant(a)
	if err != nil {
		return CreatedWebhook{}, err
	}
	var v validator
	var e webhooks.Endpoint
	s.validateWebhook(&v, &e, in, true)
	if err := v.err(); err != nil {
		return CreatedWebhook{}, err
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return CreatedWebhook{}, err
	}
	secret := "whsec_" + hex.EncodeToString(b[:])
	if e.SecretSealed, err = s.Secrets.SealString(webhooks.SecretContext(tid), secret); err != nil {
		return CreatedWebhook{}, err
	}
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if e, err = webhooks.CreateEndpoint(ctx, tx, tid, e); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, tid, "webhook.create", idStr("webhook", e.ID), e.URL+" "+strings.Join(e.Events, ","))
	})
	if err != nil {
		return CreatedWebhook{}, fromStore(err, "", "")
	}
	return CreatedWebhook{Endpoint: e, Secret: secret}, nil
}

// Webhooks lists the endpoints of the actor's tenant (without secrets).
func (s *Service) Webhooks(ctx context.Context, a Actor) ([]webhooks.Endpoint, error) {
	tid, err := adminTenant(a)
	if err != nil {
		return nil, err
	}
	var out []webhooks.Endpoint
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		out, err = webhooks.ListEndpoints(ctx, tx, tid)
		return err
	})
	if out == nil {
		out = []webhooks.Endpoint{}
	}
	return out, fromStore(err, "", "")
}

// Webhook reads one endpoint of the actor's tenant.
func (s *Service) Webhook(ctx context.Context, a Actor, id int64) (webhooks.Endpoint, error) {
	tid, err := adminTenant(a)
	if err != nil {
		return webhooks.Endpoint{}, err
	}
	var e webhooks.Endpoint
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		e, err = webhooks.GetEndpoint(ctx, tx, tid, id)
		return err
	})
	return e, fromStore(err, "", "")
}

// UpdateWebhook changes an endpoint's URL, events, description or active flag.
func (s *Service) UpdateWebhook(ctx context.Context, a Actor, id int64, in WebhookInput) (webhooks.Endpoint, error) {
	tid, err := adminTenant(a)
	if err != nil {
		return webhooks.Endpoint{}, err
	}
	var e webhooks.Endpoint
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		if e, err = webhooks.GetEndpoint(ctx, tx, tid, id); err != nil {
			return err
		}
		var v validator
		s.validateWebhook(&v, &e, in, false)
		if err := v.err(); err != nil {
			return err
		}
		if err := webhooks.UpdateEndpoint(ctx, tx, tid, e); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, tid, "webhook.update", idStr("webhook", id), e.URL+" "+strings.Join(e.Events, ","))
	})
	return e, webhookErr(err)
}

// DeleteWebhook removes an endpoint and the events still waiting for it.
func (s *Service) DeleteWebhook(ctx context.Context, a Actor, id int64) error {
	tid, err := adminTenant(a)
	if err != nil {
		return err
	}
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		if err := webhooks.DeleteEndpoint(ctx, tx, tid, id); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, tid, "webhook.delete", idStr("webhook", id), "")
	})
	return fromStore(err, "", "")
}

// WebhookDeliveries lists an endpoint's recent deliveries, newest first.
func (s *Service) WebhookDeliveries(ctx context.Context, a Actor, id int64) ([]webhooks.Delivery, error) {
	tid, err := adminTenant(a)
	if err != nil {
		return nil, err
	}
	var out []webhooks.Delivery
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		if _, err := webhooks.GetEndpoint(ctx, tx, tid, id); err != nil {
			return err
		}
		out, err = webhooks.ListDeliveries(ctx, tx, tid, id, 100)
		return err
	})
	if out == nil {
		out = []webhooks.Delivery{}
	}
	return out, fromStore(err, "", "")
}

// webhookErr keeps validation errors raised inside a transaction as they are.
func webhookErr(err error) error {
	var ce *Error
	var ve *ValidationError
	if errors.As(err, &ce) || errors.As(err, &ve) {
		return err
	}
	return fromStore(err, "", "")
}
