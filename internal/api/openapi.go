package api

import (
	"reflect"
	"regexp"
	"strconv"
	"strings"
)

var pathParam = regexp.MustCompile(`\{([a-zA-Z_]+)\}`)

// OpenAPI builds the OpenAPI 3.1 document from the route table and the Go types of the
// inputs and outputs.
func (a *API) OpenAPI() map[string]any {
	schemas := map[string]any{}
	paths := map[string]map[string]any{}
	for _, rt := range a.routes {
		op := map[string]any{
			"summary":     rt.Summary,
			"tags":        []string{rt.Tag},
			"operationId": operationID(rt),
		}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(rt.Path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "integer"}})
		}
		for _, q := range rt.Query {
			params = append(params, map[string]any{"name": q, "in": "query", "required": false, "schema": map[string]any{"type": "string"}})
		}
		if params != nil {
			op["parameters"] = params
		}
		if rt.In != nil {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": schemaOf(reflect.TypeOf(rt.In), schemas)}}}
		} else if rt.Method == "PUT" && strings.Contains(rt.Path, "pictures") {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{"image/*": map[string]any{"schema": map[string]any{"type": "string", "format": "binary"}}}}
		}
		responses := map[string]any{
			"4XX": map[string]any{"description": "Error", "content": map[string]any{"application/json": map[string]any{"schema": schemaOf(reflect.TypeOf(ErrorBody{}), schemas)}}},
		}
		if rt.Out == nil {
			responses["204"] = map[string]any{"description": "Done"}
		} else {
			responses[itoa(rt.Status)] = map[string]any{"description": "OK", "content": map[string]any{"application/json": map[string]any{"schema": schemaOf(reflect.TypeOf(rt.Out), schemas)}}}
		}
		op["responses"] = responses
		if !rt.Public {
			op["security"] = []any{map[string]any{"bearer": []string{}}, map[string]any{"cookie": []string{}}}
		}
		if paths[rt.Path] == nil {
			paths[rt.Path] = map[string]any{}
		}
		paths[rt.Path][strings.ToLower(rt.Method)] = op
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{"title": "Postfach API", "version": "1",
			"description": "Mailboxes, sender policy, users and groups of a Postfach tenant. Authenticate with `Authorization: Bearer pf_…` (API token) or the session cookie."},
		"paths": paths,
		"components": map[string]any{
			"schemas": schemas,
			"securitySchemes": map[string]any{
				"bearer": map[string]any{"type": "http", "scheme": "bearer"},
				"cookie": map[string]any{"type": "apiKey", "in": "cookie", "name": "postfach_session"},
			},
		},
	}
}

func operationID(rt Route) string {
	p := strings.TrimPrefix(rt.Path, "/api/v1/")
	p = pathParam.ReplaceAllString(p, "by_$1")
	return strings.ToLower(rt.Method) + "_" + strings.NewReplacer("/", "_", "-", "_").Replace(p)
}

func itoa(n int) string { return strconv.Itoa(n) }

// schemaOf returns a JSON schema for t, registering named structs under components.
func schemaOf(t reflect.Type, schemas map[string]any) map[string]any {
	switch t.Kind() {
	case reflect.Pointer:
		return schemaOf(t.Elem(), schemas)
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int64, reflect.Int32:
		return map[string]any{"type": "integer"}
	case reflect.Float64, reflect.Float32:
		return map[string]any{"type": "number"}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string", "format": "byte"}
		}
		return map[string]any{"type": "array", "items": schemaOf(t.Elem(), schemas)}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem(), schemas)}
	case reflect.Struct:
		name := t.Name()
		if _, done := schemas[name]; done {
			return map[string]any{"$ref": "#/components/schemas/" + name}
		}
		schemas[name] = nil // placeholder against recursion
		props := map[string]any{}
		addFields(t, props, schemas)
		schemas[name] = map[string]any{"type": "object", "properties": props, "additionalProperties": false}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	return map[string]any{}
}

func addFields(t reflect.Type, props map[string]any, schemas map[string]any) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			addFields(f.Type, props, schemas)
			continue
		}
		if name == "" {
			name = f.Name
		}
		props[name] = schemaOf(f.Type, schemas)
	}
}
