package conntest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// smtp runs EHLO, STARTTLS and AUTH on a connection whose 220 greeting was
// read from br.
func (r *run) smtp(conn net.Conn, br *bufio.Reader, greetingRaw []byte) {
	s := r.settings
	helo := r.tester.HeloName
	if helo == "" {
		helo = "localhost"
	}
	var c *smtp.Client
	if s.Security == SecuritySTARTTLS {
		// go-smtp does EHLO and STARTTLS in one call and reports "no
		// STARTTLS" only as text; ask EHLO ourselves first so that the
		// greeting and STARTTLS steps fail separately and clearly.
		ext, code, err := ehlo(conn, br, helo)
		if err != nil {
			r.failIO(StepGreeting, err)
			return
		}
		if ext == nil {
			r.fail(StepGreeting, outcome{key: KeyGreetingEHLORejected, detail: fmt.Sprintf("SMTP %d", code)})
			return
		}
		r.pass(StepGreeting, extDetail(ext))
		if _, ok := ext["STARTTLS"]; !ok {
			r.fail(StepSTARTTLS, outcome{key: KeySTARTTLSUnsupported, detail: "STARTTLS not in EHLO reply"})
			return
		}
		// RFC 3207: STARTTLS, 220, handshake; the client then says EHLO
		// again. The handshake happens on that first write.
		c, err = smtp.NewClientStartTLS(newReplayConn(conn, greetingRaw, br), r.tlsConfig())
		if err != nil {
			var smtpErr *smtp.SMTPError
			if errors.As(err, &smtpErr) {
				r.fail(StepSTARTTLS, outcome{key: KeySTARTTLSRefused, detail: smtpDetail(smtpErr)})
			} else {
				r.failIO(StepSTARTTLS, err)
			}
			return
		}
		defer c.Close()
		if err := c.Hello(helo); err != nil {
			var smtpErr *smtp.SMTPError
			if errors.As(err, &smtpErr) {
				r.fail(StepSTARTTLS, outcome{key: KeySTARTTLSFailed, detail: "EHLO after STARTTLS: " + smtpDetail(smtpErr)})
			} else {
				r.failIO(StepSTARTTLS, err)
			}
			return
		}
		r.tls = true
		detail := ""
		if cs, ok := c.TLSConnectionState(); ok {
			detail = tlsDetail(cs)
		}
		r.pass(StepSTARTTLS, detail)
	} else {
		c = smtp.NewClient(newReplayConn(conn, greetingRaw, br))
		defer c.Close()
		if err := c.Hello(helo); err != nil {
			var smtpErr *smtp.SMTPError
			if errors.As(err, &smtpErr) {
				r.fail(StepGreeting, outcome{key: KeyGreetingEHLORejected, detail: smtpDetail(smtpErr)})
			} else {
				r.failIO(StepGreeting, err)
			}
			return
		}
		r.pass(StepGreeting, "")
	}

	if s.AuthEnabled && !r.smtpAuth(c) {
		return
	}
	_ = c.Quit()
}

func (r *run) smtpAuth(c *smtp.Client) bool {
	s := r.settings
	if !r.requireCredentials() {
		return false
	}
	// RFC 4954 section 3: mechanisms are listed in the EHLO AUTH line.
	if ok, _ := c.Extension("AUTH"); !ok {
		r.fail(StepAuth, outcome{key: KeyAuthUnsupported, detail: "AUTH not in EHLO reply"})
		return false
	}
	var client sasl.Client
	switch {
	case s.OAuth2Token != "" && c.SupportsAuth("XOAUTH2"):
		client = newXOAUTH2Client(s.Username, s.OAuth2Token)
	case s.OAuth2Token != "" && c.SupportsAuth("OAUTHBEARER"):
		client = sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{Username: s.Username, Token: s.OAuth2Token})
	case s.OAuth2Token == "" && c.SupportsAuth("PLAIN"):
		client = sasl.NewPlainClient("", s.Username, s.Password)
	case s.OAuth2Token == "" && c.SupportsAuth("LOGIN"):
		client = sasl.NewLoginClient(s.Username, s.Password)
	default:
		_, mechs := c.Extension("AUTH")
		r.fail(StepAuth, outcome{key: KeyAuthNoMechanism, detail: "server offers " + printable(mechs, 120)})
		return false
	}
	r.credentialsSent()
	if err := c.Auth(client); err != nil {
		var smtpErr *smtp.SMTPError
		if !errors.As(err, &smtpErr) {
			r.failIO(StepAuth, err)
			return false
		}
		key := KeyAuthFailed
		switch {
		case smtpErr.Code == 534 || smtpErr.Code == 538: // RFC 4954 section 6
			key = KeyAuthEncryptionRequired
		case smtpErr.Code == 504:
			key = KeyAuthNoMechanism
		case smtpErr.Code >= 400 && smtpErr.Code < 500:
			key = KeyAuthTemporary
		case s.OAuth2Token != "":
			key = KeyAuthOAuthFailed
		}
		r.fail(StepAuth, outcome{key: key, detail: smtpDetail(smtpErr)})
		return false
	}
	r.pass(StepAuth, "")
	return true
}

// ehlo sends EHLO and returns the extension keywords (upper case) with
// their parameters. A server that does not know EHLO (500/502) yields no
// extensions; any other refusal yields nil and the reply code.
func ehlo(conn net.Conn, br *bufio.Reader, helo string) (map[string]string, int, error) {
	if _, err := conn.Write([]byte("EHLO " + helo + "\r\n")); err != nil {
		return nil, 0, err
	}
	code, lines, err := readSMTPReply(br)
	if err != nil {
		return nil, 0, err
	}
	switch code {
	case 250:
	case 500, 502:
		return map[string]string{}, code, nil
	default:
		return nil, code, nil
	}
	ext := make(map[string]string)
	for _, line := range lines[1:] {
		keyword, params, _ := strings.Cut(line, " ")
		ext[strings.ToUpper(keyword)] = params
	}
	return ext, code, nil
}

// readSMTPReply reads one reply (RFC 5321 section 4.2) and returns its code
// and the text of each line.
func readSMTPReply(br *bufio.Reader) (int, []string, error) {
	var lines []string
	code := ""
	for {
		raw, err := readLine(br)
		if err != nil {
			return 0, nil, err
		}
		line := strings.TrimRight(string(raw), "\r\n")
		c, ok := smtpCode(line)
		if !ok || (code != "" && c != code) {
			return 0, nil, errMalformedReply
		}
		code = c
		text := ""
		if len(line) > 4 {
			text = line[4:]
		}
		lines = append(lines, text)
		if len(line) == 3 || line[3] == ' ' {
			break
		}
		if len(lines) >= maxGreetingLines {
			return 0, nil, errLineTooLong
		}
	}
	n := int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	return n, lines, nil
}

var errMalformedReply = errors.New("conntest: malformed SMTP reply")

// extDetail lists the EHLO keywords (not their free-text parameters).
func extDetail(ext map[string]string) string {
	var names []string
	for _, k := range []string{"STARTTLS", "AUTH", "SIZE", "PIPELINING", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES"} {
		if _, ok := ext[k]; ok {
			names = append(names, k)
		}
	}
	return strings.Join(names, " ")
}

func smtpDetail(e *smtp.SMTPError) string {
	detail := fmt.Sprintf("SMTP %d", e.Code)
	if e.EnhancedCode != smtp.NoEnhancedCode && e.EnhancedCode != (smtp.EnhancedCode{}) {
		detail += fmt.Sprintf(" %d.%d.%d", e.EnhancedCode[0], e.EnhancedCode[1], e.EnhancedCode[2])
	}
	return detail
}
