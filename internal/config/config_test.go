package config

import (
	"flag"
	"io"
	"strings"
	"testing"
)

func TestDefaultIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestParseEnvAndFlags(t *testing.T) {
	t.Setenv("POSTFACH_HTTP_ADDR", "127.0.0.1:9999")
	t.Setenv("POSTFACH_HOSTNAME", "mail.example.org")
	c := Default()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := c.Parse(fs, []string{"--hostname", "mx.example.org"}); err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:9999" || c.Hostname != "mx.example.org" {
		t.Fatalf("got %q %q", c.HTTPAddr, c.Hostname)
	}
}

func TestBadValuesNameTheSetting(t *testing.T) {
	cases := []struct {
		mutate func(*Config)
		want   string
	}{
		{func(c *Config) { c.HTTPAddr = "nonsense" }, "POSTFACH_HTTP_ADDR"},
		{func(c *Config) { c.IMAPAddr = "127.0.0.1:99999" }, "--imap-addr"},
		{func(c *Config) { c.DatabaseURL = "mysql://x" }, "--database-url"},
		{func(c *Config) { c.LogLevel = "loud" }, "--log-level"},
		{func(c *Config) { c.TLSCertFile = "a.pem" }, "--tls-key"},
	}
	for _, tc := range cases {
		c := Default()
		tc.mutate(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want error naming %s, got %v", tc.want, err)
		}
	}
}
