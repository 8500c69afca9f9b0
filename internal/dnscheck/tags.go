package dnscheck

import (
	"errors"
	"fmt"
	"strings"
)

// ErrMalformedTagList is returned for a DKIM or DMARC record that is not a
// tag=value list.
var ErrMalformedTagList = errors.New("malformed tag list")

type tag struct {
	name  string
	value string
}

// parseTagList splits "a=1; b = 2;" into its tags (RFC 6376 section 3.2,
// used by DMARC too, RFC 7489 section 6.4). Whitespace around names and
// values is folding whitespace and dropped; an empty final segment is
// allowed; a duplicate name is an error.
func parseTagList(record string) ([]tag, error) {
	var tags []tag
	seen := make(map[string]bool)
	segments := strings.Split(record, ";")
	for i, segment := range segments {
		segment = strings.TrimSpace(segment)
		if segment == "" {
			if i == len(segments)-1 {
				break
			}
			return nil, fmt.Errorf("dnscheck: empty tag: %w", ErrMalformedTagList)
		}
		name, value, ok := strings.Cut(segment, "=")
		if !ok {
			return nil, fmt.Errorf("dnscheck: tag without '=': %w", ErrMalformedTagList)
		}
		name = strings.TrimSpace(name)
		if !isTagName(name) {
			return nil, fmt.Errorf("dnscheck: bad tag name %q: %w", name, ErrMalformedTagList)
		}
		if seen[name] {
			return nil, fmt.Errorf("dnscheck: duplicate tag %q: %w", name, ErrMalformedTagList)
		}
		seen[name] = true
		tags = append(tags, tag{name: name, value: strings.TrimSpace(value)})
	}
	return tags, nil
}

// isTagName checks tag-name = ALPHA *ALNUMPUNC (RFC 6376 section 3.2).
func isTagName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		isAlpha := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if i == 0 && !isAlpha {
			return false
		}
		if !isAlpha && !(c >= '0' && c <= '9') && c != '_' {
			return false
		}
	}
	return true
}
