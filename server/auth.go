package server

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"golang.org/x/crypto/argon2"

	"github.com/brygga/brygga/server/account"
	"github.com/brygga/brygga/sync/wire"
)

// Role is what a staff user may do.
type Role = account.Role

// Roles.
const (
	// RoleOutreach is outreach staff: they work through enrolled devices.
	RoleOutreach = account.RoleOutreach
	// RoleManager manages the units and devices of one organisation and
	// sees its statistics.
	RoleManager = account.RoleManager
	// RoleAuthority is the regional health authority: aggregates only.
	RoleAuthority = account.RoleAuthority
	// RoleAdmin administers the whole server.
	RoleAdmin = account.RoleAdmin
)

// Token issuer and audience; the parser accepts nothing else.
const (
	issuer   = "brygga"
	audience = "brygga-api"
)

// Claims are the claims of an access token. The subject is "user:<id>" or
// "device:<id>"; scope comes from the server's records at issue time, never
// from the client.
type Claims struct {
	jwt.RegisteredClaims
	Role   Role   `json:"role,omitempty"`
	OrgID  string `json:"org,omitempty"`
	UnitID string `json:"unit,omitempty"`
}

// Principal is who makes a request, as the access token says.
type Principal struct {
	Kind   string // "user" or "device"
	ID     uuid.UUID
	Role   Role // users only
	OrgID  uuid.UUID
	UnitID uuid.UUID
}

// Actor names the principal in the audit log.
func (p *Principal) Actor() string {
	if p == nil {
		return "anonymous"
	}
	return p.Kind + ":" + p.ID.String()
}

// keyring holds the Ed25519 signing keys. It is safe for concurrent use.
type keyring struct {
	mu      sync.RWMutex
	signing string // kid of the key that signs
	keys    map[string]ed25519.PrivateKey
	retired map[string]time.Time
	// ttl is the lifetime of the tokens the server issues: a token that
	// claims a longer one was not made here.
	ttl time.Duration
	// store keeps the keys; loaded is when they were last read from it,
	// so that a rotation by another process is seen within keyReload.
	store  CredentialStore
	loaded time.Time
	// missedAt is when a token of an unknown key last made the keyring
	// read the keys.
	missedAt time.Time
}

// keyReload is how often the keyring reads the keys again.
const keyReload = time.Minute

// loadKeys reads the signing keys from store, creating one on first
// start.
func loadKeys(ctx context.Context, store CredentialStore, now time.Time, ttl time.Duration) (*keyring, error) {
	k := &keyring{keys: map[string]ed25519.PrivateKey{}, retired: map[string]time.Time{}, ttl: ttl, store: store}
	if err := k.reload(ctx, now); err != nil {
		return nil, err
	}
	if k.signing == "" {
		if _, err := rotateKey(ctx, store, now); err != nil {
			return nil, err
		}
		if err := k.reload(ctx, now); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// reload reads the keys from the store at now. The keyring changes only
// once every key has been read: a failed read leaves it as it was.
func (k *keyring) reload(ctx context.Context, now time.Time) error {
	stored, err := k.store.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("load keys: %w", err)
	}
	keys := map[string]ed25519.PrivateKey{}
	retired := map[string]time.Time{}
	signing := ""
	for _, sk := range stored {
		if len(sk.Seed) != ed25519.SeedSize {
			return fmt.Errorf("load keys: key %s is malformed", sk.KID)
		}
		keys[sk.KID] = ed25519.NewKeyFromSeed(sk.Seed)
		if !sk.RetiredAt.IsZero() {
			retired[sk.KID] = sk.RetiredAt
		} else {
			signing = sk.KID
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keys, k.retired, k.signing, k.loaded = keys, retired, signing, now
	return nil
}

// rotateKey creates a new signing key and retires the others; tokens they
// signed stay valid until they expire.
func rotateKey(ctx context.Context, store CredentialStore, now time.Time) (string, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	kid := uuid.Must(uuid.NewV7()).String()
	if err := store.RotateKey(ctx, account.SigningKey{KID: kid, Seed: priv.Seed(), CreatedAt: now}); err != nil {
		return "", err
	}
	return kid, nil
}

// fresh reads the keys again if they were read keyReload or longer before
// now. A failed read keeps the keys as they are, and is tried again on the
// next call.
func (k *keyring) fresh(ctx context.Context, now time.Time) {
	k.mu.RLock()
	stale := now.Sub(k.loaded) >= keyReload
	k.mu.RUnlock()
	if stale {
		k.reload(ctx, now)
	}
}

// sign issues a signed access token with the current signing key. It
// reads the keys first, so that of several servers on one database each
// signs with the key any of them rotated to last, and no token it signs is
// refused by another as signed by a retired key; a failed read signs with
// the keys as they were.
func (k *keyring) sign(ctx context.Context, c *Claims) (string, error) {
	k.reload(ctx, c.IssuedAt.Time)
	k.mu.RLock()
	kid, key := k.signing, k.keys[k.signing]
	k.mu.RUnlock()
	if kid == "" {
		return "", errors.New("sign: no signing key: every key is retired")
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = kid
	return t.SignedString(key)
}

// parse verifies an access token: EdDSA only, our issuer and audience, an
// expiry that has not passed, a time of issue, a lifetime no longer than
// the server gives its tokens, and a known key that was not retired before
// the token was issued. A retired key that leaked thus mints nothing that
// is accepted.
//
// A token signed by a key the keyring does not know makes it read the keys
// again, at most once a second, so that a key another server rotated to
// is accepted at once.
func (k *keyring) parse(ctx context.Context, token string, now time.Time) (*Claims, error) {
	k.fresh(ctx, now)
	if err := numericDates(token, true); err != nil {
		return nil, err
	}
	c, t, err := k.verify(token, now)
	if errors.Is(err, errUnknownKey) && k.missed(now) {
		k.reload(ctx, now)
		c, t, err = k.verify(token, now)
	}
	if err != nil {
		return nil, err
	}
	if c.IssuedAt == nil {
		return nil, errors.New("token has no time of issue")
	}
	if c.ExpiresAt.Sub(c.IssuedAt.Time) > k.ttl {
		return nil, errors.New("token lives longer than the server's tokens")
	}
	kid, _ := t.Header["kid"].(string)
	k.mu.RLock()
	retired, ok := k.retired[kid]
	k.mu.RUnlock()
	// Times of issue have whole seconds: a token of the second of the
	// rotation passes, one of any later second does not. A key that leaked
	// can still backdate; the lifetime bound above keeps what it signs
	// from outliving the rotation by more than one token's lifetime.
	if ok && !c.IssuedAt.Before(retired) {
		return nil, errors.New("token was signed by a retired key")
	}
	return c, nil
}

// errUnknownKey means a token names a key the keyring does not hold.
var errUnknownKey = errors.New("unknown key")

// missed notes a token of an unknown key at now, and reports whether the
// keys may be read again for it: once a second at most.
func (k *keyring) missed(now time.Time) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.missedAt.IsZero() && now.Sub(k.missedAt) < time.Second {
		return false
	}
	k.missedAt = now
	return true
}

// verify checks token's signature and registered claims.
func (k *keyring) verify(token string, now time.Time) (*Claims, *jwt.Token, error) {
	var c Claims
	t, err := jwt.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		k.mu.RLock()
		defer k.mu.RUnlock()
		key, ok := k.keys[kid]
		if !ok {
			return nil, errUnknownKey
		}
		return key.Public(), nil
	},
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	return &c, t, err
}

// numericDates checks the raw claims of a JWT: exp, iat and nbf, where
// present, must be JSON numbers (a JWT library may read "exp": "1700000000"
// as a time too); with required, exp and iat must be present.
func numericDates(token string, required bool) error {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return errors.New("not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return errors.New("its claims are not base64url")
	}
	var claims map[string]json.RawMessage
	if err := json.Unmarshal(payload, &claims); err != nil {
		return errors.New("its claims are not a JSON object")
	}
	for _, name := range []string{"exp", "iat", "nbf"} {
		v, ok := claims[name]
		if !ok {
			if required && name != "nbf" {
				return fmt.Errorf("%s is required", name)
			}
			continue
		}
		var n json.Number
		if len(v) == 0 || !(v[0] == '-' || v[0] >= '0' && v[0] <= '9') || json.Unmarshal(v, &n) != nil {
			return fmt.Errorf("%s must be a number", name)
		}
	}
	return nil
}

// jwks returns the public keys as a JSON Web Key Set.
func (k *keyring) jwks() map[string]any {
	k.mu.RLock()
	defer k.mu.RUnlock()
	keys := make([]map[string]string, 0, len(k.keys))
	for kid, priv := range k.keys {
		keys = append(keys, map[string]string{
			"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid,
			"x": base64.RawURLEncoding.EncodeToString(priv.Public().(ed25519.PublicKey)),
		})
	}
	return map[string]any{"keys": keys}
}

// Password hashing: argon2id with the parameters OWASP recommends as a
// minimum (19 MiB, 2 passes, 1 lane).
const (
	argonMemory  = 19 * 1024
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
)

// HashPassword returns the argon2id hash of password in PHC string format.
func HashPassword(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	sum := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(sum)), nil
}

// checkPassword reports whether password matches the PHC-format hash.
func checkPassword(hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m, t uint32
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

// MinPasswordLength is the shortest password accepted.
const MinPasswordLength = 12

// randomToken returns n random bytes, URL-safe base64 encoded.
func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// loginLimiter counts failed logins per username in a sliding window. It
// is safe for concurrent use.
type loginLimiter struct {
	mu       sync.Mutex
	max      int
	window   time.Duration
	failures map[string][]time.Time
	swept    time.Time // when fail last dropped the counts of past windows
}

func newLoginLimiter(max int, window time.Duration) *loginLimiter {
	return &loginLimiter{max: max, window: window, failures: map[string][]time.Time{}}
}

// allowed reports whether username may try to log in at now.
func (l *loginLimiter) allowed(username string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	recent := l.failures[username][:0]
	for _, t := range l.failures[username] {
		if now.Sub(t) < l.window {
			recent = append(recent, t)
		}
	}
	if len(recent) == 0 {
		delete(l.failures, username)
	} else {
		l.failures[username] = recent
	}
	return len(recent) < l.max
}

// fail counts a failed login of username at now. Once a window, it drops
// the counts whose failures have all left the window, so that trying many
// usernames does not grow the limiter without end.
func (l *loginLimiter) fail(username string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) >= l.window {
		for name, ts := range l.failures {
			if now.Sub(ts[len(ts)-1]) >= l.window {
				delete(l.failures, name)
			}
		}
		l.swept = now
	}
	l.failures[username] = append(l.failures[username], now)
}

// retryAfter returns how long until username may try again at now: until
// the failure that keeps it at the limit leaves the window; 0 if it may try
// now.
func (l *loginLimiter) retryAfter(username string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var recent []time.Time
	for _, t := range l.failures[username] {
		if now.Sub(t) < l.window {
			recent = append(recent, t)
		}
	}
	if len(recent) < l.max {
		return 0
	}
	// The failures are in time order: once the oldest over the limit has
	// left the window, fewer than max remain.
	return recent[len(recent)-l.max].Add(l.window).Sub(now)
}

func (l *loginLimiter) reset(username string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.failures, username)
}

func unauthorized(msg string) *wire.Error {
	return &wire.Error{Code: wire.CodeUnauthorized, Message: msg}
}
func forbidden(msg string) *wire.Error { return &wire.Error{Code: wire.CodeForbidden, Message: msg} }
