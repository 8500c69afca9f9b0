package conntest

import (
	"github.com/emersion/go-sasl"

	"postfach/internal/mailout"
)

// newXOAUTH2Client is the client side of XOAUTH2, the OAuth2 mechanism of
// Office 365 and Gmail; the one implementation lives in mailout.
func newXOAUTH2Client(user, token string) sasl.Client {
	return mailout.NewXOAuth2Client(user, token)
}
