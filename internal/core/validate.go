package core

import (
	"net/mail"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"postfach/internal/store"
)

// validator collects the first problem per field so a form can mark every wrong field at once.
type validator struct {
	errs []*Error
}

func (v *validator) add(e *Error) { v.errs = append(v.errs, e) }

func (v *validator) err() error {
	if len(v.errs) == 0 {
		return nil
	}
	first := *v.errs[0]
	if len(v.errs) > 1 {
		return &ValidationError{Fields: v.errs}
	}
	return &first
}

// ValidationError carries several field errors; the first is also its summary.
type ValidationError struct{ Fields []*Error }

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Error()
	}
	return strings.Join(parts, "; ")
}

// FieldErrors lists the field errors in err (one or many).
func FieldErrors(err error) []*Error {
	if ve, ok := err.(*ValidationError); ok {
		return ve.Fields
	}
	if ce, ok := err.(*Error); ok && ce.Field != "" {
		return []*Error{ce}
	}
	return nil
}

// text checks a one-line text field: required or not, maximum length, and no control
// characters — CR and LF in a name would let a user inject mail headers.
func (v *validator) text(field, value string, required bool, max int) string {
	value = strings.TrimSpace(value)
	switch {
	case required && value == "":
		v.add(invalid(field, "error.required", nil))
	case !utf8.ValidString(value):
		v.add(invalid(field, "error.not_utf8", nil))
	case strings.IndexFunc(value, unicode.IsControl) >= 0:
		v.add(invalid(field, "error.control_chars", nil))
	case utf8.RuneCountInString(value) > max:
		v.add(invalid(field, "error.too_long", map[string]string{"max": strconv.Itoa(max)}))
	}
	return value
}

// address checks a bare e-mail address (no display name, no comments) and normalises it.
func (v *validator) address(field, value string, required bool) string {
	value = strings.TrimSpace(value)
	if value == "" {
		if required {
			v.add(invalid(field, "error.required", nil))
		}
		return ""
	}
	if err := checkAddress(value); err != nil {
		v.add(invalid(field, "error.bad_address", map[string]string{"value": value}))
		return value
	}
	return store.NormalizeAddress(value)
}

func checkAddress(value string) error {
	if strings.IndexFunc(value, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0 ||
		strings.ContainsAny(value, "<>,;\"()[]\\") || len(value) > 254 {
		return errBadAddress
	}
	a, err := mail.ParseAddress(value)
	if err != nil || a.Name != "" || a.Address != value {
		return errBadAddress
	}
	local, domain, ok := strings.Cut(value, "@")
	if !ok || local == "" || len(local) > 64 || !strings.Contains(domain, ".") && domain != "localhost" {
		return errBadAddress
	}
	for _, label := range strings.Split(domain, ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return errBadAddress
		}
	}
	return nil
}

var errBadAddress = &Error{Status: 422, Key: "error.bad_address"}

// ValidAddress reports whether s is a bare e-mail address as Postfach accepts it.
func ValidAddress(s string) bool { return checkAddress(strings.TrimSpace(s)) == nil }

// login checks a login name: letters, digits and . _ - @, as host applications use.
func (v *validator) login(field, value string) string {
	value = strings.TrimSpace(value)
	if value == "" {
		v.add(invalid(field, "error.required", nil))
		return value
	}
	if len(value) > 64 || strings.IndexFunc(value, func(r rune) bool {
		return !(r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("._-@", r)))
	}) >= 0 {
		v.add(invalid(field, "error.bad_login", nil))
	}
	return value
}

func (v *validator) oneOf(field, value string, allowed ...string) string {
	for _, a := range allowed {
		if value == a {
			return value
		}
	}
	v.add(invalid(field, "error.one_of", map[string]string{"allowed": strings.Join(allowed, ", ")}))
	return value
}

func (v *validator) port(field string, p int) {
	if p < 1 || p > 65535 {
		v.add(invalid(field, "error.bad_port", nil))
	}
}

// host checks a host name or IP literal typed by a user (no scheme, no port, no spaces).
func (v *validator) host(field, value string) string {
	value = strings.TrimSpace(strings.ToLower(value))
	if value == "" {
		v.add(invalid(field, "error.required", nil))
		return value
	}
	if len(value) > 253 || strings.ContainsAny(value, " /:@?#\\") || strings.IndexFunc(value, unicode.IsControl) >= 0 {
		v.add(invalid(field, "error.bad_host", nil))
	}
	return value
}
