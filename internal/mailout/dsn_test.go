package mailout

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	gmtextproto "github.com/emersion/go-message/textproto"
	"github.com/emersion/go-smtp"
)

func TestBuildDSN(t *testing.T) {
	t.Parallel()
	original := []byte("From: Anna <anna@example.org>\r\nTo: bob@example.net\r\nSubject: Angebot\r\n" +
		"Message-ID: <orig-1@example.org>\r\n\r\nsecret body text\r\n")
	when := time.Date(2025, 3, 5, 12, 0, 0, 0, time.UTC)
	failedRes := failure("bob@example.net", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user\r\nX-Injected: yes"}, false)
	delayedRes := failure("carol@example.net", errors.New("dial tcp: connection refused"), false)
	p := DSNParams{
		ReportingMTA: "out.postfach.example",
		From:         "MAILER-DAEMON@out.postfach.example",
		To:           "p14.out@postfach.example",
		MessageID:    "dsn-1@out.postfach.example",
		Date:         when,
		EnvelopeID:   "q-42",
		ArrivalDate:  when.Add(-96 * time.Hour),
		Recipients: []DSNRecipient{
			RecipientFromResult(failedRes, "mx.example.net", when),
			RecipientFromResult(delayedRes, "", when),
		},
		Original: original,
	}
	p.Recipients[1].WillRetryUntil = when.Add(time.Hour)
	raw, err := BuildDSN(p)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("secret body text")) {
		t.Error("DSN contains the original body")
	}

	e, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	h := mail.Header{Header: e.Header}
	mt, params, _ := h.ContentType()
	if mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Errorf("content type %s %v", mt, params)
	}
	if got := h.Get("Auto-Submitted"); got != "auto-replied" {
		t.Errorf("Auto-Submitted = %q", got)
	}
	if subj, _ := h.Subject(); !strings.HasPrefix(subj, "Unzustellbar / Undeliverable: Angebot") {
		t.Errorf("subject %q", subj)
	}
	if irt, _ := h.MsgIDList("In-Reply-To"); len(irt) != 1 || irt[0] != "orig-1@example.org" {
		t.Errorf("In-Reply-To %v", irt)
	}

	mr := e.MultipartReader()
	var types []string
	var text string
	var groups []gmtextproto.Header
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		pt, _, _ := part.Header.ContentType()
		types = append(types, pt)
		body, _ := io.ReadAll(part.Body)
		switch pt {
		case "text/plain":
			text = string(body)
		case "message/delivery-status":
			br := bufio.NewReader(bytes.NewReader(body))
			for {
				g, err := gmtextproto.ReadHeader(br)
				if err != nil {
					t.Fatalf("field group: %v", err)
				}
				groups = append(groups, g)
				if _, err := br.Peek(1); err != nil {
					break
				}
			}
		case "text/rfc822-headers":
			if !bytes.Contains(body, []byte("Subject: Angebot")) {
				t.Errorf("original header part: %q", body)
			}
		}
	}
	if strings.Join(types, ",") != "text/plain,message/delivery-status,text/rfc822-headers" {
		t.Fatalf("parts %v", types)
	}
	for _, want := range []string{"konnte an folgende Empfänger nicht zugestellt werden", "could not be delivered", "bob@example.net", "noch nicht zugestellt"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	if len(groups) != 3 {
		t.Fatalf("%d field groups, want 3", len(groups))
	}
	checks := []map[string]string{
		{"Reporting-MTA": "dns; out.postfach.example", "Original-Envelope-Id": "q-42", "Arrival-Date": "Sat, 01 Mar 2025 12:00:00 +0000"},
		{"Final-Recipient": "rfc822; bob@example.net", "Action": "failed", "Status": "5.1.1",
			"Remote-MTA": "dns; mx.example.net", "Diagnostic-Code": "smtp; 550 5.1.1 no such user  X-Injected: yes"},
		{"Final-Recipient": "rfc822; carol@example.net", "Action": "delayed", "Status": "4.4.1", "Will-Retry-Until": "Wed, 05 Mar 2025 13:00:00 +0000"},
	}
	for i, c := range checks {
		for k, v := range c {
			if got := groups[i].Get(k); got != v {
				t.Errorf("group %d %s = %q, want %q", i, k, got, v)
			}
		}
	}
	if groups[1].Has("X-Injected") {
		t.Error("diagnostic text injected a field")
	}
}

func TestBuildDSNRefuses(t *testing.T) {
	t.Parallel()
	good := DSNParams{ReportingMTA: "h", From: "m@h", To: "s@h", MessageID: "1@h",
		Recipients: []DSNRecipient{{FinalRecipient: "r@x", Action: ActionFailed, Status: "5.0.0"}}}
	if _, err := BuildDSN(good); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*DSNParams){
		"no recipients": func(p *DSNParams) { p.Recipients = nil },
		"bad status": func(p *DSNParams) {
			p.Recipients = []DSNRecipient{{FinalRecipient: "r@x", Action: ActionFailed, Status: "550"}}
		},
		"bad action": func(p *DSNParams) {
			p.Recipients = []DSNRecipient{{FinalRecipient: "r@x", Action: "relayed", Status: "2.0.0"}}
		},
		"injected to":    func(p *DSNParams) { p.To = "s@h\r\nBcc: x@y" },
		"no reporter":    func(p *DSNParams) { p.ReportingMTA = "" },
		"injected msgid": func(p *DSNParams) { p.MessageID = "1@h>\r\nX: y" },
	} {
		p := good
		mutate(&p)
		if _, err := BuildDSN(p); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
