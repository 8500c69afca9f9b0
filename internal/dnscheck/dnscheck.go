// Package dnscheck owns the domain health check of sending domains: whether
// a domain resolves, has MX records, authorizes our servers by SPF, publishes
// our DKIM key and what its DMARC policy does to our mail. It returns a
// structured Report whose user-facing texts are keys with parameters plus a
// German and English catalog (messages.go); the German texts of the three
// classic outcomes are those users already know from the manuals.
//
// The package only reads DNS through the Resolver it is given; it stores
// nothing and dials nothing else.
package dnscheck

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// Config is the operator's side of the check.
type Config struct {
	// SPFInclude is the domain customers include in their SPF record, e.g.
	// "_spf.postfach.example". Empty disables the include requirement.
	SPFInclude string
	// SendingIPs are the public addresses of the system transport; each is
	// evaluated against the domain's SPF policy.
	SendingIPs []netip.Addr
	// ReturnPathDomain is the domain of our envelope senders (the outbound
	// addresses), used to tell whether SPF aligns for DMARC.
	ReturnPathDomain string
	// DKIMSelectors are the selectors we sign the domain's mail with.
	DKIMSelectors []string
	// DKIMPublicKeys maps a selector to our public key as published in p=
	// (see DKIMPublicKeyBytes); optional, enables the mismatch check.
	DKIMPublicKeys map[string][]byte
	// Timeout bounds one Check; 10 s when zero.
	Timeout time.Duration
	// Now is the clock for Report.CheckedAt; time.Now when nil.
	Now func() time.Time
}

// Outcome is the headline verdict of a Report.
type Outcome string

const (
	OutcomeOK               Outcome = "ok"
	OutcomeSPFNeedsInclude  Outcome = "spf_needs_include" // seed: SPF record must be adapted
	OutcomeSPFMissing       Outcome = "spf_missing"
	OutcomeNoMX             Outcome = "no_mx"       // seed: no MX records
	OutcomeUnreachable      Outcome = "unreachable" // seed: domain does not resolve
	OutcomeTemporaryFailure Outcome = "temporary_failure"
	OutcomeInvalidDomain    Outcome = "invalid_domain"
)

// messageKey is the headline text of an outcome.
func (o Outcome) messageKey() MessageKey {
	switch o {
	case OutcomeOK:
		return MsgOK
	case OutcomeSPFNeedsInclude:
		return MsgSPFNeedsInclude
	case OutcomeSPFMissing:
		return MsgSPFMissing
	case OutcomeNoMX:
		return MsgNoMX
	case OutcomeUnreachable:
		return MsgUnreachable
	case OutcomeTemporaryFailure:
		return MsgTemporaryFailure
	default:
		return MsgInvalidDomain
	}
}

// MXStatus is the MX verdict.
type MXStatus string

const (
	MXOK         MXStatus = "ok"
	MXMissing    MXStatus = "missing"
	MXNull       MXStatus = "null" // RFC 7505 "MX 0 ." : the domain accepts no mail
	MXTemporary  MXStatus = "temporary"
	MXNotChecked MXStatus = "not_checked"
)

// MXHost is one MX record.
type MXHost struct {
	Host       string `json:"host"`
	Preference uint16 `json:"preference"`
}

// MXResult is the MX part of a Report.
type MXResult struct {
	Status MXStatus `json:"status"`
	Hosts  []MXHost `json:"hosts,omitempty"`
	Advice Message  `json:"advice"`
}

// Report is the result of checking one domain.
type Report struct {
	Domain      string        `json:"domain"`       // as entered, lower case, for display
	ASCIIDomain string        `json:"ascii_domain"` // A-label form queried
	CheckedAt   time.Time     `json:"checked_at"`
	Duration    time.Duration `json:"duration"`
	Outcome     Outcome       `json:"outcome"`
	// Findings holds the headline and every further problem, most severe
	// first; Findings[0] is always the Outcome's message.
	Findings []Message   `json:"findings"`
	SPF      SPFResult   `json:"spf"`
	MX       MXResult    `json:"mx"`
	DKIM     DKIMResult  `json:"dkim"`
	DMARC    DMARCResult `json:"dmarc"`
	// Error is a diagnostic for logs, never shown to users.
	Error string `json:"error,omitempty"`
}

// Message is the headline message of the report.
func (r Report) Message() Message {
	if len(r.Findings) == 0 {
		return newMessage(r.Outcome.messageKey(), r.Domain)
	}
	return r.Findings[0]
}

// Checker runs domain checks. It is safe for concurrent use.
type Checker struct {
	resolver Resolver
	cfg      Config
}

// NewChecker returns a Checker that asks r. A *net.Resolver fits; tests
// point one at a mock DNS server.
func NewChecker(r Resolver, cfg Config) *Checker {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.SPFInclude = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(cfg.SPFInclude)), ".")
	cfg.SendingIPs = slices.Clone(cfg.SendingIPs)
	cfg.DKIMSelectors = slices.Clone(cfg.DKIMSelectors)
	return &Checker{resolver: r, cfg: cfg}
}

// CheckMany checks the domains with at most concurrency checks in flight
// and returns the reports in the order of domains.
func (c *Checker) CheckMany(ctx context.Context, domains []string, concurrency int) []Report {
	if concurrency < 1 {
		concurrency = 1
	}
	reports := make([]Report, len(domains))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(concurrency, len(domains)) {
		wg.Go(func() {
			for i := range next {
				reports[i] = c.Check(ctx, domains[i])
			}
		})
	}
	for i := range domains {
		next <- i
	}
	close(next)
	wg.Wait()
	return reports
}

// Check checks one domain. It always returns a Report; lookup failures on
// our side become OutcomeTemporaryFailure, never a verdict on the domain.
func (c *Checker) Check(ctx context.Context, domain string) Report {
	started := c.cfg.Now()
	display, ascii, err := normalizeDomain(domain)
	report := Report{Domain: display, ASCIIDomain: ascii, CheckedAt: started}
	if err != nil {
		report.Outcome = OutcomeInvalidDomain
		report.Error = err.Error()
		report.Findings = []Message{newMessage(MsgInvalidDomain, display)}
		report.SPF.Status, report.MX.Status = SPFNotChecked, MXNotChecked
		report.DKIM.Status, report.DMARC.Status = DKIMNotChecked, DMARCNotChecked
		return report
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	resolver := newMemoResolver(c.resolver)

	// All first-round questions go out at once; the SPF evaluation and the
	// DMARC fallback to the organizational domain follow.
	var (
		wg                   sync.WaitGroup
		txts                 []string
		mxs                  []*net.MX
		txtErr, mxErr, ipErr error
		nsErr                error
		selectors            = make([]DKIMSelectorResult, len(c.cfg.DKIMSelectors))
	)
	name := canonicalName(ascii)
	wg.Go(func() { txts, txtErr = resolver.LookupTXT(ctx, name) })
	wg.Go(func() { mxs, mxErr = resolver.LookupMX(ctx, name) })
	wg.Go(func() { _, ipErr = resolver.LookupIPAddr(ctx, name) })
	wg.Go(func() { _, nsErr = resolver.LookupNS(ctx, name) })
	for i, selector := range c.cfg.DKIMSelectors {
		wg.Go(func() { selectors[i] = c.checkDKIMSelector(ctx, resolver, display, ascii, selector) })
	}
	wg.Wait()

	txtState, mxState := classify(txtErr), classify(mxErr)
	states := []lookupState{txtState, mxState, classify(ipErr), classify(nsErr)}
	exists := slices.Contains(states, lookupFound)
	temporary := slices.Contains(states, lookupTemporary)
	if !exists {
		report.SPF.Status, report.MX.Status = SPFNotChecked, MXNotChecked
		report.DKIM.Status, report.DMARC.Status = DKIMNotChecked, DMARCNotChecked
		report.Outcome = OutcomeUnreachable
		if temporary {
			// One answer failed on our side: the domain may well exist.
			report.Outcome = OutcomeTemporaryFailure
			report.Error = firstError(txtErr, mxErr, ipErr, nsErr)
		}
		report.Findings = []Message{newMessage(report.Outcome.messageKey(), display)}
		report.Duration = c.cfg.Now().Sub(started)
		return report
	}

	report.MX = checkMX(display, mxs, mxState)
	report.SPF = c.checkSPF(ctx, resolver, display, ascii, txts, txtState)
	report.DKIM = summarizeDKIM(display, selectors)
	report.DMARC = c.checkDMARC(ctx, resolver, display, ascii, report.DKIM.Status == DKIMOK)
	if txtState == lookupTemporary || mxState == lookupTemporary {
		report.Error = firstError(txtErr, mxErr)
	}
	report.Outcome, report.Findings = c.findings(report)
	report.Duration = c.cfg.Now().Sub(started)
	return report
}

// findings orders the problems: what stops mail first.
func (c *Checker) findings(r Report) (Outcome, []Message) {
	var outcomes []Outcome
	if r.MX.Status == MXTemporary || r.SPF.Status == SPFTemporary {
		outcomes = append(outcomes, OutcomeTemporaryFailure)
	}
	if r.MX.Status == MXMissing || r.MX.Status == MXNull {
		outcomes = append(outcomes, OutcomeNoMX)
	}
	switch r.SPF.Status {
	case SPFMissing:
		outcomes = append(outcomes, OutcomeSPFMissing)
	case SPFNeedsInclude, SPFMultiple:
		outcomes = append(outcomes, OutcomeSPFNeedsInclude)
	}
	if len(outcomes) == 0 {
		outcomes = append(outcomes, OutcomeOK)
	}
	messages := make([]Message, 0, len(outcomes))
	for _, outcome := range outcomes {
		messages = append(messages, newMessage(outcome.messageKey(), r.Domain))
	}
	return outcomes[0], messages
}

func checkMX(domain string, mxs []*net.MX, state lookupState) MXResult {
	switch state {
	case lookupTemporary:
		return MXResult{Status: MXTemporary, Advice: newMessage(MsgAdviceMXTemporary, domain)}
	case lookupNotFound:
		return MXResult{Status: MXMissing, Advice: newMessage(MsgAdviceMXMissing, domain)}
	}
	result := MXResult{Status: MXOK}
	names := make([]string, 0, len(mxs))
	for _, mx := range mxs {
		host := strings.TrimSuffix(mx.Host, ".")
		result.Hosts = append(result.Hosts, MXHost{Host: host, Preference: mx.Pref})
		names = append(names, host)
	}
	// RFC 7505 section 3: a single MX with an empty (root) target.
	if len(mxs) == 1 && result.Hosts[0].Host == "" {
		return MXResult{Status: MXNull, Hosts: result.Hosts, Advice: newMessage(MsgAdviceMXNull, domain)}
	}
	if len(mxs) == 0 {
		return MXResult{Status: MXMissing, Advice: newMessage(MsgAdviceMXMissing, domain)}
	}
	result.Advice = newMessage(MsgAdviceMXOK, domain, "hosts", strings.Join(names, ", "))
	return result
}

func firstError(errs ...error) string {
	for _, err := range errs {
		if err != nil && classify(err) == lookupTemporary {
			return err.Error()
		}
	}
	return ""
}
