package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/deps"
	yaml "go.yaml.in/yaml/v4"
)

// Options tell Load and Parse what the file alone cannot.
type Options struct {
	// EnvName selects env_<EnvName> (`tend start --env NAME`): its variables
	// are applied over env. Apps without env_<EnvName> just use env. The
	// zero value applies no env_<name> block.
	EnvName string
	// Cwd is the directory that a relative cwd is resolved against, and the
	// cwd of apps that set none. The zero value means the file's directory.
	Cwd string
	// BaseEnv is the environment of the shell that ran the CLI
	// (os.Environ()), copied into every AppSpec.BaseEnv. For .js files it is
	// also the environment node evaluates the file in; nil means this
	// process's environment there.
	BaseEnv []string
}

// Load reads the ecosystem file at path and returns its apps. YAML (.yaml,
// .yml) and JSON (.json) are parsed directly; JavaScript (.js, .cjs, .mjs) is
// evaluated with node (see IsConfigFile). Errors are *tend.Error: ENOTFOUND
// when the file cannot be read, EINVALID, with file:line:col, when it is
// wrong.
func Load(path string, opt Options) ([]tend.AppSpec, error) {
	if isJS(path) {
		data, err := evalJS(path, opt)
		if err != nil {
			return nil, err
		}
		specs, err := parse(data, path, true, opt)
		return specs, jsPositions(err, path, data)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, tend.Errorf(tend.ENOTFOUND, "config file %s does not exist", path)
		}
		return nil, tend.Errorf(tend.ENOTFOUND, "cannot read config file %s: %v", path, unwrapPath(err))
	}
	return Parse(data, path, opt)
}

// Parse parses the ecosystem file data, read from filename. The name
// decides the format (.json is JSON, anything else YAML, which also reads
// JSON) and prefixes every message; its directory is where relative paths
// start unless opt.Cwd says otherwise. JavaScript cannot be parsed from
// bytes: use Load for .js files.
func Parse(data []byte, filename string, opt Options) ([]tend.AppSpec, error) {
	if isJS(filename) {
		return nil, tend.Errorf(tend.EINVALID, "%s: JavaScript ecosystem files must be loaded from disk (Load), not parsed", filename)
	}
	return parse(data, filename, strings.EqualFold(filepath.Ext(filename), ".json"), opt)
}

// IsConfigFile reports whether path names an ecosystem file rather than a
// script: .yaml, .yml and .json files, and PM2's ecosystem.config.js (any
// name ending in .config.js, .config.cjs or .config.mjs), so that
// `tend start app.js` still starts a script.
func IsConfigFile(path string) bool {
	base := strings.ToLower(filepath.Base(path))
	switch filepath.Ext(base) {
	case ".yaml", ".yml", ".json":
		return true
	}
	for _, ext := range []string{".config.js", ".config.cjs", ".config.mjs"} {
		if strings.HasSuffix(base, ext) {
			return true
		}
	}
	return false
}

// isJS reports whether path is a JavaScript file that node must evaluate.
func isJS(path string) bool {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".js", ".cjs", ".mjs":
		return true
	}
	return false
}

// parse parses data as YAML, or as strict JSON when isJSON: YAML would also
// take trailing commas and comments, which JSON tools then reject.
func parse(data []byte, filename string, isJSON bool, opt Options) ([]tend.AppSpec, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // editors on Windows add a BOM
	if isJSON {
		if err := checkJSON(data, filename); err != nil {
			return nil, err
		}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, syntaxErr(filename, err)
	}
	dir := opt.Cwd
	if dir == "" {
		dir = filepath.Dir(filename)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, tend.Errorf(tend.EINVALID, "%s: cannot resolve directory %s: %v", filename, dir, err)
	}
	apps, err := appNodes(filename, &doc)
	if err != nil {
		return nil, err
	}
	specs := make([]tend.AppSpec, 0, len(apps))
	names := map[string]*yaml.Node{}
	for i, n := range apps {
		spec, nameNode, err := decodeApp(filename, i, resolve(n), opt, dir)
		if err != nil {
			return nil, err
		}
		if prev, dup := names[spec.Name]; dup {
			return nil, posErr(filename, nameNode, "duplicate app name %q (first at line %d); give each app its own name", spec.Name, prev.Line)
		}
		names[spec.Name] = nameNode
		specs = append(specs, spec)
	}
	return specs, checkOrder(filename, specs, names)
}

// checkOrder checks the depends_on of the file's apps: each names an app
// of the file with a condition that fits it, and they make no cycle.
func checkOrder(filename string, specs []tend.AppSpec, names map[string]*yaml.Node) error {
	all := make([]string, len(specs))
	for i := range specs {
		all[i] = specs[i].Name
	}
	lookup := func(name string) (tend.AppSpec, bool) {
		i := slices.Index(all, name)
		if i < 0 {
			return tend.AppSpec{}, false
		}
		return specs[i], true
	}
	hint := func(name string) string { return suggest(name, all) }
	for i := range specs {
		if err := tend.CheckDependencies(&specs[i], lookup, hint); err != nil {
			if n := names[specs[i].Name]; n != nil {
				return posErr(filename, n, "%v", err)
			}
			return tend.Errorf(tend.EINVALID, "%s: %v", filename, err)
		}
	}
	if _, err := deps.Order(deps.OfApps(specs)); err != nil {
		return tend.Errorf(tend.EINVALID, "%s: %v", filename, err)
	}
	return nil
}

// appNodes returns the app mappings of a document: the list under apps:, a
// top-level list, or a top-level mapping that is one app.
func appNodes(filename string, doc *yaml.Node) ([]*yaml.Node, error) {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, tend.Errorf(tend.EINVALID, "%s: the file is empty; it should list apps under \"apps:\"", filename)
	}
	root := resolve(doc.Content[0])
	switch root.Kind {
	case yaml.SequenceNode:
		return nonEmpty(filename, root, root.Content)
	case yaml.MappingNode:
	default:
		return nil, posErr(filename, root, "expected a mapping with \"apps:\" or a list of apps, got %s", describe(root))
	}
	es, err := entries(root)
	if err != nil {
		return nil, posErr(filename, at(err, root), "%v", err)
	}
	var apps *yaml.Node
	for _, e := range es {
		if e.key.Value == "apps" {
			apps = e.val
		}
	}
	if apps == nil {
		for _, e := range es {
			if isScriptKey(e.key.Value) {
				return []*yaml.Node{root}, nil // a single app
			}
		}
	}
	for _, e := range es {
		switch k := e.key.Value; {
		case k == "apps", k == "deploy": // deploy is PM2's, for `pm2 deploy`
			continue
		case strings.HasPrefix(k, "x-"):
			// Docker Compose's convention for extension fields, which is
			// where YAML users park the anchors they merge into apps
			// (x-defaults: &defaults).
			continue
		}
		msg := fmt.Sprintf("unknown top-level key %q", e.key.Value)
		if s := suggest(e.key.Value, topKeys); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		} else if _, isApp := tend.Lookup(e.key.Value); isApp {
			msg += "; list apps under \"apps:\""
		}
		return nil, posErr(filename, e.key, "%s", msg)
	}
	if apps == nil {
		return nil, posErr(filename, root, "no \"apps:\" list")
	}
	switch apps.Kind {
	case yaml.SequenceNode:
		return nonEmpty(filename, apps, apps.Content)
	case yaml.MappingNode:
		return []*yaml.Node{apps}, nil // PM2 takes apps: {one app} too
	}
	return nil, posErr(filename, apps, "apps: expected a list of apps, got %s", describe(apps))
}

// nonEmpty rejects a list without apps: starting nothing is never what the
// file meant.
func nonEmpty(filename string, list *yaml.Node, apps []*yaml.Node) ([]*yaml.Node, error) {
	if len(apps) == 0 {
		return nil, posErr(filename, list, "the list of apps is empty")
	}
	return apps, nil
}

// posErr returns an EINVALID error at n in file.
func posErr(file string, n *yaml.Node, format string, args ...any) error {
	return tend.Errorf(tend.EINVALID, "%s:%d:%d: %s", file, n.Line, n.Column, fmt.Sprintf(format, args...))
}

// syntaxErr turns a YAML parser error into file:line:col: syntax error.
func syntaxErr(filename string, err error) error {
	if le, ok := errors.AsType[*yaml.LoadError](err); ok && le.Mark.Line > 0 {
		return tend.Errorf(tend.EINVALID, "%s:%d:%d: syntax error: %s", filename, le.Mark.Line, le.Mark.Column, le.Message)
	}
	return tend.Errorf(tend.EINVALID, "%s: syntax error: %s", filename, strings.TrimPrefix(err.Error(), "yaml: "))
}

// checkJSON reports JSON syntax errors at their line and column;
// encoding/json only gives a byte offset.
func checkJSON(data []byte, filename string) error {
	var v any
	err := json.Unmarshal(data, &v)
	if err == nil {
		return nil
	}
	off := len(data)
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		off = int(se.Offset)
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if off > 0 && off <= len(data) && !strings.Contains(msg, "end of JSON input") {
		off-- // Offset counts the offending byte as read
	}
	line, col := lineCol(data, off)
	return tend.Errorf(tend.EINVALID, "%s:%d:%d: syntax error: %s", filename, line, col, msg)
}

// lineCol converts a byte offset into a 1-based line and column, counting
// columns in characters as the YAML parser does.
func lineCol(data []byte, off int) (line, col int) {
	off = min(off, len(data))
	before := data[:off]
	line = 1 + bytes.Count(before, []byte("\n"))
	start := bytes.LastIndexByte(before, '\n') + 1
	return line, 1 + utf8.RuneCount(before[start:])
}

// unwrapPath drops the path from a *fs.PathError, which the caller names.
func unwrapPath(err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err
	}
	return err
}
