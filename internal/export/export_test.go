package export

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/config"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// repoRoot is the module's root, which the golden files name /src/tend
// so that they do not depend on where the repository is.
var repoRoot = func() string {
	d, err := filepath.Abs("../..")
	if err != nil {
		panic(err)
	}
	return d
}()

// testOptions are the options the tests export with.
func testOptions(file string) Options {
	return Options{File: file, Image: "registry.example.com/shop:1.0", DrainDelay: 5 * time.Second}
}

// load reads an ecosystem file as tend export does.
func load(t *testing.T, file string, envName string) []tend.AppSpec {
	t.Helper()
	apps, err := config.Load(file, config.Options{EnvName: envName})
	if err != nil {
		t.Fatal(err)
	}
	return apps
}

// exportFile exports file to target and returns the output and the
// warnings.
func exportFile(t *testing.T, target, file string, o Options) (string, []string) {
	t.Helper()
	tg, ok := Lookup(target)
	if !ok {
		t.Fatalf("no target %s", target)
	}
	var out bytes.Buffer
	warnings, err := tg.Export(&out, load(t, file, o.EnvName), o)
	if err != nil {
		t.Fatalf("export %s %s: %v", target, file, err)
	}
	return out.String(), warnings
}

// Every key of tend.Settings is mapped, applied by tend, or listed as
// dropped by every target: a setting added to the table fails here until
// each target says what becomes of it.
func TestEverySettingIsAccountedFor(t *testing.T) {
	for _, tg := range Targets {
		t.Run(tg.Name, func(t *testing.T) {
			keys := map[string]bool{}
			for _, st := range tend.Settings {
				keys[st.Key] = true
				switch tg.Handling[st.Key] {
				case Mapped, ByTend, Dropped:
				default:
					t.Errorf("setting %s is neither mapped, applied by tend nor dropped by %s: add it to its Handling", st.Key, tg.Name)
				}
			}
			for k := range tg.Handling {
				if !keys[k] {
					t.Errorf("%s's Handling names %s, which is not a setting", tg.Name, k)
				}
			}
		})
	}
}

// A setting that a target does not account for, or drops, is warned
// about when an app sets it, never dropped silently; with a command that
// is not tend, so is every setting only tend applies.
func TestUnhandledSettingsAreWarned(t *testing.T) {
	s := tend.AppSpec{Name: "api", Script: "./a.js", Cwd: "/srv", Instances: 1, CronRestart: "@daily", Port: 3000}
	bare := &Target{Name: "bare", Title: "Bare", Handling: map[string]Handling{"name": Mapped, "script": ByTend, "cwd": ByTend, "instances": ByTend, "port": Dropped},
		write: func(*writer, []tend.AppSpec) error { return nil }}
	warnings, err := bare.Export(&bytes.Buffer{}, []tend.AppSpec{s}, Options{File: "tend.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`app "api": port has no Bare equivalent; dropped`,
		`app "api": cron_restart has no Bare equivalent; dropped`,
	}
	if !slices.Equal(warnings, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(warnings, "\n"), strings.Join(want, "\n"))
	}

	warnings, err = kubernetesTarget.Export(&bytes.Buffer{}, []tend.AppSpec{s}, Options{File: "tend.yaml", Image: "x", Command: []string{"node", "a.js"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"script", "cwd", "cron_restart"} {
		w := `app "api": ` + key + ` is applied by tend, and --command does not run tend; dropped`
		if !slices.Contains(warnings, w) {
			t.Errorf("no warning %q in:\n%s", w, strings.Join(warnings, "\n"))
		}
	}
	warnings, _ = kubernetesTarget.Export(&bytes.Buffer{}, []tend.AppSpec{s}, Options{File: "tend.yaml", Image: "x", Command: []string{"/usr/bin/tend", "run", "x.yaml"}})
	for _, w := range warnings {
		if strings.Contains(w, "does not run tend") {
			t.Errorf("a command that runs tend drops nothing: %s", w)
		}
	}
}

// Bad options are errors that name the fix, and nothing is written.
func TestBadOptions(t *testing.T) {
	apps := []tend.AppSpec{{Name: "api", Script: "a.js", Cwd: "/srv", Instances: 1}}
	twins := []tend.AppSpec{{Name: "Api", Script: "a.js", Cwd: "/srv", Instances: 1}, {Name: "api", Script: "b.js", Cwd: "/srv", Instances: 1}}
	for _, c := range []struct {
		name, target string
		apps         []tend.AppSpec
		o            Options
		want         string
	}{
		{"no image", "kubernetes", apps, Options{File: "tend.yaml"}, "--image is required"},
		{"no image compose", "compose", apps, Options{File: "tend.yaml"}, "--image is required"},
		{"blank image", "compose", apps, Options{File: "tend.yaml", Image: "a b"}, "has blanks"},
		{"empty command", "kubernetes", apps, Options{File: "tend.yaml", Image: "x", Command: []string{}}, "--command is empty"},
		{"negative drain", "kubernetes", apps, Options{File: "tend.yaml", Image: "x", DrainDelay: -time.Second}, "must not be negative"},
		{"bad health port", "kubernetes", apps, Options{File: "tend.yaml", Image: "x", HealthPort: 70000}, "--health-port 70000 is not a port"},
		{"one name for two", "kubernetes", twins, Options{File: "tend.yaml", Image: "x"}, `apps "Api" and "api" would both be named "api"`},
		{"relative tend", "systemd", apps, Options{File: "tend.yaml", Tend: "bin/tend"}, "not an absolute path"},
		{"no file", "systemd", apps, Options{}, "no ecosystem file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tg, _ := Lookup(c.target)
			var out bytes.Buffer
			_, err := tg.Export(&out, c.apps, c.o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one with %q", err, c.want)
			}
			if tend.ErrorCode(err) != tend.EINVALID {
				t.Errorf("code %v, want EINVALID", tend.ErrorCode(err))
			}
			if out.Len() > 0 {
				t.Errorf("wrote %q before failing", out.String())
			}
		})
	}
}

// goldenFiles are the ecosystem files the golden tests export: every one
// under examples/, and this package's testdata/every.yaml.
func goldenFiles(t *testing.T) []string {
	var files []string
	err := filepath.WalkDir(filepath.Join(repoRoot, "examples"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && config.IsConfigFile(p) && !strings.Contains(p, "node_modules") {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no ecosystem file under examples/")
	}
	return append(files, filepath.Join(repoRoot, "internal/export/testdata/every.yaml"))
}

// Each ecosystem file, exported to each target, matches its golden file
// under testdata (go test -update rewrites them): the output, then the
// warnings.
func TestGolden(t *testing.T) {
	for _, file := range goldenFiles(t) {
		rel, _ := filepath.Rel(repoRoot, file)
		for _, tg := range Targets {
			name := strings.NewReplacer("/", "-", ".", "-").Replace(rel) + "." + tg.Name
			t.Run(name, func(t *testing.T) {
				o := testOptions(file)
				o.EnvName = "production"
				out, warnings := exportFile(t, tg.Name, file, o)
				got := out + "# warnings:\n"
				for _, w := range warnings {
					got += "# " + w + "\n"
				}
				got = strings.ReplaceAll(got, repoRoot, "/src/tend")
				golden := filepath.Join("testdata", name+".golden")
				if *update {
					if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (go test -update writes it)", err)
				}
				if got != string(want) {
					t.Errorf("export %s %s differs from %s (go test -update rewrites it):\n%s", tg.Name, rel, golden, got)
				}
			})
		}
	}
}

// Another user and cgroup limits need rights tend run may not have where
// it is exported to: said, and the limits reach the pod's resources.
func TestPrivilegesWarned(t *testing.T) {
	s := tend.AppSpec{Name: "api", Script: "./a.js", Cwd: "/srv", Instances: 2, InstancesGiven: true, User: "www-data", MaxMemory: 256 << 20}
	var out bytes.Buffer
	warnings, err := kubernetesTarget.Export(&out, []tend.AppSpec{s}, Options{File: "tend.yaml", Image: "x"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"must be root in the container", "need a cgroup tend run can write"} {
		if !slices.ContainsFunc(warnings, func(w string) bool { return strings.Contains(w, want) }) {
			t.Errorf("no warning %q in:\n%s", want, strings.Join(warnings, "\n"))
		}
	}
	if !strings.Contains(out.String(), "memory: 576Mi") {
		t.Errorf("the pod's memory is not 2 × max_memory + tend's 64Mi:\n%s", out.String())
	}
	warnings, err = systemdTarget.Export(&out, []tend.AppSpec{s}, Options{File: "/srv/tend.yaml", User: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(warnings, func(w string) bool { return strings.Contains(w, "runs tend as bob") }) {
		t.Errorf("systemd --user bob with an app of www-data: no warning in:\n%s", strings.Join(warnings, "\n"))
	}
}
