package store

import "encoding/json"

// Profile fields (Mitarbeiterdaten for signature placeholders) are a small string map kept
// as JSON text: the fields differ between host applications and are never queried by SQL.
func encodeProfile(p map[string]string) string {
	if len(p) == 0 {
		return "{}"
	}
	b, err := json.Marshal(p)
	if err != nil {
		return "{}"
	}
	return string(b)
}

func decodeProfile(s string) map[string]string {
	p := map[string]string{}
	_ = json.Unmarshal([]byte(s), &p) // the column only ever holds what encodeProfile wrote
	return p
}
