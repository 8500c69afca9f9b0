package dnscheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"blitiri.com.ar/go/spf"
)

// SPFStatus is the verdict on a domain's SPF record as far as our sending is
// concerned.
type SPFStatus string

const (
	SPFOK           SPFStatus = "ok"            // record includes us (and our IPs pass, when evaluated)
	SPFMissing      SPFStatus = "missing"       // no v=spf1 record at all
	SPFNeedsInclude SPFStatus = "needs_include" // record exists but must be adapted (seed message 1)
	SPFMultiple     SPFStatus = "multiple"      // more than one v=spf1 record: permerror for everyone
	SPFTemporary    SPFStatus = "temporary"     // TXT lookup failed on our side
	SPFNotChecked   SPFStatus = "not_checked"   // domain does not resolve
)

// SPFEvaluation is the RFC 7208 check_host() result for one of our sending IPs.
type SPFEvaluation struct {
	IP     netip.Addr `json:"ip"`
	Result string     `json:"result"` // pass, fail, softfail, neutral, none, permerror, temperror
	Detail string     `json:"detail,omitempty"`
}

// SPFResult is the SPF part of a Report.
type SPFResult struct {
	Status SPFStatus `json:"status"`
	// Record is the published SPF record; Records lists all when several exist.
	Record  string   `json:"record,omitempty"`
	Records []string `json:"records,omitempty"`
	// IncludesUs tells whether the record authorizes Config.SPFInclude by an
	// include: before "all" or by redirect=.
	IncludesUs bool `json:"includes_us"`
	// Suggested is the record to publish instead; empty when nothing changes.
	Suggested string `json:"suggested,omitempty"`
	// SuggestedLookups counts DNS-querying terms of Suggested at its top
	// level; above 10 receivers answer permerror (RFC 7208 section 4.6.4).
	SuggestedLookups int `json:"suggested_lookups,omitempty"`
	// Evaluation aggregates Evaluations: "pass" only when every IP passes,
	// otherwise the first non-pass result; empty when not evaluated.
	Evaluation  string          `json:"evaluation,omitempty"`
	Evaluations []SPFEvaluation `json:"evaluations,omitempty"`
	Advice      Message         `json:"advice"`
}

// ErrNotSPF is returned by SuggestSPFRecord for text that is not an SPF record.
var ErrNotSPF = errors.New("not an SPF record")

// isSPFRecord tells whether a TXT string is an SPF record: it starts with the
// exact version term "v=spf1" followed by a space or its end (RFC 7208
// section 4.5).
func isSPFRecord(txt string) bool {
	if len(txt) < 6 || !strings.EqualFold(txt[:6], "v=spf1") {
		return false
	}
	return len(txt) == 6 || txt[6] == ' '
}

// spfTerm is one whitespace-separated term of an SPF record.
type spfTerm struct {
	text      string
	qualifier byte   // '+', '-', '~', '?' or 0 when absent
	name      string // lower-case mechanism or modifier name
	value     string // text after ':' / '/' (mechanism) or '=' (modifier)
	modifier  bool
}

// parseSPFTerm splits a term per the grammar of RFC 7208 section 12:
// a modifier is name "=" value, a mechanism is [qualifier] name [":" value].
func parseSPFTerm(text string) spfTerm {
	term := spfTerm{text: text}
	nameEnd := strings.IndexAny(text, ":/=")
	if nameEnd >= 0 && text[nameEnd] == '=' {
		term.modifier = true
		term.name = strings.ToLower(text[:nameEnd])
		term.value = text[nameEnd+1:]
		return term
	}
	body := text
	if body != "" && strings.IndexByte("+-~?", body[0]) >= 0 {
		term.qualifier = body[0]
		body = body[1:]
		if nameEnd >= 0 {
			nameEnd--
		}
	}
	if nameEnd < 0 {
		term.name = strings.ToLower(body)
		return term
	}
	term.name = strings.ToLower(body[:nameEnd])
	term.value = strings.TrimPrefix(body[nameEnd:], ":")
	return term
}

// spfLookupTerms counts the terms that cost a DNS lookup (RFC 7208 section 4.6.4).
func spfLookupTerms(terms []spfTerm) int {
	n := 0
	for _, term := range terms {
		switch {
		case term.modifier && term.name == "redirect":
			n++
		case !term.modifier && (term.name == "include" || term.name == "a" || term.name == "mx" ||
			term.name == "ptr" || term.name == "exists"):
			n++
		}
	}
	return n
}

// SuggestSPFRecord returns the record with "include:<include>" placed where
// it takes effect: before the first "all" mechanism, or after the last
// mechanism when there is no "all" (a redirect= then still applies after
// our include did not match, RFC 7208 section 6.1). An include of ours that
// sits after "all" or carries a non-pass qualifier is moved. changed is
// false when the record already authorizes include, in which case the
// record comes back unchanged. A record that redirects to include as its
// last resort also counts as authorizing it.
func SuggestSPFRecord(record, include string) (suggested string, changed bool, err error) {
	include = strings.TrimSuffix(strings.TrimSpace(include), ".")
	if include == "" || strings.ContainsAny(include, " \t") {
		return "", false, fmt.Errorf("dnscheck: spf include %q: %w", include, ErrInvalidDomain)
	}
	fields := strings.Fields(record)
	if len(fields) == 0 || !strings.EqualFold(fields[0], "v=spf1") {
		return "", false, fmt.Errorf("dnscheck: %w", ErrNotSPF)
	}
	terms := make([]spfTerm, 0, len(fields)-1)
	for _, field := range fields[1:] {
		terms = append(terms, parseSPFTerm(field))
	}
	isOurs := func(term spfTerm) bool {
		return !term.modifier && term.name == "include" && sameDomain(term.value, include)
	}
	allIndex := -1
	for i, term := range terms {
		if !term.modifier && term.name == "all" {
			allIndex = i
			break
		}
	}
	for i, term := range terms {
		if allIndex >= 0 && i > allIndex {
			break
		}
		if isOurs(term) && (term.qualifier == 0 || term.qualifier == '+') {
			return record, false, nil
		}
	}
	if allIndex < 0 {
		for _, term := range terms {
			if term.modifier && term.name == "redirect" && sameDomain(term.value, include) {
				return record, false, nil
			}
		}
	}

	kept := terms[:0:0]
	for _, term := range terms {
		if !isOurs(term) {
			kept = append(kept, term)
		}
	}
	insertAt := len(kept)
	for i, term := range kept {
		if !term.modifier && term.name == "all" {
			insertAt = i
			break
		}
	}
	if insertAt == len(kept) {
		// No "all": go after the last mechanism, ahead of modifiers.
		insertAt = 0
		for i, term := range kept {
			if !term.modifier {
				insertAt = i + 1
			}
		}
	}
	out := make([]string, 0, len(kept)+2)
	out = append(out, "v=spf1")
	for i, term := range kept {
		if i == insertAt {
			out = append(out, "include:"+include)
		}
		out = append(out, term.text)
	}
	if insertAt == len(kept) {
		out = append(out, "include:"+include)
	}
	return strings.Join(out, " "), true, nil
}

// newSPFRecord is what we suggest to a domain that has none: its own MX
// hosts keep sending, we are added, everything else soft-fails.
func newSPFRecord(include string) string {
	if include == "" {
		return "v=spf1 mx ~all"
	}
	return "v=spf1 mx include:" + include + " ~all"
}

// checkSPF judges the domain's TXT answer and evaluates our sending IPs.
func (c *Checker) checkSPF(ctx context.Context, resolver Resolver, domain, ascii string, txts []string, txtState lookupState) SPFResult {
	var result SPFResult
	if txtState == lookupTemporary {
		result.Status = SPFTemporary
		result.Advice = newMessage(MsgAdviceSPFTemporary, domain)
		return result
	}
	for _, txt := range txts {
		if isSPFRecord(txt) {
			result.Records = append(result.Records, txt)
		}
	}
	if len(result.Records) == 0 {
		result.Status = SPFMissing
		result.Suggested = newSPFRecord(c.cfg.SPFInclude)
		result.SuggestedLookups = 1 + boolInt(c.cfg.SPFInclude != "")
		result.Advice = newMessage(MsgAdviceSPFCreate, domain, "record", result.Suggested)
		return result
	}
	result.Record = result.Records[0]
	if len(result.Records) == 1 {
		result.Records = nil
	}

	result.IncludesUs = true
	result.Suggested = ""
	if c.cfg.SPFInclude != "" {
		suggested, changed, err := SuggestSPFRecord(result.Record, c.cfg.SPFInclude)
		if err == nil && changed {
			result.IncludesUs = false
			result.Suggested = suggested
			result.SuggestedLookups = countSPFLookups(suggested)
		}
	}

	if len(c.cfg.SendingIPs) > 0 {
		result.Evaluations, result.Evaluation = c.evaluateSPF(ctx, resolver, ascii)
	}

	switch {
	case len(result.Records) > 1:
		result.Status = SPFMultiple
		if result.Suggested == "" {
			result.Suggested = result.Record
		}
		result.Advice = newMessage(MsgAdviceSPFMultiple, domain, "record", result.Suggested)
	case !result.IncludesUs:
		result.Status = SPFNeedsInclude
		result.Advice = newMessage(MsgAdviceSPFReplace, domain, "record", result.Suggested)
	case result.Evaluation != "" && result.Evaluation != string(spf.Pass) && result.Evaluation != string(spf.TempError):
		// Our include is there, yet our servers do not pass: the record must
		// still be adapted (lookup limit exceeded, syntax error, ...).
		result.Status = SPFNeedsInclude
		result.Advice = newMessage(MsgAdviceSPFEvaluation, domain, "result", result.Evaluation)
	default:
		result.Status = SPFOK
		result.Advice = newMessage(MsgAdviceSPFOK, domain)
	}
	return result
}

func countSPFLookups(record string) int {
	fields := strings.Fields(record)
	terms := make([]spfTerm, 0, len(fields))
	for _, field := range fields[1:] {
		terms = append(terms, parseSPFTerm(field))
	}
	return spfLookupTerms(terms)
}

// evaluateSPF runs check_host() (RFC 7208 section 4) for each sending IP as
// a receiver would for mail from postmaster@domain, through our resolver so
// macros, include and redirect are resolved against the same DNS.
func (c *Checker) evaluateSPF(ctx context.Context, resolver Resolver, ascii string) ([]SPFEvaluation, string) {
	evaluations := make([]SPFEvaluation, 0, len(c.cfg.SendingIPs))
	aggregate := string(spf.Pass)
	for _, ip := range c.cfg.SendingIPs {
		res, err := spf.CheckHostWithSender(net.IP(ip.Unmap().AsSlice()), ascii, "postmaster@"+ascii,
			spf.WithResolver(resolver), spf.WithContext(ctx))
		evaluation := SPFEvaluation{IP: ip, Result: string(res)}
		if err != nil && res != spf.Pass {
			evaluation.Detail = err.Error()
		}
		evaluations = append(evaluations, evaluation)
		if aggregate == string(spf.Pass) && res != spf.Pass {
			aggregate = string(res)
		}
	}
	return evaluations, aggregate
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
