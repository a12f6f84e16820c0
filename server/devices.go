package server

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/brygga/brygga/server/account"
	"github.com/brygga/brygga/sync/replica"
	"github.com/brygga/brygga/sync/wire"
)

// Device authentication. A device makes an Ed25519 key pair at enrolment
// and registers the public key with its enrolment code; it keeps the
// private key. For an access token it presents an assertion: a JWT signed
// with its private key (RFC 7523), issued and expiring within
// wire.MaxAssertionLifetime, with an id (jti) the server takes once. No
// secret rotates, so a lost, repeated, reordered or cancelled request
// cannot end a device's access: only revocation does.

// assertionLeeway is how far ahead of the server's clock an assertion's
// time of issue may be. A device learns the server's clock from the clock
// of push and pull answers, the server's hybrid logical clock, which runs
// up to replica.DefaultMaxSkew ahead of its wall clock when a device's
// clock does; and from a round trip.
const assertionLeeway = replica.DefaultMaxSkew + time.Minute

// maxAssertionBytes is the longest assertion read.
const maxAssertionBytes = 4096

// EnrolResponse is what a device receives when it enrols: the answer to
// POST /v1/devices/enroll.
type EnrolResponse struct {
	DeviceID    uuid.UUID `json:"device_id"`
	UnitID      uuid.UUID `json:"unit_id"`
	OrgID       uuid.UUID `json:"org_id"`
	AccessToken string    `json:"access_token"`
	TokenType   string    `json:"token_type"`
	ExpiresIn   int       `json:"expires_in"`
	// TokenAudience is what the device's assertions name as their
	// audience: the token endpoint's URL as the server gave it at
	// enrolment. It stays the device's for its life.
	TokenAudience string `json:"token_audience"`
	// LeaseSeconds is how long the device may go without syncing before
	// its SDK refuses reads until it syncs again.
	LeaseSeconds int64 `json:"lease_seconds"`
	// RetentionDays is how long synced records stay on the device.
	RetentionDays int `json:"retention_days"`
}

// AccessToken answers a device's token request.
type AccessToken struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
}

// errEnrolCode is the answer to an enrolment code that is unknown, used
// (by another key) or expired.
var errEnrolCode = &wire.Error{Code: wire.CodeEnrolCodeInvalid, Field: "code", Message: "the enrolment code is unknown, used or expired: ask for a new one"}

// ParsePublicKey reads a device's public key as enrolment takes it: the 32
// bytes of an Ed25519 key in unpadded base64url.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, &wire.Error{Code: wire.CodeMalformed, Field: "public_key", Message: "public_key must be an Ed25519 public key: 32 bytes in unpadded base64url"}
	}
	return ed25519.PublicKey(b), nil
}

// badProof is the answer to an enrolment proof that is not valid.
func badProof(why string) *wire.Error {
	return &wire.Error{Code: wire.CodeUnauthorized, Field: "proof", Message: "the enrolment proof is invalid: " + why}
}

// checkEnrolProof checks that proof is a fresh enrolment proof of the
// holder of key's private key for code (see wire.EnrolAudience) by the
// server's clock now, and returns its jti and expiry, which the caller
// takes once. Errors: *wire.Error with CodeUnauthorized for a proof that
// is not valid, CodeClockSkew for one whose times do not fit now.
func checkEnrolProof(proof string, key ed25519.PublicKey, code string, now time.Time) (string, time.Time, error) {
	if len(proof) > maxAssertionBytes {
		return "", time.Time{}, badProof("longer than " + strconv.Itoa(maxAssertionBytes) + " bytes")
	}
	if err := numericDates(proof, true); err != nil {
		return "", time.Time{}, badProof(err.Error())
	}
	var c struct {
		jwt.RegisteredClaims
		Code string `json:"code"`
	}
	issuer := wire.EnrolIssuerPrefix + wire.KeyThumbprint(key)
	_, err := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}), jwt.WithoutClaimsValidation()).
		ParseWithClaims(proof, &c, func(*jwt.Token) (any, error) { return key, nil })
	if err != nil {
		return "", time.Time{}, badProof("it is not signed (EdDSA only) with the private key of public_key")
	}
	switch {
	case c.Issuer != issuer || c.Subject != issuer:
		return "", time.Time{}, badProof("iss and sub must both be " + wire.EnrolIssuerPrefix + "<the public key's thumbprint>")
	case !audienceIs(c.Audience, wire.EnrolAudience):
		return "", time.Time{}, badProof("aud must be " + wire.EnrolAudience)
	case c.Code != wire.EnrolCodeHash(code):
		return "", time.Time{}, badProof("its code claim is not the hash of the code sent")
	case c.ExpiresAt == nil || c.IssuedAt == nil:
		return "", time.Time{}, badProof("exp and iat are required")
	case !c.ExpiresAt.After(c.IssuedAt.Time) || c.ExpiresAt.Sub(c.IssuedAt.Time) > wire.MaxAssertionLifetime:
		return "", time.Time{}, badProof("it must expire after it was issued, within " + wire.MaxAssertionLifetime.String())
	case c.ID == "" || len(c.ID) > wire.MaxJTIBytes:
		return "", time.Time{}, badProof("jti is required, of at most " + strconv.Itoa(wire.MaxJTIBytes) + " bytes")
	case !c.ExpiresAt.After(now):
		return "", time.Time{}, proofSkew("expired")
	case c.IssuedAt.After(now.Add(assertionLeeway)), c.NotBefore != nil && c.NotBefore.After(now.Add(assertionLeeway)):
		return "", time.Time{}, proofSkew("is not valid yet")
	case c.ExpiresAt.After(now.Add(wire.MaxAssertionLifetime)):
		return "", time.Time{}, proofSkew("expires too far ahead")
	}
	return c.ID, c.ExpiresAt.Time, nil
}

// proofSkew is clockSkew for an enrolment proof.
func proofSkew(why string) *wire.Error {
	return &wire.Error{Code: wire.CodeClockSkew, Field: "proof",
		Message: "the enrolment proof " + why + " by the server's clock: make a new one on the server's time (header " + wire.HeaderServerTime + ")"}
}

// Enrol enrols the device holding the private key of key for the unit of
// a one-time enrolment code: in one transaction the code is used, the
// device registered and its key stored, so that a failure leaves nothing
// half done. proof is a fresh enrolment proof signed with the private key
// (wire.EnrolAudience): each is taken once, so a request seen on the way
// cannot be repeated. The same code with the same key and a new proof,
// while the code is valid, is the same enrolment (an answer lost on the
// way): the same device, with a fresh access token. Errors: *wire.Error
// with CodeUnauthorized for a proof that is not valid, CodeClockSkew for
// one outside the server's clock, CodeAssertionReplayed for a proof seen
// before, CodeEnrolCodeInvalid for a code unknown, expired or used with
// another key; CodeMalformed for a key registered for another enrolment;
// CodeDeviceRevoked if the device of a repeated enrolment was revoked.
func (s *Server) Enrol(ctx context.Context, code string, key ed25519.PublicKey, proof string) (*EnrolResponse, error) {
	if len(key) != ed25519.PublicKeySize {
		return nil, &wire.Error{Code: wire.CodeMalformed, Field: "public_key", Message: "public_key must be an Ed25519 public key"}
	}
	now := s.now()
	jti, jtiExp, err := checkEnrolProof(proof, key, code, now)
	if err != nil {
		s.audit(ctx, "anonymous", "enrol", "", string(wire.ErrorCode(err)), 0, "")
		return nil, err
	}
	hash := hashToken(normaliseEnrolCode(code))
	audience := strings.TrimRight(s.cfg.PublicURL, "/") + wire.TokenPath
	var deviceID uuid.UUID
	repeated := false
	// A code that cannot enrol this key is refused by a read: an
	// anonymous caller trying codes does not take the writer.
	ec, err := s.store.EnrolCode(ctx, hash)
	if errors.Is(err, ErrNotFound) || err == nil && (!ec.ExpiresAt.After(now) || ec.PublicKey != nil && !bytes.Equal(ec.PublicKey, key)) {
		err = errEnrolCode
	}
	if err == nil {
		// The proof is taken once, under the key's name: a request seen on
		// the way and sent again is refused.
		var fresh bool
		if fresh, err = s.noteAssertion(ctx, wire.EnrolIssuerPrefix+wire.KeyThumbprint(key), jti, jtiExp, now); err == nil && !fresh {
			err = &wire.Error{Code: wire.CodeAssertionReplayed, Field: "proof", Message: "this enrolment proof was used before: make a new one"}
		}
	}
	if err == nil {
		var e *account.Enrolled
		e, err = s.store.Enrol(ctx, account.EnrolRequest{CodeHash: hash, Key: key, Audience: audience, Now: now, NewID: uuid.Must(uuid.NewV7())})
		switch {
		case errors.Is(err, account.ErrEnrolCode):
			err = errEnrolCode
		case errors.Is(err, account.ErrKeyRegistered):
			err = &wire.Error{Code: wire.CodeMalformed, Field: "public_key",
				Message: "this key is registered for another enrolment: make a new key pair for a new enrolment"}
		case err == nil:
			deviceID, repeated = e.DeviceID, e.Repeated
		}
	}
	var we *wire.Error
	if errors.As(err, &we) {
		s.audit(ctx, "anonymous", "enrol", "", string(we.Code), 0, "")
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	dev, err := s.store.LookupDevice(ctx, deviceID)
	if err != nil {
		return nil, fmt.Errorf("enrol: %w", err)
	}
	if err := deviceAccess(dev); err != nil {
		s.audit(ctx, "device:"+deviceID.String(), "enrol", "unit:"+dev.UnitID.String(), string(wire.ErrorCode(err)), 0, "")
		return nil, err
	}
	if _, audience, err = s.store.DeviceKey(ctx, deviceID); err != nil {
		return nil, fmt.Errorf("enrol: %w", err)
	}
	tok, org, err := s.deviceToken(ctx, dev)
	if err != nil {
		return nil, err
	}
	outcome := "ok"
	if repeated {
		outcome = "repeated"
	}
	s.audit(ctx, "device:"+deviceID.String(), "enrol", "unit:"+dev.UnitID.String(), outcome, 0, "")
	return &EnrolResponse{DeviceID: deviceID, UnitID: dev.UnitID, OrgID: org, AccessToken: tok.AccessToken, TokenType: tok.TokenType,
		ExpiresIn: tok.ExpiresIn, TokenAudience: audience, LeaseSeconds: int64(s.cfg.DeviceLease.Seconds()), RetentionDays: s.cfg.RetentionDays}, nil
}

// deviceAccess returns nil if a device may have access tokens, else the
// *wire.Error it is answered with. It is the one place where a device's
// state decides whether it authenticates.
func deviceAccess(d *replica.EnrolledDevice) error {
	if !d.RevokedAt.IsZero() {
		return &wire.Error{Code: wire.CodeDeviceRevoked, Message: "device was revoked: its data must be wiped"}
	}
	return nil
}

// deviceToken signs an access token for dev and returns it with the
// device's organisation.
func (s *Server) deviceToken(ctx context.Context, dev *replica.EnrolledDevice) (*AccessToken, uuid.UUID, error) {
	u, err := s.unit(ctx, dev.UnitID)
	if err != nil {
		return nil, uuid.Nil, fmt.Errorf("issue token: %w", err)
	}
	access, err := s.keys.sign(ctx, &Claims{
		RegisteredClaims: registered(s.now(), s.cfg.AccessTTL, "device:"+dev.ID.String()),
		OrgID:            u.OrgID.String(), UnitID: dev.UnitID.String(),
	})
	if err != nil {
		return nil, uuid.Nil, fmt.Errorf("issue token: %w", err)
	}
	return &AccessToken{AccessToken: access, TokenType: "Bearer", ExpiresIn: int(s.cfg.AccessTTL.Seconds())}, u.OrgID, nil
}

// badAssertion is the answer to an assertion that is not a valid one of a
// registered device.
func badAssertion(why string) *wire.Error {
	return &wire.Error{Code: wire.CodeUnauthorized, Field: "assertion", Message: "the assertion is invalid: " + why}
}

// clockSkew is the answer to an assertion whose times are outside the
// server's window: the answer's wire.HeaderServerTime tells the device the
// server's time.
func clockSkew(why string) *wire.Error {
	return &wire.Error{Code: wire.CodeClockSkew, Field: "assertion",
		Message: "the assertion " + why + " by the server's clock: make a new one on the server's time (header " + wire.HeaderServerTime + ")"}
}

// Token issues an access token to the device that signed assertion. The
// assertion is a JWT signed by the device's registered key, alg EdDSA
// only, with iss and sub "device:<id>", aud the device's token audience,
// numeric iat and exp no more than wire.MaxAssertionLifetime apart, exp
// after the server's now and no further ahead than that lifetime, and a
// jti that the server has not seen from the device. Errors: *wire.Error
// with CodeUnauthorized for an assertion that is not valid, CodeClockSkew
// for one whose times do not fit the server's clock, CodeAssertionReplayed
// for a jti seen before, CodeDeviceRevoked for a revoked device.
func (s *Server) Token(ctx context.Context, assertion, requestID string) (*AccessToken, error) {
	now := s.now()
	if len(assertion) > maxAssertionBytes {
		return nil, badAssertion("longer than " + strconv.Itoa(maxAssertionBytes) + " bytes")
	}
	if err := numericDates(assertion, true); err != nil {
		return nil, badAssertion(err.Error())
	}
	var c jwt.RegisteredClaims
	var dev *replica.EnrolledDevice
	var audience string
	var lookupErr error // the server's failure to look the device up, not the assertion's
	unknown := false    // the subject names a device the server does not know
	_, err := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}), jwt.WithoutClaimsValidation()).
		ParseWithClaims(assertion, &c, func(t *jwt.Token) (any, error) {
			id, ok := deviceSubject(c.Subject)
			if !ok || c.Issuer != c.Subject {
				return nil, errors.New("iss and sub must both be device:<id>")
			}
			key, aud, err := s.store.DeviceKey(ctx, id)
			audience = aud
			if errors.Is(err, ErrNotFound) {
				unknown = true
				return nil, errors.New("no such device")
			}
			if err == nil {
				dev, err = s.store.LookupDevice(ctx, id)
			}
			if err != nil {
				lookupErr = fmt.Errorf("token: %w", err)
				return nil, lookupErr
			}
			return ed25519.PublicKey(key), nil
		})
	if lookupErr != nil {
		return nil, lookupErr
	}
	if unknown {
		// The device cannot be authenticated, and no assertion will ever
		// change that: a database restored from a copy older than its
		// enrolment. It is told so, to enrol again, rather than to try
		// another assertion for ever.
		return nil, &wire.Error{Code: wire.CodeDeviceUnknown, Field: "assertion", Message: "the server does not know this device: " +
			"its database may have been restored from a copy older than the enrolment; enrol the device again with a new code, its records are kept and sent again"}
	}
	if err != nil {
		return nil, badAssertion("its signature, algorithm (EdDSA only) or issuer does not check out")
	}
	actor := "device:" + dev.ID.String()
	switch {
	case c.ExpiresAt == nil || c.IssuedAt == nil:
		return nil, badAssertion("exp and iat are required")
	case !c.ExpiresAt.After(c.IssuedAt.Time) || c.ExpiresAt.Sub(c.IssuedAt.Time) > wire.MaxAssertionLifetime:
		return nil, badAssertion("it must expire after it was issued, within " + wire.MaxAssertionLifetime.String())
	case !audienceIs(c.Audience, audience):
		return nil, badAssertion("aud must be the device's token audience, " + audience)
	case c.ID == "" || len(c.ID) > wire.MaxJTIBytes:
		return nil, badAssertion("jti is required, of at most " + strconv.Itoa(wire.MaxJTIBytes) + " bytes")
	case !c.ExpiresAt.After(now):
		return nil, clockSkew("expired")
	case c.IssuedAt.After(now.Add(assertionLeeway)), c.NotBefore != nil && c.NotBefore.After(now.Add(assertionLeeway)):
		return nil, clockSkew("is not valid yet")
	case c.ExpiresAt.After(now.Add(wire.MaxAssertionLifetime)):
		return nil, clockSkew("expires too far ahead")
	}
	if err := deviceAccess(dev); err != nil {
		s.audit(ctx, actor, "token", actor, string(wire.ErrorCode(err)), 0, requestID)
		return nil, err
	}
	fresh, err := s.noteAssertion(ctx, "device:"+dev.ID.String(), c.ID, c.ExpiresAt.Time, now)
	if err != nil {
		return nil, err
	}
	if !fresh {
		s.audit(ctx, actor, "token", actor, string(wire.CodeAssertionReplayed), 0, requestID)
		return nil, &wire.Error{Code: wire.CodeAssertionReplayed, Field: "jti", Message: "this assertion was used before: make a new one"}
	}
	tok, _, err := s.deviceToken(ctx, dev)
	return tok, err
}

// noteAssertion records that device presented the assertion jti, which
// expires at exp, and reports whether it is the first time. The check and
// the record are one statement, so two requests with the same jti cannot
// both pass; assertions that have expired by now are forgotten.
func (s *Server) noteAssertion(ctx context.Context, device string, jti string, exp, now time.Time) (bool, error) {
	return s.store.NoteAssertion(ctx, device, hashToken(jti), exp, now)
}

// deviceSubject reads "device:<id>".
func deviceSubject(sub string) (uuid.UUID, bool) {
	rest, ok := strings.CutPrefix(sub, "device:")
	if !ok {
		return uuid.Nil, false
	}
	id, err := uuid.Parse(rest)
	return id, err == nil && id.String() == rest
}

func audienceIs(aud jwt.ClaimStrings, want string) bool {
	return len(aud) == 1 && aud[0] == want
}

// enroll answers POST /v1/devices/enroll.
func (s *Server) enroll(c *fiber.Ctx) error {
	c.Set(wire.HeaderServerTime, strconv.FormatInt(s.now().UnixMilli(), 10))
	var req struct {
		Code      string `json:"code"`
		PublicKey string `json:"public_key"`
		Proof     string `json:"proof"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Code == "" {
		return &wire.Error{Code: wire.CodeMalformed, Field: "code", Message: "code is required"}
	}
	if req.PublicKey == "" {
		return &wire.Error{Code: wire.CodeUnsupportedVersion, Field: "public_key",
			Message: "public_key is required: since protocol " + strconv.Itoa(wire.Protocol) + " a device enrols with a key pair of its own; update the app"}
	}
	key, err := ParsePublicKey(req.PublicKey)
	if err != nil {
		return err
	}
	if req.Proof == "" {
		return &wire.Error{Code: wire.CodeMalformed, Field: "proof", Message: "proof is required: a JWT signed with the device's private key (see docs/sync.md)"}
	}
	e, err := s.Enrol(c.UserContext(), req.Code, key, req.Proof)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(e)
}

// token answers POST /v1/auth/token.
func (s *Server) token(c *fiber.Ctx) error {
	c.Set(wire.HeaderServerTime, strconv.FormatInt(s.now().UnixMilli(), 10))
	c.Set(fiber.HeaderCacheControl, "no-store")
	var req struct {
		GrantType string `json:"grant_type"`
		Assertion string `json:"assertion"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.GrantType != wire.GrantJWTBearer {
		return &wire.Error{Code: wire.CodeMalformed, Field: "grant_type", Message: "grant_type must be " + wire.GrantJWTBearer}
	}
	if req.Assertion == "" {
		return &wire.Error{Code: wire.CodeMalformed, Field: "assertion", Message: "assertion is required"}
	}
	tok, err := s.Token(c.UserContext(), req.Assertion, requestID(c))
	if err != nil {
		return err
	}
	return c.JSON(tok)
}

// refreshGone answers the refresh endpoint of protocol 1: its clients must
// be updated.
func (s *Server) refreshGone(c *fiber.Ctx) error {
	return &wire.Error{Code: wire.CodeUnsupportedVersion, Message: "device refresh tokens are gone since protocol " + strconv.Itoa(wire.Protocol) +
		": a device authenticates at " + wire.TokenPath + " with its own key; update the app and enrol the device again"}
}

// SignEnrolProof makes the enrolment proof a device sends with code (see
// wire.EnrolAudience), signed with priv, issued at now and valid for two
// minutes: for tools that enrol a device without the SDK.
func SignEnrolProof(priv ed25519.PrivateKey, code string, now time.Time) (string, error) {
	iss := wire.EnrolIssuerPrefix + wire.KeyThumbprint(priv.Public().(ed25519.PublicKey))
	claims := struct {
		jwt.RegisteredClaims
		Code string `json:"code"`
	}{jwt.RegisteredClaims{Issuer: iss, Subject: iss, Audience: jwt.ClaimStrings{wire.EnrolAudience},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(2 * time.Minute)), ID: uuid.NewString()},
		wire.EnrolCodeHash(code)}
	return jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims).SignedString(priv)
}
