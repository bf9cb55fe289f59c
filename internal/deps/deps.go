package deps

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tendhq/tend"
)

// Node is one app and the names of the apps it needs.
type Node struct {
	Name  string
	Needs []string
}

// Order returns the names of nodes, each after the nodes it needs, or an
// error naming a cycle.
func Order(nodes []Node) ([]string, error) {
	layers, err := Layers(nodes)
	if err != nil {
		return nil, err
	}
	return slices.Concat(layers...), nil
}

// Layers groups the names of nodes by depth: the first layer needs
// nothing among nodes, each later one needs only earlier ones. A start
// goes through them in order, a stop in reverse; the members of a layer
// may go together. The error names a cycle.
func Layers(nodes []Node) ([][]string, error) {
	in := map[string]bool{}
	for _, n := range nodes {
		in[n.Name] = true
	}
	done := map[string]bool{}
	var layers [][]string
	for len(done) < len(nodes) {
		var layer []string
		for _, n := range nodes {
			if !done[n.Name] && !slices.ContainsFunc(n.Needs, func(d string) bool { return in[d] && !done[d] }) {
				layer = append(layer, n.Name)
			}
		}
		if len(layer) == 0 {
			return nil, fmt.Errorf("depends_on cycle: %s", strings.Join(Cycle(nodes), " -> "))
		}
		for _, name := range layer {
			done[name] = true
		}
		layers = append(layers, layer)
	}
	return layers, nil
}

// Cycle returns a cycle among nodes as a path that ends where it starts
// (web, api, web), or nil when there is none. It starts at the first
// node listed that is on a cycle, and follows needs in the order given.
func Cycle(nodes []Node) []string {
	needs := map[string][]string{}
	for _, n := range nodes {
		needs[n.Name] = n.Needs
	}
	const (
		unseen = iota
		open   // on the current path
		closed // explored: no cycle through it
	)
	state := map[string]int{}
	var path []string
	var visit func(name string) []string
	visit = func(name string) []string {
		switch state[name] {
		case open:
			i := slices.Index(path, name)
			return append(slices.Clone(path[i:]), name)
		case closed:
			return nil
		}
		state[name] = open
		path = append(path, name)
		for _, d := range needs[name] {
			if _, ok := needs[d]; !ok {
				continue // outside the graph
			}
			if c := visit(d); c != nil {
				return c
			}
		}
		path = path[:len(path)-1]
		state[name] = closed
		return nil
	}
	for _, n := range nodes {
		if c := visit(n.Name); c != nil {
			return c
		}
	}
	return nil
}

// Closure returns names and every node they need, directly or not, in the
// order of nodes. Names not among nodes are left out.
func Closure(nodes []Node, names []string) []string {
	needs := map[string][]string{}
	for _, n := range nodes {
		needs[n.Name] = n.Needs
	}
	want := map[string]bool{}
	var add func(name string)
	add = func(name string) {
		if _, ok := needs[name]; !ok || want[name] {
			return
		}
		want[name] = true
		for _, d := range needs[name] {
			add(d)
		}
	}
	for _, n := range names {
		add(n)
	}
	var out []string
	for _, n := range nodes {
		if want[n.Name] {
			out = append(out, n.Name)
		}
	}
	return out
}

// Dependents returns the nodes that need name, directly or not, in the
// order of nodes.
func Dependents(nodes []Node, name string) []string {
	var out []string
	hit := map[string]bool{name: true}
	for changed := true; changed; {
		changed = false
		for _, n := range nodes {
			if !hit[n.Name] && slices.ContainsFunc(n.Needs, func(d string) bool { return hit[d] }) {
				hit[n.Name], changed = true, true
			}
		}
	}
	for _, n := range nodes {
		if hit[n.Name] && n.Name != name {
			out = append(out, n.Name)
		}
	}
	return out
}

// OfApps is the graph of specs' depends_on.
func OfApps(specs []tend.AppSpec) []Node {
	nodes := make([]Node, len(specs))
	for i := range specs {
		nodes[i] = Node{Name: specs[i].Name, Needs: specs[i].Needs()}
	}
	return nodes
}

// LayeredTime is how long a start or a stop of specs that goes a layer of
// depends_on at a time takes, when each layer takes as long as the
// largest of each(app) over its apps. A dependency that is not among
// specs adds nothing; with a cycle, which never starts, every app is one
// layer.
func LayeredTime(specs []tend.AppSpec, each func(*tend.AppSpec) time.Duration) time.Duration {
	layers, err := Layers(OfApps(specs))
	if err != nil {
		layers = [][]string{nil}
		for _, s := range specs {
			layers[0] = append(layers[0], s.Name)
		}
	}
	var total time.Duration
	for _, layer := range layers {
		var largest time.Duration
		for i := range specs {
			if slices.Contains(layer, specs[i].Name) {
				largest = max(largest, each(&specs[i]))
			}
		}
		total += largest
	}
	return total
}
