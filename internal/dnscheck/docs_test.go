package dnscheck

import (
	"os"
	"strings"
	"testing"
)

// The documentation lists every message of the catalog in both languages.
func TestDocsListEveryMessage(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/dns-checks.md")
	if err != nil {
		t.Skipf("docs not found: %v", err)
	}
	for _, entry := range Catalog() {
		for _, text := range []string{entry.DE, entry.EN} {
			if !strings.Contains(string(doc), text) {
				t.Errorf("docs/dns-checks.md lacks %s: %q", entry.Key, text)
			}
		}
	}
}
