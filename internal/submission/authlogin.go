package submission

import (
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// mechLogin is the LOGIN SASL mechanism. It has no RFC (draft-murchison-sasl-login, expired)
// but Outlook and many phones use it for SMTP AUTH: the server prompts "Username:" and
// "Password:" (sent base64-encoded by the SMTP layer, RFC 4954 §4) and the client answers
// each with the value in base64. go-sasl has only the client side.
const mechLogin = "LOGIN"

// maxLoginField bounds the user name and the password a client may send; our addresses are
// at most 254 octets (RFC 5321 §4.5.3.1.3) and generated passwords far shorter.
const maxLoginField = 1024

// errLoginMalformed answers a response that cannot be a user name or password.
var errLoginMalformed = smtpErr(501, smtp.EnhancedCode{5, 5, 2}, "Malformed LOGIN response")

// loginServer is the server side of LOGIN. authenticate is called once, with both values.
type loginServer struct {
	authenticate func(username, password string) error
	step         int // 0: nothing received, 1: user name prompted, 2: password prompted, 3: done
	username     string
}

// newLoginServer returns a sasl.Server for LOGIN.
func newLoginServer(authenticate func(username, password string) error) sasl.Server {
	return &loginServer{authenticate: authenticate}
}

// loginField checks one decoded answer: valid UTF-8 without NUL, CR or LF, within bounds.
func loginField(b []byte) (string, error) {
	if len(b) > maxLoginField || !utf8.Valid(b) {
		return "", errLoginMalformed
	}
	s := string(b)
	if strings.ContainsAny(s, "\x00\r\n") {
		return "", errLoginMalformed
	}
	return s, nil
}

// Next implements sasl.Server. A client may send the user name as initial response
// ("AUTH LOGIN dXNlcg=="); then the first prompt is "Password:".
func (s *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch s.step {
	case 0:
		if response == nil {
			s.step = 1
			return []byte("Username:"), false, nil
		}
		fallthrough
	case 1:
		if s.username, err = loginField(response); err != nil {
			s.step = 3
			return nil, true, err
		}
		s.step = 2
		return []byte("Password:"), false, nil
	case 2:
		s.step = 3
		password, err := loginField(response)
		if err != nil {
			return nil, true, err
		}
		return nil, true, s.authenticate(s.username, password)
	default:
		return nil, true, sasl.ErrUnexpectedClientResponse
	}
}
