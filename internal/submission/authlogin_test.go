package submission

import (
	"bytes"
	"errors"
	"testing"
)

// recorder counts authenticate calls and accepts one user and password.
type recorder struct {
	calls          int
	username, pass string
}

func (r *recorder) authenticate(username, password string) error {
	r.calls++
	r.username, r.pass = username, password
	if username == "info@makler.example" && password == "geheim" {
		return nil
	}
	return errAuthFailed
}

func TestLoginServer(t *testing.T) {
	for _, tc := range []struct {
		name       string
		responses  [][]byte // the first one is the initial response (nil: none)
		challenges []string
		wantErr    error
		calls      int
	}{
		{"prompts", [][]byte{nil, []byte("info@makler.example"), []byte("geheim")}, []string{"Username:", "Password:", ""}, nil, 1},
		{"initial response", [][]byte{[]byte("info@makler.example"), []byte("geheim")}, []string{"Password:", ""}, nil, 1},
		{"wrong password", [][]byte{nil, []byte("info@makler.example"), []byte("falsch")}, []string{"Username:", "Password:", ""}, errAuthFailed, 1},
		{"empty user", [][]byte{[]byte{}, []byte("geheim")}, []string{"Password:", ""}, errAuthFailed, 1},
		{"NUL in user", [][]byte{nil, []byte("info\x00@makler.example")}, []string{"Username:", ""}, errLoginMalformed, 0},
		{"CRLF in password", [][]byte{nil, []byte("info@makler.example"), []byte("a\r\nb")}, []string{"Username:", "Password:", ""}, errLoginMalformed, 0},
		{"invalid UTF-8", [][]byte{[]byte("\xff\xfe")}, []string{""}, errLoginMalformed, 0},
		{"too long", [][]byte{nil, bytes.Repeat([]byte("a"), maxLoginField+1)}, []string{"Username:", ""}, errLoginMalformed, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{}
			srv := newLoginServer(r.authenticate)
			var err error
			for i, resp := range tc.responses {
				var challenge []byte
				var done bool
				challenge, done, err = srv.Next(resp)
				if string(challenge) != tc.challenges[i] {
					t.Fatalf("step %d: challenge %q, want %q", i, challenge, tc.challenges[i])
				}
				if done != (i == len(tc.responses)-1) {
					t.Fatalf("step %d: done = %v", i, done)
				}
			}
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("error %v, want %v", err, tc.wantErr)
			}
			if r.calls != tc.calls {
				t.Errorf("authenticate called %d times, want %d", r.calls, tc.calls)
			}
			if _, _, err := srv.Next([]byte("more")); err == nil {
				t.Error("a response after the end was accepted")
			}
		})
	}
}

// FuzzLoginServer feeds the mechanism a sequence of responses (separated by 0xff 0xff; a
// leading 0xfe means "no initial response") and checks that authenticate sees exactly the
// values the client sent, at most once, and only when the exchange ends.
func FuzzLoginServer(f *testing.F) {
	for _, seed := range []string{
		"\xfe\xff\xffinfo@makler.example\xff\xffgeheim",
		"info@makler.example\xff\xffgeheim",
		"\xfe\xff\xff\xff\xff",
		"a\x00b\xff\xffc",
		"user\xff\xffpass\xff\xffextra",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		parts := bytes.Split(data, []byte("\xff\xff"))
		if len(parts) > 0 && bytes.Equal(parts[0], []byte{0xfe}) {
			parts[0] = nil
		}
		r := &recorder{}
		srv := newLoginServer(r.authenticate)
		var sent [][]byte
		for i, p := range parts {
			challenge, done, _ := srv.Next(p)
			if p != nil {
				sent = append(sent, p)
			}
			if done && len(challenge) != 0 {
				t.Fatalf("step %d: done with a challenge %q", i, challenge)
			}
			if !done && r.calls != 0 {
				t.Fatalf("step %d: authenticate called before the end", i)
			}
			if done {
				break
			}
		}
		if r.calls > 1 {
			t.Fatalf("authenticate called %d times", r.calls)
		}
		if r.calls == 1 && (len(sent) < 2 || r.username != string(sent[0]) || r.pass != string(sent[1])) {
			t.Fatalf("authenticate(%q, %q) after responses %q", r.username, r.pass, sent)
		}
	})
}

func TestFromAddresses(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		want      []string
		ok        bool
	}{
		{"one", "From: Vertrieb <info@makler.example>\r\n\r\nx", []string{"info@makler.example"}, true},
		{"two", "From: a@x.example, B <b@y.example>\r\n\r\nx", []string{"a@x.example", "b@y.example"}, true},
		{"encoded name", "From: =?utf-8?q?M=C3=BCller?= <m@x.example>\r\n\r\n", []string{"m@x.example"}, true},
		{"missing", "To: a@x.example\r\n\r\nx", nil, false},
		{"garbage", "From: <<>>\r\n\r\n", nil, false},
		{"no header end", "From", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FromAddresses([]byte(tc.raw))
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok = %v", err, tc.ok)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %q, want %q", got, tc.want)
				}
			}
		})
	}
}

// FuzzFromAddresses checks that the From: reader never panics and that every address it
// returns is a plain addr-spec with an @ (what the policy check compares).
func FuzzFromAddresses(f *testing.F) {
	for _, seed := range []string{
		"From: Vertrieb <info@makler.example>\r\n\r\nbody",
		"From: a@x.example, b@y.example\r\nTo: c@z.example\r\n\r\n",
		"From: \"Quoted, Name\" <q@x.example>\r\n\r\n",
		"From: =?utf-8?b?w6TDtg==?= <u@x.example>\r\n\r\n",
		"From: group: a@x.example;\r\n\r\n",
		"From:\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		list, err := FromAddresses(raw)
		if err != nil {
			return
		}
		for _, a := range list {
			if !bytes.Contains([]byte(a), []byte("@")) {
				t.Fatalf("address without @: %q", a)
			}
		}
	})
}
