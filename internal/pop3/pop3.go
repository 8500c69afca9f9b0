// Package pop3 owns Postfach's POP3 protocol code: the client used to fetch
// mail from external accounts (and by the connection test), and the server
// that lets Outlook and phones download mail from hosted mailboxes.
//
// Both sides speak RFC 1939 (POP3), RFC 2449 (CAPA and extended response
// codes), RFC 2595 (STLS) and RFC 5034 (AUTH, SASL PLAIN; the client also
// speaks XOAUTH2 for Office 365 and Gmail). The package has no storage of
// its own: the server reads a hosted maildrop through the Backend and
// Mailbox interfaces, and the client returns raw message bytes to its caller.
//
// Rules the code keeps:
//   - The server deletes only in the UPDATE state, after QUIT (RFC 1939 §6);
//     a dropped connection deletes nothing.
//   - Every read is bounded: command and response lines, multi-line listings
//     and message bodies, so a hostile peer cannot exhaust memory.
//   - Passwords and tokens are never logged nor put into error messages.
package pop3

import (
	"errors"
	"fmt"
	"strings"
)

// Errors a Backend returns from Authenticate (wrapped or not); the server
// maps them to RFC 2449/RFC 3206 extended response codes.
var (
	// ErrAuthFailed means the credentials are wrong: "-ERR [AUTH]".
	ErrAuthFailed = errors.New("pop3: authentication failed")
	// ErrTemporarilyUnavailable means the mailbox cannot be opened now but
	// may be later (throttled, storage down): "-ERR [SYS/TEMP]".
	ErrTemporarilyUnavailable = errors.New("pop3: temporarily unavailable")
	// ErrInUse means the maildrop is locked by another session: "-ERR [IN-USE]".
	ErrInUse = errors.New("pop3: maildrop in use")
)

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("pop3: server closed")

// ErrTooLarge is returned by the client when a response exceeds its size limit.
// The connection is unusable afterwards: Close it.
var ErrTooLarge = errors.New("pop3: response exceeds size limit")

// Extended response codes, RFC 2449 §8 and RFC 3206.
const (
	CodeAuth     = "AUTH"
	CodeInUse    = "IN-USE"
	CodeLoginDel = "LOGIN-DELAY"
	CodeSysTemp  = "SYS/TEMP"
	CodeSysPerm  = "SYS/PERM"
)

// ResponseError is a "-ERR" answer of a POP3 server.
type ResponseError struct {
	// Command is the keyword of the command that was refused ("PASS", "RETR"),
	// or "greeting" when the server refused the connection.
	Command string
	// Code is the RFC 2449 extended response code without brackets
	// ("AUTH", "SYS/TEMP", "IN-USE"), empty when the server sent none.
	Code string
	// Text is the human-readable text after the code.
	Text string
}

func (e *ResponseError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "pop3: %s: -ERR", e.Command)
	if e.Code != "" {
		fmt.Fprintf(&b, " [%s]", e.Code)
	}
	if e.Text != "" {
		b.WriteString(" ")
		b.WriteString(e.Text)
	}
	return b.String()
}

// AuthFailed reports whether the server said the credentials are wrong.
// Servers without AUTH-RESP-CODE send no code; then a refused PASS or AUTH
// is reported as an authentication failure too.
func (e *ResponseError) AuthFailed() bool {
	if e.Code == CodeAuth {
		return true
	}
	return e.Code == "" && (e.Command == "PASS" || e.Command == "AUTH" || e.Command == "APOP")
}

// Temporary reports whether retrying later may succeed (RFC 3206 §4,
// RFC 2449 §8.1.1 and §8.1.2).
func (e *ResponseError) Temporary() bool {
	switch strings.ToUpper(e.Code) {
	case CodeSysTemp, CodeInUse, CodeLoginDel:
		return true
	}
	return false
}

// MessageInfo describes one message of a maildrop snapshot.
type MessageInfo struct {
	// UID is the RFC 1939 §7 unique-id: 1 to 70 characters 0x21..0x7E,
	// stable across sessions and never reused in the maildrop.
	UID string
	// Size is the exact size in octets as sent (CRLF line endings,
	// before dot-stuffing).
	Size int64
}

// UIDLEntry is one line of a UIDL listing.
type UIDLEntry struct {
	Num int
	UID string
}

// ListEntry is one line of a LIST listing.
type ListEntry struct {
	Num  int
	Size int64
}

// validUID reports whether uid is a valid RFC 1939 §7 unique-id.
func validUID(uid string) bool {
	if len(uid) == 0 || len(uid) > 70 {
		return false
	}
	for i := 0; i < len(uid); i++ {
		if uid[i] < 0x21 || uid[i] > 0x7e {
			return false
		}
	}
	return true
}
