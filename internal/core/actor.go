package core

import (
	"fmt"
	"strconv"
)

// ActorKind says who is acting.
type ActorKind string

const (
	ActorOperator ActorKind = "operator"
	ActorAdmin    ActorKind = "admin" // tenant admin
	ActorUser     ActorKind = "user"
	ActorToken    ActorKind = "token" // the host application with an API token: tenant-admin rights
	ActorSystem   ActorKind = "system"
)

// Actor is the authenticated caller of a use case.
type Actor struct {
	Kind       ActorKind
	TenantID   int64 // 0 for operators acting globally
	UserID     int64 // for admins and users
	OperatorID int64
	Name       string // login or token name, for the audit log
	RemoteIP   string
	Lang       string
}

func (a Actor) isOperator() bool { return a.Kind == ActorOperator || a.Kind == ActorSystem }
func (a Actor) isTenantAdmin() bool {
	return a.Kind == ActorAdmin || a.Kind == ActorToken
}

// label is how the audit log names the actor.
func (a Actor) label() string {
	switch a.Kind {
	case ActorOperator:
		return "operator:" + a.Name
	case ActorToken:
		return "token:" + a.Name
	case ActorSystem:
		return "system"
	}
	return fmt.Sprintf("user:%s#%s", a.Name, strconv.FormatInt(a.UserID, 10))
}

// IsOperator reports whether the actor is the operator.
func (a Actor) IsOperator() bool { return a.isOperator() }

// IsTenantAdmin reports whether the actor administers its tenant.
func (a Actor) IsTenantAdmin() bool { return a.isTenantAdmin() }

// requireAdmin lets tenant admins (and tokens) of tenantID through; operators too.
func requireAdmin(a Actor) error {
	if a.isTenantAdmin() || a.isOperator() {
		return nil
	}
	return errForbidden
}

func requireOperator(a Actor) error {
	if a.isOperator() {
		return nil
	}
	return errForbidden
}

// tenantOf is the tenant an actor works in; operators must name one.
func tenantOf(a Actor) (int64, error) {
	if a.TenantID == 0 {
		return 0, &Error{Status: 400, Key: "error.tenant_required"}
	}
	return a.TenantID, nil
}

// adminTenant is the tenant a tenant admin (or the operator inside a tenant) works in.
func adminTenant(a Actor) (int64, error) {
	if err := requireAdmin(a); err != nil {
		return 0, err
	}
	return tenantOf(a)
}
