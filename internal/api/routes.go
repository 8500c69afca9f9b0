package api

import (
	"context"
	"net/http"
	"strconv"

	"postfach/internal/core"
	"postfach/internal/policy"
	"postfach/internal/signature"
	"postfach/internal/store"
)

// LoginResult answers a login through the API: the session token (also usable as a cookie).
type LoginResult struct {
	Token string `json:"token"`
	Kind  string `json:"kind"`
}

// TokenInput names a new API token.
type TokenInput struct {
	Name string `json:"name"`
}

// PreviewInput previews a signature text for a user (Vorschau).
type PreviewInput struct {
	BodyHTML *string `json:"body_html,omitempty"`
}

// PreviewResult is a rendered signature.
type PreviewResult struct {
	HTML string `json:"html"`
	Text string `json:"text"`
}

func h[In any, Out any](fn func(r *http.Request, a core.Actor, in In) (Out, error)) func(*http.Request, core.Actor) (any, error) {
	return func(r *http.Request, a core.Actor) (any, error) {
		in, err := decode[In](r)
		if err != nil {
			return nil, err
		}
		return fn(r, a, in)
	}
}

func get[Out any](fn func(r *http.Request, a core.Actor) (Out, error)) func(*http.Request, core.Actor) (any, error) {
	return func(r *http.Request, a core.Actor) (any, error) { return fn(r, a) }
}

func del(fn func(r *http.Request, a core.Actor) error) func(*http.Request, core.Actor) (any, error) {
	return func(r *http.Request, a core.Actor) (any, error) { return nil, fn(r, a) }
}

func withID[Out any](name string, fn func(r *http.Request, a core.Actor, id int64) (Out, error)) func(*http.Request, core.Actor) (Out, error) {
	return func(r *http.Request, a core.Actor) (Out, error) {
		id, err := pathID(r, name)
		if err != nil {
			var zero Out
			return zero, err
		}
		return fn(r, a, id)
	}
}

type none struct{}

func (a *API) table() []Route {
	s := a.core
	rt := func(method, path, tag, summary string, status int, in, out any, handle func(*http.Request, core.Actor) (any, error)) Route {
		return Route{Method: method, Path: path, Tag: tag, Summary: summary, Status: status, In: in, Out: out, handle: handle}
	}
	routes := []Route{
		// Sessions
		{Method: "POST", Path: "/api/v1/login", Tag: "auth", Summary: "Log in (tenant empty for the operator); returns a session token", Status: 200, Public: true,
			In: core.LoginInput{}, Out: LoginResult{}, handle: h(func(r *http.Request, _ core.Actor, in core.LoginInput) (LoginResult, error) {
				in.RemoteIP = remoteIP(r)
				tok, a, err := s.Login(r.Context(), in)
				return LoginResult{Token: tok, Kind: string(a.Kind)}, err
			})},

		// Operator: tenants
		rt("GET", "/api/v1/tenants", "tenants", "List tenants (operator)", 200, nil, []store.Tenant{}, get(func(r *http.Request, a core.Actor) ([]store.Tenant, error) {
			return s.Tenants(r.Context(), a)
		})),
		rt("POST", "/api/v1/tenants", "tenants", "Create a tenant with its system mailbox (operator)", 201, core.TenantInput{}, store.Tenant{},
			h(func(r *http.Request, a core.Actor, in core.TenantInput) (store.Tenant, error) {
				return s.CreateTenant(r.Context(), a, in)
			})),
		rt("GET", "/api/v1/tenants/{tenant}", "tenants", "Read a tenant", 200, nil, store.Tenant{}, get(withID("tenant", func(r *http.Request, a core.Actor, id int64) (store.Tenant, error) {
			return s.Tenant(r.Context(), a, id)
		}))),
		rt("PATCH", "/api/v1/tenants/{tenant}", "tenants", "Change a tenant's name, quota and policies (operator)", 200, core.TenantInput{}, store.Tenant{},
			func(r *http.Request, a core.Actor) (any, error) {
				id, err := pathID(r, "tenant")
				if err != nil {
					return nil, err
				}
				in, err := decode[core.TenantInput](r)
				if err != nil {
					return nil, err
				}
				return s.UpdateTenant(r.Context(), a, id, in)
			}),
		rt("DELETE", "/api/v1/tenants/{tenant}", "tenants", "Delete a tenant and all its data (operator)", 204, nil, nil, delByID("tenant", s.DeleteTenant)),
		rt("PATCH", "/api/v1/tenants/{tenant}/mailboxes/{id}", "tenants", "Change a tenant's mailbox as operator (e.g. the Global flag)", 200, core.MailboxInput{}, store.Mailbox{},
			func(r *http.Request, a core.Actor) (any, error) {
				id, err := pathID(r, "id")
				if err != nil {
					return nil, err
				}
				if !a.IsOperator() {
					return nil, &core.Error{Status: http.StatusForbidden, Key: "error.forbidden"}
				}
				in, err := decode[core.MailboxInput](r)
				if err != nil {
					return nil, err
				}
				return s.UpdateMailbox(r.Context(), a, id, in)
			}),

		// Users
		rt("GET", "/api/v1/users", "users", "List users", 200, nil, []store.User{}, get(func(r *http.Request, a core.Actor) ([]store.User, error) { return s.Users(r.Context(), a) })),
		rt("POST", "/api/v1/users", "users", "Create a user", 201, core.UserInput{}, store.User{}, h(func(r *http.Request, a core.Actor, in core.UserInput) (store.User, error) {
			return s.CreateUser(r.Context(), a, in)
		})),
		rt("GET", "/api/v1/users/{id}", "users", "Read a user", 200, nil, store.User{}, get(withID("id", func(r *http.Request, a core.Actor, id int64) (store.User, error) {
			return s.User(r.Context(), a, id)
		}))),
		rt("PATCH", "/api/v1/users/{id}", "users", "Change a user", 200, core.UserInput{}, store.User{}, idBody("id", func(r *http.Request, a core.Actor, id int64, in core.UserInput) (store.User, error) {
			return s.UpdateUser(r.Context(), a, id, in)
		})),
		rt("DELETE", "/api/v1/users/{id}", "users", "Delete a user", 204, nil, nil, delByID("id", s.DeleteUser)),
		rt("GET", "/api/v1/users/{id}/sender-options", "policy", "Sender (Absenderadresse) and reply-to (Antwortadresse) options of a user", 200, nil, policy.Options{},
			get(withID("id", func(r *http.Request, a core.Actor, id int64) (policy.Options, error) {
				return s.SenderOptions(r.Context(), a, id)
			}))),
		{Method: "GET", Path: "/api/v1/users/{id}/explain", Tag: "policy", Summary: "Why may (not) the user use an address as sender or reply-to", Status: 200,
			Query: []string{"address", "role"}, Out: core.Explanation{}, handle: get(withID("id", func(r *http.Request, a core.Actor, id int64) (core.Explanation, error) {
				role := policy.Role(r.URL.Query().Get("role"))
				if role == "" {
					role = policy.RoleSender
				}
				return s.ExplainSender(r.Context(), a, id, r.URL.Query().Get("address"), role)
			}))},
		rt("GET", "/api/v1/me/sender-options", "policy", "The caller's own sender and reply-to options", 200, nil, policy.Options{},
			get(func(r *http.Request, a core.Actor) (policy.Options, error) {
				return s.SenderOptions(r.Context(), a, a.UserID)
			})),
		rt("GET", "/api/v1/users/{id}/pictures", "users", "List a user's pictures (for @Bild@)", 200, nil, []store.Picture{},
			get(withID("id", func(r *http.Request, a core.Actor, id int64) ([]store.Picture, error) {
				return s.Pictures(r.Context(), a, id)
			}))),
		rt("PUT", "/api/v1/users/{id}/pictures/{order}", "users", "Upload a picture (raw image body)", 200, nil, store.Picture{},
			func(r *http.Request, a core.Actor) (any, error) {
				id, err := pathID(r, "id")
				if err != nil {
					return nil, err
				}
				order, err := strconv.Atoi(r.PathValue("order"))
				if err != nil {
					return nil, &core.Error{Status: http.StatusNotFound, Key: "error.not_found"}
				}
				data, err := readAll(r, 2<<20+1)
				if err != nil {
					return nil, err
				}
				return s.PutPicture(r.Context(), a, id, core.PictureInput{Order: order, Data: data})
			}),
		rt("DELETE", "/api/v1/users/{id}/pictures/{order}", "users", "Delete a picture", 204, nil, nil, del(func(r *http.Request, a core.Actor) error {
			id, err := pathID(r, "id")
			if err != nil {
				return err
			}
			order, err := strconv.Atoi(r.PathValue("order"))
			if err != nil {
				return &core.Error{Status: http.StatusNotFound, Key: "error.not_found"}
			}
			return s.DeletePicture(r.Context(), a, id, order)
		})),

		// Groups
		rt("GET", "/api/v1/groups", "groups", "List user groups", 200, nil, []store.Group{}, get(func(r *http.Request, a core.Actor) ([]store.Group, error) { return s.Groups(r.Context(), a) })),
		rt("POST", "/api/v1/groups", "groups", "Create a user group", 201, core.GroupInput{}, store.Group{}, h(func(r *http.Request, a core.Actor, in core.GroupInput) (store.Group, error) {
			return s.CreateGroup(r.Context(), a, in)
		})),
		rt("GET", "/api/v1/groups/{id}", "groups", "Read a group", 200, nil, store.Group{}, get(withID("id", func(r *http.Request, a core.Actor, id int64) (store.Group, error) {
			return s.Group(r.Context(), a, id)
		}))),
		rt("PATCH", "/api/v1/groups/{id}", "groups", "Rename a group or set its members", 200, core.GroupInput{}, store.Group{}, idBody("id", func(r *http.Request, a core.Actor, id int64, in core.GroupInput) (store.Group, error) {
			return s.UpdateGroup(r.Context(), a, id, in)
		})),
		rt("DELETE", "/api/v1/groups/{id}", "groups", "Delete a group", 204, nil, nil, delByID("id", s.DeleteGroup)),
		rt("PUT", "/api/v1/groups/{id}/members/{user}", "groups", "Add a user to a group", 204, nil, nil, delByIDs("id", "user", s.AddGroupMember)),
		rt("DELETE", "/api/v1/groups/{id}/members/{user}", "groups", "Remove a user from a group", 204, nil, nil, delByIDs("id", "user", s.RemoveGroupMember)),

		// Mailboxes
		rt("GET", "/api/v1/mailboxes", "mailboxes", "List the tenant's mailboxes, the global ones and the quota", 200, nil, core.MailboxList{},
			get(func(r *http.Request, a core.Actor) (core.MailboxList, error) { return s.Mailboxes(r.Context(), a) })),
		rt("POST", "/api/v1/mailboxes", "mailboxes", "Create an additional mailbox (Zusätzliches Postfach), within the quota", 201, core.MailboxInput{}, store.Mailbox{},
			h(func(r *http.Request, a core.Actor, in core.MailboxInput) (store.Mailbox, error) {
				return s.CreateMailbox(r.Context(), a, in)
			})),
		rt("GET", "/api/v1/mailboxes/{id}", "mailboxes", "Read a mailbox (the SMTP password is never returned)", 200, nil, store.Mailbox{},
			get(withID("id", func(r *http.Request, a core.Actor, id int64) (store.Mailbox, error) {
				return s.Mailbox(r.Context(), a, id)
			}))),
		rt("PATCH", "/api/v1/mailboxes/{id}", "mailboxes", "Change a mailbox; smtp.password is write-only", 200, core.MailboxInput{}, store.Mailbox{},
			idBody("id", func(r *http.Request, a core.Actor, id int64, in core.MailboxInput) (store.Mailbox, error) {
				return s.UpdateMailbox(r.Context(), a, id, in)
			})),
		rt("DELETE", "/api/v1/mailboxes/{id}", "mailboxes", "Delete an additional mailbox", 204, nil, nil, delByID("id", s.DeleteMailbox)),
		rt("GET", "/api/v1/mailboxes/{id}/grants", "mailboxes", "Who may use the mailbox (Benutzerrechte), now and before", 200, nil, core.GrantList{},
			get(withID("id", func(r *http.Request, a core.Actor, id int64) (core.GrantList, error) {
				return s.Grants(r.Context(), a, id)
			}))),
		rt("POST", "/api/v1/mailboxes/{id}/grants", "mailboxes", "Grant a user or group the use of the mailbox", 201, core.GrantInput{}, store.Grant{},
			idBody("id", func(r *http.Request, a core.Actor, id int64, in core.GrantInput) (store.Grant, error) {
				return s.AddGrant(r.Context(), a, id, in)
			})),
		rt("DELETE", "/api/v1/mailboxes/{id}/grants/{grant}", "mailboxes", "End a grant (its history stays)", 204, nil, nil, delByIDs("id", "grant", s.EndGrant)),

		// Templates
		rt("GET", "/api/v1/templates", "templates", "List templates (Vorlagen)", 200, nil, []store.Template{}, get(func(r *http.Request, a core.Actor) ([]store.Template, error) {
			return s.Templates(r.Context(), a)
		})),
		rt("POST", "/api/v1/templates", "templates", "Create a template with preselected sender and reply-to", 201, core.TemplateInput{}, store.Template{},
			h(func(r *http.Request, a core.Actor, in core.TemplateInput) (store.Template, error) {
				return s.CreateTemplate(r.Context(), a, in)
			})),
		rt("GET", "/api/v1/templates/{id}", "templates", "Read a template", 200, nil, store.Template{}, get(withID("id", func(r *http.Request, a core.Actor, id int64) (store.Template, error) {
			return s.Template(r.Context(), a, id)
		}))),
		rt("PATCH", "/api/v1/templates/{id}", "templates", "Change a template", 200, core.TemplateInput{}, store.Template{},
			idBody("id", func(r *http.Request, a core.Actor, id int64, in core.TemplateInput) (store.Template, error) {
				return s.UpdateTemplate(r.Context(), a, id, in)
			})),
		rt("DELETE", "/api/v1/templates/{id}", "templates", "Delete a template", 204, nil, nil, delByID("id", s.DeleteTemplate)),

		// Signatures
		rt("GET", "/api/v1/signatures", "signatures", "List signatures (general and per user)", 200, nil, []store.Signature{},
			get(func(r *http.Request, a core.Actor) ([]store.Signature, error) { return s.Signatures(r.Context(), a) })),
		rt("PUT", "/api/v1/signatures", "signatures", "Set the general signature (user_id empty) or a user's own", 200, core.SignatureInput{}, store.Signature{},
			h(func(r *http.Request, a core.Actor, in core.SignatureInput) (store.Signature, error) {
				return s.PutSignature(r.Context(), a, in)
			})),
		rt("POST", "/api/v1/users/{id}/signature-preview", "signatures", "Preview the signature with the user's real data (Vorschau)", 200, PreviewInput{}, PreviewResult{},
			idBody("id", func(r *http.Request, a core.Actor, id int64, in PreviewInput) (PreviewResult, error) {
				var res signature.Rendered
				res, err := s.SignaturePreview(r.Context(), a, id, in.BodyHTML)
				return PreviewResult{HTML: res.HTML, Text: res.Text}, err
			})),

		// Contacts
		rt("GET", "/api/v1/contacts", "contacts", "List contacts", 200, nil, []store.Contact{}, get(func(r *http.Request, a core.Actor) ([]store.Contact, error) { return s.Contacts(r.Context(), a) })),
		rt("POST", "/api/v1/contacts", "contacts", "Create a contact (customer record)", 201, core.ContactInput{}, store.Contact{},
			h(func(r *http.Request, a core.Actor, in core.ContactInput) (store.Contact, error) {
				return s.CreateContact(r.Context(), a, in)
			})),
		rt("GET", "/api/v1/contacts/{id}", "contacts", "Read a contact", 200, nil, store.Contact{}, get(withID("id", func(r *http.Request, a core.Actor, id int64) (store.Contact, error) {
			return s.Contact(r.Context(), a, id)
		}))),
		rt("PATCH", "/api/v1/contacts/{id}", "contacts", "Change a contact", 200, core.ContactInput{}, store.Contact{},
			idBody("id", func(r *http.Request, a core.Actor, id int64, in core.ContactInput) (store.Contact, error) {
				return s.UpdateContact(r.Context(), a, id, in)
			})),
		rt("DELETE", "/api/v1/contacts/{id}", "contacts", "Delete a contact", 204, nil, nil, delByID("id", s.DeleteContact)),

		// API tokens and audit
		rt("GET", "/api/v1/api-tokens", "admin", "List API tokens (never the secrets)", 200, nil, []store.APIToken{},
			get(func(r *http.Request, a core.Actor) ([]store.APIToken, error) { return s.APITokens(r.Context(), a) })),
		rt("POST", "/api/v1/api-tokens", "admin", "Create an API token; the secret is shown once", 201, TokenInput{}, core.APITokenCreated{},
			h(func(r *http.Request, a core.Actor, in TokenInput) (core.APITokenCreated, error) {
				return s.CreateAPIToken(r.Context(), a, in.Name)
			})),
		rt("DELETE", "/api/v1/api-tokens/{id}", "admin", "Revoke an API token", 204, nil, nil, delByID("id", s.DeleteAPIToken)),
		{Method: "GET", Path: "/api/v1/audit", Tag: "admin", Summary: "The tenant's audit log, newest first", Status: 200, Query: []string{"action", "actor", "limit"},
			Out: []store.AuditEntry{}, handle: get(func(r *http.Request, a core.Actor) ([]store.AuditEntry, error) {
				q := r.URL.Query()
				limit, _ := strconv.Atoi(q.Get("limit"))
				return s.Audit(r.Context(), a, store.AuditFilter{Action: q.Get("action"), Actor: q.Get("actor"), Limit: limit})
			})},
	}
	routes = append(routes, a.mailRoutes()...)
	routes = append(routes, a.accountsRoutes()...)
	routes = append(routes, a.sendRoutes()...)
	routes = append(routes, a.hostedRoutes()...)
	routes = append(routes, a.webhookRoutes()...)
	routes = append(routes, a.fetchRoutes()...)
	return routes
}

// delByID is a handler for DELETE-like routes that take one id and answer 204.
func delByID(name string, fn func(ctx context.Context, a core.Actor, id int64) error) func(*http.Request, core.Actor) (any, error) {
	return del(func(r *http.Request, a core.Actor) error {
		id, err := pathID(r, name)
		if err != nil {
			return err
		}
		return fn(r.Context(), a, id)
	})
}

// delByIDs is delByID for routes with a parent and a child id.
func delByIDs(parent, child string, fn func(ctx context.Context, a core.Actor, parentID, childID int64) error) func(*http.Request, core.Actor) (any, error) {
	return del(func(r *http.Request, a core.Actor) error {
		p, err := pathID(r, parent)
		if err != nil {
			return err
		}
		c, err := pathID(r, child)
		if err != nil {
			return err
		}
		return fn(r.Context(), a, p, c)
	})
}

func idBody[In any, Out any](name string, fn func(r *http.Request, a core.Actor, id int64, in In) (Out, error)) func(*http.Request, core.Actor) (any, error) {
	return func(r *http.Request, a core.Actor) (any, error) {
		id, err := pathID(r, name)
		if err != nil {
			return nil, err
		}
		in, err := decode[In](r)
		if err != nil {
			return nil, err
		}
		return fn(r, a, id, in)
	}
}
