// Package signature renders e-mail signatures (feature C8): the general one or a user's own
// (the user's wins), with placeholders for the employee's data and pictures, sanitised HTML
// and a plain-text alternative.
//
// Placeholders, as in the manual: @Name@ (display name), @Kuerzel@ or @Kürzel@ (short code),
// @EMail@, @Bild(order,width,height)@ (the employee's picture; without parameters the first
// picture, order 0, in original size) and @<field>@ for every profile field of the user,
// e.g. @Telefon@. Unknown placeholders are left as typed so the author sees the mistake in
// the preview.
package signature

import (
	"encoding/base64"
	"fmt"
	"html"
	"regexp"
	"strconv"
	"strings"

	"github.com/microcosm-cc/bluemonday"

	"postfach/internal/store"
)

// Inline is a picture referenced from the HTML, to be attached as a related part.
type Inline struct {
	ContentID   string
	ContentType string
	Data        []byte
}

// Rendered is a signature ready to append to a message.
type Rendered struct {
	HTML   string
	Text   string
	Inline []Inline
}

// Mode says how pictures are referenced.
type Mode int

const (
	ForMail    Mode = iota // cid: references plus Inline parts
	ForPreview             // data: URIs, for the browser preview
)

// Choose picks the user's own signature, falling back to the general one.
func Choose(general *store.Signature, own *store.Signature) string {
	if own != nil && strings.TrimSpace(own.BodyHTML) != "" {
		return own.BodyHTML
	}
	if general != nil {
		return general.BodyHTML
	}
	return ""
}

var (
	picturePattern     = regexp.MustCompile(`@Bild(?:\((\d{1,2})?(?:\s*,\s*(\d{1,4}))?(?:\s*,\s*(\d{1,4}))?\))?@`)
	placeholderPattern = regexp.MustCompile(`@([\p{L}\p{N}_.-]{1,40})@`)
)

// Policy is the sanitiser for signature HTML: formatting, links, tables and images, no
// scripts, styles limited to what mail clients render. Images may only point at cid: or
// data: (our own inline parts) and https:.
func Policy() *bluemonday.Policy {
	p := bluemonday.UGCPolicy()
	p.AllowURLSchemes("https", "http", "mailto", "cid", "data")
	p.AllowDataURIImages()
	p.AllowAttrs("width", "height", "alt", "style").OnElements("img")
	p.AllowAttrs("style", "align").OnElements("p", "div", "span", "td", "table", "tr")
	p.AllowStyles("color", "font-size", "font-family", "font-weight", "text-align", "margin", "padding").Globally()
	p.RequireNoFollowOnLinks(false)
	return p
}

// Sanitizer holds the signature policy built once: building bluemonday's policy costs far
// more than applying it, and a built policy is safe for concurrent use. The core builds one
// per Service and passes it along.
type Sanitizer struct{ policy *bluemonday.Policy }

// NewSanitizer builds the signature policy.
func NewSanitizer() *Sanitizer { return &Sanitizer{policy: Policy()} }

// Sanitize applies the signature policy to HTML.
func (s *Sanitizer) Sanitize(html string) string { return s.policy.Sanitize(html) }

// Render fills the placeholders of a signature for user and sanitises the result; it
// builds a policy for this one call (see Sanitizer.Render to reuse one).
func Render(body string, user store.User, pictures []store.Picture, mode Mode) Rendered {
	return NewSanitizer().Render(body, user, pictures, mode)
}

// Render fills the placeholders of a signature for user and sanitises the result.
func (s *Sanitizer) Render(body string, user store.User, pictures []store.Picture, mode Mode) Rendered {
	var out Rendered
	used := map[string]bool{}
	body = picturePattern.ReplaceAllStringFunc(body, func(m string) string {
		sub := picturePattern.FindStringSubmatch(m)
		order, _ := strconv.Atoi(sub[1])
		var pic *store.Picture
		for i := range pictures {
			if pictures[i].Order == order {
				pic = &pictures[i]
			}
		}
		if pic == nil {
			return ""
		}
		w, h := pic.Width, pic.Height
		if sub[2] != "" {
			w, _ = strconv.Atoi(sub[2])
		}
		if sub[3] != "" {
			h, _ = strconv.Atoi(sub[3])
		}
		var src string
		if mode == ForPreview {
			src = "data:" + pic.ContentType + ";base64," + base64.StdEncoding.EncodeToString(pic.Data)
		} else {
			cid := fmt.Sprintf("bild%d.%d@postfach", order, user.ID)
			src = "cid:" + cid
			if !used[cid] {
				used[cid] = true
				out.Inline = append(out.Inline, Inline{ContentID: cid, ContentType: pic.ContentType, Data: pic.Data})
			}
		}
		return fmt.Sprintf(`<img src="%s" width="%d" height="%d" alt="%s">`, src, w, h, html.EscapeString(user.DisplayName))
	})
	values := map[string]string{
		"Name": user.DisplayName, "Kuerzel": user.ShortCode, "Kürzel": user.ShortCode, "EMail": user.Email, "E-Mail": user.Email,
	}
	for k, v := range user.Profile {
		if _, taken := values[k]; !taken {
			values[k] = v
		}
	}
	body = placeholderPattern.ReplaceAllStringFunc(body, func(m string) string {
		key := m[1 : len(m)-1]
		if v, ok := values[key]; ok {
			return html.EscapeString(v)
		}
		return m
	})
	out.HTML = s.policy.Sanitize(body)
	out.Text = HTMLToText(out.HTML)
	return out
}

var (
	breakTags = regexp.MustCompile(`(?i)<\s*(br|/p|/div|/tr|/h[1-6]|/li)\s*/?>`)
	anyTag    = regexp.MustCompile(`<[^>]*>`)
	blankRuns = regexp.MustCompile(`\n{3,}`)
)

// HTMLToText makes the plain-text alternative: line breaks where blocks end, tags dropped,
// entities decoded.
func HTMLToText(h string) string {
	s := breakTags.ReplaceAllString(h, "$0\n")
	s = anyTag.ReplaceAllString(s, "")
	s = html.UnescapeString(s)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return strings.TrimSpace(blankRuns.ReplaceAllString(strings.Join(lines, "\n"), "\n\n"))
}
