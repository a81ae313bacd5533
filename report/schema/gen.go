// Package schema derives the JSON Schema of h2scope's JSON report from the
// Go types that produce it, with each property described by the doc
// comment of the field that declares it. The schema shipped in the repo,
// report/schema/report.schema.json, is its output; a test keeps the two
// equal, so the documentation cannot drift from the code.
package schema

import (
	"encoding"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"
)

// Docs maps "import/path.Type.Field" and "import/path.Type" to doc
// comments.
type Docs map[string]string

// ReadDocs parses the Go files (tests excluded) of the package in dir,
// whose import path is path, and adds its type and field comments to d.
func (d Docs) ReadDocs(dir, path string) error {
	fset := token.NewFileSet()
	matches, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return err
	}
	for _, name := range matches {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				doc := ts.Doc
				if doc == nil && len(gd.Specs) == 1 {
					doc = gd.Doc
				}
				d[path+"."+ts.Name.Name] = clean(doc)
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					continue
				}
				// A field with no comment of its own shares the comment
				// of the fields it is grouped with (no blank line between).
				group, prevEnd := "", 0
				for _, fld := range st.Fields.List {
					c := clean(fld.Doc)
					if c == "" {
						c = clean(fld.Comment)
					}
					line := fset.Position(fld.Pos()).Line
					switch {
					case c != "":
						group = c
					case line == prevEnd+1:
						c = group
					default:
						group = ""
					}
					prevEnd = fset.Position(fld.End()).Line
					for _, n := range fld.Names {
						d[path+"."+ts.Name.Name+"."+n.Name] = c
					}
				}
			}
		}
	}
	return nil
}

func clean(g *ast.CommentGroup) string {
	if g == nil {
		return ""
	}
	return strings.Join(strings.Fields(g.Text()), " ")
}

// Schema is a JSON Schema (draft 2020-12) node, with the keywords the
// report needs.
type Schema struct {
	ID                   string             `json:"$id,omitempty"`
	Meta                 string             `json:"$schema,omitempty"`
	Ref                  string             `json:"$ref,omitempty"`
	Title                string             `json:"title,omitempty"`
	Description          string             `json:"description,omitempty"`
	Type                 any                `json:"type,omitempty"`
	Format               string             `json:"format,omitempty"`
	Properties           map[string]*Schema `json:"properties,omitempty"`
	Required             []string           `json:"required,omitempty"`
	Items                *Schema            `json:"items,omitempty"`
	AdditionalProperties any                `json:"additionalProperties,omitempty"`
	AnyOf                []*Schema          `json:"anyOf,omitempty"`
	Defs                 map[string]*Schema `json:"$defs,omitempty"`
}

// Generator builds schemas from Go types.
type Generator struct {
	Docs Docs
	defs map[string]*Schema
}

var (
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	timeType      = reflect.TypeFor[time.Time]()
)

// Root returns the schema of values of type t, its named struct types in
// $defs.
func (g *Generator) Root(t reflect.Type, id, title string) *Schema {
	g.defs = map[string]*Schema{}
	s := g.schema(t)
	s.ID, s.Meta, s.Title = id, "https://json-schema.org/draft/2020-12/schema", title
	s.Defs = g.defs
	return s
}

func defName(t reflect.Type) string {
	return filepath.Base(t.PkgPath()) + "." + t.Name()
}

func (g *Generator) schema(t reflect.Type) *Schema {
	if t.Kind() == reflect.Pointer {
		return nullable(g.schema(t.Elem()))
	}
	switch {
	case t == timeType:
		return &Schema{Type: "string", Format: "date-time"}
	case t.Implements(textMarshaler) || reflect.PointerTo(t).Implements(textMarshaler):
		return &Schema{Type: "string"}
	case t.Implements(jsonMarshaler) || reflect.PointerTo(t).Implements(jsonMarshaler):
		return &Schema{}
	}
	switch t.Kind() {
	case reflect.Bool:
		return &Schema{Type: "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return &Schema{Type: "integer"}
	case reflect.Float32, reflect.Float64:
		return &Schema{Type: "number"}
	case reflect.String:
		return &Schema{Type: "string"}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return &Schema{Type: "string", Description: "base64"}
		}
		return &Schema{Type: []string{"array", "null"}, Items: g.schema(t.Elem())}
	case reflect.Array:
		return &Schema{Type: "array", Items: g.schema(t.Elem())}
	case reflect.Map:
		return &Schema{Type: []string{"object", "null"}, AdditionalProperties: g.schema(t.Elem())}
	case reflect.Interface:
		return &Schema{}
	case reflect.Struct:
		if t.Name() == "" {
			return g.object(t)
		}
		name := defName(t)
		if _, ok := g.defs[name]; !ok {
			g.defs[name] = nil // recursion guard
			g.defs[name] = g.object(t)
		}
		return &Schema{Ref: "#/$defs/" + name}
	}
	panic(fmt.Sprintf("schema: unsupported type %v", t))
}

// nullable lets s also be null.
func nullable(s *Schema) *Schema {
	switch ty := s.Type.(type) {
	case string:
		s.Type = []string{ty, "null"}
		return s
	case []string:
		for _, x := range ty {
			if x == "null" {
				return s
			}
		}
		s.Type = append(ty, "null")
		return s
	}
	if s.Ref != "" {
		return &Schema{AnyOf: []*Schema{s, {Type: "null"}}}
	}
	return s
}

// object describes a struct: its JSON properties as encoding/json
// writes them (embedded structs flattened, "-" skipped), required when
// always written (no omitempty/omitzero), described by the field's doc
// comment.
func (g *Generator) object(t reflect.Type) *Schema {
	s := &Schema{Type: "object", Properties: map[string]*Schema{}, AdditionalProperties: false,
		Description: g.Docs[t.PkgPath()+"."+t.Name()]}
	g.fields(t, s)
	sort.Strings(s.Required)
	return s
}

func (g *Generator) fields(t reflect.Type, s *Schema) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		ft := f.Type
		if f.Anonymous && name == "" {
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				g.fields(ft, s)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		p := g.schema(ft)
		if doc := g.Docs[t.PkgPath()+"."+t.Name()+"."+f.Name]; doc != "" {
			p.Description = doc
		}
		s.Properties[name] = p
		if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") {
			s.Required = append(s.Required, name)
		}
	}
}
