package signature

import (
	"strings"
	"testing"

	"postfach/internal/store"
)

func TestRender(t *testing.T) {
	u := store.User{ID: 7, DisplayName: "Barbara Renner", ShortCode: "BR", Email: "b@x.example", Profile: map[string]string{"Telefon": "+49 30 123"}}
	pics := []store.Picture{{Order: 0, ContentType: "image/png", Data: []byte("png0"), Width: 300, Height: 100}, {Order: 1, ContentType: "image/png", Data: []byte("png1"), Width: 50, Height: 50}}
	body := `<p>Viele Grüße<br>@Name@ (@Kuerzel@)<br>Tel. @Telefon@ @Unbekannt@</p>@Bild@ @Bild(1,100,200)@<script>alert(1)</script>`
	r := Render(body, u, pics, ForMail)
	for _, want := range []string{"Barbara Renner (BR)", "+49 30 123", "@Unbekannt@", `src="cid:bild0.7@postfach" width="300" height="100"`, `width="100" height="200"`} {
		if !strings.Contains(r.HTML, want) {
			t.Errorf("HTML lacks %q:\n%s", want, r.HTML)
		}
	}
	if strings.Contains(r.HTML, "script") {
		t.Errorf("script survived: %s", r.HTML)
	}
	if len(r.Inline) != 2 {
		t.Errorf("inline parts: %d", len(r.Inline))
	}
	if !strings.Contains(r.Text, "Viele Grüße\nBarbara Renner (BR)") {
		t.Errorf("text: %q", r.Text)
	}
	p := Render(body, u, pics, ForPreview)
	if !strings.Contains(p.HTML, "data:image/png;base64,") || len(p.Inline) != 0 {
		t.Errorf("preview: %s", p.HTML)
	}
	evil := store.User{DisplayName: `<img src=x onerror=alert(1)>`}
	if h := Render("@Name@", evil, nil, ForMail).HTML; strings.Contains(h, "<img") {
		t.Errorf("name not escaped: %s", h)
	}
}

func TestChoose(t *testing.T) {
	g := &store.Signature{BodyHTML: "general"}
	if Choose(g, nil) != "general" || Choose(g, &store.Signature{BodyHTML: "own"}) != "own" || Choose(g, &store.Signature{BodyHTML: " "}) != "general" {
		t.Fatal("per-user signature must win, general is the fallback")
	}
}

func FuzzRender(f *testing.F) {
	f.Add("@Bild(0,1,2)@ @Name@ <b>x</b>")
	f.Add("@Bild(99,9999,9999)@@@@")
	f.Fuzz(func(t *testing.T, body string) {
		r := Render(body, store.User{DisplayName: "A"}, []store.Picture{{Order: 0, ContentType: "image/png", Data: []byte{1}}}, ForMail)
		if strings.Contains(strings.ToLower(r.HTML), "<script") {
			t.Fatalf("script in output: %q", r.HTML)
		}
	})
}
