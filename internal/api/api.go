// Package api is Postfach's JSON API v1: one table of routes, each a thin handler that
// decodes its input strictly, calls one core use case and encodes the answer. The same
// table registers the routes and generates the OpenAPI document served at
// /api/v1/openapi.json, so the document cannot drift from the routes.
//
// Errors have one shape: {"error": {"code": "error.required", "message": "…", "field": "name",
// "fields": [...]}} with the message in the caller's language (Accept-Language, or the
// user's setting).
package api

import (
	"encoding"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"postfach/internal/core"
	"postfach/internal/httpx"
)

// API holds the handlers' dependencies.
type API struct {
	core   *core.Service
	log    *slog.Logger
	routes []Route
}

// Route is one endpoint.
type Route struct {
	Method  string
	Path    string // ServeMux pattern path, e.g. /api/v1/users/{id}
	Summary string
	Tag     string
	Public  bool // no authentication needed
	In      any  // request body type (a zero value), nil for none
	Out     any  // response body type (a zero value), nil for 204
	Status  int  // success status
	Query   []string
	handle  func(r *http.Request, a core.Actor) (any, error)
}

// New builds the API.
func New(svc *core.Service, log *slog.Logger) *API {
	if log == nil {
		log = slog.Default()
	}
	a := &API{core: svc, log: log}
	a.routes = a.table()
	return a
}

// Routes lists the endpoints (for the OpenAPI document and the route-generated tests).
func (a *API) Routes() []Route { return a.routes }

// Register adds every route to mux.
func (a *API) Register(mux *http.ServeMux) {
	for _, rt := range a.routes {
		mux.Handle(rt.Method+" "+rt.Path, a.wrap(rt))
	}
	mux.HandleFunc("GET /api/v1/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(a.OpenAPI())
	})
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		a.writeError(w, r, &core.Error{Status: http.StatusNotFound, Key: "error.not_found"})
	})
}

const maxBody = 4 << 20

func (a *API) wrap(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		actor, ok := httpx.ActorFrom(r.Context())
		if !ok && !rt.Public {
			a.writeError(w, r, &core.Error{Status: http.StatusUnauthorized, Key: "error.session_expired"})
			return
		}
		if strings.HasPrefix(r.URL.Path, "/api/v1/tenants/") && actor.IsOperator() {
			// The operator acts inside the tenant named in the path.
			if tid, err := strconv.ParseInt(r.PathValue("tenant"), 10, 64); err == nil && r.PathValue("tenant") != "" {
				actor.TenantID = tid
			}
		}
		out, err := rt.handle(r, actor)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		if to, ok := out.(redirectTo); ok {
			http.Redirect(w, r, string(to), http.StatusSeeOther)
			return
		}
		if rt.Out == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rt.Status)
		_ = json.NewEncoder(w).Encode(out)
	})
}

// redirectTo is a handler result that sends a browser elsewhere instead of JSON (the OAuth2
// callback, which the provider opens in the user's browser).
type redirectTo string

// ErrorBody is the JSON shape of every error.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail describes one error; Fields lists every field error when there are several.
type ErrorDetail struct {
	Code    string        `json:"code"`
	Message string        `json:"message"`
	Field   string        `json:"field,omitempty"`
	Fields  []ErrorDetail `json:"fields,omitempty"`
}

func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	lang := httpx.Lang(r.Context())
	status := httpx.Status(err)
	var body ErrorBody
	if fields := core.FieldErrors(err); len(fields) > 0 {
		for _, f := range fields {
			body.Error.Fields = append(body.Error.Fields, ErrorDetail{Code: f.Key, Message: a.core.Text.T(lang, f.Key, f.Params), Field: f.Field})
		}
		body.Error.Code, body.Error.Message, body.Error.Field = body.Error.Fields[0].Code, body.Error.Fields[0].Message, body.Error.Fields[0].Field
		if len(fields) == 1 {
			body.Error.Fields = nil
			status = fields[0].Status
		}
	} else {
		ce := core.AsError(err)
		status = ce.Status
		body.Error = ErrorDetail{Code: ce.Key, Message: a.core.Text.T(lang, ce.Key, ce.Params), Field: ce.Field}
	}
	if status >= 500 {
		a.log.Error("api error", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// decode reads a JSON body strictly: unknown fields, trailing data and oversized bodies are
// errors that name the problem.
func decode[T any](r *http.Request) (T, error) {
	var v T
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return v, &core.Error{Status: http.StatusRequestEntityTooLarge, Key: "error.too_large"}
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return v, &core.Error{Status: http.StatusBadRequest, Key: "error.unknown_field", Field: name, Params: map[string]string{"value": name}}
		case errors.Is(err, io.EOF):
			return v, &core.Error{Status: http.StatusBadRequest, Key: "error.bad_request", Params: map[string]string{"detail": "empty body"}}
		}
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			if key := expectedKey(ute.Type); key != "" && ute.Field != "" {
				return v, &core.Error{Status: http.StatusBadRequest, Key: key, Field: ute.Field, Params: map[string]string{"field": ute.Field}}
			}
			return v, &core.Error{Status: http.StatusBadRequest, Key: "error.bad_request", Field: ute.Field,
				Params: map[string]string{"detail": "a value has the wrong JSON type"}}
		}
		return v, &core.Error{Status: http.StatusBadRequest, Key: "error.bad_request", Params: map[string]string{"detail": err.Error()}}
	}
	if dec.More() {
		return v, &core.Error{Status: http.StatusBadRequest, Key: "error.bad_request", Params: map[string]string{"detail": "trailing data after the JSON object"}}
	}
	return v, nil
}

// expectedKey names the JSON kind a Go type is read from, as a text key: the caller of the
// API writes JSON and should not see Go type names such as []core.SendAddress.
func expectedKey(t reflect.Type) string {
	if t == nil {
		return ""
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	// A type that reads itself from text (a time, say) is a string in JSON, whatever its kind.
	if reflect.PointerTo(t).Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) {
		return "error.expected_text"
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return "error.expected_list"
	case reflect.Struct, reflect.Map:
		return "error.expected_object"
	case reflect.String:
		return "error.expected_text"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "error.expected_number"
	case reflect.Bool:
		return "error.expected_bool"
	}
	return ""
}

func pathID(r *http.Request, name string) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, &core.Error{Status: http.StatusNotFound, Key: "error.not_found"}
	}
	return id, nil
}
