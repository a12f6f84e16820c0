package server_test

import (
	"context"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server"
	"github.com/brygga/brygga/server/internal/openapitest"
	"github.com/brygga/brygga/server/stats"
	"github.com/brygga/brygga/sync/wire"
)

// openAPIPath is the API description, in JSON syntax (which is YAML too).
const openAPIPath = "../docs/openapi.yaml"

// openAPIDoc is the part of an OpenAPI document the tests read.
type openAPIDoc struct {
	OpenAPI string `json:"openapi"`
	Info    struct {
		Title   string `json:"title"`
		Version string `json:"version"`
	} `json:"info"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas         map[string]json.RawMessage `json:"schemas"`
		SecuritySchemes map[string]json.RawMessage `json:"securitySchemes"`
	} `json:"components"`
}

// openAPIMethods are the keys of a path item that are operations.
var openAPIMethods = map[string]bool{
	"get": true, "put": true, "post": true, "delete": true, "options": true, "head": true, "patch": true, "trace": true,
}

func readOpenAPI(t *testing.T) *openAPIDoc {
	t.Helper()
	data, err := os.ReadFile(openAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPIDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s is not JSON: %v", openAPIPath, err)
	}
	return &doc
}

// schemaOf decodes the component schema name.
func (d *openAPIDoc) schemaOf(t *testing.T, name string) map[string]any {
	t.Helper()
	raw, ok := d.Components.Schemas[name]
	if !ok {
		t.Fatalf("no schema %s in components", name)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("schema %s: %v", name, err)
	}
	return m
}

// enumOf returns the enum of the component schema name.
func (d *openAPIDoc) enumOf(t *testing.T, name string) []string {
	t.Helper()
	vals, ok := d.schemaOf(t, name)["enum"].([]any)
	if !ok {
		t.Fatalf("schema %s has no enum", name)
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i], _ = v.(string)
	}
	return out
}

// refName returns the schema name a "$ref" of s points at, if it has one.
func refName(s any) string {
	m, _ := s.(map[string]any)
	ref, _ := m["$ref"].(string)
	return strings.TrimPrefix(ref, "#/components/schemas/")
}

var fiberParam = regexp.MustCompile(`:([A-Za-z0-9_]+)\??`)

// registeredRoutes returns "METHOD /path" of every endpoint of the app, with
// path parameters as OpenAPI writes them. Middleware registered with Use is
// left out (GetRoutes(true) drops it), and so are the HEAD routes Fiber adds
// to every GET. "/" is kept: it is an endpoint (the dashboard redirect), not
// only middleware.
func registeredRoutes(t *testing.T, s *server.Server) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, r := range s.App().GetRoutes(true) {
		if r.Method == "HEAD" || r.Method == "USE" || r.Path == "/v1" {
			continue
		}
		out[r.Method+" "+fiberParam.ReplaceAllString(r.Path, "{$1}")] = true
	}
	return out
}

func documentedRoutes(doc *openAPIDoc) map[string]bool {
	out := map[string]bool{}
	for path, item := range doc.Paths {
		for method := range item {
			if openAPIMethods[method] {
				out[strings.ToUpper(method)+" "+path] = true
			}
		}
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestOpenAPIDocument(t *testing.T) {
	// An OpenAPI document that loads and validates, its references resolved.
	if _, err := openapitest.Load(context.Background(), openAPIPath); err != nil {
		t.Fatal(err)
	}
	doc := readOpenAPI(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Errorf("openapi = %q, want 3.1.x", doc.OpenAPI)
	}
	if doc.Info.Title == "" || doc.Info.Version == "" {
		t.Errorf("info.title = %q, info.version = %q: both are required", doc.Info.Title, doc.Info.Version)
	}
	if len(doc.Components.SecuritySchemes) == 0 {
		t.Error("no security schemes")
	}
}

// TestOpenAPIRoutes checks that the document describes exactly the routes
// the server registers.
func TestOpenAPIRoutes(t *testing.T) {
	ctx := context.Background()
	s, err := server.Open(ctx, server.Config{DBPath: testDB(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	doc := readOpenAPI(t)

	registered, documented := registeredRoutes(t, s), documentedRoutes(doc)
	if len(registered) == 0 {
		t.Fatal("the app registers no routes")
	}
	for _, r := range sortedKeys(registered) {
		if !documented[r] {
			t.Errorf("%s is registered but not in %s", r, openAPIPath)
		}
	}
	for _, r := range sortedKeys(documented) {
		if !registered[r] {
			t.Errorf("%s is in %s but not registered", r, openAPIPath)
		}
	}
}

// wireCodes lists every error code of the wire package.
var wireCodes = []wire.Code{
	wire.CodeMalformed,
	wire.CodeUnsupportedVersion,
	wire.CodeBatchTooLarge,
	wire.CodeBodyTooLarge,
	wire.CodeSeqGap,
	wire.CodeSeqReused,
	wire.CodeInvalidRecord,
	wire.CodeUnknownKind,
	wire.CodeImmutable,
	wire.CodeNotFound,
	wire.CodeOutOfScope,
	wire.CodeCursorInvalid,
	wire.CodeUnauthorized,
	wire.CodeForbidden,
	wire.CodeDeviceRevoked,
	wire.CodeRateLimited,
	wire.CodeAssertionReplayed,
	wire.CodeClockSkew,
	wire.CodeEnrolCodeInvalid,
	wire.CodeMethodNotAllowed,
	wire.CodeUnsupportedMedia,
	wire.CodeInternal,
	wire.CodeDeviceRetired,
	wire.CodeDeviceUnknown,
	wire.CodeServerRestored,
	wire.CodeConfirmationRequired,
	wire.CodeReportBuilding,
}

// declaredWireCodes returns the values of the Code constants declared in
// the wire package's source, so that a code added there and not to
// wireCodes is noticed.
func declaredWireCodes(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../sync/wire/*.go")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Code" {
					continue
				}
				for i, n := range vs.Names {
					if !n.IsExported() || i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						t.Fatalf("%s: constant %s is not a string literal", name, n.Name)
					}
					v, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, v)
				}
			}
		}
	}
	return out
}

// TestOpenAPIErrorCodes checks that the Error object's code enum is the
// wire package's codes, and that every documented error response carries
// codes whose status is the response's.
func TestOpenAPIErrorCodes(t *testing.T) {
	doc := readOpenAPI(t)
	codeSchema := doc.schemaOf(t, "Error")
	props, _ := codeSchema["properties"].(map[string]any)
	code := props["code"]
	var enum []string
	if name := refName(code); name != "" {
		enum = doc.enumOf(t, name)
	} else {
		vals, _ := code.(map[string]any)["enum"].([]any)
		for _, v := range vals {
			s, _ := v.(string)
			enum = append(enum, s)
		}
	}
	want := make([]string, len(wireCodes))
	for i, c := range wireCodes {
		want[i] = string(c)
	}
	declared := declaredWireCodes(t)
	for _, c := range declared {
		if !slices.Contains(want, c) {
			t.Errorf("wire declares code %q: add it to wireCodes and to the document", c)
		}
	}
	if len(declared) != len(want) {
		t.Errorf("wire declares %d codes, wireCodes lists %d", len(declared), len(want))
	}
	for _, c := range want {
		if !slices.Contains(enum, c) {
			t.Errorf("error code %q is not in the Error.code enum", c)
		}
	}
	for _, c := range enum {
		if !slices.Contains(want, c) {
			t.Errorf("the Error.code enum has %q, which wire does not declare", c)
		}
	}

	// Error responses: each example's code has the response's status.
	for path, item := range doc.Paths {
		for method, raw := range item {
			if !openAPIMethods[method] {
				continue
			}
			var op struct {
				Responses map[string]struct {
					Content map[string]struct {
						Examples map[string]struct {
							Value struct {
								Error struct {
									Code wire.Code `json:"code"`
								} `json:"error"`
							} `json:"value"`
						} `json:"examples"`
					} `json:"content"`
				} `json:"responses"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			if len(op.Responses) == 0 {
				t.Errorf("%s %s has no responses", method, path)
			}
			for status, resp := range op.Responses {
				st, err := strconv.Atoi(status)
				if err != nil || st < 400 || st == 503 {
					continue // 503 is readiness, not an error code's status
				}
				media, ok := resp.Content["application/json"]
				if !ok {
					continue // an HTML page, such as the dashboard's login form
				}
				ex := media.Examples
				if len(ex) == 0 {
					t.Errorf("%s %s %s: no example error codes", method, path, status)
				}
				for name, e := range ex {
					if got := server.StatusOf(e.Value.Error.Code); got != st {
						t.Errorf("%s %s %s: example %s has code %q, whose status is %d", method, path, status, name, e.Value.Error.Code, got)
					}
				}
			}
		}
	}
}

// TestOpenAPIRecords checks the record schemas and enumerations against
// the data model.
func TestOpenAPIRecords(t *testing.T) {
	doc := readOpenAPI(t)
	enums := map[string]*schema.Enumeration{
		"Gender":          schema.GenderEnum,
		"AgeBand":         schema.AgeBandEnum,
		"Setting":         schema.SettingEnum,
		"Supply":          schema.SupplyEnum,
		"NaloxoneReason":  schema.NaloxoneReasonEnum,
		"ReversalOutcome": schema.ReversalOutcomeEnum,
		"ServiceCategory": schema.ServiceCategoryEnum,
		"ReferralStatus":  schema.ReferralStatusEnum,
		"Substance":       schema.SubstanceEnum,
		"OrgKind":         schema.OrgKindEnum,
		"StaffRole":       schema.StaffRoleEnum,
		"InfectionTest":   schema.TestKindEnum,
		"TestOutcome":     schema.TestOutcomeEnum,
		"TestResult":      schema.TestResultEnum,
		"Vaccine":         schema.VaccineEnum,
		"DeathSource":     schema.DeathSourceEnum,
	}
	if len(enums) != len(schema.Enumerations()) {
		t.Errorf("the test knows %d enumerations, schema has %d", len(enums), len(schema.Enumerations()))
	}
	for name, e := range enums {
		if got := doc.enumOf(t, name); !slices.Equal(got, e.Codes()) {
			t.Errorf("%s enum = %v, want %v", name, got, e.Codes())
		}
	}
	rules := []schema.Rule{schema.RuleRequired, schema.RuleType, schema.RuleEnum, schema.RuleRange, schema.RuleFormat,
		schema.RuleTime, schema.RuleClientCode, schema.RuleIDVersion, schema.RuleExclusive, schema.RuleEmpty,
		schema.RuleSameUnit, schema.RuleConsistency, schema.RuleImmutable, schema.RuleUnknownField, schema.RuleTransition}
	ruleCodes := make([]string, len(rules))
	for i, r := range rules {
		ruleCodes[i] = string(r)
	}
	if got := doc.enumOf(t, "Rule"); !slices.Equal(got, ruleCodes) {
		t.Errorf("Rule enum = %v, want %v", got, ruleCodes)
	}
	indicators := make([]string, len(stats.Indicators))
	for i, ind := range stats.Indicators {
		indicators[i] = string(ind)
	}
	if got := doc.enumOf(t, "Indicator"); !slices.Equal(got, indicators) {
		t.Errorf("Indicator enum = %v, want %v", got, indicators)
	}
	roles := []string{string(server.RoleOutreach), string(server.RoleManager), string(server.RoleAuthority), string(server.RoleAdmin)}
	if got := doc.enumOf(t, "Role"); !slices.Equal(got, roles) {
		t.Errorf("Role enum = %v, want %v", got, roles)
	}

	kindSchema := map[schema.Kind]string{
		schema.KindClient:          "ClientFields",
		schema.KindContact:         "ContactFields",
		schema.KindSyringeExchange: "SyringeExchangeFields",
		schema.KindNaloxone:        "NaloxoneHandoutFields",
		schema.KindReversal:        "ReversalFields",
		schema.KindReferral:        "ReferralFields",
		schema.KindInfectionTest:   "InfectionTestFields",
		schema.KindVaccination:     "VaccinationFields",
		schema.KindDeath:           "DeathFields",
		schema.KindOrganisation:    "OrganisationFields",
		schema.KindUnit:            "UnitFields",
		schema.KindStaff:           "StaffFields",
		schema.KindService:         "ServiceFields",
	}
	var allKinds, fieldKinds []string
	var allSchemas, fieldSchemas []string
	for _, k := range append(slices.Clone(schema.FieldKinds), schema.ReferenceKinds...) {
		name, ok := kindSchema[k]
		if !ok {
			t.Errorf("kind %s has no schema in the test", k)
			continue
		}
		allKinds, allSchemas = append(allKinds, string(k)), append(allSchemas, name)
		if schema.IsFieldKind(k) {
			fieldKinds, fieldSchemas = append(fieldKinds, string(k)), append(fieldSchemas, name)
		}
		fields, _ := schema.FieldsOf(k)
		var want []string
		for _, f := range fields {
			want = append(want, f.Name)
		}
		props, _ := doc.schemaOf(t, name)["properties"].(map[string]any)
		var got []string
		for p := range props {
			got = append(got, p)
		}
		sort.Strings(want)
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s properties = %v, want the fields of %s: %v", name, got, k, want)
		}
	}
	if got := doc.enumOf(t, "Kind"); !slices.Equal(got, allKinds) {
		t.Errorf("Kind enum = %v, want %v", got, allKinds)
	}
	if got := doc.enumOf(t, "FieldKind"); !slices.Equal(got, fieldKinds) {
		t.Errorf("FieldKind enum = %v, want %v", got, fieldKinds)
	}

	oneOf := func(message string) []string {
		props, _ := doc.schemaOf(t, message)["properties"].(map[string]any)
		fields, _ := props["fields"].(map[string]any)
		alts, _ := fields["oneOf"].([]any)
		var names []string
		for _, a := range alts {
			names = append(names, refName(a))
		}
		return names
	}
	if got := oneOf("Mutation"); !slices.Equal(got, fieldSchemas) {
		t.Errorf("Mutation.fields oneOf %v, want %v", got, fieldSchemas)
	}
	if got := oneOf("Change"); !slices.Equal(got, allSchemas) {
		t.Errorf("Change.fields oneOf %v, want %v", got, allSchemas)
	}
}
