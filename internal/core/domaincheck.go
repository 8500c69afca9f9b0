package core

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"postfach/internal/dnscheck"
	"postfach/internal/store"
)

// Domain health of the tenant's sending domains (A8). The DNS work runs in the server's
// background loop (RunDomainChecks), which owns the resolver and the operator's SPF
// include; the use cases here read the stored results in the caller's language and mark a
// domain as due when a user asks for a check now. Several instances share the work through
// a lease on each row.

// DomainSummary is the account list's "SPF" column: the headline of the last check.
type DomainSummary struct {
	Domain    string `json:"domain"`
	Outcome   string `json:"outcome"` // a dnscheck outcome; empty until the first check ran
	Message   string `json:"message"` // the headline in the caller's language
	CheckedAt int64  `json:"checked_at"`
	Pending   bool   `json:"pending"` // a check is due and will run shortly
}

// DomainReport is the account's "Domainkonfiguration": the whole last check, rendered.
type DomainReport struct {
	DomainSummary
	Findings []string         `json:"findings"` // every problem, most severe first
	SPF      DomainSection    `json:"spf"`
	MX       DomainSection    `json:"mx"`
	DKIM     DomainSection    `json:"dkim"`
	DMARC    DomainSection    `json:"dmarc"`
	Raw      *dnscheck.Report `json:"raw,omitempty"` // structured data (keys, records) for the UI's details
}

// DomainSection is one part of the report with its one line of advice.
type DomainSection struct {
	Status    string `json:"status"`
	Record    string `json:"record,omitempty"`
	Suggested string `json:"suggested,omitempty"` // the record to publish instead
	Advice    string `json:"advice"`
}

func (s *Service) domainSummary(d store.DomainCheck, lang string) DomainSummary {
	sum := DomainSummary{Domain: d.Domain, Outcome: d.Outcome, CheckedAt: d.CheckedAt}
	sum.Pending = d.Outcome == "" || d.NextCheckAt == 0
	if d.Report == "" {
		sum.Message = s.Text.T(lang, "account.domain.pending", map[string]string{"domain": d.Domain})
		return sum
	}
	var r dnscheck.Report
	if err := json.Unmarshal([]byte(d.Report), &r); err != nil {
		sum.Message = s.Text.T(lang, "account.domain.pending", map[string]string{"domain": d.Domain})
		return sum
	}
	sum.Message = r.Message().Text(lang)
	return sum
}

func (s *Service) domainReport(d store.DomainCheck, lang string) DomainReport {
	out := DomainReport{DomainSummary: s.domainSummary(d, lang), Findings: []string{}}
	var r dnscheck.Report
	if d.Report == "" || json.Unmarshal([]byte(d.Report), &r) != nil {
		return out
	}
	for _, f := range r.Findings {
		out.Findings = append(out.Findings, f.Text(lang))
	}
	out.SPF = DomainSection{Status: string(r.SPF.Status), Record: r.SPF.Record, Suggested: r.SPF.Suggested, Advice: r.SPF.Advice.Text(lang)}
	mx := DomainSection{Status: string(r.MX.Status), Advice: r.MX.Advice.Text(lang)}
	for i, h := range r.MX.Hosts {
		if i > 0 {
			mx.Record += ", "
		}
		mx.Record += h.Host
	}
	out.MX = mx
	out.DKIM = DomainSection{Status: string(r.DKIM.Status), Advice: r.DKIM.Advice.Text(lang)}
	for _, sel := range r.DKIM.Selectors {
		if sel.Suggested != "" {
			out.DKIM.Record, out.DKIM.Suggested = sel.Name, sel.Suggested
			break
		}
	}
	out.DMARC = DomainSection{Status: string(r.DMARC.Status), Record: r.DMARC.Record, Suggested: r.DMARC.Suggested, Advice: r.DMARC.Advice.Text(lang)}
	out.Raw = &r
	return out
}

// AccountDomainReport is the account's Domainkonfiguration from the last stored check.
func (s *Service) AccountDomainReport(ctx context.Context, a Actor, id int64) (DomainReport, error) {
	if err := requireAdmin(a); err != nil {
		return DomainReport{}, err
	}
	tid, err := tenantOf(a)
	if err != nil {
		return DomainReport{}, err
	}
	tx := s.DB.Read()
	m, err := accountMailbox(ctx, tx, tid, id)
	if err != nil {
		return DomainReport{}, fromStore(err, "", "")
	}
	d, err := tx.DomainCheck(ctx, tid, AccountDomain(m.Address))
	if err != nil {
		// No row yet (an account created before the check table existed): not an error.
		d = store.DomainCheck{Domain: AccountDomain(m.Address)}
	}
	return s.domainReport(d, a.Lang), nil
}

// RequestDomainCheck marks the account's domain as due; the background loop checks it within
// seconds. The answer is the stored state with Pending set.
func (s *Service) RequestDomainCheck(ctx context.Context, a Actor, id int64) (DomainReport, error) {
	if err := requireAdmin(a); err != nil {
		return DomainReport{}, err
	}
	tid, err := tenantOf(a)
	if err != nil {
		return DomainReport{}, err
	}
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		m, err := accountMailbox(ctx, tx, tid, id)
		if err != nil {
			return err
		}
		domain := AccountDomain(m.Address)
		if err := tx.EnsureDomainCheck(ctx, tid, domain); err != nil {
			return err
		}
		if err := tx.RequestDomainCheck(ctx, tid, domain); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, tid, "domaincheck.request", idStr("mailbox", id), domain)
	})
	if err != nil {
		return DomainReport{}, fromStore(err, "", "")
	}
	return s.AccountDomainReport(ctx, a, id)
}

// SyncDomainChecks makes sure every sending domain of every account has a check row and
// drops the rows of domains no account uses any more.
func (s *Service) SyncDomainChecks(ctx context.Context) error {
	return s.DB.InTx(ctx, func(tx *store.Tx) error {
		accounts, err := tx.AccountMailboxes(ctx)
		if err != nil {
			return err
		}
		inUse := map[int64]map[string]bool{}
		for _, m := range accounts {
			d := AccountDomain(m.Address)
			if inUse[m.TenantID] == nil {
				inUse[m.TenantID] = map[string]bool{}
			}
			if !inUse[m.TenantID][d] {
				inUse[m.TenantID][d] = true
				if err := tx.EnsureDomainCheck(ctx, m.TenantID, d); err != nil {
					return err
				}
			}
		}
		_, err = tx.PruneDomainChecks(ctx, inUse)
		return err
	})
}

// DomainCheckRun configures one round of RunDomainChecks.
type DomainCheckRun struct {
	Checker     *dnscheck.Checker
	Limit       int           // rows per round; default 200
	Concurrency int           // checks in flight; default 8
	Interval    time.Duration // until a checked domain is due again; default 6 h
	Retry       time.Duration // after a temporary DNS failure on our side; default 10 min
	Lease       time.Duration // how long a claimed row is ours; default 5 min
}

// RunDomainChecks claims the due checks, runs them and stores the results. It returns how
// many domains it checked.
func (s *Service) RunDomainChecks(ctx context.Context, run DomainCheckRun) (int, error) {
	if run.Limit <= 0 {
		run.Limit = 200
	}
	if run.Concurrency <= 0 {
		run.Concurrency = 8
	}
	if run.Interval <= 0 {
		run.Interval = 6 * time.Hour
	}
	if run.Retry <= 0 {
		run.Retry = 10 * time.Minute
	}
	if run.Lease <= 0 {
		run.Lease = 5 * time.Minute
	}
	var due []store.DomainCheck
	err := s.DB.InTx(ctx, func(tx *store.Tx) error {
		var err error
		due, err = tx.ClaimDueDomainChecks(ctx, run.Limit, run.Lease.Milliseconds())
		return err
	})
	if err != nil || len(due) == 0 {
		return 0, err
	}
	domains := make([]string, len(due))
	for i, d := range due {
		domains[i] = d.Domain
	}
	reports := run.Checker.CheckMany(ctx, domains, run.Concurrency)
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		for i, r := range reports {
			b, err := json.Marshal(r)
			if err != nil {
				return err
			}
			next := run.Interval
			if r.Outcome == dnscheck.OutcomeTemporaryFailure {
				next = run.Retry
			}
			err = tx.SaveDomainCheck(ctx, due[i].ID, string(r.Outcome), string(b), tx.Now()+next.Milliseconds())
			if err != nil && !errors.Is(err, store.ErrNotFound) { // pruned meanwhile: nothing to store
				return err
			}
		}
		return nil
	})
	return len(due), err
}
