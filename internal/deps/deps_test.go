package deps

import (
	"slices"
	"strings"
	"testing"
)

func TestLayers(t *testing.T) {
	for _, tc := range []struct {
		name  string
		nodes []Node
		want  string // layers joined: "a b | c"
		err   string
	}{
		{name: "none", nodes: []Node{{Name: "a"}, {Name: "b"}}, want: "a b"},
		{name: "chain", nodes: []Node{{Name: "web", Needs: []string{"api"}}, {Name: "api", Needs: []string{"db"}}, {Name: "db"}}, want: "db | api | web"},
		{name: "diamond", nodes: []Node{
			{Name: "web", Needs: []string{"migrate", "db"}}, {Name: "migrate", Needs: []string{"db"}}, {Name: "db"}, {Name: "cache"},
		}, want: "db cache | migrate | web"},
		{name: "outside the graph", nodes: []Node{{Name: "web", Needs: []string{"running"}}}, want: "web"},
		{name: "cycle", nodes: []Node{{Name: "db"}, {Name: "web", Needs: []string{"api"}}, {Name: "api", Needs: []string{"web"}}},
			err: "depends_on cycle: web -> api -> web"},
		{name: "longer cycle behind a node", nodes: []Node{{Name: "x", Needs: []string{"a"}}, {Name: "a", Needs: []string{"b"}}, {Name: "b", Needs: []string{"c"}}, {Name: "c", Needs: []string{"a"}}},
			err: "depends_on cycle: a -> b -> c -> a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			layers, err := Layers(tc.nodes)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range layers {
				got = append(got, strings.Join(l, " "))
			}
			if g := strings.Join(got, " | "); g != tc.want {
				t.Errorf("layers = %q, want %q", g, tc.want)
			}
			order, _ := Order(tc.nodes)
			if want := strings.Fields(strings.ReplaceAll(tc.want, "|", "")); !slices.Equal(order, want) {
				t.Errorf("order = %v, want %v", order, want)
			}
		})
	}
}

func TestClosureAndDependents(t *testing.T) {
	nodes := []Node{{Name: "migrate", Needs: []string{"db"}}, {Name: "db"}, {Name: "web", Needs: []string{"migrate", "db"}}, {Name: "worker", Needs: []string{"db"}}, {Name: "cache"}}
	if got := Closure(nodes, []string{"web"}); !slices.Equal(got, []string{"migrate", "db", "web"}) {
		t.Errorf("Closure(web) = %v", got)
	}
	if got := Closure(nodes, []string{"cache", "nosuch"}); !slices.Equal(got, []string{"cache"}) {
		t.Errorf("Closure(cache) = %v", got)
	}
	if got := Dependents(nodes, "db"); !slices.Equal(got, []string{"migrate", "web", "worker"}) {
		t.Errorf("Dependents(db) = %v", got)
	}
	if got := Dependents(nodes, "web"); len(got) != 0 {
		t.Errorf("Dependents(web) = %v", got)
	}
}
