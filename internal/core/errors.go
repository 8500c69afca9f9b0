// Package core holds Postfach's use cases: the functions the web UI, the JSON API, the CLI
// and the protocol servers all call. A handler decodes its input, calls one function here
// and encodes the answer; permission checks, validation, tenant scoping and the audit log
// happen here and nowhere else.
package core

import (
	"errors"
	"fmt"
	"net/http"

	"postfach/internal/store"
)

// Error is the one error type that carries a user-safe message: an i18n key with
// parameters, the HTTP status it maps to at the edge, and the input field it concerns.
type Error struct {
	Status int
	Key    string
	Field  string
	Params map[string]string
	Err    error // the cause, for logs only
}

func (e *Error) Error() string {
	s := e.Key
	if e.Field != "" {
		s = e.Field + ": " + s
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builders for the common cases.
func invalid(field, key string, params map[string]string) *Error {
	if params == nil {
		params = map[string]string{}
	}
	params["field"] = field
	return &Error{Status: http.StatusUnprocessableEntity, Key: key, Field: field, Params: params}
}

// ErrForbidden is returned when the actor's role may not do something.
var errForbidden = &Error{Status: http.StatusForbidden, Key: "error.forbidden"}

func notFound(err error) *Error {
	return &Error{Status: http.StatusNotFound, Key: "error.not_found", Err: err}
}

// fromStore turns a store error into a user-facing one where it has a meaning for the user.
func fromStore(err error, conflictField, conflictKey string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return notFound(err)
	case errors.Is(err, store.ErrConflict):
		return &Error{Status: http.StatusConflict, Key: conflictKey, Field: conflictField, Params: map[string]string{"field": conflictField}, Err: err}
	}
	var ce *Error
	if errors.As(err, &ce) {
		return err
	}
	return fmt.Errorf("core: %w", err)
}

// AsError finds the core error in err, or wraps an internal one.
func AsError(err error) *Error {
	var ce *Error
	if errors.As(err, &ce) {
		return ce
	}
	return &Error{Status: http.StatusInternalServerError, Key: "error.internal", Err: err}
}
