package dnscheck

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// seedText fills the seed manual's placeholder "$$$" with a domain.
func seedText(template, domain string) string {
	return strings.ReplaceAll(template, "$$$", domain)
}

const (
	seedSPFNeedsInclude = "Für die Domain $$$ ist ein SPF-Eintrag hinterlegt, der für einen reibungslosen E-Mailversand angepasst werden muss."
	seedNoMX            = "Die Domain $$$ ist fehlerhaft konfiguriert. Es sind keine MX-Einträge hinterlegt."
	seedUnreachable     = "Die Domain $$$ ist nicht erreichbar."
)

func TestCheckOutcomes(t *testing.T) {
	t.Parallel()
	checker := NewChecker(startMockDNS(t, testZones()), testConfig())
	tests := []struct {
		domain     string
		outcome    Outcome
		germanText string // exact headline in German, when the test pins it
		spf        SPFStatus
		evaluation string
		suggested  string
		mx         MXStatus
		dkim       DKIMStatus
		dmarc      DMARCStatus
		dmarcPass  bool
	}{
		{domain: "ok.example", outcome: OutcomeOK, spf: SPFOK, evaluation: "pass", mx: MXOK, dkim: DKIMOK, dmarc: DMARCEnforced, dmarcPass: true,
			germanText: "Die Domain ok.example ist für den E-Mail-Versand korrekt eingerichtet."},
		{domain: "OK.Example.", outcome: OutcomeOK, spf: SPFOK, evaluation: "pass", mx: MXOK, dkim: DKIMOK, dmarc: DMARCEnforced, dmarcPass: true},
		{domain: "needs.example", outcome: OutcomeSPFNeedsInclude, germanText: seedText(seedSPFNeedsInclude, "needs.example"),
			spf: SPFNeedsInclude, evaluation: "fail", suggested: "v=spf1 mx include:_spf.postfach.example -all",
			mx: MXOK, dkim: DKIMOK, dmarc: DMARCEnforced, dmarcPass: true},
		{domain: "late.example", outcome: OutcomeSPFNeedsInclude, spf: SPFNeedsInclude, evaluation: "fail",
			suggested: "v=spf1 include:_spf.postfach.example -all", mx: MXOK, dkim: DKIMOK, dmarc: DMARCEnforced, dmarcPass: true},
		{domain: "multi.example", outcome: OutcomeSPFNeedsInclude, spf: SPFMultiple, evaluation: "permerror",
			suggested: "v=spf1 mx include:_spf.postfach.example -all", mx: MXOK, dkim: DKIMOK, dmarc: DMARCEnforced, dmarcPass: true},
		{domain: "nospf.example", outcome: OutcomeSPFMissing, germanText: "Für die Domain nospf.example ist kein SPF-Eintrag hinterlegt.",
			spf: SPFMissing, suggested: "v=spf1 mx include:_spf.postfach.example ~all", mx: MXOK, dkim: DKIMOK, dmarc: DMARCEnforced, dmarcPass: true},
		{domain: "redirect.example", outcome: OutcomeOK, spf: SPFOK, evaluation: "pass", mx: MXOK, dkim: DKIMOK, dmarc: DMARCEnforced, dmarcPass: true},
		{domain: "provider.example", outcome: OutcomeSPFNeedsInclude, spf: SPFNeedsInclude, evaluation: "pass",
			suggested: "v=spf1 include:_spf.postfach.example redirect=_spf.provider.example", mx: MXOK, dkim: DKIMOK, dmarc: DMARCEnforced, dmarcPass: true},
		{domain: "macro.example", outcome: OutcomeSPFNeedsInclude, spf: SPFNeedsInclude, evaluation: "fail",
			suggested: "v=spf1 exists:%{i}._spf.%{d} include:_spf.postfach.example -all", mx: MXOK, dkim: DKIMOK, dmarc: DMARCEnforced, dmarcPass: true},
		{domain: "nomx.example", outcome: OutcomeNoMX, germanText: seedText(seedNoMX, "nomx.example"),
			spf: SPFOK, evaluation: "pass", mx: MXMissing, dkim: DKIMOK, dmarc: DMARCEnforced, dmarcPass: true},
		{domain: "nullmx.example", outcome: OutcomeNoMX, germanText: seedText(seedNoMX, "nullmx.example"),
			spf: SPFMissing, suggested: "v=spf1 mx include:_spf.postfach.example ~all", mx: MXNull, dkim: DKIMMissing, dmarc: DMARCMissing},
		{domain: "nx.example", outcome: OutcomeUnreachable, germanText: seedText(seedUnreachable, "nx.example"),
			spf: SPFNotChecked, mx: MXNotChecked, dkim: DKIMNotChecked, dmarc: DMARCNotChecked},
		{domain: "empty.example", outcome: OutcomeUnreachable, germanText: seedText(seedUnreachable, "empty.example"),
			spf: SPFNotChecked, mx: MXNotChecked, dkim: DKIMNotChecked, dmarc: DMARCNotChecked},
		{domain: "servfail.example", outcome: OutcomeTemporaryFailure,
			germanText: "Die Domain servfail.example konnte gerade nicht geprüft werden, weil die DNS-Abfrage fehlgeschlagen ist. Bitte versuchen Sie es später erneut.",
			spf:        SPFNotChecked, mx: MXNotChecked, dkim: DKIMNotChecked, dmarc: DMARCNotChecked},
		{domain: "dkim-missing.example", outcome: OutcomeOK, spf: SPFOK, evaluation: "pass", mx: MXOK, dkim: DKIMMissing, dmarc: DMARCEnforced},
		{domain: "dkim-mismatch.example", outcome: OutcomeOK, spf: SPFOK, evaluation: "pass", mx: MXOK, dkim: DKIMMismatch, dmarc: DMARCEnforced},
		{domain: "dkim-invalid.example", outcome: OutcomeOK, spf: SPFOK, evaluation: "pass", mx: MXOK, dkim: DKIMInvalid, dmarc: DMARCEnforced},
		{domain: "dkim-revoked.example", outcome: OutcomeOK, spf: SPFOK, evaluation: "pass", mx: MXOK, dkim: DKIMRevoked, dmarc: DMARCEnforced},
		{domain: "dmarc-none.example", outcome: OutcomeOK, spf: SPFOK, evaluation: "pass", mx: MXOK, dkim: DKIMOK, dmarc: DMARCNone, dmarcPass: true},
		{domain: "dmarc-quarantine.example", outcome: OutcomeOK, spf: SPFOK, evaluation: "pass", mx: MXOK, dkim: DKIMMissing, dmarc: DMARCEnforced},
		{domain: "dmarc-missing.example", outcome: OutcomeOK, spf: SPFOK, evaluation: "pass", mx: MXOK, dkim: DKIMOK, dmarc: DMARCMissing, dmarcPass: true},
		{domain: "dmarc-invalid.example", outcome: OutcomeOK, spf: SPFOK, evaluation: "pass", mx: MXOK, dkim: DKIMOK, dmarc: DMARCInvalid},
		// SERVFAIL on the DKIM and DMARC names only: those parts are
		// temporary, the headline stays about SPF and MX.
		{domain: "subfail.example", outcome: OutcomeOK, spf: SPFOK, evaluation: "pass", mx: MXOK, dkim: DKIMTemporary, dmarc: DMARCTemporary},
		{domain: "sub.org.example", outcome: OutcomeOK, spf: SPFOK, evaluation: "pass", mx: MXOK, dkim: DKIMOK, dmarc: DMARCEnforced, dmarcPass: true},
		{domain: "not a domain", outcome: OutcomeInvalidDomain, germanText: "„not a domain“ ist kein gültiger Domainname.",
			spf: SPFNotChecked, mx: MXNotChecked, dkim: DKIMNotChecked, dmarc: DMARCNotChecked},
	}
	for _, tc := range tests {
		t.Run(tc.domain, func(t *testing.T) {
			t.Parallel()
			r := checker.Check(context.Background(), tc.domain)
			if r.Outcome != tc.outcome {
				t.Fatalf("outcome = %q, want %q (report %+v)", r.Outcome, tc.outcome, r)
			}
			if tc.germanText != "" {
				if got := r.Message().Text("de"); got != tc.germanText {
					t.Errorf("German text\n got %q\nwant %q", got, tc.germanText)
				}
			}
			if r.SPF.Status != tc.spf {
				t.Errorf("SPF status = %q, want %q", r.SPF.Status, tc.spf)
			}
			if r.SPF.Evaluation != tc.evaluation {
				t.Errorf("SPF evaluation = %q, want %q (%+v)", r.SPF.Evaluation, tc.evaluation, r.SPF.Evaluations)
			}
			if r.SPF.Suggested != tc.suggested {
				t.Errorf("SPF suggestion = %q, want %q", r.SPF.Suggested, tc.suggested)
			}
			if r.MX.Status != tc.mx {
				t.Errorf("MX status = %q, want %q", r.MX.Status, tc.mx)
			}
			if r.DKIM.Status != tc.dkim {
				t.Errorf("DKIM status = %q, want %q (%+v)", r.DKIM.Status, tc.dkim, r.DKIM.Selectors)
			}
			if r.DMARC.WouldPass != tc.dmarcPass {
				t.Errorf("DMARC would pass = %v, want %v", r.DMARC.WouldPass, tc.dmarcPass)
			}
			if r.DMARC.Status != tc.dmarc {
				t.Errorf("DMARC status = %q, want %q (%+v)", r.DMARC.Status, tc.dmarc, r.DMARC)
			}
			if r.Findings[0].Key != r.Outcome.messageKey() || r.Message().Key != r.Outcome.messageKey() {
				t.Errorf("headline %+v does not match outcome %q", r.Message(), r.Outcome)
			}
			if !r.CheckedAt.Equal(testConfig().Now()) {
				t.Errorf("CheckedAt = %v", r.CheckedAt)
			}
		})
	}
}

func TestCheckSPFSuggestionShownInAdvice(t *testing.T) {
	t.Parallel()
	checker := NewChecker(startMockDNS(t, testZones()), testConfig())
	r := checker.Check(context.Background(), "needs.example")
	want := "Ersetzen Sie den SPF-Eintrag von needs.example durch: v=spf1 mx include:_spf.postfach.example -all"
	if got := r.SPF.Advice.Text("de"); got != want {
		t.Errorf("advice\n got %q\nwant %q", got, want)
	}
	want = "Replace the SPF record of needs.example with: v=spf1 mx include:_spf.postfach.example -all"
	if got := r.SPF.Advice.Text("en"); got != want {
		t.Errorf("advice\n got %q\nwant %q", got, want)
	}
}

// A domain with several problems lists each, most severe first.
func TestCheckFindingsOrder(t *testing.T) {
	t.Parallel()
	zones := testZones()
	zones["both.example."] = zoneWith(zones, "needs.example.", func(z *zoneEdit) { z.noMX = true })
	checker := NewChecker(startMockDNS(t, zones), testConfig())
	r := checker.Check(context.Background(), "both.example")
	var keys []MessageKey
	for _, m := range r.Findings {
		keys = append(keys, m.Key)
	}
	if len(keys) != 2 || keys[0] != MsgNoMX || keys[1] != MsgSPFNeedsInclude {
		t.Errorf("findings = %v", keys)
	}
}

// SPF evaluation with macros: the same record passes one sending IP and
// fails another, because the exists: name is built from %{i} and %{d}.
func TestCheckSPFMacroEvaluation(t *testing.T) {
	t.Parallel()
	resolver := startMockDNS(t, testZones())
	tests := []struct {
		ip   string
		want string
	}{
		{"192.0.2.10", "pass"},
		{"192.0.2.11", "fail"},
	}
	for _, tc := range tests {
		cfg := testConfig()
		cfg.SendingIPs = []netip.Addr{netip.MustParseAddr(tc.ip)}
		r := NewChecker(resolver, cfg).Check(context.Background(), "macro.example")
		if r.SPF.Evaluation != tc.want {
			t.Errorf("%s: evaluation = %q, want %q (%+v)", tc.ip, r.SPF.Evaluation, tc.want, r.SPF.Evaluations)
		}
	}
}

// SPF redirect: a provider's policy that covers our IPs passes them, while
// the record still lacks our include.
func TestCheckSPFRedirectEvaluation(t *testing.T) {
	t.Parallel()
	resolver := startMockDNS(t, testZones())
	cfg := testConfig()
	cfg.SendingIPs = []netip.Addr{netip.MustParseAddr("192.0.2.99"), netip.MustParseAddr("198.51.100.200")}
	r := NewChecker(resolver, cfg).Check(context.Background(), "provider.example")
	got := []string{r.SPF.Evaluations[0].Result, r.SPF.Evaluations[1].Result}
	if got[0] != "pass" || got[1] != "fail" || r.SPF.Evaluation != "fail" {
		t.Errorf("evaluations = %v, aggregate %q", got, r.SPF.Evaluation)
	}
}

// Our resolver not answering is not the customer's fault.
func TestCheckTimeoutIsTemporary(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Timeout = 300 * time.Millisecond
	r := NewChecker(blackHoleResolver(t), cfg).Check(context.Background(), "ok.example")
	if r.Outcome != OutcomeTemporaryFailure {
		t.Fatalf("outcome = %q, want temporary failure", r.Outcome)
	}
	if strings.Contains(r.Message().Text("de"), "nicht erreichbar") {
		t.Errorf("timeout reported as unreachable: %q", r.Message().Text("de"))
	}
	if r.Error == "" {
		t.Errorf("no diagnostic for the timeout")
	}
}

func TestCheckDMARCDetails(t *testing.T) {
	t.Parallel()
	checker := NewChecker(startMockDNS(t, testZones()), testConfig())
	tests := []struct {
		domain string
		name   string
		policy string
		advice MessageKey
	}{
		{"ok.example", "_dmarc.ok.example", "reject", MsgAdviceDMARCPass},
		{"dmarc-none.example", "_dmarc.dmarc-none.example", "none", MsgAdviceDMARCMonitor},
		{"dmarc-quarantine.example", "_dmarc.dmarc-quarantine.example", "quarantine", MsgAdviceDMARCFail},
		{"dmarc-missing.example", "_dmarc.dmarc-missing.example", "", MsgAdviceDMARCMissing},
		{"dmarc-invalid.example", "_dmarc.dmarc-invalid.example", "", MsgAdviceDMARCInvalid},
		{"sub.org.example", "_dmarc.org.example", "quarantine", MsgAdviceDMARCPass},
	}
	for _, tc := range tests {
		r := checker.Check(context.Background(), tc.domain)
		d := r.DMARC
		if d.Name != tc.name || d.Policy != tc.policy || d.Advice.Key != tc.advice {
			t.Errorf("%s: name %q policy %q advice %q, want %q %q %q", tc.domain, d.Name, d.Policy, d.Advice.Key, tc.name, tc.policy, tc.advice)
		}
		if d.SPFAligned {
			t.Errorf("%s: SPF through out.postfach.example must not align", tc.domain)
		}
		if tc.advice != MsgAdviceDMARCInvalid && d.AlignmentNote.Key != MsgNoteSPFNotAligned {
			t.Errorf("%s: alignment note %q", tc.domain, d.AlignmentNote.Key)
		}
	}
	if p := checker.Check(context.Background(), "dmarc-quarantine.example").DMARC.Parsed; p == nil || p.Percent != 50 || p.ADKIM != "s" {
		t.Errorf("parsed quarantine record = %+v", p)
	}
	// A return path under the customer's domain aligns in relaxed mode.
	cfg := testConfig()
	cfg.ReturnPathDomain = "bounces.ok.example"
	if d := NewChecker(startMockDNS(t, testZones()), cfg).Check(context.Background(), "ok.example").DMARC; !d.SPFAligned || d.AlignmentNote.Key != MsgNoteSPFAligned {
		t.Errorf("bounces.ok.example should align relaxed: %+v", d)
	}
}

func TestCheckDKIMSuggestsOurKey(t *testing.T) {
	t.Parallel()
	checker := NewChecker(startMockDNS(t, testZones()), testConfig())
	want := FormatDKIMKeyRecord("ed25519", ourDKIMKey)
	for _, domain := range []string{"dkim-missing.example", "dkim-mismatch.example"} {
		sel := checker.Check(context.Background(), domain).DKIM.Selectors[0]
		if sel.Suggested != want || sel.Name != "pf1._domainkey."+domain {
			t.Errorf("%s: %+v", domain, sel)
		}
		if !strings.Contains(sel.Advice.Text("en"), want) {
			t.Errorf("%s: advice %q lacks the record", domain, sel.Advice.Text("en"))
		}
	}
	// Without our key, a published key of any kind is accepted.
	cfg := testConfig()
	cfg.DKIMPublicKeys = nil
	if got := NewChecker(startMockDNS(t, testZones()), cfg).Check(context.Background(), "dkim-mismatch.example").DKIM.Status; got != DKIMOK {
		t.Errorf("without our key: %q", got)
	}
}

func TestCheckMany(t *testing.T) {
	t.Parallel()
	checker := NewChecker(startMockDNS(t, testZones()), testConfig())
	domains := []string{"ok.example", "nx.example", "nomx.example", "needs.example", "ok.example"}
	reports := checker.CheckMany(context.Background(), domains, 3)
	want := []Outcome{OutcomeOK, OutcomeUnreachable, OutcomeNoMX, OutcomeSPFNeedsInclude, OutcomeOK}
	for i, r := range reports {
		if r.Domain != domains[i] || r.Outcome != want[i] {
			t.Errorf("report %d: %s %q, want %s %q", i, r.Domain, r.Outcome, domains[i], want[i])
		}
	}
	if got := checker.CheckMany(context.Background(), nil, 4); len(got) != 0 {
		t.Errorf("no domains: %d reports", len(got))
	}
}

func TestCheckIDNDomain(t *testing.T) {
	t.Parallel()
	zones := testZones()
	for name, zone := range healthyZone("xn--mller-kva.example") {
		zones[name] = zone
	}
	r := NewChecker(startMockDNS(t, zones), testConfig()).Check(context.Background(), "Müller.example")
	if r.Outcome != OutcomeOK || r.Domain != "müller.example" || r.ASCIIDomain != "xn--mller-kva.example" {
		t.Errorf("IDN: %q %q %q", r.Outcome, r.Domain, r.ASCIIDomain)
	}
}
