package lb3

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"unicode"
)

// The LoopBack app (--lb3-app DIR, §0). A store holds rows; what they mean
// is in the app's model JSON: which model is the user model, what a table
// or a column was renamed to, the case PostgreSQL took from a property's
// name, and the user model's settings (realms, email case, token
// lifetimes). ReadApp reads it the way LoopBack builds the models, without
// running the app:
//
//   - loopback-boot (lib/plugins/model.js) reads server/model-config.json,
//     finds every *.json not starting with "_" in its _meta.sources
//     (relative to server/), names a model by its "name" (else the file
//     name, camel-cased), a later source winning, and builds the
//     configured models and their bases. Without _meta.sources it looks in
//     ./models; ReadApp looks in ../common/models too, where the app
//     generator puts them.
//   - loopback's registry (lib/registry.js buildModelOptionsFromConfig)
//     takes a definition's settings from "options" and from its other
//     top-level keys, "options" winning when both have one.
//   - the juggler (lib/model-builder.js extend, mergeSettings) starts a
//     model from its base's settings and properties: a setting object
//     (mysql, postgresql …) is merged key by key, anything else replaced
//     (null too, which clears it); a property is replaced whole.
//   - loopback's configureModel applies a model-config entry's "options"
//     and "relations" to that model alone (its sub-models were built
//     before).
//   - loopback-connector (lib/sql.js table, lib/connector.js column) names
//     a table <connector>.table or .tableName, a column
//     <connector>.column, .columnName, .field or .fieldName, else the
//     model or property name through the connector's dbName (PostgreSQL
//     lower-cases); the memory connector keys a model's records by
//     memory.collection, MongoDB by mongodb.collection.
//
// The built-in models (User, AccessToken, Passport's UserIdentity and
// UserCredential) are known here rather than read from node_modules, which
// an app folder copied for the import seldom has: a source under a
// node_modules folder, or naming a package (loopback/common/models) that
// is not a folder of server/, is skipped.

// App is what a LoopBack 3 app's model JSON tells the import.
type App struct {
	// Dir is the app's root, as given.
	Dir string
	// UserModel, TokenModel, IdentityModel and CredentialModel are the
	// models the app uses: the configured model that extends the built-in
	// (User, AccessToken, UserIdentity, UserCredential), through other app
	// models if need be, else the built-in. When several configured
	// models extend User, AccessToken's user relation (model-config.json)
	// says which; when it does not, UserModel is "" and the import needs
	// --user-model. The same holds for the others.
	UserModel, TokenModel, IdentityModel, CredentialModel string
	// UserModels are all the configured models that extend User.
	UserModels []string
	// User are UserModel's settings.
	User UserSettings

	models     map[string]*appModel
	candidates map[string][]string // built-in → the configured models extending it
}

// UserSettings are a user model's settings that are not in the data
// (loopback common/models/user.js; §3, §4).
type UserSettings struct {
	// File is the JSON the user model is defined in (a path under Dir);
	// "" for the built-in User.
	File                      string
	RealmRequired             bool
	RealmDelimiter            string
	CaseSensitiveEmail        bool // true unless the app turned it off (User's default)
	AllowEternalTokens        bool
	EmailVerificationRequired bool
	// TTL, MaxTTL and ResetPasswordTokenTTL are in seconds; 0: the app
	// keeps LoopBack's default (1209600, 31556926 and 900).
	TTL, MaxTTL, ResetPasswordTokenTTL int64
}

// appModel is one model with its base's settings and properties merged in.
type appModel struct {
	file       string // the JSON it is defined in, under the app's root; "" for a built-in
	configured bool   // in model-config.json, attached to a data source
	settings   map[string]any
	props      map[string]any // property name → its definition
}

// Table is the table (MySQL, PostgreSQL) or collection (memory, MongoDB)
// the app renamed model's to for connector ("mysql", "postgresql",
// "memory" or "mongodb"); ok is false when it keeps the default name. A
// nil App renames nothing.
func (a *App) Table(connector, model string) (string, bool) {
	if a == nil || a.models[model] == nil {
		return "", false
	}
	keys := []string{"table", "tableName"}
	if connector == "memory" || connector == "mongodb" {
		keys = []string{"collection"}
	}
	cs, _ := a.models[model].settings[connector].(map[string]any)
	for _, k := range keys {
		if s, ok := cs[k].(string); ok && s != "" {
			return s, true
		}
	}
	return "", false
}

// Columns maps the columns of model's table under connector back to the
// app's property names, as declared: renamed columns, and on PostgreSQL
// the lower-cased names of camel-cased properties (firstname → firstName).
// Nil when the app does not define model.
func (a *App) Columns(connector, model string) map[string]string {
	if a == nil || a.models[model] == nil {
		return nil
	}
	m := a.models[model]
	out := map[string]string{}
	// Two properties on one column (firstName and firstname on
	// PostgreSQL): the one named as the column wins, else the first in
	// name order, so the answer does not depend on map order.
	names := slices.Sorted(maps.Keys(m.props))
	slices.SortStableFunc(names, func(x, y string) int {
		return boolCmp(x != propColumn(connector, x, m.props[x]), y != propColumn(connector, y, m.props[y]))
	})
	for _, name := range names {
		col := propColumn(connector, name, m.props[name])
		if _, taken := out[col]; !taken {
			out[col] = name
		}
	}
	return out
}

// propColumn is the column connector stores property name in.
func propColumn(connector, name string, def any) string {
	if d, ok := def.(map[string]any); ok {
		if cs, ok := d[connector].(map[string]any); ok {
			for _, k := range []string{"column", "columnName", "field", "fieldName"} {
				if s, ok := cs[k].(string); ok && s != "" {
					return s
				}
			}
		}
	}
	if connector == "postgresql" {
		return strings.ToLower(name)
	}
	return name
}

// ReadApp reads the LoopBack 3 app whose root is dir (it holds
// server/model-config.json). A missing folder or file, or JSON that does
// not parse, is an error naming the file.
func ReadApp(dir string) (*App, error) {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("lb3: the LoopBack app %s does not exist (want the app's root folder, which holds server/model-config.json)", dir)
	case err != nil:
		return nil, fmt.Errorf("lb3: the LoopBack app: %w", err)
	case !fi.IsDir():
		return nil, fmt.Errorf("lb3: the LoopBack app %s is a file: want the app's root folder, which holds server/model-config.json", dir)
	}
	r := &appReader{dir: dir, defs: map[string]*appDef{}}
	configPath := filepath.Join(dir, "server", "model-config.json")
	var config map[string]json.RawMessage
	if err := readJSON(configPath, &config); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("lb3: the LoopBack app %s has no server/model-config.json: want the app's root folder", dir)
	} else if err != nil {
		return nil, err
	}
	var meta struct {
		Sources []string `json:"sources"`
	}
	if raw, ok := config["_meta"]; ok {
		if err := json.Unmarshal(raw, &meta); err != nil {
			return nil, fmt.Errorf("lb3: %s: _meta.sources is not a list of folders: %v", configPath, err)
		}
	}
	delete(config, "_meta")
	sources := meta.Sources
	if sources == nil {
		// loopback-boot's default is ./models alone; apps made by the
		// generator list ../common/models too, so both are looked at.
		sources = []string{"../common/models", "./models"}
	}
	for _, src := range sources {
		if err := r.readSource(src); err != nil {
			return nil, err
		}
	}
	r.config = map[string]modelConfig{}
	for name, raw := range config {
		var mc modelConfig
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		if err := d.Decode(&mc); err != nil {
			return nil, fmt.Errorf("lb3: %s: the entry of %s: %v", configPath, name, err)
		}
		r.config[name] = mc
	}
	return r.app()
}

// appDef is one model definition as its JSON has it.
type appDef struct {
	name, base string
	file       string
	settings   map[string]any // buildModelOptionsFromConfig
	props      map[string]any
}

// modelConfig is one entry of model-config.json.
type modelConfig struct {
	DataSource any            `json:"dataSource"`
	Options    map[string]any `json:"options"`
	Relations  map[string]any `json:"relations"`
}

type appReader struct {
	dir    string
	defs   map[string]*appDef // the app's definitions, by model name
	config map[string]modelConfig
}

// readJSON decodes the file at path into v; a syntax error names the
// file, line and column.
func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return fmt.Errorf("lb3: %w", err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	err = d.Decode(v)
	if err == nil && d.More() {
		err = errors.New("more data after the top-level value")
	}
	if err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := lineCol(b, se.Offset)
			return fmt.Errorf("lb3: %s: invalid JSON at line %d, column %d: %v", path, line, col, err)
		}
		return fmt.Errorf("lb3: %s: %v", path, err)
	}
	return nil
}

// lineCol turns a byte offset into a 1-based line and column.
func lineCol(b []byte, off int64) (int, int) {
	off = min(max(off, 0), int64(len(b)))
	before := b[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	return line, int(off) - (bytes.LastIndexByte(before, '\n') + 1)
}

// readSource reads the model definitions of one _meta.sources entry: a
// path relative to server/ ("../common/models", "./models", or a bare
// "models", which loopback-boot tries as a folder of server/ before a
// package). A folder that is not there is skipped, as loopback-boot does;
// so is a package's (loopback/common/models, or under node_modules).
func (r *appReader) readSource(src string) error {
	if slices.Contains(strings.Split(filepath.ToSlash(src), "/"), "node_modules") {
		return nil
	}
	dir := src
	if !filepath.IsAbs(src) {
		dir = filepath.Join(r.dir, "server", src)
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("lb3: the LoopBack app's models: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, "_") || filepath.Ext(name) != ".json" {
			continue
		}
		file := filepath.Join(dir, name)
		var doc map[string]any
		if err := readJSON(file, &doc); err != nil {
			return err
		}
		if doc == nil {
			return fmt.Errorf("lb3: %s: not a model definition (want a JSON object)", file)
		}
		def, err := newAppDef(doc, file)
		if err != nil {
			return fmt.Errorf("lb3: %s: %v", file, err)
		}
		if def.name == "" {
			def.name = modelNameOf(strings.TrimSuffix(name, ".json"))
		}
		r.defs[def.name] = def
	}
	return nil
}

// newAppDef reads a model definition: its settings are "options" and
// every other top-level key but name and properties, "options" winning
// (loopback lib/registry.js buildModelOptionsFromConfig).
func newAppDef(doc map[string]any, file string) (*appDef, error) {
	def := &appDef{file: file, settings: map[string]any{}, props: map[string]any{}}
	if n, ok := doc["name"]; ok && n != nil {
		s, ok := n.(string)
		if !ok {
			return nil, fmt.Errorf("name is %v, not a string", n)
		}
		def.name = s
	}
	if o, ok := doc["options"]; ok && o != nil {
		opts, ok := o.(map[string]any)
		if !ok {
			return nil, errors.New(`"options" is not an object`)
		}
		for k, v := range opts {
			def.settings[k] = v
		}
	}
	for k, v := range doc {
		if k == "name" || k == "properties" || k == "options" {
			continue
		}
		if _, set := def.settings[k]; !set {
			def.settings[k] = v
		}
	}
	if p, ok := doc["properties"]; ok && p != nil {
		props, ok := p.(map[string]any)
		if !ok {
			return nil, errors.New(`"properties" is not an object`)
		}
		def.props = props
	}
	if b, ok := def.settings["base"]; ok && b != nil {
		s, ok := b.(string)
		if !ok {
			return nil, fmt.Errorf("base is %v, not a model name", b)
		}
		def.base = s
	}
	return def, nil
}

// modelNameOf is loopback-boot's name for a definition without one:
// upperFirst(camelCase(file name)), user-identity → UserIdentity.
func modelNameOf(base string) string {
	var words []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			words = append(words, string(cur))
			cur = cur[:0]
		}
	}
	rs := []rune(base)
	for i, c := range rs {
		switch {
		case !unicode.IsLetter(c) && !unicode.IsDigit(c):
			flush()
			continue
		case unicode.IsUpper(c) && i > 0 && unicode.IsLower(rs[i-1]):
			flush()
		}
		cur = append(cur, c)
	}
	flush()
	var b strings.Builder
	for _, w := range words {
		r := []rune(strings.ToLower(w))
		r[0] = unicode.ToUpper(r[0])
		b.WriteString(string(r))
	}
	return b.String()
}

// builtinModels are the built-in definitions the import relies on, as
// loopback 3.28.0 (common/models/user.json, access-token.json) and
// loopback-component-passport 3.12.0 (lib/models/user-identity.json,
// user-credential.json) have them, trimmed to what matters here.
func builtinModels() map[string]string {
	passport := `"base": "PersistedModel", "properties": {"provider": "string", "authScheme": "string", "externalId": "string",
		"profile": "object", "credentials": "object", "created": "date", "modified": "date"},
		"relations": {"user": {"type": "belongsTo", "model": "User", "foreignKey": "userId"}}}`
	return map[string]string{
		"User": `{"name": "User", "base": "PersistedModel", "properties": {"realm": "string", "username": "string",
			"password": {"type": "string", "required": true}, "email": {"type": "string", "required": true},
			"emailVerified": "boolean", "verificationToken": "string"}, "options": {"caseSensitiveEmail": true}}`,
		"AccessToken": `{"name": "AccessToken", "base": "PersistedModel", "properties": {"id": {"type": "string", "id": true},
			"ttl": "number", "scopes": ["string"], "created": "date"},
			"relations": {"user": {"type": "belongsTo", "model": "User", "foreignKey": "userId"}}}`,
		"UserIdentity":   `{"name": "UserIdentity", ` + passport,
		"UserCredential": `{"name": "UserCredential", ` + passport,
	}
}

// app resolves every configured model and picks the ones the import reads.
func (r *appReader) app() (*App, error) {
	builtin := map[string]*appDef{}
	for name, text := range builtinModels() {
		var doc map[string]any
		d := json.NewDecoder(strings.NewReader(text))
		d.UseNumber()
		if err := d.Decode(&doc); err != nil {
			return nil, fmt.Errorf("lb3: the built-in %s: %v", name, err) // a mistake here, not in the app
		}
		def, err := newAppDef(doc, "")
		if err != nil {
			return nil, fmt.Errorf("lb3: the built-in %s: %v", name, err)
		}
		builtin[name] = def
	}
	a := &App{Dir: r.dir, models: map[string]*appModel{}, candidates: map[string][]string{}}
	var resolve func(name string, seen []string) (*appModel, error)
	resolve = func(name string, seen []string) (*appModel, error) {
		if slices.Contains(seen, name) {
			return nil, fmt.Errorf("lb3: the LoopBack app's models extend each other in a circle: %s", strings.Join(append(seen, name), " → "))
		}
		def := r.defs[name]
		if def == nil {
			def = builtin[name]
		}
		if def == nil { // PersistedModel, Model, or a model the app builds in code
			return &appModel{settings: map[string]any{}, props: map[string]any{}}, nil
		}
		parent := &appModel{settings: map[string]any{}, props: map[string]any{}}
		if def.base != "" && def.base != name {
			p, err := resolve(def.base, append(seen, name))
			if err != nil {
				return nil, err
			}
			parent = p
		}
		m := &appModel{file: def.file,
			settings: mergeSettings(parent.settings, def.settings), props: map[string]any{}}
		for k, v := range parent.props {
			m.props[k] = v
		}
		for k, v := range def.props {
			if v == nil {
				delete(m.props, k)
			} else {
				m.props[k] = v
			}
		}
		return m, nil
	}
	names := slices.Sorted(maps.Keys(r.config))
	all := slices.Concat(names, slices.Sorted(maps.Keys(r.defs)), slices.Sorted(maps.Keys(builtin)))
	for _, name := range all {
		if a.models[name] != nil {
			continue
		}
		m, err := resolve(name, nil)
		if err != nil {
			return nil, err
		}
		if mc, ok := r.config[name]; ok {
			m.configured = mc.DataSource != nil && mc.DataSource != false && mc.DataSource != ""
			for k, v := range mc.Options { // configureModel: this model alone
				if k != "base" && k != "super" && k != "relations" && k != "acls" && k != "dataSource" {
					m.settings[k] = v
				}
			}
			if len(mc.Relations) > 0 {
				rels, _ := m.settings["relations"].(map[string]any)
				merged := map[string]any{}
				for k, v := range rels {
					merged[k] = v
				}
				for k, v := range mc.Relations {
					old, _ := merged[k].(map[string]any)
					nv, _ := v.(map[string]any)
					merged[k] = mergeSettings(old, nv)
				}
				m.settings["relations"] = merged
			}
		}
		m.addForeignKeys()
		a.models[name] = m
	}
	// extends: name's chain of bases reaches root.
	extends := func(name, root string) bool {
		for seen := 0; name != "" && seen < 100; seen++ {
			if name == root {
				return true
			}
			def := r.defs[name]
			if def == nil {
				def = builtin[name]
			}
			if def == nil || def.base == name {
				return false
			}
			name = def.base
		}
		return false
	}
	pick := func(root, hint string) (string, []string) {
		var found []string
		for _, name := range names {
			if name != root && a.models[name].configured && extends(name, root) {
				found = append(found, name)
			}
		}
		a.candidates[root] = found
		switch {
		case len(found) == 0:
			return root, nil
		case len(found) == 1:
			return found[0], found
		case slices.Contains(found, hint):
			return hint, found
		}
		return "", found
	}
	a.TokenModel, _ = pick("AccessToken", "")
	a.UserModel, a.UserModels = pick("User", a.relationModel(a.TokenModel, "user"))
	if a.TokenModel == "" && a.UserModel != "" {
		a.TokenModel, _ = pick("AccessToken", a.relationModel(a.UserModel, "accessTokens"))
	}
	a.IdentityModel, _ = pick("UserIdentity", a.relationModel(a.UserModel, "identities"))
	a.CredentialModel, _ = pick("UserCredential", a.relationModel(a.UserModel, "credentials"))
	if a.UserModel != "" {
		s, err := a.userSettings(a.UserModel)
		if err != nil {
			return nil, err
		}
		a.User = s
	}
	return a, nil
}

// relationModel is the model relation rel of model points at, "" if none.
func (a *App) relationModel(model, rel string) string {
	if a.models[model] == nil {
		return ""
	}
	rels, _ := a.models[model].settings["relations"].(map[string]any)
	r, _ := rels[rel].(map[string]any)
	s, _ := r["model"].(string)
	return s
}

// addForeignKeys adds the properties a belongsTo relation defines (juggler
// lib/relation-definition.js belongsTo: foreignKey, else the relation's
// name + "Id"; a polymorphic one also its discriminator, name + "Type"),
// so their columns map back to them too (userId, principalType).
func (m *appModel) addForeignKeys() {
	rels, _ := m.settings["relations"].(map[string]any)
	for name, v := range rels {
		rel, _ := v.(map[string]any)
		if t, _ := rel["type"].(string); t != "belongsTo" {
			continue
		}
		fk, _ := rel["foreignKey"].(string)
		var disc string
		switch p := rel["polymorphic"].(type) {
		case string:
			fk, disc = cmp.Or(fk, p+"Id"), p+"Type"
		case map[string]any:
			f, _ := p["foreignKey"].(string)
			d, _ := p["discriminator"].(string)
			fk, disc = cmp.Or(f, fk, name+"Id"), cmp.Or(d, name+"Type")
		case bool:
			if p {
				disc = name + "Type"
			}
		}
		for _, prop := range []string{cmp.Or(fk, name+"Id"), disc} {
			if _, ok := m.props[prop]; prop != "" && !ok {
				m.props[prop] = map[string]any{}
			}
		}
	}
}

// userSettings reads the settings of user model name (loopback
// common/models/user.js: each is tested for truth as JavaScript does, so
// an absent or null caseSensitiveEmail is false).
func (a *App) userSettings(name string) (UserSettings, error) {
	m := a.models[name]
	if m == nil {
		return UserSettings{CaseSensitiveEmail: true}, nil
	}
	st := m.settings
	s := UserSettings{
		File:                      m.file,
		RealmRequired:             truthy(st["realmRequired"]),
		CaseSensitiveEmail:        truthy(st["caseSensitiveEmail"]),
		AllowEternalTokens:        truthy(st["allowEternalTokens"]),
		EmailVerificationRequired: truthy(st["emailVerificationRequired"]),
	}
	if truthy(st["realmDelimiter"]) {
		s.RealmDelimiter = fmt.Sprint(st["realmDelimiter"])
	}
	for _, f := range []struct {
		key string
		to  *int64
	}{{"ttl", &s.TTL}, {"maxTTL", &s.MaxTTL}, {"resetPasswordTokenTTL", &s.ResetPasswordTokenTTL}} {
		v, ok := st[f.key]
		if !ok || !truthy(v) {
			continue // LoopBack's `settings.ttl || DEFAULT_TTL`
		}
		n, err := strconv.ParseInt(strings.TrimSpace(fmt.Sprint(v)), 10, 64)
		if err != nil {
			where := m.file
			if where == "" {
				where = filepath.Join(a.Dir, "server", "model-config.json")
			}
			return s, fmt.Errorf("lb3: %s: %s of %s is %v, not a whole number of seconds", where, f.key, name, v)
		}
		*f.to = n
	}
	return s, nil
}

// truthy is JavaScript's truth of a JSON value.
func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case json.Number:
		f, err := x.Float64()
		return err != nil || f != 0
	case float64:
		return x != 0
	}
	return true // an object or an array
}

// mergeSettings is the juggler's default mergeSettings: sub over base, an
// object merged key by key (deeply), anything else replaced; null clears
// (it replaces, which reads here as absent). base is not changed.
func mergeSettings(base, sub map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(sub))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range sub {
		if v == nil {
			delete(out, k)
			continue
		}
		bo, ok1 := out[k].(map[string]any)
		so, ok2 := v.(map[string]any)
		if ok1 && ok2 {
			out[k] = mergeSettings(bo, so)
		} else {
			out[k] = v
		}
	}
	return out
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// Applying the app to an import.

// connectorOf names a store kind as LoopBack's model JSON does.
func connectorOf(kind string) string {
	switch kind {
	case "postgres":
		return "postgresql"
	case "mongo":
		return "mongodb"
	}
	return kind // memory, mysql
}

// applyApp prepares an import for opts.App: the model names not given
// come from it, its allowEternalTokens turns eternal tokens on, what the
// import cannot honour is a *UsageError, and the source reads under the
// app's names (or, without an app, under LoopBack's defaults again). The
// notes are the report's Settings.
func (s *Store) applyApp(opts Options) (Options, []string, error) {
	switch src := s.src.(type) {
	case *sqlStore:
		src.app = opts.App
	case *memoryFile:
		src.app = opts.App
	}
	a := opts.App
	if a == nil {
		return opts, nil, nil
	}
	for _, m := range []struct {
		to         *string
		from, root string
		what, flag string
	}{
		{&opts.UserModel, a.UserModel, "User", "user models", "--user-model"},
		{&opts.TokenModel, a.TokenModel, "AccessToken", "token models", "--token-model"},
		{&opts.IdentityModel, a.IdentityModel, "UserIdentity", "Passport identity models", "--identity-model"},
		{&opts.CredentialModel, a.CredentialModel, "UserCredential", "Passport credential models", "--credential-model"},
	} {
		switch {
		case *m.to != "":
		case m.from == "":
			return opts, nil, &UsageError{fmt.Sprintf("lb3: the LoopBack app %s configures several %s (%s extending %s), and their relations do not say which one the app uses: choose with %s",
				a.Dir, m.what, strings.Join(a.candidates[m.root], ", "), m.root, m.flag)}
		default:
			*m.to = m.from
		}
	}
	us := a.User
	if opts.UserModel != a.UserModel {
		var err error
		if us, err = a.userSettings(opts.UserModel); err != nil {
			return opts, nil, &UsageError{err.Error()}
		}
	}
	where := opts.UserModel
	if us.File != "" {
		where += " (" + us.File + ")"
	}
	if us.RealmDelimiter != "" && !opts.IgnoreRealms {
		return opts, nil, &UsageError{fmt.Sprintf("lb3: the LoopBack user model %s sets realmDelimiter %q: its clients may log in with the realm inside "+
			"the email or username (%s), and Latchkey does not read that: it logs in by email or username alone and ignores realm "+
			"(each user keeps theirs), so those logins would fail. Change the clients to send the plain email or username, "+
			"then import with --ignore-realms", where, us.RealmDelimiter, "acme"+us.RealmDelimiter+"ann@example.com")}
	}
	connector := connectorOf(s.kind)
	read := []string{opts.UserModel, opts.TokenModel, opts.IdentityModel, opts.CredentialModel}
	for _, m := range read {
		if s.kind == "mongo" {
			_, renamed := a.Table(connector, m)
			if renamed || len(a.renamedColumns(connector, m)) > 0 || m == opts.UserModel && !isUserModel(m) {
				return opts, nil, &UsageError{fmt.Sprintf("lb3: the LoopBack app names %s differently from a MongoDB export read by model name "+
					"(a user model other than User or user, a mongodb.collection, or renamed fields), which is not supported yet", m)}
			}
		}
		if schema := a.setting(connector, m, "schema"); connector == "postgresql" && schema != "" && schema != "public" {
			return opts, nil, &UsageError{fmt.Sprintf("lb3: the LoopBack app keeps %s in PostgreSQL schema %q: only schema public is read yet", m, schema)}
		}
	}

	var notes []string
	note := func(format string, args ...any) { notes = append(notes, fmt.Sprintf(format, args...)) }
	for _, m := range slices.Compact(slices.Clone(read)) {
		if t, ok := a.Table(connector, m); ok {
			kind := "table"
			if connector == "memory" || connector == "mongodb" {
				kind = "collection"
			}
			note("%s read from %s %q, as the app names it (%s)", m, kind, t, a.fileOf(m))
		}
		if cols := a.renamedColumns(connector, m); len(cols) > 0 {
			note("%s's renamed columns read as their properties: %s", m, strings.Join(cols, ", "))
		}
		if connector == "postgresql" {
			if cased := a.casedProperties(m); len(cased) > 0 {
				note("%s's columns that PostgreSQL lower-cased come back as the app declares them: %s", m, strings.Join(cased, ", "))
			}
		}
	}
	switch {
	case us.RealmDelimiter != "":
		note("realmDelimiter %q ignored (--ignore-realms): Latchkey logs in by email or username alone; a client sending realm%sname fails to log in", us.RealmDelimiter, us.RealmDelimiter)
	case us.RealmRequired:
		note("realmRequired: LoopBack required a realm at login; Latchkey does not (it logs in by email or username alone and ignores realm), and each user keeps their realm")
	}
	if us.RealmRequired && us.RealmDelimiter != "" {
		note("realmRequired with realmDelimiter made emails and usernames unique per realm in LoopBack; Latchkey's are unique across realms, so the same address in two realms is a duplicate here")
	}
	if !us.CaseSensitiveEmail {
		note("caseSensitiveEmail false: LoopBack lower-cased addresses, so users stored with mixed case before the switch could not log in; " +
			"Latchkey matches emails without case, so they can now")
	}
	if us.EmailVerificationRequired {
		note("emailVerificationRequired: LoopBack refused login until the address was verified; Latchkey has no such setting, so unverified users can log in")
	}
	for _, t := range []struct {
		name     string
		value    int64
		env, use string
	}{
		{"ttl", us.TTL, "LATCHKEY_TOKEN_TTL", "new tokens last as long (imported tokens keep their own ttl)"},
		{"maxTTL", us.MaxTTL, "LATCHKEY_TOKEN_MAX_TTL", "a requested ttl is capped alike"},
		{"resetPasswordTokenTTL", us.ResetPasswordTokenTTL, "LATCHKEY_RESET_TTL", "reset links last as long"},
	} {
		if t.value != 0 {
			note("%s %d: serve with %s=%d so %s", t.name, t.value, t.env, t.value, t.use)
		}
	}
	if us.AllowEternalTokens && !opts.AllowEternalTokens {
		opts.AllowEternalTokens = true
		note("allowEternalTokens: eternal tokens (ttl -1) are imported; serve with LATCHKEY_ALLOW_ETERNAL_TOKENS=true so they keep working")
	}
	return opts, notes, nil
}

// casedProperties are model's own camel-cased properties, which
// PostgreSQL keeps lower-cased, in name order.
func (a *App) casedProperties(model string) []string {
	var out []string
	for col, prop := range a.Columns("postgresql", model) {
		if col != prop && col == strings.ToLower(prop) && canonical[col] != prop { // the built-ins are known without the app
			out = append(out, prop)
		}
	}
	slices.Sort(out)
	return out
}

// renamedColumns are model's properties stored under a name of their own
// choosing for connector (not only lower-cased), "prop → column".
func (a *App) renamedColumns(connector, model string) []string {
	if a == nil || a.models[model] == nil {
		return nil
	}
	var out []string
	for col, prop := range a.Columns(connector, model) {
		if !strings.EqualFold(col, prop) {
			out = append(out, prop+" → "+col)
		}
	}
	slices.Sort(out)
	return out
}

// setting is model's setting key for connector ("postgresql", "schema"),
// "" when unset.
func (a *App) setting(connector, model, key string) string {
	if a == nil || a.models[model] == nil {
		return ""
	}
	cs, _ := a.models[model].settings[connector].(map[string]any)
	s, _ := cs[key].(string)
	return s
}

// fileOf is the JSON model is defined in (under the app's root), or ""
// for a built-in or a model the app does not define.
func (a *App) fileOf(model string) string {
	if a == nil || a.models[model] == nil {
		return ""
	}
	return a.models[model].file
}
