package imapd

import (
	"bufio"
	"bytes"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"postfach/internal/store"
)

// candidate is one message under test, its bytes loaded only when a criterion needs them.
type candidate struct {
	seq    uint32
	entry  store.IMAPEntry
	load   func() []byte
	raw    []byte
	loaded bool
	header *textproto.Header
}

func (c *candidate) bytes() []byte {
	if !c.loaded {
		c.raw, c.loaded = c.load(), true
	}
	return c.raw
}

func (c *candidate) hdr() textproto.Header {
	if c.header == nil {
		h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(c.bytes())))
		if err != nil {
			h = textproto.Header{}
		}
		c.header = &h
	}
	return *c.header
}

func (c *candidate) body() []byte {
	raw := c.bytes()
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		return raw[i+4:]
	}
	if i := bytes.Index(raw, []byte("\n\n")); i >= 0 {
		return raw[i+2:]
	}
	return nil
}

// containsFold is a case-insensitive substring test (RFC 9051 §6.4.4: matching is
// case-insensitive).
func containsFold(haystack []byte, needle string) bool {
	return bytes.Contains(bytes.ToLower(haystack), []byte(strings.ToLower(needle)))
}

// dateOnly compares by calendar date, as SEARCH does (RFC 9051 §6.4.4).
func dateOnly(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func inDateRange(t, since, before time.Time) bool {
	if !since.IsZero() && dateOnly(t).Before(dateOnly(since)) {
		return false
	}
	if !before.IsZero() && !dateOnly(t).Before(dateOnly(before)) {
		return false
	}
	return true
}

// matches evaluates SEARCH criteria (RFC 9051 §6.4.4) against one message.
func matches(c *candidate, cr *imap.SearchCriteria) bool {
	for _, s := range cr.SeqNum {
		if !s.Contains(c.seq) {
			return false
		}
	}
	for _, s := range cr.UID {
		if !s.Contains(imap.UID(c.entry.UID)) {
			return false
		}
	}
	flags := parseFlags(c.entry.Flags)
	for _, f := range cr.Flag {
		if !hasFlag(flags, f) {
			return false
		}
	}
	for _, f := range cr.NotFlag {
		if hasFlag(flags, f) {
			return false
		}
	}
	if cr.Larger > 0 && c.entry.Size <= cr.Larger {
		return false
	}
	if cr.Smaller > 0 && c.entry.Size >= cr.Smaller {
		return false
	}
	if !inDateRange(time.UnixMilli(c.entry.InternalDate), cr.Since, cr.Before) {
		return false
	}
	if !cr.SentSince.IsZero() || !cr.SentBefore.IsZero() {
		th := c.hdr()
		h := mail.HeaderFromMap(th.Map())
		d, err := h.Date()
		if err != nil || !inDateRange(d, cr.SentSince, cr.SentBefore) {
			return false
		}
	}
	for _, hf := range cr.Header {
		h := c.hdr()
		values := h.Values(hf.Key)
		if len(values) == 0 {
			return false
		}
		found := false
		for _, v := range values {
			if hf.Value == "" || containsFold([]byte(v), hf.Value) {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	for _, b := range cr.Body {
		if !containsFold(c.body(), b) {
			return false
		}
	}
	for _, t := range cr.Text {
		if !containsFold(c.bytes(), t) {
			return false
		}
	}
	for i := range cr.Not {
		if matches(c, &cr.Not[i]) {
			return false
		}
	}
	for i := range cr.Or {
		if !matches(c, &cr.Or[i][0]) && !matches(c, &cr.Or[i][1]) {
			return false
		}
	}
	return true
}

func (sess *session) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	sel := sess.sel
	resolveSets(sel, criteria)
	var data imap.SearchData
	var seqs imap.SeqSet
	var uids imap.UIDSet
	for i, e := range sel.entries {
		e := e
		c := &candidate{seq: uint32(i + 1), entry: e, load: func() []byte {
			raw, err := sess.raw(e)
			if err != nil {
				return nil
			}
			return raw
		}}
		if !matches(c, criteria) {
			continue
		}
		uids.AddNum(imap.UID(e.UID))
		num := uint32(i + 1)
		if kind == imapserver.NumKindUID {
			num = e.UID
		} else {
			seqs.AddNum(num)
		}
		if data.Min == 0 || num < data.Min {
			data.Min = num
		}
		if num > data.Max {
			data.Max = num
		}
		data.Count++
	}
	if kind == imapserver.NumKindUID {
		data.All = uids
	} else {
		data.All = seqs
	}
	if options != nil && options.ReturnSave {
		sel.searchRes = uids
	}
	return &data, nil
}

// resolveSets replaces "*" and "$" in the criteria's sets by concrete numbers.
func resolveSets(sel *selected, cr *imap.SearchCriteria) {
	n := uint32(len(sel.entries))
	var seqSets []imap.SeqSet
	for _, s := range cr.SeqNum {
		if imap.IsSearchRes(s) {
			cr.UID = append(cr.UID, sel.searchRes)
			continue
		}
		out := make(imap.SeqSet, len(s))
		for i, r := range s {
			if r.Start == 0 {
				r.Start = n
			}
			if r.Stop == 0 {
				r.Stop = n
			}
			if r.Start > r.Stop {
				r.Start, r.Stop = r.Stop, r.Start
			}
			out[i] = r
		}
		seqSets = append(seqSets, out)
	}
	cr.SeqNum = seqSets
	max := imap.UID(sel.maxUID())
	for k, s := range cr.UID {
		out := make(imap.UIDSet, len(s))
		for i, r := range s {
			if r.Start == 0 {
				r.Start = max
			}
			if r.Stop == 0 {
				r.Stop = max
			}
			if r.Start > r.Stop {
				r.Start, r.Stop = r.Stop, r.Start
			}
			out[i] = r
		}
		cr.UID[k] = out
	}
	for i := range cr.Not {
		resolveSets(sel, &cr.Not[i])
	}
	for i := range cr.Or {
		resolveSets(sel, &cr.Or[i][0])
		resolveSets(sel, &cr.Or[i][1])
	}
}
