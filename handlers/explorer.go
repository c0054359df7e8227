package handlers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/views"
)

// /explorer is LoopBack's path for its API explorer. Here it is a page
// made once, when the Handler is built, from the embedded OpenAPI document
// (openapi.go): what the document says is what the page says. It reads the
// subset of OpenAPI the document uses (component $refs, allOf, ordered
// objects), with encoding/json: a full OpenAPI library costs 20 ms a load
// and is needed only by the tests, which validate the document with one.

// handleExplorer is GET /explorer.
func (p *pages) handleExplorer(c echo.Context) error {
	pg := p.page(c, "API reference")
	return render(c, http.StatusOK, views.ExplorerPage(pg, p.explorer))
}

// ordered is a JSON object whose members keep the document's order.
type ordered[T any] []struct {
	Name  string
	Value T
}

func (o *ordered[T]) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return fmt.Errorf("want a JSON object: %v", err)
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		var v T
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("%v: %w", t, err)
		}
		*o = append(*o, struct {
			Name  string
			Value T
		}{t.(string), v})
	}
	return nil
}

type oaDoc struct {
	Info struct {
		Title, Version, Description string
	}
	Tags []struct {
		Name, Description string
	}
	Paths      ordered[ordered[json.RawMessage]]
	Components struct {
		SecuritySchemes ordered[struct {
			Name        string
			In          string
			Description string
		}]
		Parameters map[string]*oaParam
		Schemas    ordered[*oaSchema]
		Responses  map[string]*oaResponse
	}
}

type oaOperation struct {
	OperationID string
	Summary     string
	Description string
	Tags        []string
	Parameters  []*oaParam
	RequestBody *struct {
		Content ordered[struct{ Schema *oaSchema }]
	}
	Security  []map[string][]string
	Responses ordered[*oaResponse]
}

type oaParam struct {
	Ref         string `json:"$ref"`
	Name        string
	In          string
	Required    bool
	Description string
	Schema      *oaSchema
}

type oaResponse struct {
	Ref         string `json:"$ref"`
	Description string
	Headers     ordered[json.RawMessage]
	Content     ordered[struct{ Schema *oaSchema }]
}

type oaSchema struct {
	Ref                  string `json:"$ref"`
	Type                 any    // a name, or a list of names
	Description          string
	Enum                 []any
	Items                *oaSchema
	AllOf                []*oaSchema
	Properties           ordered[*oaSchema]
	Required             []string
	AdditionalProperties any
}

// isHTTPMethod reports whether a member of a path item is an operation.
func isHTTPMethod(m string) bool {
	switch m {
	case "get", "put", "post", "delete", "options", "head", "patch", "trace":
		return true
	}
	return false
}

// buildExplorer turns the document into the page's model.
func buildExplorer(doc []byte) (views.APIReference, error) {
	var d oaDoc
	if err := json.Unmarshal(doc, &d); err != nil {
		return views.APIReference{}, fmt.Errorf("openapi.json: %w", err)
	}
	schemas := map[string]*oaSchema{}
	for _, s := range d.Components.Schemas {
		schemas[s.Name] = s.Value
	}
	b := explorerBuilder{d: &d, schemas: schemas}
	ref := views.APIReference{Title: d.Info.Title, Version: d.Info.Version, Intro: blocks(d.Info.Description)}
	for _, s := range d.Components.SecuritySchemes {
		ref.Auth = append(ref.Auth, views.APIScheme{Name: s.Value.Name, In: s.Value.In, Description: spans(s.Value.Description)})
	}
	groups := map[string]int{}
	for _, t := range d.Tags {
		groups[t.Name] = len(ref.Groups)
		ref.Groups = append(ref.Groups, views.APIGroup{Name: t.Name, Anchor: "tag-" + anchorName(t.Name), Description: spans(t.Description)})
	}
	for _, path := range d.Paths {
		for _, m := range path.Value {
			if !isHTTPMethod(m.Name) {
				continue
			}
			var o oaOperation
			if err := json.Unmarshal(m.Value, &o); err != nil {
				return ref, fmt.Errorf("openapi.json: %s %s: %w", m.Name, path.Name, err)
			}
			op, err := b.operation(strings.ToUpper(m.Name), path.Name, &o)
			if err != nil {
				return ref, fmt.Errorf("openapi.json: %s %s: %w", m.Name, path.Name, err)
			}
			if len(o.Tags) == 0 {
				return ref, fmt.Errorf("openapi.json: %s %s has no tag", m.Name, path.Name)
			}
			gi, ok := groups[o.Tags[0]]
			if !ok {
				return ref, fmt.Errorf("openapi.json: %s %s: tag %q is not declared", m.Name, path.Name, o.Tags[0])
			}
			ref.Groups[gi].Ops = append(ref.Groups[gi].Ops, op)
		}
	}
	for _, s := range d.Components.Schemas {
		ref.Schemas = append(ref.Schemas, b.schema(s.Name, s.Value))
	}
	return ref, nil
}

type explorerBuilder struct {
	d       *oaDoc
	schemas map[string]*oaSchema
}

func (b explorerBuilder) operation(method, path string, o *oaOperation) (views.APIOperation, error) {
	op := views.APIOperation{Anchor: o.OperationID, Method: method, Path: path, Summary: o.Summary,
		Description: spans(o.Description), Token: len(o.Security) > 0}
	for _, p := range o.Parameters {
		if p.Ref != "" {
			q, ok := b.d.Components.Parameters[strings.TrimPrefix(p.Ref, "#/components/parameters/")]
			if !ok {
				return op, fmt.Errorf("no parameter %s", p.Ref)
			}
			desc := p.Description
			p = q
			if desc != "" {
				p.Description = desc
			}
		}
		t, anchor := b.typeOf(p.Schema)
		op.Params = append(op.Params, views.APIField{Name: p.Name, In: p.In, Type: t, TypeAnchor: anchor,
			Required: p.Required, Description: spans(p.Description)})
	}
	if o.RequestBody != nil {
		for _, c := range o.RequestBody.Content {
			op.BodyTypes = append(op.BodyTypes, c.Name)
		}
		if len(o.RequestBody.Content) > 0 {
			s := o.RequestBody.Content[0].Value.Schema
			name := strings.TrimPrefix(s.Ref, "#/components/schemas/")
			if s.Ref == "" || b.schemas[name] == nil {
				return op, fmt.Errorf("a request body must be a component schema")
			}
			op.Body = b.schema(name, b.schemas[name])
		}
	}
	for _, r := range o.Responses {
		rs := r.Value
		desc := rs.Description // a 3.1 $ref's description replaces the component's
		if rs.Ref != "" {
			c, ok := b.d.Components.Responses[strings.TrimPrefix(rs.Ref, "#/components/responses/")]
			if !ok {
				return op, fmt.Errorf("no response %s", rs.Ref)
			}
			rs = c
			if desc == "" {
				desc = c.Description
			}
		}
		out := views.APIResponse{Status: r.Name, Description: spans(desc)}
		for _, h := range rs.Headers {
			out.Headers = append(out.Headers, h.Name)
		}
		if len(rs.Content) > 0 {
			out.Type, out.TypeAnchor = b.typeOf(rs.Content[0].Value.Schema)
		}
		op.Responses = append(op.Responses, out)
	}
	return op, nil
}

func (b explorerBuilder) schema(name string, s *oaSchema) views.APISchema {
	out := views.APISchema{Name: name, Anchor: "schema-" + name, Description: spans(s.Description),
		MoreFields: s.AdditionalProperties == true}
	for _, p := range s.Properties {
		t, anchor := b.typeOf(p.Value)
		req := false
		for _, r := range s.Required {
			req = req || r == p.Name
		}
		out.Fields = append(out.Fields, views.APIField{Name: p.Name, Type: t, TypeAnchor: anchor, Required: req,
			Description: spans(p.Value.Description)})
	}
	return out
}

// typeOf names a schema's type for people, with the anchor of the
// component it is (or is built on).
func (b explorerBuilder) typeOf(s *oaSchema) (string, string) {
	switch {
	case s == nil:
		return "", ""
	case s.Ref != "":
		name := strings.TrimPrefix(s.Ref, "#/components/schemas/")
		return name, "schema-" + name
	case len(s.AllOf) > 0:
		return b.typeOf(s.AllOf[0])
	case len(s.Enum) > 0:
		var vs []string
		for _, v := range s.Enum {
			j, _ := json.Marshal(v)
			vs = append(vs, string(j))
		}
		return strings.Join(vs, " | "), ""
	case s.Type == "array":
		t, a := b.typeOf(s.Items)
		return "array of " + t, a
	}
	switch t := s.Type.(type) {
	case string:
		return t, ""
	case []any:
		var vs []string
		for _, v := range t {
			vs = append(vs, fmt.Sprint(v))
		}
		return strings.Join(vs, " or "), ""
	}
	return "", ""
}

// spans marks the `code` in a description.
func spans(s string) views.Text {
	var out views.Text
	code := false
	for part := range strings.SplitSeq(s, "`") {
		if part != "" {
			out = append(out, views.TextSpan{Text: part, Code: code})
		}
		code = !code
	}
	return out
}

// blocks splits a description into paragraphs and "* " lists.
func blocks(s string) []views.TextBlock {
	var out []views.TextBlock
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case strings.HasPrefix(line, "* "):
			if n := len(out); n == 0 || out[n-1].Items == nil {
				out = append(out, views.TextBlock{Items: []views.Text{}})
			}
			out[len(out)-1].Items = append(out[len(out)-1].Items, spans(line[2:]))
		default:
			out = append(out, views.TextBlock{Para: spans(line)})
		}
	}
	return out
}

func anchorName(s string) string {
	return strings.ToLower(strings.ReplaceAll(s, " ", "-"))
}
