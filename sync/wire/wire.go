// Package wire declares what crosses the network between a device and the
// server: push and pull messages, cursors, the protocol version, limits and
// the coded errors a client may branch on. Messages are JSON, optionally
// gzip-compressed; decoders here enforce the limits and the structure, so
// that nothing unchecked reaches the sync engine.
package wire

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/hlc"
)

// Protocol is the version of the sync protocol this package speaks.
// Version 2 authenticates devices with a key pair of their own (see
// TokenPath) instead of rotating refresh tokens.
const Protocol = 2

// Limits. A device pushes at most MaxMutations per request and a request
// body, decompressed, is at most MaxBodyBytes.
const (
	MaxMutations     = 1000
	MaxBodyBytes     = 8 << 20
	MaxFieldsBytes   = 16 << 10
	DefaultPullLimit = 500
	MaxPullLimit     = 2000
)

// Versions is carried by every request and response: the protocol and the
// data model version (schema.Version) the sender speaks.
type Versions struct {
	Protocol int `json:"protocol"`
	Schema   int `json:"schema"`
}

// Current returns the versions this program speaks.
func Current() Versions { return Versions{Protocol: Protocol, Schema: schema.Version} }

// Check returns an *Error with CodeUnsupportedVersion unless v is the
// current version.
func (v Versions) Check() error {
	if v.Protocol != Protocol || v.Schema != schema.Version {
		return &Error{Code: CodeUnsupportedVersion, Message: fmt.Sprintf(
			"protocol %d, schema %d not supported: this server speaks protocol %d, schema %d; update the app",
			v.Protocol, v.Schema, Protocol, schema.Version)}
	}
	return nil
}

// PushRequest carries a device's mutations, numbered 1, 2, 3, ... without
// gaps over the device's life, in order.
type PushRequest struct {
	Versions
	// Clock is the device's hybrid logical clock when it sent the request.
	Clock     hlc.Timestamp `json:"clock"`
	Mutations []Mutation    `json:"mutations"`
}

// Mutation is one write a device made: the fields it set on one record, at
// one version. A create sets every field; a correction or a void sets only
// the fields it changes.
type Mutation struct {
	// Seq is the mutation's number on its device.
	Seq int64 `json:"seq"`
	// Kind is the record's kind.
	Kind schema.Kind `json:"kind"`
	// ID is the record's id.
	ID uuid.UUID `json:"id"`
	// Version is the device's hybrid logical clock when it made the write.
	Version hlc.Timestamp `json:"version"`
	// Fields is a JSON object of field name to value, as schema.Field
	// encodes them.
	Fields json.RawMessage `json:"fields"`
	// Base is the change sequence number of the server's state of the
	// record that the write was made on, as the device held it then (0
	// for a create, or if the device no longer knows it, as after the
	// server was restored). A change whose base is the record's state on
	// the server when it is applied, at the device's own version, makes
	// the state the device holds: its echo (see Result.Change), whoever
	// created the record.
	Base int64 `json:"base,omitempty"`
}

// Status is the outcome of one mutation.
type Status string

// Statuses. Every one is final: the device removes the mutation from its
// queue and goes on with the next.
const (
	Applied   Status = "applied"   // the mutation's effect is merged in
	Duplicate Status = "duplicate" // it had been applied before: a retry
	Rejected  Status = "rejected"  // it was refused, see Error; it will never apply
)

// Result is the outcome of one mutation.
type Result struct {
	Seq    int64  `json:"seq"`
	Status Status `json:"status"`
	// Version is, for a mutation the server applied at a version of its
	// own because the device's clock was out of bounds, that version (in
	// the first answer and in every duplicate after it).
	Version hlc.Timestamp `json:"version,omitempty"`
	Error   *Error        `json:"error,omitempty"`
	// Current is, for a rejected mutation, the server's state of the
	// record, so the device can drop its rejected local effect; nil if the
	// server has no such record in the device's scope.
	Current *Change `json:"current,omitempty"`
	// Change is, for a mutation whose push made the record's state exactly
	// what the device holds (a create, or a change at the device's version
	// of a state the device's own push made or of its base, see
	// Mutation.Base), the change sequence number
	// of that state: a pull does not send it back to the device (see
	// PullRequest.Acked). 0 for any other.
	Change int64 `json:"change,omitempty"`
}

// PushResponse answers a PushRequest with one result per mutation, in order.
type PushResponse struct {
	Versions
	// LastSeq is the highest mutation number the server has processed for
	// the device. Mutations up to it may be dropped from the queue.
	LastSeq int64         `json:"last_seq"`
	Clock   hlc.Timestamp `json:"clock"`
	Results []Result      `json:"results"`
}

// PullRequest asks for the changes in the device's scope after Cursor.
type PullRequest struct {
	Versions
	// Cursor is the cursor of the previous page, or empty to start over.
	Cursor string `json:"cursor,omitempty"`
	// Limit is the most changes to return; 0 means DefaultPullLimit.
	Limit int `json:"limit,omitempty"`
	// Acked is the highest mutation number whose push answer the device
	// has had (all below it too; 0 if none, or not said). It serves two
	// ends. The pull leaves out the records whose state a push of the
	// device numbered at most Acked made, which the device holds
	// (Result.Change), and its cursor moves past them. And a server that
	// has processed fewer of the device's mutations has lost them: its
	// database was put back to an older copy, and it answers
	// CodeServerRestored.
	Acked int64 `json:"acked,omitempty"`
}

// Device authentication (protocol 2). A device holds an Ed25519 key pair
// of its own, made on the device at enrolment; the server keeps only the
// public key. The enrolment, {"code", "public_key", "proof"} to
// EnrolPath, proves that the device holds the private key: proof is a
// JWT signed with it (alg EdDSA), iss and sub EnrolIssuerPrefix and the
// key's thumbprint, aud EnrolAudience, a claim "code" with the SHA-256 of
// the normalised code in unpadded base64url, numeric iat and exp within
// MaxAssertionLifetime, and a jti the server takes once. For an access token it posts to TokenPath a short-lived JWT
// signed with its private key (RFC 7523): {"grant_type": GrantJWTBearer,
// "assertion": "<JWT>"}. Nothing secret rotates, so no lost, repeated or
// cancelled request can end a device's access.
const (
	TokenPath      = "/v1/auth/token"
	EnrolPath      = "/v1/devices/enroll"
	GrantJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	// MaxAssertionLifetime is the longest an assertion may live, from its
	// time of issue to its expiry, and how far ahead of the server's clock
	// its expiry may be.
	MaxAssertionLifetime = 5 * time.Minute
	// EnrolAudience is the audience of an enrolment proof: the enrolment
	// endpoint's path, whatever address the device reaches the server by.
	EnrolAudience = EnrolPath
	// EnrolIssuerPrefix begins the issuer and subject of an enrolment
	// proof: "key:" and the thumbprint of the public key enrolled, the
	// SHA-256 of its 32 bytes in unpadded base64url.
	EnrolIssuerPrefix = "key:"
	// MaxJTIBytes is the longest assertion id the server takes.
	MaxJTIBytes = 128
	// HeaderServerTime is the server's clock, in Unix milliseconds, on
	// every answer of the token and enrolment endpoints: a device whose
	// assertion was refused with CodeClockSkew learns from it how far its
	// clock is off.
	HeaderServerTime = "Brygga-Server-Time"
)

// Headers of a pull answer that repeat its cursor and has_more, so that a
// client can ask for the next page before it has read this one. The body
// stays what a client applies: a page that does not continue from the
// device's cursor is not applied.
const (
	HeaderCursor  = "Brygga-Cursor"
	HeaderHasMore = "Brygga-Has-More"
)

// PullPath is the path and query of a pull of up to limit changes after
// cursor ("" to start over), in this program's versions, that leaves out
// nothing and says no mutation was answered: PullPathAcked with acked 0.
func PullPath(cursor string, limit int) string { return PullPathAcked(cursor, limit, 0) }

// PullPathAcked is PullPath of a device whose answered mutations go up to
// acked (PullRequest.Acked; 0 for none, and then the query leaves it out).
func PullPathAcked(cursor string, limit int, acked int64) string {
	q := url.Values{}
	q.Set("protocol", strconv.Itoa(Protocol))
	q.Set("schema", strconv.Itoa(schema.Version))
	q.Set("limit", strconv.Itoa(limit))
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if acked > 0 {
		q.Set("acked", strconv.FormatInt(acked, 10))
	}
	return "/v1/sync/pull?" + q.Encode()
}

// PullResponse is a page of changes.
type PullResponse struct {
	Versions
	// Since is the request's cursor: the page continues from it. A device
	// applies a page only if its cursor is still Since, so that a late or
	// repeated answer cannot move it back or skip changes.
	Since   string   `json:"since"`
	Changes []Change `json:"changes"`
	// Cursor is where the next pull continues.
	Cursor string `json:"cursor"`
	// HasMore says another page follows at once.
	HasMore bool `json:"has_more"`
	// Head is the server's latest change sequence number when the page was
	// made; with the cursors' positions it tells a client how far along a
	// long pull is.
	Head  int64         `json:"head"`
	Clock hlc.Timestamp `json:"clock"`
}

// Change is the current state of one record: all its fields and their
// versions. V is the version of every field not named in CV.
type Change struct {
	Kind   schema.Kind       `json:"kind"`
	ID     uuid.UUID         `json:"id"`
	Seq    int64             `json:"seq"`
	Fields json.RawMessage   `json:"fields"`
	V      string            `json:"v"`
	CV     map[string]string `json:"cv,omitempty"`
}

// Code is a stable error code that clients branch on.
type Code string

// Error codes. docs/errors.md says what each means and what a client does.
const (
	CodeMalformed          Code = "malformed_request"
	CodeUnsupportedVersion Code = "unsupported_version"
	CodeBatchTooLarge      Code = "batch_too_large"
	CodeBodyTooLarge       Code = "body_too_large"
	CodeSeqGap             Code = "seq_gap"
	CodeSeqReused          Code = "seq_reused"
	CodeInvalidRecord      Code = "invalid_record"
	CodeUnknownKind        Code = "unknown_kind"
	CodeImmutable          Code = "immutable_field"
	CodeNotFound           Code = "not_found"
	CodeOutOfScope         Code = "out_of_scope"
	CodeCursorInvalid      Code = "cursor_invalid"
	CodeUnauthorized       Code = "unauthorized"
	CodeForbidden          Code = "forbidden"
	CodeDeviceRevoked      Code = "device_revoked"
	CodeRateLimited        Code = "rate_limited"
	CodeAssertionReplayed  Code = "assertion_replayed"
	CodeClockSkew          Code = "clock_skew"
	CodeEnrolCodeInvalid   Code = "enrol_code_invalid"
	CodeMethodNotAllowed   Code = "method_not_allowed"
	CodeUnsupportedMedia   Code = "unsupported_media_type"
	CodeInternal           Code = "internal"
)

// Error is a coded error as a client sees it.
type Error struct {
	Code Code `json:"code"`
	// Field names the offending field, if one does.
	Field string `json:"field,omitempty"`
	// Rule is the schema rule an invalid record broke.
	Rule schema.Rule `json:"rule,omitempty"`
	// Message is a sentence for a person.
	Message string `json:"message"`
	// Expected is, for CodeSeqGap, the mutation number the server expects
	// next.
	Expected int64 `json:"expected,omitempty"`
}

// Error returns "code: message".
func (e *Error) Error() string {
	if e.Field != "" {
		return string(e.Code) + ": " + e.Field + ": " + e.Message
	}
	return string(e.Code) + ": " + e.Message
}

// ErrorCode returns the code of err if it is or wraps an *Error, a
// schema.FieldError's CodeInvalidRecord, or CodeInternal.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if errors.Is(err, schema.ErrInvalid) {
		return CodeInvalidRecord
	}
	return CodeInternal
}

// FromFieldError converts a schema validation error.
func FromFieldError(fe *schema.FieldError) *Error {
	code := CodeInvalidRecord
	if fe.Rule == schema.RuleImmutable {
		code = CodeImmutable
	}
	return &Error{Code: code, Field: fe.Field, Rule: fe.Rule, Message: fe.Error()}
}

func errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Body returns a reader of a request or response body, decompressing it if
// contentEncoding is "gzip" and failing with CodeBodyTooLarge past
// MaxBodyBytes of decompressed data.
func Body(r io.Reader, contentEncoding string) (io.Reader, error) {
	size := sizeHint(r)
	switch contentEncoding {
	case "", "identity":
	case "gzip":
		size = gzipSizeHint(r)
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, errorf(CodeMalformed, "body is not valid gzip: %v", err)
		}
		r = zr
	default:
		return nil, errorf(CodeMalformed, "content encoding %q not supported: use gzip or none", contentEncoding)
	}
	return &limitedReader{r: r, left: MaxBodyBytes, size: size}, nil
}

type limitedReader struct {
	r    io.Reader
	left int64
	// size is how long the body says it is, if it says (see readBody):
	// a hint, not trusted.
	size int
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// One more byte tells a body of exactly the limit from a longer one.
		var one [1]byte
		if n, _ := l.r.Read(one[:]); n > 0 {
			return 0, errorf(CodeBodyTooLarge, "body exceeds %d bytes", MaxBodyBytes)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// decode reads exactly one JSON value into v, refusing unknown fields and
// trailing data.
func decode(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return malformed(err, "body is not a valid message")
	}
	if _, err := dec.Token(); err != io.EOF {
		var e *Error
		if errors.As(err, &e) {
			return e
		}
		return errorf(CodeMalformed, "body has data after the message")
	}
	return nil
}

// malformed returns the *Error err is or wraps (a body past the limit),
// else a CodeMalformed error saying what with err.
func malformed(err error, what string) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return errorf(CodeMalformed, "%s: %v", what, err)
}

// DecodePushRequest reads and checks a push request: versions, batch size
// and the numbering of the mutations (positive and consecutive). It does
// not check the mutations' content: that is per mutation, see
// Mutation.Check, so one bad record does not fail the others.
func DecodePushRequest(r io.Reader) (*PushRequest, error) {
	data, err := readBody(r)
	if err != nil {
		return nil, malformed(err, "body cannot be read")
	}
	return ParsePushRequest(data)
}

// ParsePushRequest is DecodePushRequest of a body in memory. A request in
// the form encoding/json writes, as the SDK sends it, is read in one pass
// that copies nothing, and its mutations' fields alias data; any other
// form goes through encoding/json. Either way the result is what
// encoding/json makes of data, refusing unknown fields and trailing data.
func ParsePushRequest(data []byte) (*PushRequest, error) {
	req := &PushRequest{}
	if !(&parser{data: data, checkFields: true}).push(req) {
		// clock and mutations are required: read as pointers, they tell
		// a member that is missing or null from one that is set.
		var full struct {
			Versions
			Clock     *hlc.Timestamp `json:"clock"`
			Mutations *[]Mutation    `json:"mutations"`
		}
		if err := decode(bytes.NewReader(data), &full); err != nil {
			return nil, err
		}
		if err := full.Versions.Check(); err != nil {
			return nil, err
		}
		switch {
		case full.Clock == nil:
			return nil, &Error{Code: CodeMalformed, Field: "clock", Message: "clock is required: the device's clock reading"}
		case full.Mutations == nil:
			return nil, &Error{Code: CodeMalformed, Field: "mutations", Message: "mutations is required: an array of mutations"}
		}
		*req = PushRequest{Versions: full.Versions, Clock: *full.Clock, Mutations: *full.Mutations}
	}
	if err := req.Versions.Check(); err != nil {
		return nil, err
	}
	if len(req.Mutations) > MaxMutations {
		return nil, errorf(CodeBatchTooLarge, "%d mutations in one request, at most %d", len(req.Mutations), MaxMutations)
	}
	for i, m := range req.Mutations {
		if m.Seq < 1 {
			return nil, errorf(CodeMalformed, "mutation %d: seq %d, want 1 or more", i, m.Seq)
		}
		if i > 0 && m.Seq != req.Mutations[i-1].Seq+1 {
			return nil, errorf(CodeMalformed, "mutation %d: seq %d follows %d, want consecutive numbers", i, m.Seq, req.Mutations[i-1].Seq)
		}
	}
	return req, nil
}

// Check checks what can be checked of a mutation without a database: a
// known field record kind, an id, a version and a fields object within
// MaxFieldsBytes. It returns nil or an *Error.
func (m *Mutation) Check() *Error {
	if !schema.IsFieldKind(m.Kind) {
		return &Error{Code: CodeUnknownKind, Field: "kind", Message: fmt.Sprintf("%q is not a kind of record a device writes", m.Kind)}
	}
	if m.ID == uuid.Nil {
		return &Error{Code: CodeInvalidRecord, Field: "id", Rule: schema.RuleRequired, Message: "id is required"}
	}
	if m.Version.IsZero() {
		return &Error{Code: CodeMalformed, Field: "version", Message: "version is required"}
	}
	if len(m.Fields) > MaxFieldsBytes {
		return &Error{Code: CodeInvalidRecord, Field: "fields", Rule: schema.RuleRange, Message: fmt.Sprintf("fields take %d bytes, at most %d", len(m.Fields), MaxFieldsBytes)}
	}
	if f := bytes.TrimSpace(m.Fields); len(f) == 0 || f[0] != '{' {
		return &Error{Code: CodeMalformed, Field: "fields", Message: "fields must be a JSON object"}
	}
	return nil
}

// DecodePullRequest reads and checks a pull request.
func DecodePullRequest(r io.Reader) (*PullRequest, error) {
	var req PullRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if err := req.Versions.Check(); err != nil {
		return nil, err
	}
	if req.Limit < 0 || req.Limit > MaxPullLimit {
		return nil, errorf(CodeMalformed, "limit %d, want 0..%d", req.Limit, MaxPullLimit)
	}
	if req.Acked < 0 {
		return nil, &Error{Code: CodeMalformed, Field: "acked", Message: fmt.Sprintf("acked %d, want 0 or more", req.Acked)}
	}
	if req.Limit == 0 {
		req.Limit = DefaultPullLimit
	}
	return &req, nil
}

// DecodePushResponse reads a push response, for clients.
func DecodePushResponse(r io.Reader) (*PushResponse, error) {
	var resp PushResponse
	if err := decode(r, &resp); err != nil {
		return nil, err
	}
	return &resp, resp.Versions.Check()
}

// DecodePullResponse reads a pull response, for clients.
func DecodePullResponse(r io.Reader) (*PullResponse, error) {
	var resp PullResponse
	if err := decode(r, &resp); err != nil {
		return nil, err
	}
	return &resp, resp.Versions.Check()
}

// DecodeJSON reads exactly one JSON value into v, refusing unknown fields
// and trailing data, with errors as *Error. It is for the small messages
// around sync (logins, enrolments); push and pull have their own decoders.
func DecodeJSON(r io.Reader, v any) error { return decode(r, v) }

// NormaliseEnrolCode is an enrolment code as the server compares it:
// upper case, without spaces and dashes, with I and L read as 1 and O as 0
// (the code's alphabet has none of them).
func NormaliseEnrolCode(code string) string {
	r := strings.NewReplacer("-", "", " ", "", "I", "1", "L", "1", "O", "0")
	return r.Replace(strings.ToUpper(strings.TrimSpace(code)))
}

// EnrolCodeHash is what an enrolment proof's "code" claim holds: the
// SHA-256 of the normalised code in unpadded base64url.
func EnrolCodeHash(code string) string {
	h := sha256.Sum256([]byte(NormaliseEnrolCode(code)))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// KeyThumbprint is the thumbprint that names a public key in an enrolment
// proof: the SHA-256 of its bytes in unpadded base64url.
func KeyThumbprint(publicKey []byte) string {
	h := sha256.Sum256(publicKey)
	return base64.RawURLEncoding.EncodeToString(h[:])
}
