// Package i18n holds every user-visible text of Postfach in German and English and picks
// the language of a request. German is the default: the product's users and its manuals are
// German. Texts live in JSON files under locales/, one per area ({"key": {"de": …, "en": …}}),
// so that each package owner keeps their own file; a test checks that every key has both
// languages and that both use the same {placeholders}.
package i18n

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strings"
)

// Languages Postfach speaks; the first is the default.
var Languages = []string{"de", "en"}

//go:embed locales/*.json
var localeFiles embed.FS

// Catalog maps keys to texts per language.
type Catalog struct {
	texts map[string]map[string]string // key → lang → text
}

// Load reads the embedded locale files.
func Load() (*Catalog, error) {
	c := &Catalog{texts: map[string]map[string]string{}}
	entries, err := fs.Glob(localeFiles, "locales/*.json")
	if err != nil {
		return nil, fmt.Errorf("i18n: %w", err)
	}
	for _, name := range entries {
		b, err := localeFiles.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("i18n: %w", err)
		}
		var m map[string]map[string]string
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("i18n: %s: %w", name, err)
		}
		for k, v := range m {
			if _, dup := c.texts[k]; dup {
				return nil, fmt.Errorf("i18n: key %q defined twice (second in %s)", k, name)
			}
			c.texts[k] = v
		}
	}
	return c, nil
}

// MustLoad is Load for program start and tests: the files are embedded, so failure is a build defect.
func MustLoad() *Catalog {
	c, err := Load()
	if err != nil {
		panic(err)
	}
	return c
}

// Has reports whether key exists.
func (c *Catalog) Has(key string) bool { _, ok := c.texts[key]; return ok }

// Keys lists every key, sorted.
func (c *Catalog) Keys() []string {
	keys := make([]string, 0, len(c.texts))
	for k := range c.texts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Raw returns the text for key in lang without filling placeholders, and whether it exists.
func (c *Catalog) Raw(lang, key string) (string, bool) {
	v, ok := c.texts[key]
	if !ok {
		return "", false
	}
	s, ok := v[lang]
	return s, ok
}

var placeholder = regexp.MustCompile(`\{([a-zA-Z_]+)\}`)

// T returns the text for key in lang with {name} placeholders filled from params. An unknown
// key yields the key itself in brackets, which the translation test catches.
func (c *Catalog) T(lang, key string, params map[string]string) string {
	s, ok := c.Raw(Normalize(lang), key)
	if !ok {
		if s, ok = c.Raw("de", key); !ok {
			return "[" + key + "]"
		}
	}
	if len(params) == 0 {
		return s
	}
	return placeholder.ReplaceAllStringFunc(s, func(m string) string {
		if v, ok := params[m[1:len(m)-1]]; ok {
			return v
		}
		return m
	})
}

// Placeholders lists the {names} used in a text.
func Placeholders(s string) []string {
	var out []string
	for _, m := range placeholder.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	sort.Strings(out)
	return out
}

// Normalize maps any language tag to one we speak ("en-GB" → "en"), German otherwise.
func Normalize(lang string) string {
	lang = strings.ToLower(strings.TrimSpace(lang))
	for _, l := range Languages {
		if lang == l || strings.HasPrefix(lang, l+"-") || strings.HasPrefix(lang, l+"_") {
			return l
		}
	}
	return Languages[0]
}

// FromAcceptLanguage picks the best language from an Accept-Language header, honouring
// the order of preference (q-values are rare in practice; order is what browsers send).
func FromAcceptLanguage(header string) string {
	for _, part := range strings.Split(header, ",") {
		tag := strings.TrimSpace(strings.SplitN(part, ";", 2)[0])
		if tag == "" {
			continue
		}
		l := strings.ToLower(tag)
		for _, known := range Languages {
			if l == known || strings.HasPrefix(l, known+"-") {
				return known
			}
		}
	}
	return Languages[0]
}
