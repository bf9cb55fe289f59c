package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v4"
)

// nodeError is a problem with one node. The app decoder adds the file, the
// position, the key and the app.
type nodeError struct {
	node *yaml.Node
	msg  string
}

func (e *nodeError) Error() string { return e.msg }

// errAt returns a nodeError at n.
func errAt(n *yaml.Node, format string, args ...any) error {
	return &nodeError{node: n, msg: fmt.Sprintf(format, args...)}
}

// at returns where err happened: its own node, or n.
func at(err error, n *yaml.Node) *yaml.Node {
	if ne, ok := errors.AsType[*nodeError](err); ok && ne.node != nil {
		return ne.node
	}
	return n
}

// resolve follows aliases (*name) to the node they point at.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// entry is one key and value of a mapping.
type entry struct{ key, val *yaml.Node }

// entries returns the pairs of mapping m in file order, aliases resolved and
// merge keys (<<: *defaults, common in YAML ecosystem files) expanded: keys
// given in m win over merged ones, and earlier merged mappings win over later
// ones, as YAML specifies. A key written twice in m is an error: YAML says so
// and JSON parsers disagree on which one wins.
func entries(m *yaml.Node) ([]entry, error) {
	return (&merger{done: map[*yaml.Node][]entry{}, active: map[*yaml.Node]bool{}}).entries(m)
}

// merger expands merge keys. Each mapping is expanded once (done), however
// often it is merged, so that mappings merging each other many times over
// cost linear time, and a mapping that merges itself (active) is an error,
// not endless recursion.
type merger struct {
	done   map[*yaml.Node][]entry
	active map[*yaml.Node]bool
}

func (g *merger) entries(m *yaml.Node) ([]entry, error) {
	if es, ok := g.done[m]; ok {
		return es, nil
	}
	if g.active[m] {
		return nil, errAt(m, "<<: the mapping merges itself")
	}
	g.active[m] = true
	defer delete(g.active, m)

	var out, merged []entry
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := resolve(m.Content[i]), resolve(m.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			return nil, errAt(k, "a key must be a string, not %s", describe(k))
		}
		if k.Tag == "!!merge" {
			var srcs []*yaml.Node
			switch v.Kind {
			case yaml.MappingNode:
				srcs = []*yaml.Node{v}
			case yaml.SequenceNode:
				for _, s := range v.Content {
					srcs = append(srcs, resolve(s))
				}
			default:
				return nil, errAt(v, "<<: expected a mapping or a list of mappings, got %s", describe(v))
			}
			for _, s := range srcs {
				if s.Kind != yaml.MappingNode {
					return nil, errAt(s, "<<: expected a mapping, got %s", describe(s))
				}
				es, err := g.entries(s)
				if err != nil {
					return nil, err
				}
				merged = append(merged, es...)
			}
			continue
		}
		if prev, ok := seen[k.Value]; ok {
			return nil, errAt(k, "duplicate key %q; the first is at line %d", k.Value, prev.Line)
		}
		seen[k.Value] = k
		out = append(out, entry{k, v})
	}
	for _, e := range merged {
		if _, ok := seen[e.key.Value]; !ok {
			seen[e.key.Value] = e.key
			out = append(out, e)
		}
	}
	g.done[m] = out
	return out, nil
}

// describe names what n is, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "null"
		case "!!str":
			return strconv.Quote(n.Value)
		default:
			return n.Value
		}
	}
	return "nothing"
}

// isString reports whether n is a scalar that reads as text: a string, or a
// number written where text is expected (PM2 stringifies them too).
func isString(n *yaml.Node) bool {
	if n.Kind != yaml.ScalarNode {
		return false
	}
	switch n.Tag {
	case "!!null", "!!bool", "!!merge":
		return false
	}
	return true
}

// str returns the text of scalar n.
func str(n *yaml.Node) (string, error) {
	if !isString(n) {
		return "", errAt(n, "expected a string, got %s", describe(n))
	}
	return n.Value, nil
}

// boolean returns the value of a true/false scalar.
func boolean(n *yaml.Node) (bool, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
		var b bool
		if err := n.Decode(&b); err == nil {
			return b, nil
		}
	}
	return false, errAt(n, "expected true or false, got %s", describe(n))
}

// numText returns a number or a string as text, for the keys that take
// either ("2s" or 2000, "200M" or 209715200, "max" or 4). YAML spellings of
// numbers (0x10, 1_000, 1e3) come back in plain decimal.
func numText(n *yaml.Node) (string, error) {
	if n.Kind == yaml.ScalarNode {
		switch n.Tag {
		case "!!int":
			var i int64
			if err := n.Decode(&i); err == nil {
				return strconv.FormatInt(i, 10), nil
			}
			return n.Value, nil // too large: let the key's parser say so
		case "!!float":
			var f float64
			if err := n.Decode(&f); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
				return strconv.FormatFloat(f, 'f', -1, 64), nil
			}
			return n.Value, nil
		case "!!null", "!!bool", "!!merge":
		default:
			return strings.TrimSpace(n.Value), nil
		}
	}
	return "", errAt(n, "expected a number or a string, got %s", describe(n))
}
