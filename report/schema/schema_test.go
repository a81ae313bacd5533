package schema_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/diff"
	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/tls"
	"github.com/h2scope/h2scope/report"
	"github.com/h2scope/h2scope/report/schema"
)

var update = flag.Bool("update", false, "rewrite report.schema.json from the Go types")

const module = "github.com/h2scope/h2scope"

// generate builds the report's schema from the source of the packages
// whose types it holds.
func generate(t *testing.T) []byte {
	t.Helper()
	docs := schema.Docs{}
	for _, dir := range []string{"report", "analyze", "dissect", "dissect/event", "dissect/tcp", "dissect/tls",
		"dissect/http1", "dissect/http2", "dissect/grpc"} {
		if err := docs.ReadDocs(filepath.Join("..", "..", dir), module+"/"+dir); err != nil {
			t.Fatal(err)
		}
	}
	g := &schema.Generator{Docs: docs}
	s := g.Root(reflect.TypeFor[report.Report](), "https://github.com/h2scope/h2scope/report/schema/report.schema.json",
		report.Schema)
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// TestSchemaIsUpToDate keeps report.schema.json equal to what the Go
// types and their doc comments say (go test ./report/schema -update
// rewrites it).
func TestSchemaIsUpToDate(t *testing.T) {
	got := generate(t)
	if *update {
		if err := os.WriteFile("report.schema.json", got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("report.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("report.schema.json is stale: run go test ./report/schema -update")
	}
	var s schema.Schema
	if err := json.Unmarshal(want, &s); err != nil {
		t.Fatal(err)
	}
	// Every property is documented.
	var undocumented []string
	for name, d := range s.Defs {
		for p, ps := range d.Properties {
			if ps.Description == "" {
				undocumented = append(undocumented, name+"."+p)
			}
		}
	}
	if len(undocumented) > 0 {
		t.Errorf("%d undocumented fields: %v", len(undocumented), undocumented)
	}
}

// reportJSON analyses a capture in testdata/pcaps and returns its report.
func reportJSON(t *testing.T, name string) []byte {
	t.Helper()
	path := filepath.Join("..", "..", "testdata", "pcaps", name+".pcapng")
	opts := dissect.Options{Keys: tls.NewKeyLog()}
	if b, err := os.ReadFile(strings.TrimSuffix(path, ".pcapng") + ".keys"); err == nil {
		opts.Keys.Add(b, name)
	}
	res, in, err := analyze.Run(context.Background(), []string{path}, opts, analyze.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := report.New([]string{name + ".pcapng"}, in, res, report.Redaction{}).WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestReportsMatchSchema validates the reports of generated captures
// against the schema, and checks that two runs write identical bytes.
func TestReportsMatchSchema(t *testing.T) {
	raw, err := os.ReadFile("report.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var s schema.Schema
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("../../testdata/pcaps/*.pcapng")
	if len(files) == 0 {
		t.Fatal("no captures")
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".pcapng")
		t.Run(name, func(t *testing.T) {
			b := reportJSON(t, name)
			if again := reportJSON(t, name); !bytes.Equal(b, again) {
				t.Fatal("two runs wrote different reports")
			}
			var v any
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatal(err)
			}
			errs := validate(v, &s, &s, "$")
			for _, e := range errs[:min(len(errs), 10)] {
				t.Error(e)
			}
		})
	}
}

// validate checks v against the subset of JSON Schema the generator
// writes: type, properties, required, additionalProperties, items,
// anyOf and $ref.
func validate(v any, s, root *schema.Schema, at string) []error {
	if s.Ref != "" {
		d := root.Defs[strings.TrimPrefix(s.Ref, "#/$defs/")]
		if d == nil {
			return []error{fmt.Errorf("%s: unknown $ref %s", at, s.Ref)}
		}
		return validate(v, d, root, at)
	}
	if len(s.AnyOf) > 0 {
		var first []error
		for _, alt := range s.AnyOf {
			errs := validate(v, alt, root, at)
			if len(errs) == 0 {
				return nil
			}
			if first == nil {
				first = errs
			}
		}
		return first
	}
	if s.Type != nil && !typeOK(v, s.Type) {
		return []error{fmt.Errorf("%s: %T does not match type %v", at, v, s.Type)}
	}
	var errs []error
	switch x := v.(type) {
	case map[string]any:
		for _, r := range s.Required {
			if _, ok := x[r]; !ok {
				errs = append(errs, fmt.Errorf("%s: required property %q missing", at, r))
			}
		}
		for k, val := range x {
			ps, ok := s.Properties[k]
			switch {
			case ok:
				errs = append(errs, validate(val, ps, root, at+"."+k)...)
			case s.AdditionalProperties == false:
				errs = append(errs, fmt.Errorf("%s: property %q not in the schema", at, k))
			case s.AdditionalProperties != nil && s.AdditionalProperties != true:
				sub, err := asSchema(s.AdditionalProperties)
				if err != nil {
					return []error{err}
				}
				errs = append(errs, validate(val, sub, root, at+"."+k)...)
			}
		}
	case []any:
		if s.Items != nil {
			for i, e := range x {
				errs = append(errs, validate(e, s.Items, root, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	}
	return errs
}

func asSchema(v any) (*schema.Schema, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var s schema.Schema
	return &s, json.Unmarshal(b, &s)
}

func typeOK(v any, t any) bool {
	var types []string
	switch x := t.(type) {
	case string:
		types = []string{x}
	case []any:
		for _, e := range x {
			types = append(types, e.(string))
		}
	}
	for _, ty := range types {
		switch ty {
		case "null":
			if v == nil {
				return true
			}
		case "boolean":
			if _, ok := v.(bool); ok {
				return true
			}
		case "string":
			if _, ok := v.(string); ok {
				return true
			}
		case "number":
			if _, ok := v.(float64); ok {
				return true
			}
		case "integer":
			if f, ok := v.(float64); ok && f == float64(int64(f)) {
				return true
			}
		case "array":
			if _, ok := v.([]any); ok {
				return true
			}
		case "object":
			if _, ok := v.(map[string]any); ok {
				return true
			}
		}
	}
	return false
}

// TestReportGolden compares the JSON report of one fixture with
// report/testdata/golden/http1-nokeepalive.json (-update rewrites it).
func TestReportGolden(t *testing.T) {
	got := reportJSON(t, "http1-nokeepalive")
	path := filepath.Join("..", "testdata", "golden", "http1-nokeepalive.json")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the report differs from %s (go test ./report/schema -update to accept)", path)
	}
}

// generateDiff builds the schema of h2scope diff's JSON (diff.Result).
func generateDiff(t *testing.T) []byte {
	t.Helper()
	docs := schema.Docs{}
	for _, dir := range []string{"diff", "analyze"} {
		if err := docs.ReadDocs(filepath.Join("..", "..", dir), module+"/"+dir); err != nil {
			t.Fatal(err)
		}
	}
	g := &schema.Generator{Docs: docs}
	s := g.Root(reflect.TypeFor[diff.Result](), "https://github.com/h2scope/h2scope/report/schema/diff.schema.json", diff.Schema)
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// TestDiffSchema keeps diff.schema.json equal to what diff's Go types
// and their doc comments say (-update rewrites it), every property
// documented, and validates diff's JSON against it: its golden file and
// the comparisons of generated before/after pairs.
func TestDiffSchema(t *testing.T) {
	got := generateDiff(t)
	if *update {
		if err := os.WriteFile("diff.schema.json", got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("diff.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("diff.schema.json is stale: run go test ./report/schema -update")
	}
	var s schema.Schema
	if err := json.Unmarshal(want, &s); err != nil {
		t.Fatal(err)
	}
	for name, d := range s.Defs {
		for p, ps := range d.Properties {
			if ps.Description == "" {
				t.Errorf("diff schema: %s.%s undocumented", name, p)
			}
		}
	}
	outputs := map[string][]byte{}
	if b, err := os.ReadFile("../../diff/testdata/golden/churn.json"); err == nil {
		outputs["golden churn.json"] = b
	} else {
		t.Fatal(err)
	}
	load := func(name string) *diff.Side {
		side, err := diff.Load(context.Background(), "../../testdata/pcaps/"+name, diff.LoadOptions{Config: analyze.DefaultConfig()})
		if err != nil {
			t.Fatal(err)
		}
		return side
	}
	for _, p := range [][2]string{{"tls13-resume-fail.pcapng", "tls13-resume.pcapng"}, {"grpc-unary-h2c.pcapng", "grpc-cancel-storm.pcapng"}, {"h2-slow-reader.pcapng", "h2-tls.pcapng"}} {
		var b bytes.Buffer
		if err := diff.Compare(load(p[0]), load(p[1]), diff.Options{}).WriteJSON(&b); err != nil {
			t.Fatal(err)
		}
		outputs[p[0]+" → "+p[1]] = b.Bytes()
	}
	for name, b := range outputs {
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(name, err)
		}
		errs := validate(v, &s, &s, "$")
		for _, e := range errs[:min(len(errs), 10)] {
			t.Errorf("%s: %v", name, e)
		}
	}
}
