package core

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"

	"postfach/internal/store"
)

// Argon2id parameters: the OWASP recommendation of 19 MiB, two passes, one lane; about
// 20 ms here, so logins are cheap for users and expensive for guessers.
const (
	argonMemory  = 19 * 1024
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
)

// HashPassword returns an encoded argon2id hash.
func HashPassword(pw string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// VerifyPassword checks pw against an encoded hash in constant time.
func VerifyPassword(encoded, pw string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m > 1<<20 || t > 10 || p == 0 {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// dummyHash is verified against when the login does not exist, so that the answer takes
// as long as for a wrong password and does not reveal which logins exist.
const dummyHash = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2jHfUiGd5LnOZfO6rbBWqGmTHSb+iU6Dm8o6Qyy5m3w"

// NewToken returns a random URL-safe token and the hash stored in its place.
func NewToken(prefix string) (token, hash string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("new token: %w", err)
	}
	token = prefix + base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token), nil
}

// HashToken is the stored form of a session or API token.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// loginThrottle refuses further attempts from one source after too many failures,
// without hashing, and never locks the account itself (a guesser cannot lock users out).
type loginThrottle struct {
	mu       sync.Mutex
	failures map[string][]time.Time
}

const (
	throttleWindow = 10 * time.Minute
	throttleMax    = 10
)

func (l *loginThrottle) blocked(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	recent := l.prune(key, now)
	return len(recent) >= throttleMax
}

func (l *loginThrottle) fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failures == nil {
		l.failures = map[string][]time.Time{}
	}
	l.failures[key] = append(l.prune(key, now), now)
}

func (l *loginThrottle) prune(key string, now time.Time) []time.Time {
	list := l.failures[key]
	i := 0
	for i < len(list) && now.Sub(list[i]) > throttleWindow {
		i++
	}
	list = list[i:]
	if len(list) == 0 {
		delete(l.failures, key)
	} else if l.failures != nil {
		l.failures[key] = list
	}
	return list
}

var errBadLogin = &Error{Status: http.StatusUnauthorized, Key: "error.bad_login_or_password"}
var errThrottled = &Error{Status: http.StatusTooManyRequests, Key: "error.too_many_attempts"}

// LoginInput is what the login form sends. An empty tenant logs in an operator.
type LoginInput struct {
	Tenant   string `json:"tenant"`
	Login    string `json:"login"`
	Password string `json:"password"`
	RemoteIP string `json:"-"`
}

// Login checks credentials and opens a session. The error never says which part was wrong.
func (s *Service) Login(ctx context.Context, in LoginInput) (token string, a Actor, err error) {
	now := s.Now()
	throttleKey := in.RemoteIP
	if s.throttle.blocked(throttleKey, now) {
		return "", Actor{}, errThrottled
	}
	tx := s.DB.Read()
	var hash string
	sess := store.Session{}
	if strings.TrimSpace(in.Tenant) == "" {
		op, err := tx.OperatorByLogin(ctx, strings.TrimSpace(in.Login))
		if err == nil {
			hash = op.PasswordHash
			a = Actor{Kind: ActorOperator, OperatorID: op.ID, Name: op.Login, Lang: op.Lang}
			sess.OperatorID = &op.ID
		}
	} else {
		t, err := tx.TenantBySlug(ctx, strings.ToLower(strings.TrimSpace(in.Tenant)))
		if err == nil {
			u, err := tx.UserByLogin(ctx, t.ID, strings.TrimSpace(in.Login))
			if err == nil && u.Active {
				hash = u.PasswordHash
				a = actorForUser(u)
				sess.TenantID, sess.UserID = &u.TenantID, &u.ID
			}
		}
	}
	if hash == "" {
		VerifyPassword(dummyHash, in.Password)
		s.throttle.fail(throttleKey, now)
		return "", Actor{}, errBadLogin
	}
	if !VerifyPassword(hash, in.Password) {
		s.throttle.fail(throttleKey, now)
		return "", Actor{}, errBadLogin
	}
	token, tokenHash, err := NewToken("")
	if err != nil {
		return "", Actor{}, err
	}
	sess.TokenHash = tokenHash
	sess.CreatedAt, sess.LastSeen = now.UnixMilli(), now.UnixMilli()
	sess.ExpiresAt = now.Add(s.SessionTTL).UnixMilli()
	sess.ReauthAt = now.UnixMilli()
	a.RemoteIP = in.RemoteIP
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.CreateSession(ctx, sess); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, a.TenantID, "login", "", "")
	})
	if err != nil {
		return "", Actor{}, fmt.Errorf("login: %w", err)
	}
	return token, a, nil
}

func actorForUser(u store.User) Actor {
	kind := ActorUser
	if u.Role == store.RoleAdmin {
		kind = ActorAdmin
	}
	return Actor{Kind: kind, TenantID: u.TenantID, UserID: u.ID, Name: u.Login, Lang: u.Lang}
}

var errNoSession = &Error{Status: http.StatusUnauthorized, Key: "error.session_expired"}

// Session resolves a session cookie to its actor and slides its expiry.
func (s *Service) Session(ctx context.Context, token string) (Actor, error) {
	if token == "" {
		return Actor{}, errNoSession
	}
	now := s.Now()
	hash := HashToken(token)
	sess, u, err := s.DB.SessionWithUser(ctx, hash, now.UnixMilli())
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Actor{}, errNoSession
		}
		return Actor{}, fmt.Errorf("session: %w", err)
	}
	var a Actor
	switch {
	case sess.OperatorID != nil:
		op, err := s.DB.Read().Operator(ctx, *sess.OperatorID)
		if err != nil {
			return Actor{}, errNoSession
		}
		a = Actor{Kind: ActorOperator, OperatorID: op.ID, Name: op.Login, Lang: op.Lang}
	case sess.UserID != nil && u.ID != 0:
		if !u.Active {
			return Actor{}, errNoSession
		}
		a = actorForUser(u)
	default:
		return Actor{}, errNoSession
	}
	// Write the sliding expiry at most once a minute: every page view must not be a write.
	if now.UnixMilli()-sess.LastSeen > int64(time.Minute/time.Millisecond) {
		_ = s.DB.InTx(ctx, func(tx *store.Tx) error {
			return tx.TouchSession(ctx, hash, now.UnixMilli(), now.Add(s.SessionTTL).UnixMilli())
		})
	}
	return a, nil
}

// Logout ends a session.
func (s *Service) Logout(ctx context.Context, token string) error {
	return s.DB.InTx(ctx, func(tx *store.Tx) error { return tx.DeleteSession(ctx, HashToken(token)) })
}

var errBadToken = &Error{Status: http.StatusUnauthorized, Key: "error.bad_token"}

// TokenActor resolves an API token (Authorization: Bearer …) to its tenant.
func (s *Service) TokenActor(ctx context.Context, token string) (Actor, error) {
	if !strings.HasPrefix(token, "pf_") {
		return Actor{}, errBadToken
	}
	t, err := s.DB.Read().APITokenByHash(ctx, HashToken(token))
	if err != nil {
		return Actor{}, errBadToken
	}
	return Actor{Kind: ActorToken, TenantID: t.TenantID, Name: t.Name}, nil
}

// APITokenCreated is returned once: the secret is not stored and cannot be shown again.
type APITokenCreated struct {
	store.APIToken
	Token string `json:"token"`
}

// CreateAPIToken issues a token for the actor's tenant.
func (s *Service) CreateAPIToken(ctx context.Context, a Actor, name string) (APITokenCreated, error) {
	tid, err := adminTenant(a)
	if err != nil {
		return APITokenCreated{}, err
	}
	var v validator
	name = v.text("name", name, true, 100)
	if err := v.err(); err != nil {
		return APITokenCreated{}, err
	}
	token, hash, err := NewToken("pf_")
	if err != nil {
		return APITokenCreated{}, err
	}
	var out APITokenCreated
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		t, err := tx.CreateAPIToken(ctx, tid, name, hash)
		if err != nil {
			return err
		}
		out = APITokenCreated{APIToken: t, Token: token}
		return s.audit(ctx, tx, a, tid, "api_token.create", idStr("api_token", t.ID), name)
	})
	return out, fromStore(err, "name", "error.duplicate")
}

// APITokens lists the actor's tenant's tokens.
func (s *Service) APITokens(ctx context.Context, a Actor) ([]store.APIToken, error) {
	tid, err := adminTenant(a)
	if err != nil {
		return nil, err
	}
	list, err := s.DB.Read().APITokens(ctx, tid)
	if list == nil {
		list = []store.APIToken{}
	}
	return list, fromStore(err, "", "")
}

// DeleteAPIToken revokes a token.
func (s *Service) DeleteAPIToken(ctx context.Context, a Actor, id int64) error {
	tid, err := adminTenant(a)
	if err != nil {
		return err
	}
	return fromStore(s.DB.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.DeleteAPIToken(ctx, tid, id); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, tid, "api_token.delete", idStr("api_token", id), "")
	}), "", "")
}
