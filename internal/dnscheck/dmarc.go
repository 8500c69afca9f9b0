package dnscheck

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// DMARCRecord is a parsed DMARC policy record (RFC 7489 section 6.3).
type DMARCRecord struct {
	Policy          string   `json:"p"`     // none, quarantine, reject
	SubdomainPolicy string   `json:"sp"`    // defaults to Policy
	ADKIM           string   `json:"adkim"` // "r" (relaxed, default) or "s" (strict)
	ASPF            string   `json:"aspf"`
	Percent         int      `json:"pct"` // 0..100, default 100
	RUA             []string `json:"rua,omitempty"`
	RUF             []string `json:"ruf,omitempty"`
	// PolicyAssumed is set when p= was missing or invalid and, because rua=
	// holds a report address, the record counts as p=none (RFC 7489
	// section 6.6.3 step 6).
	PolicyAssumed bool `json:"policy_assumed,omitempty"`
	// Warnings lists tags with invalid values that receivers replace by
	// their defaults.
	Warnings []string `json:"warnings,omitempty"`
}

// Errors of ParseDMARCRecord.
var (
	ErrDMARCVersion = errors.New("DMARC record: must start with v=DMARC1")
	ErrDMARCPolicy  = errors.New("DMARC record: no valid p= and no rua=")
)

// ParseDMARCRecord parses the TXT record published at _dmarc.<domain>.
func ParseDMARCRecord(record string) (DMARCRecord, error) {
	tags, err := parseTagList(record)
	if err != nil {
		return DMARCRecord{}, err
	}
	// RFC 7489 section 6.4: v=DMARC1 comes first, matched case-sensitively.
	if len(tags) == 0 || tags[0].name != "v" || tags[0].value != "DMARC1" {
		return DMARCRecord{}, fmt.Errorf("dnscheck: %w", ErrDMARCVersion)
	}
	rec := DMARCRecord{ADKIM: "r", ASPF: "r", Percent: 100}
	validPolicy := func(value string) (string, bool) {
		value = strings.ToLower(value)
		switch value {
		case "none", "quarantine", "reject":
			return value, true
		}
		return "", false
	}
	subdomainPolicyInvalid := false
	for _, t := range tags[1:] {
		// Tag names are case-insensitive in practice; receivers accept "P=".
		switch strings.ToLower(t.name) {
		case "p":
			rec.Policy, _ = validPolicy(t.value)
		case "sp":
			var ok bool
			if rec.SubdomainPolicy, ok = validPolicy(t.value); !ok {
				subdomainPolicyInvalid = true
			}
		case "adkim", "aspf":
			mode := strings.ToLower(t.value)
			if mode != "r" && mode != "s" {
				rec.Warnings = append(rec.Warnings, t.name)
				continue
			}
			if strings.ToLower(t.name) == "adkim" {
				rec.ADKIM = mode
			} else {
				rec.ASPF = mode
			}
		case "pct":
			pct, err := strconv.Atoi(t.value)
			if err != nil || pct < 0 || pct > 100 {
				rec.Warnings = append(rec.Warnings, t.name)
				continue
			}
			rec.Percent = pct
		case "rua":
			rec.RUA = splitURIs(t.value)
		case "ruf":
			rec.RUF = splitURIs(t.value)
		}
		// Unknown tags must be ignored (RFC 7489 section 6.3).
	}
	if rec.Policy == "" || subdomainPolicyInvalid {
		if len(rec.RUA) == 0 {
			return DMARCRecord{}, fmt.Errorf("dnscheck: %w", ErrDMARCPolicy)
		}
		rec.Policy, rec.SubdomainPolicy, rec.PolicyAssumed = "none", "", true
	}
	if rec.SubdomainPolicy == "" {
		rec.SubdomainPolicy = rec.Policy
	}
	return rec, nil
}

// splitURIs splits a DMARC URI list (RFC 7489 section 6.4) and keeps the
// entries with a scheme; the "!size" suffix stays on the entry.
func splitURIs(value string) []string {
	var uris []string
	for _, uri := range strings.Split(value, ",") {
		uri = strings.TrimSpace(uri)
		if scheme, _, ok := strings.Cut(uri, ":"); ok && scheme != "" {
			uris = append(uris, uri)
		}
	}
	return uris
}

// DMARCStatus is the DMARC verdict.
type DMARCStatus string

const (
	DMARCMissing    DMARCStatus = "missing"
	DMARCInvalid    DMARCStatus = "invalid"
	DMARCNone       DMARCStatus = "none"     // p=none: monitoring only
	DMARCEnforced   DMARCStatus = "enforced" // quarantine or reject
	DMARCTemporary  DMARCStatus = "temporary"
	DMARCNotChecked DMARCStatus = "not_checked"
)

// DMARCResult is the DMARC part of a Report.
type DMARCResult struct {
	Status DMARCStatus `json:"status"`
	// Name is where the record was found: _dmarc.<domain>, or _dmarc of the
	// organizational domain when the domain itself has none (RFC 7489
	// section 6.6.3).
	Name   string       `json:"name,omitempty"`
	Record string       `json:"record,omitempty"`
	Parsed *DMARCRecord `json:"parsed,omitempty"`
	// Policy is what applies to the checked domain: p=, or sp= when the
	// record was found at the organizational domain.
	Policy string `json:"policy,omitempty"`
	Error  string `json:"error,omitempty"`
	// DKIMAligned: our signature uses d=<domain> and its key is published.
	DKIMAligned bool `json:"dkim_aligned"`
	// SPFAligned: our envelope sender domain aligns with the domain in the
	// record's aspf mode. Usually false: the return path is on our domain.
	SPFAligned bool `json:"spf_aligned"`
	// WouldPass tells whether our mail passes DMARC (either aligned).
	WouldPass bool `json:"would_pass"`
	// Suggested is a record to publish when there is none.
	Suggested     string  `json:"suggested,omitempty"`
	Advice        Message `json:"advice"`
	AlignmentNote Message `json:"alignment_note"`
}

// dmarcRecords keeps the TXT strings that are DMARC records (RFC 7489
// section 6.6.3 step 3: others are discarded).
func dmarcRecords(txts []string) []string {
	var records []string
	for _, txt := range txts {
		if strings.HasPrefix(txt, "v=DMARC1") {
			records = append(records, txt)
		}
	}
	return records
}

func (c *Checker) checkDMARC(ctx context.Context, resolver Resolver, domain, ascii string, dkimOK bool) DMARCResult {
	result := DMARCResult{DKIMAligned: dkimOK}
	returnPath := c.cfg.ReturnPathDomain
	// Relaxed alignment: same organizational domain (RFC 7489 section 3.1.2).
	result.SPFAligned = returnPath != "" &&
		organizationalDomain(returnPath) == organizationalDomain(ascii)

	lookup := func(name string) ([]string, lookupState, error) {
		txts, err := resolver.LookupTXT(ctx, canonicalName(name))
		state := classify(err)
		records := dmarcRecords(txts)
		if state == lookupFound && len(records) == 0 {
			state = lookupNotFound
		}
		return records, state, err
	}
	result.Name = "_dmarc." + ascii
	records, state, err := lookup(result.Name)
	fromOrgDomain := false
	if org := organizationalDomain(ascii); state == lookupNotFound && org != ascii {
		orgRecords, orgState, orgErr := lookup("_dmarc." + org)
		if orgState != lookupNotFound {
			records, state, err, fromOrgDomain = orgRecords, orgState, orgErr, true
			result.Name = "_dmarc." + org
		}
	}
	switch {
	case state == lookupTemporary:
		result.Status = DMARCTemporary
		result.Error = err.Error()
		result.Advice = newMessage(MsgAdviceDMARCTemporary, domain)
		return result
	case state == lookupNotFound:
		result.Status = DMARCMissing
		result.Name = "_dmarc." + ascii
		result.Suggested = "v=DMARC1; p=none"
		result.WouldPass = dkimOK || result.SPFAligned
		result.Advice = newMessage(MsgAdviceDMARCMissing, domain, "name", result.Name, "record", result.Suggested)
		result.AlignmentNote = c.alignmentNote(domain, result.SPFAligned)
		return result
	}
	result.Record = records[0]
	if len(records) > 1 {
		// RFC 7489 section 6.6.3 step 4: more than one record means none applies.
		result.Status = DMARCInvalid
		result.Error = "more than one DMARC record"
		result.Advice = newMessage(MsgAdviceDMARCInvalid, domain, "name", result.Name)
		return result
	}
	parsed, err := ParseDMARCRecord(result.Record)
	if err != nil {
		result.Status = DMARCInvalid
		result.Error = err.Error()
		result.Advice = newMessage(MsgAdviceDMARCInvalid, domain, "name", result.Name)
		return result
	}
	result.Parsed = &parsed
	result.Policy = parsed.Policy
	if fromOrgDomain {
		result.Policy = parsed.SubdomainPolicy
	}
	if result.SPFAligned && parsed.ASPF == "s" {
		result.SPFAligned = sameDomain(returnPath, ascii)
	}
	result.WouldPass = dkimOK || result.SPFAligned
	result.AlignmentNote = c.alignmentNote(domain, result.SPFAligned)
	switch {
	case result.Policy == "none":
		result.Status = DMARCNone
		result.Advice = newMessage(MsgAdviceDMARCMonitor, domain)
	case result.WouldPass:
		result.Status = DMARCEnforced
		result.Advice = newMessage(MsgAdviceDMARCPass, domain, "policy", result.Policy)
	default:
		result.Status = DMARCEnforced
		result.Advice = newMessage(MsgAdviceDMARCFail, domain, "policy", result.Policy)
	}
	return result
}

// alignmentNote explains SPF alignment (RFC 7489 section 3.1.2): our mail
// leaves with an envelope sender on the operator's domain, which only aligns
// when that domain lies under the checked one.
func (c *Checker) alignmentNote(domain string, spfAligned bool) Message {
	returnPath := c.cfg.ReturnPathDomain
	if returnPath == "" {
		returnPath = "?"
	}
	if spfAligned {
		return newMessage(MsgNoteSPFAligned, domain, "return_path", returnPath)
	}
	return newMessage(MsgNoteSPFNotAligned, domain, "return_path", returnPath)
}
