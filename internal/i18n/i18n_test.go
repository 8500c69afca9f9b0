package i18n

import (
	"reflect"
	"testing"
)

// Every key must exist in every language with the same placeholders: a missing translation
// or a renamed placeholder is a defect the user would see.
func TestEveryKeyInEveryLanguage(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Keys()) == 0 {
		t.Fatal("no texts loaded")
	}
	for _, key := range c.Keys() {
		var ref []string
		for i, lang := range Languages {
			s, ok := c.Raw(lang, key)
			if !ok || s == "" {
				t.Errorf("%s: missing %s text", key, lang)
				continue
			}
			ph := Placeholders(s)
			if i == 0 {
				ref = ph
			} else if !reflect.DeepEqual(ph, ref) {
				t.Errorf("%s: placeholders differ: de %v, %s %v", key, ref, lang, ph)
			}
		}
	}
}

func TestLanguageChoice(t *testing.T) {
	cases := map[string]string{"en-US,en;q=0.9": "en", "de-DE": "de", "fr-FR,en;q=0.5": "en", "": "de", "fr": "de"}
	for h, want := range cases {
		if got := FromAcceptLanguage(h); got != want {
			t.Errorf("%q: got %s want %s", h, got, want)
		}
	}
	c := MustLoad()
	if got := c.T("en", "no.such.key", nil); got != "[no.such.key]" {
		t.Errorf("unknown key: %q", got)
	}
}
