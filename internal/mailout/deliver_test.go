package mailout

import (
	"context"
	"encoding/base64"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"postfach/internal/testpeers"
)

func TestDeliverSecurityAndAuth(t *testing.T) {
	t.Parallel()
	ca := testpeers.NewCA(t)
	otherCA := testpeers.NewCA(t)
	users := map[string]string{"alice": "s3cret-pass"}

	tests := []struct {
		name      string
		mode      serverMode
		route     func(r Route) Route
		wantTLS   bool
		wantUser  string
		wantStage string // "" means delivered
		wantPerm  bool
	}{
		{name: "plain", mode: modePlain, route: func(r Route) Route { r.Security = SecurityNone; return r }},
		{name: "starttls", mode: modeStartTLS, route: func(r Route) Route { r.Security = SecurityStartTLS; r.RootCAs = ca.Pool(); return r }, wantTLS: true},
		{name: "implicit tls", mode: modeImplicitTLS, route: func(r Route) Route { r.Security = SecurityTLS; r.RootCAs = ca.Pool(); return r }, wantTLS: true},
		{name: "starttls wrong CA", mode: modeStartTLS, route: func(r Route) Route { r.Security = SecurityStartTLS; r.RootCAs = otherCA.Pool(); return r }, wantStage: "tls"},
		{name: "implicit tls wrong CA", mode: modeImplicitTLS, route: func(r Route) Route { r.Security = SecurityTLS; r.RootCAs = otherCA.Pool(); return r }, wantStage: "tls"},
		{name: "starttls required but not offered", mode: modePlain, route: func(r Route) Route { r.Security = SecurityStartTLS; return r }, wantStage: "tls"},
		{name: "opportunistic unverified", mode: modeStartTLS, route: func(r Route) Route { r.Security = SecurityOpportunistic; r.RootCAs = otherCA.Pool(); return r }, wantTLS: true},
		{name: "opportunistic without starttls", mode: modePlain, route: func(r Route) Route { r.Security = SecurityOpportunistic; return r }},
		{name: "auth plain", mode: modeStartTLS, route: func(r Route) Route {
			r.Security, r.RootCAs, r.Auth, r.Username, r.Password = SecurityStartTLS, ca.Pool(), AuthPlain, "alice", "s3cret-pass"
			return r
		}, wantTLS: true, wantUser: "alice"},
		{name: "auth login", mode: modeImplicitTLS, route: func(r Route) Route {
			r.Security, r.RootCAs, r.Auth, r.Username, r.Password = SecurityTLS, ca.Pool(), AuthLogin, "alice", "s3cret-pass"
			return r
		}, wantTLS: true, wantUser: "alice"},
		{name: "auth xoauth2", mode: modeStartTLS, route: func(r Route) Route {
			r.Security, r.RootCAs, r.Auth, r.Username, r.OAuth2Token = SecurityStartTLS, ca.Pool(), AuthXOAuth2, "alice", "s3cret-pass"
			return r
		}, wantTLS: true, wantUser: "alice"},
		{name: "auth wrong password", mode: modeStartTLS, route: func(r Route) Route {
			r.Security, r.RootCAs, r.Auth, r.Username, r.Password = SecurityStartTLS, ca.Pool(), AuthLogin, "alice", "wrong"
			return r
		}, wantStage: "auth", wantPerm: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := startTestServer(t, tc.mode, ca.ServerTLS(), func(ts *testServer) {
				ts.users = users
				ts.requireAuth = tc.wantUser != ""
			})
			d := &Deliverer{}
			env := Envelope{From: "p14.out@example.org", To: []string{"bob@example.net", "carol@example.net"}}
			a, err := d.Deliver(context.Background(), tc.route(ts.route("")), env, testMessage(1000))
			if a == nil {
				t.Fatalf("no attempt: %v", err)
			}
			if len(a.Results) != 2 {
				t.Fatalf("results = %d, want 2", len(a.Results))
			}
			if tc.wantStage != "" {
				var oe *OpenError
				if !errors.As(err, &oe) || oe.Stage != tc.wantStage {
					t.Fatalf("err = %v, want open error at %s", err, tc.wantStage)
				}
				for _, r := range a.Results {
					if r.Delivered() || r.Temporary == tc.wantPerm {
						t.Errorf("result %+v: want failure, temporary=%v", r, !tc.wantPerm)
					}
				}
				if n := len(ts.messages()); n != 0 {
					t.Errorf("server received %d messages", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("deliver: %v\n%s", err, strings.Join(a.Transcript, "\n"))
			}
			for _, r := range a.Results {
				if !r.Delivered() || r.Code != 250 {
					t.Errorf("result %+v, want delivered", r)
				}
			}
			if (a.TLS != "") != tc.wantTLS {
				t.Errorf("attempt TLS = %q, want TLS %v", a.TLS, tc.wantTLS)
			}
			msgs := ts.messages()
			if len(msgs) != 1 {
				t.Fatalf("server received %d messages", len(msgs))
			}
			m := msgs[0]
			if m.tls != tc.wantTLS || m.user != tc.wantUser || m.helo != "client.test" || m.from != env.From || len(m.to) != 2 {
				t.Errorf("server saw %+v", m)
			}
			log := strings.Join(a.Transcript, "\n")
			for _, secret := range []string{"s3cret-pass", base64.StdEncoding.EncodeToString([]byte("s3cret-pass")), base64.StdEncoding.EncodeToString([]byte("\x00alice\x00s3cret-pass"))} {
				if strings.Contains(log, secret) {
					t.Errorf("transcript leaks a credential:\n%s", log)
				}
			}
			if !strings.Contains(log, "C: MAIL FROM:<p14.out@example.org>") || !strings.Contains(log, "C: <message, ") {
				t.Errorf("transcript lacks the transaction:\n%s", log)
			}
		})
	}
}

func TestDeliverClassification(t *testing.T) {
	t.Parallel()
	temp := &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
	perm := &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	type want struct {
		delivered, temporary, maybe bool
		code                        int
		enhanced                    string
	}
	ok := want{delivered: true, code: 250, enhanced: "2.0.0"}
	tests := []struct {
		name      string
		configure func(*testServer)
		want      []want // per recipient: bob, carol
		received  int
	}{
		{"accepted", nil, []want{ok, ok}, 1},
		{"mail 4xx", func(ts *testServer) { ts.mailErr = temp }, []want{{temporary: true, code: 451, enhanced: "4.3.0"}, {temporary: true, code: 451, enhanced: "4.3.0"}}, 0},
		{"mail 5xx", func(ts *testServer) { ts.mailErr = perm }, []want{{code: 550, enhanced: "5.1.1"}, {code: 550, enhanced: "5.1.1"}}, 0},
		{"one rcpt 5xx", func(ts *testServer) { ts.rcptErr["bob@example.net"] = perm }, []want{{code: 550, enhanced: "5.1.1"}, ok}, 1},
		{"one rcpt 4xx", func(ts *testServer) { ts.rcptErr["carol@example.net"] = temp }, []want{ok, {temporary: true, code: 451, enhanced: "4.3.0"}}, 1},
		{"all rcpts rejected", func(ts *testServer) {
			ts.rcptErr["bob@example.net"] = perm
			ts.rcptErr["carol@example.net"] = temp
		}, []want{{code: 550, enhanced: "5.1.1"}, {temporary: true, code: 451, enhanced: "4.3.0"}}, 0},
		{"data 5xx", func(ts *testServer) {
			ts.dataErr = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "spam"}
		}, []want{{code: 554, enhanced: "5.7.1"}, {code: 554, enhanced: "5.7.1"}}, 1},
		{"data 4xx", func(ts *testServer) { ts.dataErr = temp }, []want{{temporary: true, code: 451, enhanced: "4.3.0"}, {temporary: true, code: 451, enhanced: "4.3.0"}}, 1},
		{"dropped after data", func(ts *testServer) { ts.dropOnData = true }, []want{{temporary: true, maybe: true, enhanced: "4.4.1"}, {temporary: true, maybe: true, enhanced: "4.4.1"}}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := startTestServer(t, modePlain, nil, tc.configure)
			d := &Deliverer{}
			env := Envelope{From: "", To: []string{"bob@example.net", "carol@example.net"}}
			a, _ := d.Deliver(context.Background(), ts.route(SecurityNone), env, testMessage(500))
			if a == nil {
				t.Fatal("no attempt")
			}
			for i, w := range tc.want {
				r := a.Results[i]
				got := want{r.Delivered(), r.Temporary && !r.Delivered(), r.MaybeDelivered, r.Code, r.Enhanced}
				if got != w {
					t.Errorf("%s: got %+v, want %+v (%v)", r.Recipient, got, w, r.Err)
				}
			}
			if n := len(ts.messages()); n != tc.received {
				t.Errorf("server received %d messages, want %d", n, tc.received)
			}
		})
	}
}

func TestSessionReuse(t *testing.T) {
	t.Parallel()
	ts := startTestServer(t, modePlain, nil, func(ts *testServer) {
		ts.rcptErr["nobody@example.net"] = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "unknown"}
	})
	d := &Deliverer{}
	ctx := context.Background()
	s, err := d.Open(ctx, ts.route(SecurityNone))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i, rcpt := range []string{"bob@example.net", "nobody@example.net", "carol@example.net"} {
		a, err := s.Send(ctx, Envelope{From: "a@example.org", To: []string{rcpt}}, testMessage(200))
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if want := rcpt != "nobody@example.net"; a.Results[0].Delivered() != want {
			t.Errorf("%s delivered = %v", rcpt, !want)
		}
	}
	if n := len(ts.messages()); n != 2 {
		t.Errorf("received %d messages, want 2", n)
	}
	if ts.Sessions() != 1 {
		t.Errorf("%d sessions, want 1", ts.Sessions())
	}
}

func TestDeliverRefusesBadInput(t *testing.T) {
	t.Parallel()
	d := &Deliverer{}
	r := Route{Host: "127.0.0.1", Port: 1, Security: SecurityNone}
	for _, env := range []Envelope{
		{From: "a@example.org"},
		{From: "a@example.org\r\nRCPT TO:<x@y>", To: []string{"b@example.net"}},
		{From: "a@example.org", To: []string{"b@example.net>"}},
		{From: "a@example.org", To: []string{"no-domain"}},
	} {
		if a, err := d.Deliver(context.Background(), r, env, []byte("x")); err == nil || a != nil {
			t.Errorf("envelope %q accepted", env)
		}
	}
	if _, err := d.Deliver(context.Background(), Route{Host: "h", Port: 25, Security: "tls1"}, Envelope{To: []string{"b@example.net"}}, nil); err == nil {
		t.Error("unknown security accepted")
	}
}

func TestDeliverCancelled(t *testing.T) {
	t.Parallel()
	ts := startTestServer(t, modePlain, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	a, err := (&Deliverer{}).Deliver(ctx, ts.route(SecurityNone), Envelope{To: []string{"b@example.net"}}, testMessage(100))
	if err == nil || a == nil || a.Results[0].Delivered() || !a.Results[0].Temporary {
		t.Fatalf("cancelled delivery: %+v, %v", a, err)
	}
}

// fakeResolver answers MX and address lookups from maps; a missing name
// is NXDOMAIN, a name in temporary fails like an unreachable DNS server.
type fakeResolver struct {
	mx        map[string][]*net.MX
	addrs     map[string][]net.IPAddr
	temporary map[string]bool
}

func (f *fakeResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	if f.temporary[name] {
		return nil, &net.DNSError{Err: "server misbehaving", Name: name, IsTemporary: true}
	}
	if mx, ok := f.mx[name]; ok {
		return mx, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (f *fakeResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	if a, ok := f.addrs[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func TestDeliverMX(t *testing.T) {
	t.Parallel()
	ca := testpeers.NewCA(t)
	ts := startTestServer(t, modeStartTLS, ca.ServerTLS("mx2.example.net"), nil)
	loopback := []net.IPAddr{{IP: net.IPv4(127, 0, 0, 1)}}
	res := &fakeResolver{
		mx: map[string][]*net.MX{
			"example.net": {{Host: "mx2.example.net.", Pref: 20}, {Host: "down.example.net.", Pref: 10}},
			"null.test":   {{Host: ".", Pref: 0}},
		},
		addrs:     map[string][]net.IPAddr{"implicit.test": loopback},
		temporary: map[string]bool{"dnsfail.test": true},
	}
	d := &Deliverer{
		Resolver: res,
		MXPort:   ts.Port,
		HeloName: "out.postfach.test",
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if strings.HasPrefix(addr, "down.") {
				return nil, errors.New("connection refused")
			}
			return loopbackDial(ctx, network, addr)
		},
	}
	tests := []struct {
		domain    string
		delivered bool
		temporary bool
		enhanced  string
	}{
		{"example.net", true, false, "2.0.0"},
		{"implicit.test", true, false, "2.0.0"},
		{"null.test", false, false, "5.1.10"},
		{"nxdomain.test", false, false, "5.1.2"},
		{"dnsfail.test", false, true, "4.4.3"},
	}
	for _, tc := range tests {
		t.Run(tc.domain, func(t *testing.T) {
			a, err := d.DeliverMX(context.Background(), Envelope{From: "p14.out@example.org", To: []string{"bob@" + tc.domain}}, tc.domain, testMessage(300))
			if a == nil {
				t.Fatalf("no attempt: %v", err)
			}
			r := a.Results[0]
			if r.Delivered() != tc.delivered || (!r.Delivered() && r.Temporary != tc.temporary) || r.Enhanced != tc.enhanced {
				t.Errorf("result %+v (err %v), want delivered=%v temporary=%v enhanced=%s", r, r.Err, tc.delivered, tc.temporary, tc.enhanced)
			}
			if tc.delivered && a.TLS == "" {
				t.Errorf("opportunistic STARTTLS not used:\n%s", strings.Join(a.Transcript, "\n"))
			}
		})
	}
	if _, err := d.DeliverMX(context.Background(), Envelope{To: []string{"bob@elsewhere.test"}}, "example.net", nil); err == nil {
		t.Error("recipient outside the domain accepted")
	}
}
