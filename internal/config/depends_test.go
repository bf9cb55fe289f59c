package config

import (
	"slices"
	"testing"

	"github.com/tendhq/tend"
)

func TestDependsOnForms(t *testing.T) {
	deps := func(items ...string) []tend.Dependency {
		var out []tend.Dependency
		for i := 0; i < len(items); i += 2 {
			out = append(out, tend.Dependency{App: items[i], Condition: tend.Condition(items[i+1])})
		}
		return out
	}
	apps := "  - {name: db, script: x}\n  - {name: migrate, script: x, type: task}\n"
	for _, tc := range []struct {
		name, value string
		want        []tend.Dependency
	}{
		{"list: started", "[db, migrate]", deps("db", "started", "migrate", "started")},
		{"one name", "db", deps("db", "started")},
		{"mapping", "{migrate: completed, db: ready}", deps("migrate", "completed", "db", "ready")},
		{"mapping without a condition", "{db: null}", deps("db", "started")},
		{"compose's long form", "{db: {condition: service_healthy}, migrate: {condition: service_completed_successfully}}", deps("db", "ready", "migrate", "completed")},
		{"list of name:condition", "[\"db:ready\"]", deps("db", "ready")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			specs, err := Parse([]byte("apps:\n"+apps+"  - name: web\n    script: x\n    depends_on: "+tc.value+"\n"), "tend.yaml", Options{Cwd: "/"})
			if err != nil {
				t.Fatal(err)
			}
			if got := specs[2].DependsOn; !slices.Equal(got, tc.want) {
				t.Errorf("depends_on = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDependsOnErrors(t *testing.T) {
	for _, tc := range []struct{ name, body, msg string }{
		{"unknown, with a suggestion", "  - {name: postgres, script: x}\n  - {name: web, script: x, depends_on: [postgre]}\n",
			`tend.yaml:3:12: web depends on postgre, which is not an app of the file (did you mean "postgres"?)`},
		{"unknown", "  - {name: db, script: x}\n  - {name: web, script: x, depends_on: [cache]}\n",
			`tend.yaml:3:12: web depends on cache, which is not an app of the file`},
		{"cycle", "  - {name: a, script: x, depends_on: [c]}\n  - {name: b, script: x, depends_on: [a]}\n  - {name: c, script: x, depends_on: [b]}\n",
			"tend.yaml: depends_on cycle: a -> c -> b -> a"},
		{"twice", "  - {name: db, script: x}\n  - {name: web, script: x, depends_on: [db, db]}\n",
			`tend.yaml:3:40: depends_on: db is listed twice (app "web")`},
		{"unknown key in the long form", "  - {name: db, script: x}\n  - {name: web, script: x, depends_on: {db: {restart: true}}}\n",
			`tend.yaml:3:46: depends_on: db: unknown key "restart": give condition: started, ready or completed (app "web")`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte("apps:\n"+tc.body), "tend.yaml", Options{Cwd: "/"})
			checkErr(t, err, tend.EINVALID, tc.msg)
		})
	}
}
