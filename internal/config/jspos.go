package config

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v4"

	"github.com/tendhq/tend"
)

// jsPositions rewrites the position in an error about a JavaScript
// ecosystem file: the line and column are those of the JSON node printed
// of it, which name nothing in the file. The path to the value
// (apps[0].instances) does.
func jsPositions(err error, path string, data []byte) error {
	te, ok := errors.AsType[*tend.Error](err)
	if !ok {
		return err
	}
	m := regexp.MustCompile(`^` + regexp.QuoteMeta(path) + `:(\d+):(\d+): `).FindStringSubmatch(te.Message)
	if m == nil {
		return err
	}
	line, _ := strconv.Atoi(m[1])
	col, _ := strconv.Atoi(m[2])
	var root yaml.Node
	where := ""
	if yaml.Unmarshal(data, &root) == nil {
		where = nodePath(&root, line, col, "")
	}
	rest := te.Message[len(m[0]):]
	// "apps[0].instances: instances: ..." says the key twice.
	if i := strings.LastIndexByte(where, '.'); i >= 0 && strings.HasPrefix(rest, where[i+1:]+": ") {
		where = where[:i]
	}
	if where == "" {
		return tend.Errorf(te.Code, "%s: %s", path, rest)
	}
	return tend.Errorf(te.Code, "%s: %s: %s", path, where, rest)
}

// nodePath returns the path (apps[0].name) of the node at line:col under
// n, "" if there is none.
func nodePath(n *yaml.Node, line, col int, prefix string) string {
	if n.Line == line && n.Column == col && prefix != "" {
		return prefix
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if p := nodePath(c, line, col, prefix); p != "" {
				return p
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if p := nodePath(c, line, col, fmt.Sprintf("%s[%d]", prefix, i)); p != "" {
				return p
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			name := strings.TrimPrefix(prefix+"."+k.Value, ".")
			if k.Line == line && k.Column == col {
				return name
			}
			if p := nodePath(v, line, col, name); p != "" {
				return p
			}
		}
	}
	return ""
}
