package core

import (
	"context"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"postfach/internal/i18n"
	"postfach/internal/policy"
	"postfach/internal/secrets"
	"postfach/internal/signature"
	"postfach/internal/store"
)

// Service bundles what the use cases need. It holds no request state; one Service serves
// every request of a process.
type Service struct {
	DB      *store.DB
	Policy  *policy.Engine
	Secrets *secrets.Box
	Text    *i18n.Catalog
	Log     *slog.Logger

	// InboundDomain is the operator's domain for account addresses ("p14@…", "p14.out@…").
	InboundDomain string
	// SessionTTL is how long a web login lasts without activity.
	SessionTTL time.Duration
	// ConnTest is what connection tests to user-supplied hosts may reach: the zero value
	// refuses every non-public address; the operator's --allow-private ranges go here.
	ConnTest ConnTestNetwork
	// Hosting holds what hosted mailboxes need from the running server (hosted.go).
	Hosting HostingDeps
	// Now is the clock; tests replace it.
	Now func() time.Time

	throttle loginThrottle
	sends    sendBatcher // group commit of concurrent sends (sendbatch.go)
	intake   atomic.Pointer[intakeRef]
	// sanitizer is the signature and template HTML policy, built once per Service.
	sanitizer *signature.Sanitizer
}

// New builds a Service with defaults for the optional parts.
func New(db *store.DB, box *secrets.Box, text *i18n.Catalog, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	return &Service{DB: db, Policy: &policy.Engine{DB: db}, Secrets: box, Text: text, Log: log,
		InboundDomain: "in.postfach.localhost", SessionTTL: 12 * time.Hour, Now: time.Now, sanitizer: signature.NewSanitizer()}
}

// audit appends to the audit log inside the caller's transaction, so the record and the
// change commit together or not at all.
func (s *Service) audit(ctx context.Context, tx *store.Tx, a Actor, tenantID int64, action, target, detail string) error {
	var tid *int64
	if tenantID != 0 {
		tid = &tenantID
	}
	return tx.Audit(ctx, store.AuditEntry{TenantID: tid, Actor: a.label(), Action: action, Target: target, Detail: detail, RemoteIP: a.RemoteIP})
}

func idStr(prefix string, id int64) string { return prefix + ":" + strconv.FormatInt(id, 10) }

// Audit lists a tenant's audit log (admins only).
func (s *Service) Audit(ctx context.Context, a Actor, f store.AuditFilter) ([]store.AuditEntry, error) {
	tid, err := adminTenant(a)
	if err != nil {
		return nil, err
	}
	entries, err := s.DB.Read().AuditLog(ctx, tid, f)
	if err != nil {
		return nil, fromStore(err, "", "")
	}
	if entries == nil {
		entries = []store.AuditEntry{}
	}
	return entries, nil
}

func itoa(n int) string { return strconv.Itoa(n) }
