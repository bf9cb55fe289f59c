package tend

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the README's reference of settings")

const (
	refBegin = "<!-- settings: generated from tend.Settings by `go test . -run TestREADMEReference -update` -->\n"
	refEnd   = "<!-- end of settings -->\n"
)

// reference is the README's table of settings, made from Settings.
func reference() string {
	var b strings.Builder
	for _, g := range Groups {
		fmt.Fprintf(&b, "\n**%s**\n\n| file key | flag | example | default | what it does |\n|---|---|---|---|---|\n", strings.ToUpper(g.Title[:1])+g.Title[1:])
		for _, st := range Settings {
			if st.Group != g.ID {
				continue
			}
			key := "`" + st.Key + "`"
			for _, a := range st.Aliases {
				key += ", `" + a + "`"
			}
			fl := ""
			if st.Flag != "" {
				fl = "`--" + st.Flag + "`"
				if st.Short != "" {
					fl = "`-" + st.Short + "`, " + fl
				}
				for _, a := range st.FlagAliases {
					fl += ", `--" + a + "`"
				}
			}
			ex := ""
			if st.Example != "" {
				ex = "`" + st.Example + "`"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", key, fl, ex, cell(st.Default), cell(st.Help))
		}
	}
	return b.String()
}

// cell escapes text for a table cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;").Replace(s)
}

// TestREADMEReference keeps the README's reference of settings in step
// with the table: a setting added to Settings must be documented.
func TestREADMEReference(t *testing.T) {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	i, j := strings.Index(readme, refBegin), strings.Index(readme, refEnd)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the markers of the settings reference:\n%s...\n%s", refBegin, refEnd)
	}
	want := readme[:i+len(refBegin)] + reference() + "\n" + readme[j:]
	if want == readme {
		return
	}
	if *update {
		if err := os.WriteFile("README.md", []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md's settings reference is not the table's: go test . -run TestREADMEReference -update")
}

// Every setting has what the flags, the files, describe and the README
// need, and keys and flags are unique.
func TestSettingsTable(t *testing.T) {
	flags := map[string]bool{}
	for _, st := range Settings {
		if st.Key == "" || st.Help == "" || st.Example == "" || st.set == nil || st.show == nil {
			t.Errorf("setting %q lacks a key, help, example, parser or show", st.Key)
		}
		if !strings.Contains(fmt.Sprint(Groups), st.Group) || st.Group == "" {
			t.Errorf("setting %q: group %q is not in Groups", st.Key, st.Group)
		}
		for _, f := range append([]string{st.Flag, st.Short}, st.FlagAliases...) {
			if f != "" && flags[f] {
				t.Errorf("flag %q is used twice", f)
			}
			flags[f] = true
		}
		var s AppSpec
		if err := st.Apply(&s, Input{Text: st.Example, List: exampleList(&st), Dir: "/"}); err != nil {
			t.Errorf("setting %q: its example %q: %v", st.Key, st.Example, err)
		}
		if v, given := st.Show(&s); !given && st.Key != "env" && st.Key != "time" {
			t.Errorf("setting %q: the example does not show (%q)", st.Key, v)
		}
		s.Name, s.Script, s.Cwd = "a", "a.js", "/"
		if err := s.Validate(); err != nil {
			t.Errorf("setting %q: the example does not validate: %v", st.Key, err)
		}
	}
}

func exampleList(st *Setting) []string {
	if st.Kind == KindEnv {
		return []string{st.Example}
	}
	return nil
}
