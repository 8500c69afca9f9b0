package mailout

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
)

func sampleOutgoing() Outgoing {
	return Outgoing{
		From:       Address{Name: "Jürgen Müller", Address: "juergen@example.org"},
		ReplyTo:    []Address{{Address: "p14@in.postfach.example"}},
		To:         []Address{{Name: "Bob, the \"Builder\"", Address: "bob@example.net"}},
		Cc:         []Address{{Address: "carol@example.net"}},
		Bcc:        []Address{{Address: "secret@example.net"}, {Address: "BOB@example.net"}},
		Subject:    "Grüße zum Angebot – Ihre Anfrage vom 3. März, mit einem sehr langen Betreff, der gefaltet werden muss",
		Date:       time.Date(2025, 3, 5, 9, 30, 0, 0, time.FixedZone("CET", 3600)),
		MessageID:  "20250305.abc@postfach.example",
		InReplyTo:  "orig@example.net",
		References: []string{"first@example.net", "orig@example.net"},
		HTML:       `<p>Hallo <b>Bob</b>,</p><script>alert(1)</script><p onclick="x()">siehe <a href="https://example.org/a">Link</a></p><img src="cid:logo@pf">`,
		Inline:     []Attachment{{Filename: "logo.png", ContentType: "image/png", ContentID: "logo@pf", Data: bytes.Repeat([]byte{0x89, 'P', 'N', 'G'}, 100)}},
		Attachments: []Attachment{
			{Filename: "Übersicht März.pdf", Data: bytes.Repeat([]byte("%PDF-1.4 binary \x00\xff"), 500)},
		},
	}
}

func TestBuildMessage(t *testing.T) {
	t.Parallel()
	o := sampleOutgoing()
	raw, err := BuildMessage(o)
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range bytes.Split(raw, []byte("\r\n")) {
		if len(line) > 998 || bytes.ContainsAny(line, "\r\n") {
			t.Fatalf("line %d is too long or has a bare CR/LF: %q", i, line)
		}
	}
	if bytes.Contains(raw, []byte("secret@example.net")) {
		t.Error("Bcc address in the message")
	}
	if got := strings.Join(o.Recipients(), ","); got != "bob@example.net,carol@example.net,secret@example.net" {
		t.Errorf("recipients %s", got)
	}

	mr, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	h := mr.Header
	from, _ := h.AddressList("From")
	to, _ := h.AddressList("To")
	subject, _ := h.Subject()
	date, _ := h.Date()
	irt, _ := h.MsgIDList("In-Reply-To")
	refs, _ := h.MsgIDList("References")
	msgID, _ := h.MessageID()
	if len(from) != 1 || from[0].Name != "Jürgen Müller" || from[0].Address != "juergen@example.org" {
		t.Errorf("From %v", from)
	}
	if len(to) != 1 || to[0].Name != `Bob, the "Builder"` {
		t.Errorf("To %v", to)
	}
	if subject != o.Subject || !date.Equal(o.Date) || msgID != o.MessageID || len(irt) != 1 || len(refs) != 2 {
		t.Errorf("subject %q date %v id %q irt %v refs %v", subject, date, msgID, irt, refs)
	}
	if h.Get("Mime-Version") != "1.0" || h.Has("Bcc") {
		t.Error("MIME-Version missing or Bcc present")
	}

	// Walk the MIME tree.
	e, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var tree []string
	var htmlBody, textBody, filename, cid string
	var walk func(e *message.Entity, depth int)
	walk = func(e *message.Entity, depth int) {
		mt, _, _ := e.Header.ContentType()
		tree = append(tree, strings.Repeat(" ", depth)+mt)
		if mr := e.MultipartReader(); mr != nil {
			for {
				p, err := mr.NextPart()
				if err == io.EOF {
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				walk(p, depth+1)
			}
		}
		body, _ := io.ReadAll(e.Body)
		switch mt {
		case "text/html":
			htmlBody = string(body)
		case "text/plain":
			textBody = string(body)
		case "image/png":
			cid = e.Header.Get("Content-Id")
		case "application/pdf":
			_, params, _ := e.Header.ContentDisposition()
			filename = params["filename"]
			if !bytes.Equal(body, o.Attachments[0].Data) {
				t.Error("attachment data changed")
			}
		}
	}
	walk(e, 0)
	want := "multipart/mixed| multipart/alternative|  text/plain|  multipart/related|   text/html|   image/png| application/pdf"
	if got := strings.Join(tree, "|"); got != want {
		t.Errorf("structure\n%s\nwant\n%s", got, want)
	}
	if strings.Contains(htmlBody, "script") || strings.Contains(htmlBody, "onclick") || !strings.Contains(htmlBody, `src="cid:logo@pf"`) {
		t.Errorf("html not sanitised as expected: %s", htmlBody)
	}
	if !strings.Contains(textBody, "Hallo Bob,") || !strings.Contains(textBody, "Link <https://example.org/a>") {
		t.Errorf("derived text %q", textBody)
	}
	if filename != "Übersicht März.pdf" || cid != "<logo@pf>" {
		t.Errorf("filename %q cid %q", filename, cid)
	}
}

func TestBuildMessagePlainOnly(t *testing.T) {
	t.Parallel()
	raw, err := BuildMessage(Outgoing{From: Address{Address: "a@example.org"}, Bcc: []Address{{Address: "b@example.net"}},
		Date: time.Unix(0, 0), MessageID: "1@example.org", Text: "Zeile 1\nZeile ä " + strings.Repeat("lang ", 300)})
	if err != nil {
		t.Fatal(err)
	}
	e, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, _ := e.Header.ContentType()
	body, _ := io.ReadAll(e.Body)
	if mt != "text/plain" || params["charset"] != "utf-8" || e.Header.Get("To") != "undisclosed-recipients:;" {
		t.Errorf("header %v", e.Header)
	}
	if !strings.HasPrefix(string(body), "Zeile 1\r\nZeile ä lang") {
		t.Errorf("body %q", body[:40])
	}
}

func TestBuildMessageRefusesInjection(t *testing.T) {
	t.Parallel()
	const inj = "x\r\nBcc: victim@example.com"
	tests := []struct {
		field  string
		mutate func(*Outgoing)
	}{
		{"From", func(o *Outgoing) { o.From.Name = inj }},
		{"From", func(o *Outgoing) { o.From.Address = "a@example.org\r\nBcc: v@x" }},
		{"From", func(o *Outgoing) { o.From.Address = "not an address" }},
		{"Reply-To", func(o *Outgoing) { o.ReplyTo[0].Name = inj }},
		{"To", func(o *Outgoing) { o.To[0].Name = "x\nBcc: v@x" }},
		{"To", func(o *Outgoing) { o.To[0].Address = "b@example.net>, <v@x" }},
		{"Cc", func(o *Outgoing) { o.Cc[0].Address = "c@example.net\x00" }},
		{"Bcc", func(o *Outgoing) { o.Bcc[0].Address = "s@example.net\r\n" }},
		{"Subject", func(o *Outgoing) { o.Subject = inj }},
		{"Subject", func(o *Outgoing) { o.Subject = "bad \xff utf-8" }},
		{"Message-ID", func(o *Outgoing) { o.MessageID = "1@x>\r\nBcc: v@x" }},
		{"Message-ID", func(o *Outgoing) { o.MessageID = "" }},
		{"In-Reply-To", func(o *Outgoing) { o.InReplyTo = "a@b> <c@d" }},
		{"References", func(o *Outgoing) { o.References = []string{"a@b\r\n"} }},
		{"Attachment filename", func(o *Outgoing) { o.Attachments[0].Filename = inj }},
		{"Attachment content type", func(o *Outgoing) { o.Attachments[0].ContentType = "text/plain\r\nX: y" }},
		{"Inline content id", func(o *Outgoing) { o.Inline[0].ContentID = "a@b>\r\nX: y" }},
		{"Date", func(o *Outgoing) { o.Date = time.Time{} }},
	}
	for _, tc := range tests {
		o := sampleOutgoing()
		tc.mutate(&o)
		_, err := BuildMessage(o)
		var he *HeaderError
		if !errors.As(err, &he) || he.Field != tc.field {
			t.Errorf("%s: err = %v, want HeaderError for %s", tc.field, err, tc.field)
		}
	}
	o := sampleOutgoing()
	o.To, o.Cc, o.Bcc = nil, nil, nil
	if _, err := BuildMessage(o); err == nil {
		t.Error("message without recipients built")
	}
}

// FuzzBuildMessage checks that no display name, subject or file name can
// change the set of header fields: each one either is refused or round-trips.
func FuzzBuildMessage(f *testing.F) {
	f.Add("Jürgen Müller", "Grüße", "Übersicht.pdf")
	f.Add("a\r\nBcc: x@y", "s\nX-Evil: 1", "f\r\n")
	f.Add(`"quoted" <x@y>`, "=?utf-8?q?encoded?=", "a;b=c.txt")
	f.Add("", "", "")
	f.Add("=?utf-8?q?x?=", "=?utf-8?b?eA==?= tail", "=?utf-8?q?f?=")
	f.Add("  spaces  ", "tab\there", `"\`)
	f.Fuzz(func(t *testing.T, name, subject, filename string) {
		o := Outgoing{
			From:        Address{Name: name, Address: "a@example.org"},
			To:          []Address{{Name: name, Address: "b@example.net"}},
			Subject:     subject,
			Date:        time.Unix(1700000000, 0),
			MessageID:   "1@example.org",
			Text:        "body",
			Attachments: []Attachment{{Filename: filename, Data: []byte("x")}},
		}
		raw, err := BuildMessage(o)
		if err != nil {
			var he *HeaderError
			if !errors.As(err, &he) {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			return
		}
		mr, err := mail.CreateReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("built message does not parse: %v", err)
		}
		var keys []string
		fields := mr.Header.Fields()
		for fields.Next() {
			keys = append(keys, fields.Key())
		}
		slices.Sort(keys)
		want := "Content-Type,Date,From,Message-Id,Mime-Version,Subject,To"
		if strings.Trim(subject, " \t") == "" {
			want = strings.Replace(want, "Subject,", "", 1)
		}
		if got := strings.Join(keys, ","); got != want {
			t.Fatalf("header fields %s\n%s", got, raw)
		}
		from, err := mr.Header.AddressList("From")
		if err != nil || len(from) != 1 || from[0].Address != "a@example.org" || from[0].Name != collapseBlanks(name) {
			t.Fatalf("From %v (%v) from name %q\n%s", from, err, name, raw)
		}
		if got, err := mr.Header.Subject(); err != nil || got != strings.Trim(subject, " \t") {
			t.Fatalf("Subject %q (%v), want %q", got, err, subject)
		}
		p, err := mr.NextPart()
		if err != nil {
			t.Fatal(err)
		}
		p, err = mr.NextPart()
		if err != nil {
			t.Fatal(err)
		}
		if ah, ok := p.Header.(*mail.AttachmentHeader); ok {
			// go-message decodes RFC 2047 words in file names as some
			// senders use them; such names cannot round-trip.
			if fn, err := ah.Filename(); err != nil || (fn != cleanFilename(filename) && !strings.Contains(filename, "=?")) {
				t.Fatalf("filename %q (%v), want %q", fn, err, filename)
			}
		}
	})
}
