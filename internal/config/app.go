package config

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/tendhq/tend"
	yaml "go.yaml.in/yaml/v4"
)

// appDecoder turns one app mapping into a tend.AppSpec, through the table
// of settings (tend.Settings): this file knows YAML, the table knows keys.
type appDecoder struct {
	file  string  // for messages
	index int     // position in the apps list, for apps without a name
	opt   Options // EnvName and BaseEnv
	dir   string  // absolute directory that relative paths start from
	label string  // `app "api"` or `apps[2]`, for messages

	spec     tend.AppSpec
	env      map[string]string // env:
	envOver  map[string]string // env_<opt.EnvName>:
	envNode  *yaml.Node        // where env: or env_<name>: was, for messages
	nameNode *yaml.Node        // where the name came from, for duplicate names
}

// decodeApp decodes app mapping n, the index-th app of file.
func decodeApp(file string, index int, n *yaml.Node, opt Options, dir string) (tend.AppSpec, *yaml.Node, error) {
	d := &appDecoder{file: file, index: index, opt: opt, dir: dir, label: fmt.Sprintf("apps[%d]", index)}
	if n.Kind != yaml.MappingNode {
		return tend.AppSpec{}, nil, posErr(file, n, "%s: expected a mapping, got %s", d.label, describe(n))
	}
	d.nameApp(n)
	es, err := entries(n)
	if err != nil {
		return tend.AppSpec{}, nil, d.errAt(err, n, "")
	}

	seen := map[string]*yaml.Node{} // canonical key -> key as written
	var later []entry               // settings that apply after the others
	es, err = blocks(es)
	if err != nil {
		return tend.AppSpec{}, nil, d.errAt(err, n, "")
	}
	for _, e := range es {
		key := e.key.Value
		if _, known := tend.Lookup(key); !known && strings.HasPrefix(key, "env_") && len(key) > len("env_") {
			// env_<name>, but for settings named so (env_file)
			if err := d.envBlock(key, e.val); err != nil {
				return tend.AppSpec{}, nil, d.errAt(err, e.val, key)
			}
			continue
		}
		if ignoredKeys[key] {
			continue
		}
		st, ok := tend.Lookup(key)
		if !ok {
			return tend.AppSpec{}, nil, d.unknownKey(e.key)
		}
		if prev, dup := seen[st.Key]; dup {
			return tend.AppSpec{}, nil, posErr(file, e.key, "duplicate key %q: %q at line %d already sets it (%s)",
				key, prev.Value, prev.Line, d.label)
		}
		seen[st.Key] = e.key
		if st.After {
			later = append(later, e)
			continue
		}
		if err := d.set(st, key, e.val); err != nil {
			return tend.AppSpec{}, nil, d.errAt(err, e.val, key)
		}
	}
	for _, e := range later {
		st, _ := tend.Lookup(e.key.Value)
		if err := d.set(st, e.key.Value, e.val); err != nil {
			return tend.AppSpec{}, nil, d.errAt(err, e.val, e.key.Value)
		}
	}
	if err := d.finish(n); err != nil {
		return tend.AppSpec{}, nil, err
	}
	return d.spec, d.nameNode, nil
}

// blocks flattens blocks of settings: `liveness: {http: URL, period: 5s}`
// is liveness_http and liveness_period, each key positioned where it is
// written.
func blocks(es []entry) ([]entry, error) {
	out := make([]entry, 0, len(es))
	for _, e := range es {
		_, known := tend.Lookup(e.key.Value)
		if known || e.val.Kind != yaml.MappingNode || !isBlock(e.key.Value) {
			out = append(out, e)
			continue
		}
		inner, err := entries(e.val)
		if err != nil {
			return nil, err
		}
		for _, ie := range inner {
			k := *ie.key
			k.Value = e.key.Value + "_" + ie.key.Value
			out = append(out, entry{key: &k, val: ie.val})
		}
	}
	return out, nil
}

// isBlock reports whether prefix_ starts the keys of some settings.
func isBlock(prefix string) bool {
	for _, st := range tend.Settings {
		if strings.HasPrefix(st.Key, prefix+"_") {
			return true
		}
	}
	return false
}

// nameApp finds the app's name, given or derived from its script, before
// anything else so that every message can say which app it is about. It
// reads the mapping as written, so that it works even when the mapping is
// about to be rejected.
func (d *appDecoder) nameApp(n *yaml.Node) {
	var script *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		st, _ := tend.Lookup(k.Value)
		switch {
		case st == nil:
		case st.Key == "name":
			if isString(v) && strings.TrimSpace(v.Value) != "" {
				d.spec.Name, d.nameNode = strings.TrimSpace(v.Value), v
			}
		case st.Key == "script":
			if script == nil && isString(v) && strings.TrimSpace(v.Value) != "" {
				script = v
			}
		}
	}
	if d.spec.Name == "" && script != nil {
		d.spec.Name, d.nameNode = tend.DefaultName(script.Value), script
	}
	if d.spec.Name != "" {
		d.label = fmt.Sprintf("app %q", d.spec.Name)
	}
}

// set reads the value v of key, the setting st, as its kind says, and
// applies it.
func (d *appDecoder) set(st *tend.Setting, key string, v *yaml.Node) error {
	in := tend.Input{Dir: d.dir}
	var err error
	switch st.Kind {
	case tend.KindText:
		if st.TakesBool && v.Kind == yaml.ScalarNode && v.Tag == "!!bool" {
			var on bool
			on, err = boolean(v)
			in.Text = strconv.FormatBool(on)
			break
		}
		in.Text, err = str(v)
	case tend.KindNumber:
		in.Text, err = numText(v)
	case tend.KindSwitch:
		var on bool
		on, err = boolean(v)
		in.Text = strconv.FormatBool(on)
	case tend.KindWords, tend.KindList, tend.KindNumbers:
		in, err = d.list(st, v)
	case tend.KindEnv:
		d.envNode = v
		d.env, err = envMap(v)
		return err
	}
	if err != nil {
		return err
	}
	return st.Apply(&d.spec, in)
}

// list reads a list: a sequence of scalars, or one scalar that Apply
// splits. A list with a bare form (watch) also takes true and false.
func (d *appDecoder) list(st *tend.Setting, v *yaml.Node) (tend.Input, error) {
	in := tend.Input{Dir: d.dir}
	item, what := str, "a string or a list of strings"
	if st.Kind == tend.KindNumbers {
		item, what = numText, "a number or a string"
	}
	switch {
	case st.Bare != "" && v.Kind == yaml.ScalarNode && v.Tag == "!!bool":
		on, err := boolean(v)
		if on {
			in.List = []string{st.Bare}
		}
		return in, err
	case v.Kind == yaml.MappingNode && st.Pairs:
		return pairs(v, d.dir)
	case v.Kind == yaml.SequenceNode:
		in.List = make([]string, 0, len(v.Content))
		for _, c := range v.Content {
			c = resolve(c)
			t, err := item(c)
			if err == nil {
				// Each item alone first, so that an error points at it.
				var scratch tend.AppSpec
				if err = st.Apply(&scratch, tend.Input{List: []string{t}, Dir: d.dir}); err != nil {
					err = errAt(c, "%v", err)
				}
			}
			if err != nil {
				return in, err
			}
			in.List = append(in.List, t)
		}
		return in, nil
	case v.Kind == yaml.ScalarNode && isString(v):
		t, err := item(v)
		in.Text = t
		return in, err
	}
	return in, errAt(v, "expected %s, got %s", what, describe(v))
}

// pairs reads a mapping as key:value items (depends_on: {db: ready}).
// A value may be null (the key alone), or, as compose writes it, a
// mapping with the value under condition: (db: {condition: service_healthy}).
func pairs(v *yaml.Node, dir string) (tend.Input, error) {
	in := tend.Input{Dir: dir}
	es, err := entries(v)
	if err != nil {
		return in, err
	}
	for _, e := range es {
		val := resolve(e.val)
		if val.Kind == yaml.MappingNode {
			inner, err := entries(val)
			if err != nil {
				return in, err
			}
			val = nil
			for _, ie := range inner {
				if ie.key.Value != "condition" {
					return in, errAt(ie.key, "%s: unknown key %q: give condition: started, ready or completed", e.key.Value, ie.key.Value)
				}
				val = resolve(ie.val)
			}
		}
		item := e.key.Value
		if val != nil && val.Tag != "!!null" {
			t, err := str(val)
			if err != nil {
				return in, errAt(val, "%s: %v", e.key.Value, err)
			}
			item += ":" + t
		}
		in.List = append(in.List, item)
	}
	return in, nil
}

// envBlock reads env_<name>: kept when it is the one --env chose.
func (d *appDecoder) envBlock(key string, v *yaml.Node) error {
	m, err := envMap(v)
	if err == nil && key == "env_"+d.opt.EnvName {
		d.envOver, d.envNode = m, v
	}
	return err
}

// finish checks what the app as a whole needs and fills in the values this
// package is responsible for (see the package comment).
func (d *appDecoder) finish(n *yaml.Node) error {
	s := &d.spec
	if s.Script == "" {
		return posErr(d.file, n, "missing key \"script\" in %s", d.label)
	}
	if len(d.env) > 0 || len(d.envOver) > 0 {
		merged := make(map[string]string, len(d.env)+len(d.envOver))
		maps.Copy(merged, d.env)
		maps.Copy(merged, d.envOver)
		kv := make([]string, 0, len(merged))
		for _, k := range slices.Sorted(maps.Keys(merged)) {
			kv = append(kv, k+"="+merged[k])
		}
		st, _ := tend.Lookup("env")
		if err := st.Apply(s, tend.Input{List: kv}); err != nil {
			return d.errAt(err, d.envNode, "env")
		}
	}
	s.Complete(d.dir)
	s.BaseEnv = slices.Clone(d.opt.BaseEnv)
	return nil
}

// errAt positions err (from decoding key's value v) in the file. An error
// that is already a *tend.Error with a position passes through.
func (d *appDecoder) errAt(err error, v *yaml.Node, key string) error {
	msg := err.Error()
	if te, ok := errors.AsType[*tend.Error](err); ok {
		msg = te.Message
	}
	if key != "" {
		msg = key + ": " + msg
	}
	return posErr(d.file, at(err, v), "%s (%s)", msg, d.label)
}

// unknownKey is the error for a key tend does not know, with the nearest
// known key when it looks like a typo.
func (d *appDecoder) unknownKey(k *yaml.Node) error {
	if unsupportedKeys[k.Value] {
		return posErr(d.file, k, "key %q in %s is not supported by tend", k.Value, d.label)
	}
	msg := fmt.Sprintf("unknown key %q in %s", k.Value, d.label)
	if s := suggest(k.Value, appKeyNames()); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return posErr(d.file, k, "%s", msg)
}

// env decodes an env mapping. Values may be strings, numbers or booleans
// (PM2 stringifies them); null is the empty string.
func envMap(n *yaml.Node) (map[string]string, error) {
	if n.Kind != yaml.MappingNode {
		return nil, errAt(n, "expected a mapping of variables, got %s", describe(n))
	}
	es, err := entries(n)
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(es))
	for _, e := range es {
		if err := tend.CheckEnvName(e.key.Value); err != nil {
			return nil, errAt(e.key, "%v", err)
		}
		v := e.val
		switch {
		case v.Kind != yaml.ScalarNode:
			return nil, errAt(v, "%s: expected a string, number or boolean, got %s", e.key.Value, describe(v))
		case v.Tag == "!!null":
			m[e.key.Value] = ""
		case strings.IndexByte(v.Value, 0) >= 0:
			return nil, errAt(v, "%s: the value contains a NUL byte", e.key.Value)
		default:
			m[e.key.Value] = v.Value
		}
	}
	return m, nil
}
