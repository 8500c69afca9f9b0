package server

import (
	"context"
	"net"
	"time"

	"postfach/internal/core"
	"postfach/internal/dnscheck"
)

// Domain-check loop timings: how often due rows are looked for (a user's "check now" is
// answered within this), and how often the set of domains is synchronised with the accounts.
const (
	domainCheckPoll = 2 * time.Second
	domainCheckSync = 10 * time.Minute
)

// StartDomainChecks runs the periodic health check of the tenants' sending domains (A8) in
// the background until ctx ends; Close waits for the round in flight. Every instance may run
// it: rows are leased, so each domain is checked by one instance at a time.
func (s *Server) StartDomainChecks(ctx context.Context) {
	checker := dnscheck.NewChecker(net.DefaultResolver, dnscheck.Config{
		SPFInclude:       s.Config.SPFInclude,
		ReturnPathDomain: s.Config.InboundDomain,
	})
	run := core.DomainCheckRun{Checker: checker}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		poll := time.NewTicker(domainCheckPoll)
		defer poll.Stop()
		var lastSync time.Time
		for {
			if time.Since(lastSync) >= domainCheckSync {
				if err := s.Core.SyncDomainChecks(ctx); err != nil && ctx.Err() == nil {
					s.Log.Warn("domain checks: sync failed", "err", err)
				}
				lastSync = time.Now()
			}
			if n, err := s.Core.RunDomainChecks(ctx, run); err != nil && ctx.Err() == nil {
				s.Log.Warn("domain checks failed", "err", err)
			} else if n > 0 {
				s.Log.Debug("domains checked", "count", n)
			}
			select {
			case <-ctx.Done():
				return
			case <-poll.C:
			}
		}
	}()
}
