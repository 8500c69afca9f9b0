// Package config owns Postfach's settings: one Config struct with defaults, filled from
// command-line flags and POSTFACH_* environment variables (the same names), and validated
// before anything starts. There is deliberately no config file format of our own.
package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Config is every setting of one postfach process.
type Config struct {
	DataDir     string // key file, SQLite database, generated certificates
	DatabaseURL string // empty: SQLite in DataDir; postgres://… selects PostgreSQL

	HTTPAddr          string
	SMTPAddr          string // inbound MX for inbound addresses and hosted domains
	SubmissionAddr    string // STARTTLS submission
	SubmissionTLSAddr string // implicit TLS submission
	IMAPAddr          string
	IMAPTLSAddr       string
	POP3Addr          string
	POP3TLSAddr       string

	Hostname      string // the name this server answers with (HELO, greetings, UI hints)
	InboundDomain string // the operator's domain for inbound/outbound account addresses ("p14@…", "p14.out@…")
	SPFInclude    string // the include: domain customers add to their SPF record
	PublicURL     string // how users reach the web UI, used in links and for secure cookies

	TLSCertFile string
	TLSKeyFile  string

	Demo         bool
	DemoPassword string

	// Outbound system transport: a smarthost ("host:port"; empty delivers directly to MX
	// hosts) with its encryption (none, tls, starttls), optional login and CA file.
	Smarthost         string
	SmarthostSecurity string
	SmarthostUser     string
	SmarthostPassword string
	SmarthostCAFile   string
	QueueWorkers      int           // parallel outbound deliveries (SMTP sessions)
	QueueLease        time.Duration // how long a claimed queue row stays ours without renewal

	AllowPrivatePrefixes []netip.Prefix // on-premises mail servers the operator allows user-supplied hosts to reach
	// OAuth2 client registrations for Office 365 and Gmail accounts (C2).
	OAuthMicrosoftClientID     string
	OAuthMicrosoftClientSecret string
	OAuthGoogleClientID        string
	OAuthGoogleClientSecret    string

	SessionTTL      time.Duration
	InsecureCookies bool // only for plain-HTTP deployments behind nothing; browsers treat localhost as secure anyway
	LogLevel        string
	LogFormat       string // text or json
}

// Default returns the settings used when nothing is given: everything on loopback with the
// development ports from the design guide.
func Default() Config {
	return Config{
		DataDir:           "./postfach-data",
		HTTPAddr:          "127.0.0.1:8080",
		SMTPAddr:          "127.0.0.1:2525",
		SubmissionAddr:    "127.0.0.1:2587",
		SubmissionTLSAddr: "127.0.0.1:2465",
		IMAPAddr:          "127.0.0.1:2143",
		IMAPTLSAddr:       "127.0.0.1:2993",
		POP3Addr:          "127.0.0.1:2110",
		POP3TLSAddr:       "127.0.0.1:2995",
		Hostname:          "localhost",
		InboundDomain:     "in.postfach.localhost",
		SPFInclude:        "_spf.postfach.localhost",
		SessionTTL:        12 * time.Hour,
		SmarthostSecurity: "starttls",
		QueueWorkers:      8,
		QueueLease:        2 * time.Minute,
		LogLevel:          "info",
		LogFormat:         "text",
	}
}

// IsPostgres reports whether the database URL selects PostgreSQL.
func (c Config) IsPostgres() bool {
	return strings.HasPrefix(c.DatabaseURL, "postgres://") || strings.HasPrefix(c.DatabaseURL, "postgresql://")
}

// SQLitePath is the database file used when no PostgreSQL URL is set.
func (c Config) SQLitePath() string {
	if c.DatabaseURL != "" && !c.IsPostgres() {
		return strings.TrimPrefix(c.DatabaseURL, "sqlite://")
	}
	return filepath.Join(c.DataDir, "postfach.db")
}

// KeyFile is where the master key for secrets lives: beside the data, never inside the database.
func (c Config) KeyFile() string { return filepath.Join(c.DataDir, "postfach.key") }

// Validate reports every bad setting at once, each naming the flag and the environment variable.
func (c Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s (%s): %s", name, EnvName(name), fmt.Sprintf(format, args...)))
	}
	if c.DataDir == "" {
		bad("data-dir", "must not be empty")
	}
	if c.DatabaseURL != "" && !c.IsPostgres() && !strings.HasPrefix(c.DatabaseURL, "sqlite://") {
		bad("database-url", "must start with postgres:// or sqlite://, got %q", c.DatabaseURL)
	}
	for name, addr := range map[string]string{
		"http-addr": c.HTTPAddr, "smtp-addr": c.SMTPAddr, "submission-addr": c.SubmissionAddr,
		"submission-tls-addr": c.SubmissionTLSAddr, "imap-addr": c.IMAPAddr, "imap-tls-addr": c.IMAPTLSAddr,
		"pop3-addr": c.POP3Addr, "pop3-tls-addr": c.POP3TLSAddr,
	} {
		if addr == "" || addr == "off" {
			continue
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			bad(name, "must be host:port or off, got %q", addr)
			continue
		}
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			bad(name, "port must be a number from 0 to 65535, got %q", port)
		}
		_ = host
	}
	if c.HTTPAddr == "" || c.HTTPAddr == "off" {
		bad("http-addr", "the web UI and API need an address")
	}
	if strings.ContainsAny(c.Hostname, " /@") || c.Hostname == "" {
		bad("hostname", "must be a plain host name, got %q", c.Hostname)
	}
	if !strings.Contains(c.InboundDomain, ".") && c.InboundDomain != "localhost" {
		bad("inbound-domain", "must be a domain name, got %q", c.InboundDomain)
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		bad("tls-cert", "--tls-cert and --tls-key must be given together")
	}
	if c.Smarthost != "" {
		if _, _, err := net.SplitHostPort(c.Smarthost); err != nil {
			bad("smarthost", "must be host:port, got %q", c.Smarthost)
		}
	}
	switch c.SmarthostSecurity {
	case "none", "tls", "starttls":
	default:
		bad("smarthost-security", "must be none, tls or starttls, got %q", c.SmarthostSecurity)
	}
	if c.QueueWorkers < 1 || c.QueueWorkers > 256 {
		bad("queue-workers", "must be from 1 to 256, got %d", c.QueueWorkers)
	}
	if c.QueueLease < time.Second {
		bad("queue-lease", "must be at least 1s, got %s", c.QueueLease)
	}
	if c.SessionTTL < time.Minute {
		bad("session-ttl", "must be at least 1m, got %s", c.SessionTTL)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log-level", "must be debug, info, warn or error, got %q", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		bad("log-format", "must be text or json, got %q", c.LogFormat)
	}
	return errors.Join(errs...)
}

// EnvName is the environment variable for a flag: data-dir → POSTFACH_DATA_DIR.
func EnvName(flagName string) string {
	return "POSTFACH_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Register binds the settings to flags on fs.
func (c *Config) Register(fs *flag.FlagSet) {
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory for the key file, the SQLite database and generated certificates")
	fs.StringVar(&c.DatabaseURL, "database-url", c.DatabaseURL, "postgres://… to use PostgreSQL; empty for SQLite in the data directory")
	fs.StringVar(&c.HTTPAddr, "http-addr", c.HTTPAddr, "web UI and JSON API listener")
	fs.StringVar(&c.SMTPAddr, "smtp-addr", c.SMTPAddr, "inbound SMTP listener (off to disable)")
	fs.StringVar(&c.SubmissionAddr, "submission-addr", c.SubmissionAddr, "SMTP submission with STARTTLS (off to disable)")
	fs.StringVar(&c.SubmissionTLSAddr, "submission-tls-addr", c.SubmissionTLSAddr, "SMTP submission with implicit TLS (off to disable)")
	fs.StringVar(&c.IMAPAddr, "imap-addr", c.IMAPAddr, "IMAP with STARTTLS (off to disable)")
	fs.StringVar(&c.IMAPTLSAddr, "imap-tls-addr", c.IMAPTLSAddr, "IMAP with implicit TLS (off to disable)")
	fs.StringVar(&c.POP3Addr, "pop3-addr", c.POP3Addr, "POP3 with STLS (off to disable)")
	fs.StringVar(&c.POP3TLSAddr, "pop3-tls-addr", c.POP3TLSAddr, "POP3 with implicit TLS (off to disable)")
	fs.StringVar(&c.Hostname, "hostname", c.Hostname, "host name used in greetings and shown to mail clients")
	fs.StringVar(&c.InboundDomain, "inbound-domain", c.InboundDomain, "operator domain for the inbound and outbound addresses of mail accounts")
	fs.StringVar(&c.SPFInclude, "spf-include", c.SPFInclude, "the include: customers add to their SPF record")
	fs.StringVar(&c.PublicURL, "public-url", c.PublicURL, "URL users open in the browser (for links)")
	fs.StringVar(&c.TLSCertFile, "tls-cert", c.TLSCertFile, "PEM certificate chain for the mail listeners")
	fs.StringVar(&c.TLSKeyFile, "tls-key", c.TLSKeyFile, "PEM private key for the mail listeners")
	fs.BoolVar(&c.Demo, "demo", c.Demo, "create a demo tenant on first start")
	fs.StringVar(&c.DemoPassword, "demo-password", c.DemoPassword, "password for the demo users (random if empty)")
	fs.Func("allow-private", "CIDR of on-premises mail servers users may connect to (repeatable)", func(s string) error {
		for _, part := range strings.Split(s, ",") {
			p, err := netip.ParsePrefix(strings.TrimSpace(part))
			if err != nil {
				return fmt.Errorf("not a CIDR prefix: %q", part)
			}
			c.AllowPrivatePrefixes = append(c.AllowPrivatePrefixes, p)
		}
		return nil
	})
	fs.StringVar(&c.Smarthost, "smarthost", c.Smarthost, "host:port of the relay for the system transport (empty: direct delivery to MX hosts)")
	fs.StringVar(&c.SmarthostSecurity, "smarthost-security", c.SmarthostSecurity, "smarthost encryption: none, tls or starttls")
	fs.StringVar(&c.SmarthostUser, "smarthost-user", c.SmarthostUser, "smarthost login (empty: no login)")
	fs.StringVar(&c.SmarthostPassword, "smarthost-password", c.SmarthostPassword, "smarthost password")
	fs.StringVar(&c.SmarthostCAFile, "smarthost-ca", c.SmarthostCAFile, "PEM file of CAs that verify the smarthost (empty: system roots)")
	fs.IntVar(&c.QueueWorkers, "queue-workers", c.QueueWorkers, "parallel outbound deliveries")
	fs.DurationVar(&c.QueueLease, "queue-lease", c.QueueLease, "how long a claimed outbound message waits before another instance may retry it after a crash")
	fs.StringVar(&c.OAuthMicrosoftClientID, "oauth-microsoft-client-id", c.OAuthMicrosoftClientID, "OAuth2 client id registered with Microsoft (Office 365 accounts)")
	fs.StringVar(&c.OAuthMicrosoftClientSecret, "oauth-microsoft-client-secret", c.OAuthMicrosoftClientSecret, "OAuth2 client secret for Microsoft")
	fs.StringVar(&c.OAuthGoogleClientID, "oauth-google-client-id", c.OAuthGoogleClientID, "OAuth2 client id registered with Google (Gmail accounts)")
	fs.StringVar(&c.OAuthGoogleClientSecret, "oauth-google-client-secret", c.OAuthGoogleClientSecret, "OAuth2 client secret for Google")
	fs.DurationVar(&c.SessionTTL, "session-ttl", c.SessionTTL, "how long a web login lasts without activity")
	fs.BoolVar(&c.InsecureCookies, "insecure-cookies", c.InsecureCookies, "send session cookies without the Secure attribute")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "text or json")
}

// Parse fills c from environment variables, then from args (flags win), and validates.
func (c *Config) Parse(fs *flag.FlagSet, args []string) error {
	c.Register(fs)
	var envErrs []error
	fs.VisitAll(func(f *flag.Flag) {
		if v, ok := os.LookupEnv(EnvName(f.Name)); ok {
			if err := f.Value.Set(v); err != nil {
				envErrs = append(envErrs, fmt.Errorf("%s: %w", EnvName(f.Name), err))
			}
		}
	})
	if err := errors.Join(envErrs...); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	return c.Validate()
}
