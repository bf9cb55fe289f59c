package pm2dump

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/tendhq/tend"
	yaml "go.yaml.in/yaml/v4"
)

// YAML returns the apps as an ecosystem file, keys in the order of
// tend.Settings: what `tend import pm2 --dry-run` prints, and what the
// import loads and starts.
func (im *Import) YAML(source string) []byte {
	apps := &yaml.Node{Kind: yaml.SequenceNode}
	for _, a := range im.Apps {
		m := &yaml.Node{Kind: yaml.MappingNode}
		for _, st := range tend.Settings {
			if v, ok := a.keys[st.Key]; ok {
				m.Content = append(m.Content, text(st.Key), v)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(a.keys)) {
			if _, isSetting := tend.Lookup(k); !isSetting { // env_<name>
				m.Content = append(m.Content, text(k), a.keys[k])
			}
		}
		apps.Content = append(apps.Content, m)
	}
	doc := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{text("apps"), apps}}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# The apps of %s, imported by tend import pm2.\n", source)
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		panic(err) // a tree of strings, sequences and mappings always encodes
	}
	enc.Close()
	return b.Bytes()
}

// text is a string scalar, quoted in the file as it needs.
func text(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

func number(n int) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(n)}
}

// node is v, a JSON value of the dump, as a YAML value: a scalar, or a
// list of scalars. ok is false for what no setting takes (objects, null,
// nested lists).
func node(v any) (*yaml.Node, bool) {
	switch v := v.(type) {
	case string:
		return text(v), true
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(v)}, true
	case json.Number:
		tag := "!!int"
		if strings.ContainsAny(v.String(), ".eE") {
			tag = "!!float"
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: v.String()}, true
	case []any:
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for _, item := range v {
			n, ok := node(item)
			if !ok || n.Kind != yaml.ScalarNode {
				return nil, false
			}
			seq.Content = append(seq.Content, n)
		}
		return seq, true
	}
	return nil, false
}

// empty reports whether v says nothing: null, "", an empty list or
// mapping.
func empty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	case []any:
		return len(v) == 0
	case map[string]any:
		return len(v) == 0
	}
	return false
}

// isDefault reports whether v is what tend does anyway when st is not
// set, or says nothing: such keys are left out of the file.
func isDefault(st *tend.Setting, v *yaml.Node) bool {
	switch {
	case v.Kind == yaml.SequenceNode:
		return len(v.Content) == 0
	case v.Value == "" || v.Value == st.Default:
		return true
	case v.Tag == "!!bool" && v.Value == "false":
		return st.Kind == tend.KindSwitch && st.Default == "" || st.Bare != "" // watch: false
	case st.Key == "namespace":
		return v.Value == "default" // PM2's name for none
	case st.Key == "cron_restart":
		return v.Value == "0" // PM2's way to turn it off
	}
	return false
}

// jsonText shows a value of the dump as JSON.
func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
