package config

import (
	"errors"
	"testing"

	"github.com/tendhq/tend"
)

// FuzzParse checks that no input makes Parse panic, and that every failure
// is an EINVALID *tend.Error.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"apps:\n  - script: a.js\n    instances: max\n",
		"x-a: &a {kill_timeout: 1s}\napps: [{<<: *a, script: b}]\n",
		"x: &a {<<: *a}\n",
		`{"apps": [{"script": "a", "env": {"A": 1}}]}`,
		"- script: python3 'a b.py'\n  args: \"x 'y\"\n",
	} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, isJSON bool) {
		name := "f.yaml"
		if isJSON {
			name = "f.json"
		}
		_, err := Parse(data, name, Options{})
		if err != nil {
			if te, ok := errors.AsType[*tend.Error](err); !ok || te.Code != tend.EINVALID {
				t.Fatalf("error %v is not EINVALID", err)
			}
		}
	})
}
