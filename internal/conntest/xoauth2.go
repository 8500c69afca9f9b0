package conntest

import "github.com/emersion/go-sasl"

// xoauth2Client is the client side of XOAUTH2, the OAuth2 mechanism of
// Office 365 and Gmail (documented by Google and Microsoft; not an RFC).
// go-sasl has no XOAUTH2.
type xoauth2Client struct{ user, token string }

func newXOAUTH2Client(user, token string) sasl.Client {
	return &xoauth2Client{user: user, token: token}
}

func (c *xoauth2Client) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + c.user + "\x01auth=Bearer " + c.token + "\x01\x01"), nil
}

// Next answers the server's only possible challenge, a JSON error report,
// with an empty response so that the server sends its final failure.
func (c *xoauth2Client) Next([]byte) ([]byte, error) { return []byte{}, nil }
