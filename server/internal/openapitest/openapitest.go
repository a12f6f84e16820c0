// Package openapitest checks the HTTP responses that tests receive from the
// server against the API description, docs/openapi.yaml: the status must be
// one the operation declares, the content type one its response declares,
// and the body must match that content's schema. Only tests import it.
package openapitest

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// ErrMismatch is wrapped by every error that says a response disagrees
// with the document.
var ErrMismatch = errors.New("response disagrees with docs/openapi.yaml")

func init() {
	// Bodies the document describes as strings or binary data.
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("image/png", openapi3filter.FileBodyDecoder)
}

// DocPath returns the path of docs/openapi.yaml in the source tree.
func DocPath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "docs", "openapi.yaml")
}

// Load reads the document at path, resolves its references and validates
// it as an OpenAPI 3 document.
func Load(ctx context.Context, path string) (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	if err := doc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("validate %s: %w", path, err)
	}
	return doc, nil
}

// Checker checks responses against one document and counts them. It is
// safe for concurrent use.
type Checker struct {
	doc    *openapi3.T
	router routers.Router
	origin *url.URL // the document's first server: requests are routed as if sent there

	mu       sync.Mutex
	checked  map[string]int // "METHOD /path status" -> responses checked
	failures []string
}

// New returns a Checker for the document at path. It holds answers to
// the document closely: an object schema that names its properties and
// says nothing of others takes no others, so that a member an answer has
// and the document does not name is a disagreement.
func New(ctx context.Context, path string) (*Checker, error) {
	doc, err := Load(ctx, path)
	if err != nil {
		return nil, err
	}
	if len(doc.Servers) == 0 {
		return nil, fmt.Errorf("%s declares no server", path)
	}
	origin, err := url.Parse(doc.Servers[0].URL)
	if err != nil {
		return nil, fmt.Errorf("%s: server url: %w", path, err)
	}
	closeObjects(doc)
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("%s: routes: %w", path, err)
	}
	return &Checker{doc: doc, router: router, origin: origin, checked: map[string]int{}}, nil
}

// Check checks one response to req: its status, header and body, the body
// as it came over the wire (Content-Encoding is undone here). A response
// to a path the document does not describe must be the 404 not_found
// error, and one to a method it does not describe the 405
// method_not_allowed error; under /dashboard/ either is a 404 HTML page.
// Every response must carry X-Request-ID, as the document's conventions
// say. The error wraps ErrMismatch when the response disagrees with the document.
// Responses to HEAD requests are not checked.
func (c *Checker) Check(ctx context.Context, req *http.Request, status int, header http.Header, body []byte) error {
	if req.Method == http.MethodHead {
		return nil
	}
	body, err := decode(header.Get("Content-Encoding"), body)
	if err != nil {
		return c.fail(fmt.Errorf("%w: %s %s %d: undo %s: %v", ErrMismatch, req.Method, req.URL.Path, status, header.Get("Content-Encoding"), err))
	}
	if header.Get("X-Request-ID") == "" {
		// The document's conventions: every response carries its request
		// id.
		return c.fail(fmt.Errorf("%w: %s %s %d: no X-Request-ID", ErrMismatch, req.Method, req.URL.Path, status))
	}
	routed := req.Clone(ctx)
	routed.URL.Scheme, routed.URL.Host, routed.Host = c.origin.Scheme, c.origin.Host, c.origin.Host
	route, params, err := c.router.FindRoute(routed)
	switch {
	case errors.Is(err, routers.ErrPathNotFound):
		return c.fail(c.checkUnrouted(req, status, header, body, http.StatusNotFound, "not_found"))
	case errors.Is(err, routers.ErrMethodNotAllowed):
		return c.fail(c.checkUnrouted(req, status, header, body, http.StatusMethodNotAllowed, "method_not_allowed"))
	case err != nil:
		return c.fail(fmt.Errorf("%w: %s %s: route: %v", ErrMismatch, req.Method, req.URL.Path, err))
	}
	op := strings.ToUpper(route.Method) + " " + route.Path
	declared := route.Operation.Responses.Status(status)
	if declared == nil {
		declared = route.Operation.Responses.Default()
	}
	if declared == nil || declared.Value == nil {
		return c.fail(fmt.Errorf("%w: %s: status %d is not declared (%s)", ErrMismatch, op, status, excerpt(body)))
	}
	if len(declared.Value.Content) == 0 && len(body) > 0 {
		return c.fail(fmt.Errorf("%w: %s %d: the document declares no body, the response has %d bytes of %q", ErrMismatch, op, status, len(body), header.Get("Content-Type")))
	}
	if len(declared.Value.Content) > 0 && declared.Value.Content.Get(header.Get("Content-Type")) == nil {
		return c.fail(fmt.Errorf("%w: %s %d: content type %q is not declared (%s)", ErrMismatch, op, status, header.Get("Content-Type"), strings.Join(contentTypes(declared.Value.Content), ", ")))
	}
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: routed, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	input.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(ctx, input); err != nil {
		return c.fail(fmt.Errorf("%w: %s %d: %s (%s)", ErrMismatch, op, status, shorten(err), excerpt(body)))
	}
	c.count(op + " " + strconv.Itoa(status))
	return nil
}

// checkUnrouted checks a response to a request the document has no
// operation for: it must be the error wantCode with status want.
func (c *Checker) checkUnrouted(req *http.Request, status int, header http.Header, body []byte, want int, wantCode string) error {
	mt, _, _ := mime.ParseMediaType(header.Get("Content-Type"))
	if strings.HasPrefix(req.URL.Path, "/dashboard/") {
		// The conventions: the dashboard answers a browser with a page.
		if status != http.StatusNotFound || mt != "text/html" {
			return fmt.Errorf("%w: %s %s is not in the document, yet the answer is %d %q, not a 404 page (%s)", ErrMismatch, req.Method, req.URL.Path, status, mt, excerpt(body))
		}
		c.count("(unrouted) /dashboard/ 404")
		return nil
	}
	if status != want {
		return fmt.Errorf("%w: %s %s is not in the document, yet the status is %d, not %d (%s)", ErrMismatch, req.Method, req.URL.Path, status, want, excerpt(body))
	}
	if mt != "application/json" {
		return fmt.Errorf("%w: %s %s %d: content type %q, want application/json", ErrMismatch, req.Method, req.URL.Path, status, header.Get("Content-Type"))
	}
	errSchema := c.doc.Components.Schemas["ErrorResponse"]
	if errSchema == nil {
		return fmt.Errorf("%w: the document has no ErrorResponse schema", ErrMismatch)
	}
	value, err := decodeJSON(body)
	if err != nil {
		return fmt.Errorf("%w: %s %s %d: %v", ErrMismatch, req.Method, req.URL.Path, status, err)
	}
	if err := errSchema.Value.VisitJSON(value, openapi3.EnableJSONSchema2020(), openapi3.VisitAsResponse()); err != nil {
		return fmt.Errorf("%w: %s %s %d: %s (%s)", ErrMismatch, req.Method, req.URL.Path, status, shorten(err), excerpt(body))
	}
	obj, _ := value.(map[string]any)
	e, _ := obj["error"].(map[string]any)
	if code, _ := e["code"].(string); code != wantCode {
		return fmt.Errorf("%w: %s %s %d: code %q, want %q", ErrMismatch, req.Method, req.URL.Path, status, code, wantCode)
	}
	c.count("(unrouted) " + strconv.Itoa(status))
	return nil
}

func (c *Checker) count(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checked[key]++
}

// fail records err, if it is not nil, and returns it.
func (c *Checker) fail(err error) error {
	if err == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failures = append(c.failures, err.Error())
	return err
}

// Checked returns how many responses passed the check.
func (c *Checker) Checked() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.checked {
		n += v
	}
	return n
}

// Failures returns what every failed check said, in order.
func (c *Checker) Failures() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.failures...)
}

// Summary returns one line per operation and status checked, with the
// number of responses, sorted.
func (c *Checker) Summary() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.checked))
	for k, v := range c.checked {
		out = append(out, fmt.Sprintf("%s: %d", k, v))
	}
	sort.Strings(out)
	return out
}

// Transport returns a RoundTripper that sends requests with base and checks
// every response before handing it on, its body intact. A response that
// disagrees with the document comes back as an error that wraps
// ErrMismatch, and is recorded in Failures; one whose body cannot be read
// in full (a cancelled request) is handed on unchecked.
func (c *Checker) Transport(base http.RoundTripper) http.RoundTripper {
	return &transport{c: c, base: base}
}

type transport struct {
	c    *Checker
	base http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{err}))
		return resp, nil
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err := t.c.CheckResponse(req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// CheckResponse checks resp, the answer to req, as Check does, and leaves
// its body readable from the start.
func (c *Checker) CheckResponse(req *http.Request, resp *http.Response) error {
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("read %s %s: %w", req.Method, req.URL.Path, err)
	}
	header := resp.Header
	if resp.Uncompressed {
		// The transport has undone the encoding and removed its header.
		header = header.Clone()
		header.Del("Content-Encoding")
	}
	return c.Check(req.Context(), req, resp.StatusCode, header, body)
}

// Main loads the document, wraps http.DefaultTransport with a Checker for
// the run of m, and returns the exit code for os.Exit: a failure when the
// tests fail or when any response disagreed with the document, even one a
// test made light of. With -v it lists what was checked. It returns the
// Checker through check, if not nil, for transports the tests build
// themselves.
func Main(m *testing.M, check **Checker) int {
	c, err := New(context.Background(), DocPath())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if check != nil {
		*check = c
	}
	base := http.DefaultTransport
	http.DefaultTransport = c.Transport(base)
	defer func() { http.DefaultTransport = base }()
	code := m.Run()
	if testing.Verbose() {
		for _, line := range c.Summary() {
			fmt.Println("openapi:", line)
		}
	}
	fmt.Printf("openapi: %d responses checked against docs/openapi.yaml\n", c.Checked())
	if f := c.Failures(); len(f) > 0 {
		fmt.Fprintf(os.Stderr, "openapi: %d responses disagree with docs/openapi.yaml:\n", len(f))
		for _, line := range f {
			fmt.Fprintln(os.Stderr, "  ", line)
		}
		if code == 0 {
			code = 1
		}
	}
	return code
}

// closeObjects gives every object schema of doc that names properties and
// says nothing of others "additionalProperties": false.
func closeObjects(doc *openapi3.T) {
	seen := map[*openapi3.Schema]bool{}
	var visit func(ref *openapi3.SchemaRef)
	visit = func(ref *openapi3.SchemaRef) {
		if ref == nil || ref.Value == nil || seen[ref.Value] {
			return
		}
		s := ref.Value
		seen[s] = true
		if len(s.Properties) > 0 && s.AdditionalProperties.Has == nil && s.AdditionalProperties.Schema == nil {
			closed := false
			s.AdditionalProperties.Has = &closed
		}
		for _, p := range s.Properties {
			visit(p)
		}
		visit(s.Items)
		visit(s.AdditionalProperties.Schema)
		visit(s.Not)
		for _, list := range []openapi3.SchemaRefs{s.OneOf, s.AnyOf, s.AllOf} {
			for _, r := range list {
				visit(r)
			}
		}
	}
	for _, ref := range doc.Components.Schemas {
		visit(ref)
	}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			for _, resp := range op.Responses.Map() {
				if resp.Value == nil {
					continue
				}
				for _, media := range resp.Value.Content {
					visit(media.Schema)
				}
			}
		}
	}
}

// decode undoes a Content-Encoding.
func decode(encoding string, body []byte) ([]byte, error) {
	var r io.Reader
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "", "identity":
		return body, nil
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		r = zr
	case "deflate":
		r = flate.NewReader(bytes.NewReader(body))
	case "br":
		r = brotli.NewReader(bytes.NewReader(body))
	default:
		return nil, fmt.Errorf("unknown content encoding %q", encoding)
	}
	return io.ReadAll(r)
}

func decodeJSON(body []byte) (any, error) {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, fmt.Errorf("body is not JSON: %v", err)
	}
	return v, nil
}

func contentTypes(content openapi3.Content) []string {
	out := make([]string, 0, len(content))
	for k := range content {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// shorten returns the start of a validation error's text, which quotes
// the whole schema it checked against.
func shorten(err error) string {
	const n = 2000
	if s := err.Error(); len(s) > n {
		return s[:n] + "..."
	}
	return err.Error()
}

// excerpt returns the start of body, for an error message.
func excerpt(body []byte) string {
	const n = 200
	if len(body) > n {
		return strconv.Quote(string(body[:n])) + "..."
	}
	return strconv.Quote(string(body))
}
