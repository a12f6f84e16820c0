package brygga

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/brygga/brygga/sync/replica"
	"github.com/brygga/brygga/sync/wire"
)

// How a device authenticates. At enrolment the SDK makes an Ed25519 key
// pair, keeps it in the replica (the private key never leaves the device)
// and registers the public key with the enrolment code. For an access
// token it signs a short-lived assertion (RFC 7523) on the server's clock
// as it knows it, and presents it at wire.TokenPath. Nothing rotates: a
// lost answer, a repeated or cancelled request is simply followed by a new
// assertion, and only a revocation ends the device's access.

// assertionLifetime is how long an assertion the SDK makes is valid.
const assertionLifetime = 2 * time.Minute

// enrolCodeID names the server and the (normalised) code a key pair was
// made for: the same code again reuses the key, so that a retried
// enrolment is the same one.
func enrolCodeID(serverURL, code string) string {
	h := sha256.Sum256([]byte(strings.TrimRight(serverURL, "/") + "\n" + wire.NormaliseEnrolCode(code)))
	return hex.EncodeToString(h[:])
}

// Enroll binds the device to the server at serverURL and the unit of a
// one-time enrolment code, and creates the replica. A first Sync then
// brings the unit's reference data (staff, units, services).
//
// The device's key pair is made and stored in the replica file before the
// request is sent, so Enroll can be called again with the same code after
// any failure (a lost answer, a cancelled context, a crash): the server
// answers a repeated enrolment with the same device. Called again with the
// same server and code once enrolled, it returns nil; with another code,
// ErrAlreadyEnrolled.
func (c *Client) Enroll(ctx context.Context, serverURL, code string) error {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	return c.enroll(ctx, serverURL, code)
}

// enroll is Enroll, with c.syncMu held.
func (c *Client) enroll(ctx context.Context, serverURL, code string) error {
	codeID := enrolCodeID(serverURL, code)
	if dev, err := c.device(); err == nil {
		if prev, _ := dev.Meta(ctx, metaEnrolCode); prev == codeID {
			return nil
		}
		return ErrAlreadyEnrolled
	}
	// The code's id goes with the key: a key made for another code is
	// not reused (the server would refuse it), and is replaced.
	pair, err := replica.PrepareMeta(ctx, c.path, metaKey, func(v string) bool {
		id, _, ok := strings.Cut(v, ":")
		return ok && id == codeID
	}, func() (string, error) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return "", err
		}
		return codeID + ":" + base64.RawURLEncoding.EncodeToString(priv.Seed()), nil
	})
	if err != nil {
		return fmt.Errorf("enrol: %w", err)
	}
	_, seed, _ := strings.Cut(pair, ":")
	priv, err := privateKey(seed)
	if err != nil {
		return fmt.Errorf("enrol: %w", err)
	}
	// Every request carries a new proof of the key, made on the server's
	// clock as the device knows it: after clock_skew again on the time its
	// answer gave (once), after assertion_replayed (an answer of a
	// duplicated request) with a new id.
	var e enrolment
	for skewed, replayed := false, 0; ; {
		proof, err := c.enrolProof(priv, code)
		if err != nil {
			return fmt.Errorf("enrol: %w", err)
		}
		req := map[string]string{"code": code, "public_key": base64.RawURLEncoding.EncodeToString(priv.Public().(ed25519.PublicKey)), "proof": proof}
		err = c.call(ctx, serverURL, "POST", wire.EnrolPath, "", req, &e)
		var ae *APIError
		switch {
		case errors.As(err, &ae) && ae.Code == wire.CodeClockSkew && !skewed:
			skewed = true
			continue
		case errors.As(err, &ae) && ae.Code == wire.CodeAssertionReplayed && replayed < 3:
			replayed++
			continue
		case errors.As(err, &ae) && ae.Code == wire.CodeDeviceRevoked:
			// The device this key enrolled was revoked: what the replica
			// holds goes, as at any contact of a revoked device.
			if werr := c.wipe(); werr != nil {
				return fmt.Errorf("enrol: %w (wiping failed: %v)", ErrRevoked, werr)
			}
			return fmt.Errorf("enrol: %w", ErrRevoked)
		case err != nil:
			return fmt.Errorf("enrol: %w", err)
		}
		break
	}
	if e.DeviceID == uuid.Nil || e.UnitID == uuid.Nil || e.TokenAudience == "" {
		return fmt.Errorf("enrol: the server's answer lacks the device, unit or token audience")
	}
	// The server has enrolled the device: what it answered is kept even if
	// ctx ends now. The replica takes its identity last, so that a
	// replica with one has all the rest.
	ctx = context.WithoutCancel(ctx)
	c.mu.Lock()
	offset := c.offset
	c.mu.Unlock()
	if err := replica.SetMetaAt(ctx, c.path, map[string]string{
		metaServer: serverURL, metaOrg: e.OrgID.String(), metaAudience: e.TokenAudience, metaEnrolCode: codeID,
		metaLease: strconv.FormatInt(e.LeaseSeconds, 10), metaRetention: strconv.Itoa(e.RetentionDays),
		metaLastSync: c.opts.Now().UTC().Format(time.RFC3339Nano), metaOffset: strconv.FormatInt(offset.Milliseconds(), 10),
	}); err != nil {
		return fmt.Errorf("enrol: %w", err)
	}
	dev, err := replica.OpenDevice(ctx, c.path, replica.DeviceConfig{ID: e.DeviceID, UnitID: e.UnitID, Now: c.opts.Now})
	if err != nil {
		return fmt.Errorf("enrol: %w", err)
	}
	c.mu.Lock()
	c.dev = dev
	c.access, c.accessExp = e.AccessToken, c.opts.Now().Add(time.Duration(e.ExpiresIn)*time.Second)
	c.mu.Unlock()
	c.keepAccess(ctx, e.AccessToken, c.accessExp) // best effort: a token is asked for again if it is not kept
	return nil
}

// enrolProof signs a new proof that the device holds priv, for code: issued
// now on the server's clock as the device knows it, valid for
// assertionLifetime, with a random id (see wire.EnrolAudience).
func (c *Client) enrolProof(priv ed25519.PrivateKey, code string) (string, error) {
	now := c.now()
	iss := wire.EnrolIssuerPrefix + wire.KeyThumbprint(priv.Public().(ed25519.PublicKey))
	claims := struct {
		jwt.RegisteredClaims
		Code string `json:"code"`
	}{jwt.RegisteredClaims{Issuer: iss, Subject: iss, Audience: jwt.ClaimStrings{wire.EnrolAudience},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(assertionLifetime)), ID: uuid.NewString()},
		wire.EnrolCodeHash(code)}
	return jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims).SignedString(priv)
}

// enrolment is the server's answer to an enrolment.
type enrolment struct {
	DeviceID      uuid.UUID `json:"device_id"`
	UnitID        uuid.UUID `json:"unit_id"`
	OrgID         uuid.UUID `json:"org_id"`
	AccessToken   string    `json:"access_token"`
	TokenType     string    `json:"token_type"`
	ExpiresIn     int       `json:"expires_in"`
	TokenAudience string    `json:"token_audience"`
	LeaseSeconds  int64     `json:"lease_seconds"`
	RetentionDays int       `json:"retention_days"`
}

// accessTokenAnswer is the server's answer to a token request.
type accessTokenAnswer struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
}

func privateKey(seed string) (ed25519.PrivateKey, error) {
	b, err := base64.RawURLEncoding.DecodeString(seed)
	if err != nil || len(b) != ed25519.SeedSize {
		return nil, errors.New("the device's key in the replica is malformed")
	}
	return ed25519.NewKeyFromSeed(b), nil
}

// accessToken returns an access token that is not stale and lives at
// least 30 more seconds, asking the server for one if the device holds
// none. One request for a token runs at a time; the others wait for its
// token or for their context.
func (c *Client) accessToken(ctx context.Context, base, stale string) (string, error) {
	usable := func() string {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.access == "" || c.access == stale || c.opts.Now().After(c.accessExp.Add(-30*time.Second)) {
			return ""
		}
		return c.access
	}
	if tok := usable(); tok != "" {
		return tok, nil
	}
	select {
	case c.tokenSem <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-c.tokenSem }()
	if tok := usable(); tok != "" {
		return tok, nil
	}
	dev, err := c.device()
	if err != nil {
		return "", err
	}
	// A refused assertion is followed by a new one: after clock_skew on
	// the server's time its answer gave (once), after assertion_replayed
	// (an answer of a duplicated request) with a new id.
	skewed, replayed := false, 0
	for {
		assertion, err := c.assertion(ctx, dev)
		if err != nil {
			return "", err
		}
		var t accessTokenAnswer
		err = c.call(ctx, base, "POST", wire.TokenPath, "", map[string]string{"grant_type": wire.GrantJWTBearer, "assertion": assertion}, &t)
		var ae *APIError
		switch {
		case errors.As(err, &ae) && ae.Code == wire.CodeClockSkew && !skewed:
			skewed = true
			continue
		case errors.As(err, &ae) && ae.Code == wire.CodeAssertionReplayed && replayed < 3:
			replayed++
			continue
		case err != nil:
			return "", err
		case t.AccessToken == "":
			return "", errors.New("the token answer holds no access token")
		}
		exp := c.opts.Now().Add(time.Duration(t.ExpiresIn) * time.Second)
		c.mu.Lock()
		c.access, c.accessExp = t.AccessToken, exp
		c.mu.Unlock()
		if err := c.keepAccess(ctx, t.AccessToken, exp); err != nil {
			return "", err
		}
		return t.AccessToken, nil
	}
}

// assertion signs a new assertion with the device's key: issued now on the
// server's clock as the device knows it, valid for assertionLifetime, with
// a random id.
func (c *Client) assertion(ctx context.Context, dev *replica.Device) (string, error) {
	pair, err := dev.Meta(ctx, metaKey)
	if err != nil {
		return "", err
	}
	_, seed, ok := strings.Cut(pair, ":")
	if !ok {
		return "", fmt.Errorf("the replica holds no device key: %w", ErrNotEnrolled)
	}
	priv, err := privateKey(seed)
	if err != nil {
		return "", fmt.Errorf("device key: %w", err)
	}
	aud, err := dev.Meta(ctx, metaAudience)
	if err != nil {
		return "", err
	}
	now := c.now()
	sub := "device:" + dev.ID().String()
	claims := jwt.RegisteredClaims{
		Issuer: sub, Subject: sub, Audience: jwt.ClaimStrings{aud},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(assertionLifetime)),
		ID: uuid.NewString(),
	}
	return jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims).SignedString(priv)
}
