package web

import (
	"strings"
	"testing"
)

func TestMessageBody(t *testing.T) {
	tests := []struct {
		name, raw, text, html string
	}{
		{"plain", "Subject: x\r\n\r\nHallo\r\n", "Hallo\r\n", ""},
		{"alternative", "Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nT\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>H</p>\r\n--b--\r\n", "T", "<p>H</p>"},
		{"base64", "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nR3LDvMOfZQ==\r\n", "Grüße", ""},
		{"quoted-printable latin1", "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=FC=DFe", "Grüße", ""},
		{"attachment skipped", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=a.txt\r\n\r\nA\r\n--b\r\nContent-Type: text/plain\r\n\r\nB\r\n--b--\r\n", "B", ""},
		{"no header", "\x00garbage", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text, html := messageBody([]byte(tc.raw))
			if text != tc.text || html != tc.html {
				t.Errorf("got %q, %q; want %q, %q", text, html, tc.text, tc.html)
			}
		})
	}
}

func FuzzMessageBody(f *testing.F) {
	f.Add("Subject: x\r\n\r\nHallo\r\n")
	f.Add("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n--c\r\nContent-Transfer-Encoding: base64\r\n\r\n!!\r\n--c--\r\n--b--\r\n")
	f.Add("Content-Type: text/html; charset=latin1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=ZZ")
	f.Fuzz(func(t *testing.T, raw string) {
		text, html := messageBody([]byte(raw))
		if len(text) > 8<<20 || len(html) > 8<<20 {
			t.Fatal("body larger than the read limit allows")
		}
		_ = strings.ToValidUTF8(text, "")
	})
}
