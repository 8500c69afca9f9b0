package api

import (
	"net/http"

	"postfach/internal/core"
	"postfach/internal/store"
)

// DomainInput claims a domain for hosted mailboxes.
type DomainInput struct {
	Domain string `json:"domain"`
}

// PasswordReveal is a hosted mailbox's password, shown once or on demand.
type PasswordReveal struct {
	Password string `json:"password"`
}

// ReauthInput carries the caller's own password for re-authentication (H11).
type ReauthInput struct {
	Password string `json:"password"`
}

// hostedRoutes are the tenant domains (H1) and hosted mailboxes (H2–H11).
func (a *API) hostedRoutes() []Route {
	s := a.core
	rt := func(method, path, summary string, status int, in, out any, handle func(*http.Request, core.Actor) (any, error)) Route {
		return Route{Method: method, Path: path, Tag: "hosted", Summary: summary, Status: status, In: in, Out: out, handle: handle}
	}
	return []Route{
		rt("GET", "/api/v1/domains", "List the tenant's domains with the DNS records to create (verification TXT, MX, SPF, DKIM, DMARC)", 200, nil, []core.DomainView{},
			get(func(r *http.Request, a core.Actor) ([]core.DomainView, error) { return s.TenantDomains(r.Context(), a) })),
		rt("POST", "/api/v1/domains", "Claim a domain; publish the returned postfach-verify TXT record, then verify", 201, DomainInput{}, core.DomainView{},
			h(func(r *http.Request, a core.Actor, in DomainInput) (core.DomainView, error) {
				return s.AddTenantDomain(r.Context(), a, in.Domain)
			})),
		rt("GET", "/api/v1/domains/{id}", "Read a domain with its records", 200, nil, core.DomainView{},
			get(withID("id", func(r *http.Request, a core.Actor, id int64) (core.DomainView, error) {
				return s.TenantDomain(r.Context(), a, id)
			}))),
		rt("POST", "/api/v1/domains/{id}/verify", "Look up the verification TXT record now", 200, nil, core.DomainView{},
			get(withID("id", func(r *http.Request, a core.Actor, id int64) (core.DomainView, error) {
				return s.VerifyTenantDomain(r.Context(), a, id)
			}))),
		rt("DELETE", "/api/v1/domains/{id}", "Remove a domain that carries no hosted mailbox", 204, nil, nil, delByID("id", s.DeleteTenantDomain)),
		rt("GET", "/api/v1/hosted-mailboxes", "List hosted mailboxes", 200, nil, []store.Mailbox{},
			get(func(r *http.Request, a core.Actor) ([]store.Mailbox, error) { return s.HostedMailboxes(r.Context(), a) })),
		rt("POST", "/api/v1/hosted-mailboxes", "Create a hosted mailbox on a verified domain; the generated password is in this answer only", 201, core.HostedInput{}, core.HostedCreated{},
			h(func(r *http.Request, a core.Actor, in core.HostedInput) (core.HostedCreated, error) {
				return s.CreateHostedMailbox(r.Context(), a, in)
			})),
		rt("GET", "/api/v1/hosted-mailboxes/{id}", "Detail: settings, assigned users with history, server names and ports", 200, nil, core.HostedDetail{},
			get(withID("id", func(r *http.Request, a core.Actor, id int64) (core.HostedDetail, error) {
				return s.HostedMailbox(r.Context(), a, id)
			}))),
		rt("PATCH", "/api/v1/hosted-mailboxes/{id}", "Change the e-mail name, VIP and Postfach aktiv", 200, core.HostedInput{}, store.Mailbox{},
			idBody("id", func(r *http.Request, a core.Actor, id int64, in core.HostedInput) (store.Mailbox, error) {
				return s.UpdateHostedMailbox(r.Context(), a, id, in)
			})),
		rt("POST", "/api/v1/hosted-mailboxes/{id}/password/show", "Show the password after re-entering your own (audited)", 200, ReauthInput{}, PasswordReveal{},
			idBody("id", func(r *http.Request, a core.Actor, id int64, in ReauthInput) (PasswordReveal, error) {
				pw, err := s.ShowHostedPassword(r.Context(), a, id, in.Password)
				return PasswordReveal{Password: pw}, err
			})),
		rt("POST", "/api/v1/hosted-mailboxes/{id}/password/regenerate", "Generate a new password; the old one and its open sessions end at once", 200, nil, PasswordReveal{},
			get(withID("id", func(r *http.Request, a core.Actor, id int64) (PasswordReveal, error) {
				pw, err := s.RegenerateHostedPassword(r.Context(), a, id)
				return PasswordReveal{Password: pw}, err
			}))),
		rt("GET", "/api/v1/hosted-mailboxes/{id}/delete-preview", "What deleting the mailbox deletes and keeps (journal-filed mail, mail also delivered to another mailbox), with the confirmation token", 200, nil, core.HostedDeletePreview{},
			get(withID("id", func(r *http.Request, a core.Actor, id int64) (core.HostedDeletePreview, error) {
				return s.HostedDeletePreview(r.Context(), a, id)
			}))),
		rt("POST", "/api/v1/hosted-mailboxes/{id}/delete", "Delete the mailbox with the preview's confirmation token; open IMAP, POP3 and SMTP sessions end", 200, core.HostedDeleteInput{}, store.HostedDeleteCounts{},
			idBody("id", func(r *http.Request, a core.Actor, id int64, in core.HostedDeleteInput) (store.HostedDeleteCounts, error) {
				return s.DeleteHostedMailbox(r.Context(), a, id, in.Confirm)
			})),
		rt("POST", "/api/v1/hosted-mailboxes/{id}/credentials/send", "Send server names, ports, user name and, on explicit choice, the password to an address", 204, core.CredentialsInput{}, nil,
			idBody("id", func(r *http.Request, a core.Actor, id int64, in core.CredentialsInput) (any, error) {
				return nil, s.SendHostedCredentials(r.Context(), a, id, in)
			})),
	}
}
