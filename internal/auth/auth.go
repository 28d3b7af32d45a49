// Package auth owns agents' credentials: password hashing (argon2id),
// browser sessions with their CSRF tokens, and API keys. Secrets given to
// users (session cookies, API keys) are random 256-bit values; the database
// keeps only their SHA-256, so a copy of it opens nothing.
//
// Sign-in is bounded twice (limits.go):
//   - At most Limits.HashConcurrency password checks run at once (each
//     argon2id takes 64 MiB); a sign-in waits Limits.HashWait for a slot,
//     then fails with ErrBusy instead of growing the server's memory.
//   - Each attempt is counted against the email typed and the client IP
//     before any hashing, in the database (so every process shares the
//     count): after Backoff.Free failures each further attempt must wait
//     an exponentially growing delay, refused with a *ThrottledError until
//     it has passed. A refusal costs one read; only an attempt holding a
//     hashing slot writes, so a flood cannot monopolise the database's
//     writer either. An attempt counts as a failure until it is known to
//     have succeeded, so parallel guesses cannot slip past the count. An
//     unknown email is counted and refused exactly like a real one: the
//     answers never tell whether an account exists.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/postdesk/postdesk/internal/store"
)

// ErrInvalidCredentials is returned for a wrong email, password, session or key.
// It never says which part was wrong.
var ErrInvalidCredentials = errors.New("invalid credentials")

// ErrAPIKeyExpired is returned for a key past its expiry. It is an
// ErrInvalidCredentials; only the key's holder can learn it.
var ErrAPIKeyExpired = fmt.Errorf("%w: api key expired", ErrInvalidCredentials)

// APIKeyPrefix starts every API key, so a leaked one is recognisable.
const APIKeyPrefix = "pdk_"

// Service checks and issues credentials.
type Service struct {
	db         *store.DB
	now        func() time.Time
	sessionTTL time.Duration
	log        *slog.Logger
	limits     Limits
	hashes     *HashLimiter
	lastPrune  atomic.Int64 // unix ms of the last removal of stale throttles
}

// Options configure a Service. DB is required.
type Options struct {
	DB *store.DB
	// SessionTTL is how long a session lasts after its last use (0: 14 days).
	SessionTTL time.Duration
	// Limits bound sign-ins; zero fields take DefaultLimits' values.
	Limits Limits
	// Hashes bounds the password checks (nil: a HashLimiter from Limits);
	// Services given one limiter share its bound.
	Hashes *HashLimiter
	// Now is the clock (nil: time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// New returns a Service with the default limits. Sessions last ttl after
// their last use.
func New(db *store.DB, ttl time.Duration) *Service {
	return NewService(Options{DB: db, SessionTTL: ttl})
}

// NewService returns a Service configured by opts.
func NewService(opts Options) *Service {
	s := &Service{db: opts.DB, now: opts.Now, sessionTTL: opts.SessionTTL, log: opts.Logger, limits: opts.Limits.withDefaults()}
	if s.sessionTTL <= 0 {
		s.sessionTTL = 14 * 24 * time.Hour
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.hashes = opts.Hashes
	if s.hashes == nil {
		s.hashes = NewHashLimiter(s.limits.HashConcurrency, s.limits.HashWait)
	}
	return s
}

// RandomToken returns n random bytes, URL-safe base64 encoded.
func RandomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// HashToken is how session tokens and API keys are stored.
func HashToken(token string) string {
	s := sha256.Sum256([]byte(token))
	return hex.EncodeToString(s[:])
}

// Argon2id parameters (RFC 9106 second recommended option, lighter memory).
const (
	argonTime    = 2
	argonMemory  = 64 * 1024
	argonThreads = 2
	argonKeyLen  = 32
)

// HashPassword returns an encoded argon2id hash of password.
func HashPassword(password string) (string, error) {
	if len(password) < 8 {
		return "", errors.New("password must be at least 8 characters")
	}
	salt := make([]byte, 16)
	rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// CheckPassword reports whether password matches an encoded hash.
func CheckPassword(encoded, password string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// dummyHash keeps a sign-in for an unknown email as slow as a real one.
var dummyHash = sync.OnceValue(func() string { h, _ := HashPassword("not-a-real-password"); return h })

// Login checks an email and password and opens a session. It returns the
// session's cookie token (shown to the browser once) and the session.
//
// Besides ErrInvalidCredentials it fails with a *ThrottledError when the
// account or the IP must wait (nothing was checked), and with ErrBusy when
// too many passwords are being checked at once.
func (s *Service) Login(ctx context.Context, email, password, userAgent, ip string) (string, store.Session, store.User, error) {
	// The order bounds the cost of a flood: a read refuses an account or IP
	// that must wait; only a sign-in holding a hashing slot writes its
	// count (re-checked under the row locks) and then hashes.
	if err := s.precheck(ctx, email, ip); err != nil {
		return "", store.Session{}, store.User{}, err
	}
	release, err := s.hashes.Acquire(ctx)
	if err != nil {
		return "", store.Session{}, store.User{}, err
	}
	defer release()
	att, err := s.beginAttempt(ctx, email, ip)
	if err != nil {
		return "", store.Session{}, store.User{}, err
	}
	u, err := s.checkPassword(ctx, email, password)
	if err != nil {
		if errors.Is(err, ErrInvalidCredentials) {
			s.failed(att) // already counted
		} else {
			s.endAttempt(ctx, att, false) // not judged: not a failure
		}
		return "", store.Session{}, store.User{}, err
	}
	s.endAttempt(ctx, att, true)
	token := RandomToken(32)
	now := s.now().UTC()
	sess := store.Session{TokenHash: HashToken(token), UserID: u.ID, CSRFToken: RandomToken(32),
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(s.sessionTTL), UserAgent: truncate(userAgent, 200), IP: ip}
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		if err := tx.CreateSession(ctx, &sess); err != nil {
			return err
		}
		return tx.RecordSignIn(ctx, u.ID, now)
	})
	if err != nil {
		return "", store.Session{}, store.User{}, fmt.Errorf("sign in: %w", err)
	}
	u.LastSignInAt = now.Truncate(time.Millisecond)
	return token, sess, u, nil
}

// checkPassword returns the user with email and password. The caller
// holds a hashing slot.
func (s *Service) checkPassword(ctx context.Context, email, password string) (store.User, error) {
	u, err := s.db.UserByEmail(ctx, email)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.User{}, fmt.Errorf("sign in: %w", err)
	}
	if u.ID == 0 {
		CheckPassword(dummyHash(), password) // as slow as a real check
		return store.User{}, ErrInvalidCredentials
	}
	if !CheckPassword(u.PasswordHash, password) || !u.DisabledAt.IsZero() {
		return store.User{}, ErrInvalidCredentials
	}
	return u, nil
}

// Session returns the live session for a cookie token and its user,
// extending it at most once a minute.
func (s *Service) Session(ctx context.Context, token string) (store.Session, store.User, error) {
	if token == "" {
		return store.Session{}, store.User{}, ErrInvalidCredentials
	}
	now := s.now().UTC()
	sess, u, err := s.db.SessionByTokenHash(ctx, HashToken(token), now)
	if errors.Is(err, store.ErrNotFound) {
		return store.Session{}, store.User{}, ErrInvalidCredentials
	}
	if err != nil {
		return store.Session{}, store.User{}, fmt.Errorf("load session: %w", err)
	}
	if !u.DisabledAt.IsZero() {
		return store.Session{}, store.User{}, ErrInvalidCredentials
	}
	if now.Sub(sess.LastSeenAt) > time.Minute {
		sess.LastSeenAt, sess.ExpiresAt = now, now.Add(s.sessionTTL)
		err := s.db.Write(ctx, func(tx *store.Tx) error { return tx.ExtendSession(ctx, sess.ID, sess.LastSeenAt, sess.ExpiresAt) })
		if err != nil {
			return store.Session{}, store.User{}, fmt.Errorf("extend session: %w", err)
		}
	}
	return sess, u, nil
}

// Logout ends a session.
func (s *Service) Logout(ctx context.Context, sessionID int64) error {
	return s.db.Write(ctx, func(tx *store.Tx) error { return tx.DeleteSession(ctx, sessionID) })
}

// CheckCSRF compares a submitted CSRF token with the session's in constant time.
func CheckCSRF(sess store.Session, submitted string) bool {
	return submitted != "" && subtle.ConstantTimeCompare([]byte(sess.CSRFToken), []byte(submitted)) == 1
}

// CreateAPIKey issues a key that never expires for a user and returns it;
// only its hash is kept, so it can be shown once.
func (s *Service) CreateAPIKey(ctx context.Context, userID int64, name string) (string, store.APIKey, error) {
	return s.IssueAPIKey(ctx, NewAPIKey{UserID: userID, Name: name})
}

// APIKey returns the user an API key belongs to.
func (s *Service) APIKey(ctx context.Context, key string) (store.APIKey, store.User, error) {
	if !strings.HasPrefix(key, APIKeyPrefix) {
		return store.APIKey{}, store.User{}, ErrInvalidCredentials
	}
	k, u, err := s.db.APIKeyByHash(ctx, HashToken(key))
	if errors.Is(err, store.ErrNotFound) {
		return store.APIKey{}, store.User{}, ErrInvalidCredentials
	}
	if err != nil {
		return store.APIKey{}, store.User{}, fmt.Errorf("check api key: %w", err)
	}
	now := s.now().UTC()
	if !u.DisabledAt.IsZero() {
		return store.APIKey{}, store.User{}, ErrInvalidCredentials
	}
	if k.Expired(now) {
		return store.APIKey{}, store.User{}, ErrAPIKeyExpired
	}
	if now.Sub(k.LastUsedAt) > time.Minute {
		if err := s.db.Write(ctx, func(tx *store.Tx) error { return tx.TouchAPIKey(ctx, k.ID, now) }); err != nil {
			return store.APIKey{}, store.User{}, fmt.Errorf("record api key use: %w", err)
		}
	}
	return k, u, nil
}

// CreateUser adds a user with a password (generated when empty) and returns
// the password used: AddUser as the command line, for setup and tests.
func CreateUser(ctx context.Context, db *store.DB, email, name, role, password string) (store.User, string, error) {
	u, creds, err := NewService(Options{DB: db}).AddUser(ctx, store.User{},
		NewUser{Email: email, Name: name, Role: role, Setup: SetupPassword, Password: password})
	return u, creds.Password, err
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
