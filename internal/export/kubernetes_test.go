package export

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tendhq/tend"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// k8sDecode decodes the documents of a Kubernetes export strictly into
// k8s.io/api's types: a field those types lack is an error.
func k8sDecode(t *testing.T, out string) (map[string]appsv1.Deployment, map[string]corev1.Service) {
	t.Helper()
	deps, svcs := map[string]appsv1.Deployment{}, map[string]corev1.Service{}
	for doc := range strings.SplitSeq(out, "\n---\n") {
		var head struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("%v in:\n%s", err, doc)
		}
		switch head.Kind {
		case "Deployment":
			var d appsv1.Deployment
			if err := yaml.UnmarshalStrict([]byte(doc), &d); err != nil {
				t.Fatalf("not an apps/v1 Deployment: %v in:\n%s", err, doc)
			}
			deps[d.Name] = d
		case "Service":
			var s corev1.Service
			if err := yaml.UnmarshalStrict([]byte(doc), &s); err != nil {
				t.Fatalf("not a core/v1 Service: %v in:\n%s", err, doc)
			}
			svcs[s.Name] = s
		default:
			t.Fatalf("a document of kind %q:\n%s", head.Kind, doc)
		}
	}
	return deps, svcs
}

// Every export decodes strictly into apps/v1 and core/v1, and says what
// the apps of testdata/every.yaml ask for.
func TestKubernetesManifests(t *testing.T) {
	for _, file := range goldenFiles(t) {
		out, _ := exportFile(t, "kubernetes", file, testOptions(file))
		k8sDecode(t, out)
	}
	file := filepath.Join("testdata", "every.yaml")
	out, _ := exportFile(t, "kubernetes", file, testOptions(file))
	deps, svcs := k8sDecode(t, out)
	if len(deps) != 3 || len(svcs) != 2 {
		t.Fatalf("%d deployments and %d services, want 3 and 2", len(deps), len(svcs))
	}
	api := deps["api-v2"]
	pod := api.Spec.Template.Spec
	c := pod.Containers[0]
	want := []string{"tend", "run", "every.yaml", "--only", "API_v2", "--health-addr", "[::]:9616", "--drain-delay", "5s", "--errored-fails-livez"}
	if !slices.Equal(c.Command, want) {
		t.Errorf("command %q, want %q", c.Command, want)
	}
	if c.Image != "registry.example.com/shop:1.0" || *api.Spec.Replicas != 1 {
		t.Errorf("image %q, replicas %d", c.Image, *api.Spec.Replicas)
	}
	// tend run's bound: 5s of drain, 20s of kill_timeout, 3s for tend.
	if g := *pod.TerminationGracePeriodSeconds; g != 28 {
		t.Errorf("terminationGracePeriodSeconds %d, want 28", g)
	}
	if c.Lifecycle != nil {
		t.Errorf("lifecycle %+v: tend run waits the drain delay itself", c.Lifecycle)
	}
	// 3 instances: 3 CPUs; 3 x 1G of max_memory_restart and 64Mi for tend.
	for what, rl := range map[string]corev1.ResourceList{"requests": c.Resources.Requests, "limits": c.Resources.Limits} {
		if cpu := rl.Cpu().Value(); cpu != 3 {
			t.Errorf("%s cpu %d, want 3", what, cpu)
		}
		if mem := rl.Memory().Value(); mem != 3<<30+64<<20 {
			t.Errorf("%s memory %d, want %d", what, mem, 3<<30+64<<20)
		}
	}
	// $(HOME) is the app's text, not a reference Kubernetes expands.
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if env["GREETING"] != `say "hi" at 100% $HOME $$(HOME)` || env["PLAIN"] != "1" {
		t.Errorf("env %q", env)
	}
	for _, d := range deps {
		checkTendProbes(t, d, 9616)
	}
	// listen_timeout (3s by default) + 30s, asked every second.
	if n := c.StartupProbe.FailureThreshold; n != 33 {
		t.Errorf("startup probe's failureThreshold %d, want 33", n)
	}
	if api.Labels["app.kubernetes.io/part-of"] != "shop" {
		t.Errorf("labels %v: the namespace is missing", api.Labels)
	}
	svc := svcs["api-v2"]
	if svc.Spec.Selector["app.kubernetes.io/name"] != "api-v2" || svc.Spec.Ports[0].Port != 8080 || svc.Spec.Ports[0].TargetPort.String() != "app" {
		t.Errorf("service %+v", svc.Spec)
	}
	if len(c.Ports) != 2 || c.Ports[0].Name != "app" || c.Ports[0].ContainerPort != 8080 {
		t.Errorf("container ports %+v", c.Ports)
	}
	worker := deps["worker-eu"].Spec.Template.Spec.Containers[0]
	if len(worker.Ports) != 1 || worker.Resources.Limits != nil {
		t.Errorf("worker: ports %+v (want tend's alone), limits %v", worker.Ports, worker.Resources.Limits)
	}
}

// checkTendProbes checks that the pod of d runs tend with its health
// endpoints on port, and that its probes ask them there.
func checkTendProbes(t *testing.T, d appsv1.Deployment, port int) {
	t.Helper()
	c := d.Spec.Template.Spec.Containers[0]
	if addr := fmt.Sprintf("[::]:%d", port); !slices.Contains(c.Command, addr) || c.Command[slices.Index(c.Command, addr)-1] != "--health-addr" {
		t.Errorf("%s: command %q has no --health-addr %s", d.Name, c.Command, addr)
	}
	i := slices.IndexFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "tend-health" })
	if i < 0 || c.Ports[i].ContainerPort != int32(port) {
		t.Fatalf("%s: ports %+v, want tend-health on %d", d.Name, c.Ports, port)
	}
	for path, p := range map[string]*corev1.Probe{"/startupz": c.StartupProbe, "/readyz": c.ReadinessProbe, "/livez": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path || p.HTTPGet.Port.String() != "tend-health" || p.HTTPGet.Scheme != corev1.URISchemeHTTP {
			t.Errorf("%s: probe of %s is %+v, want an HTTP GET on tend-health", d.Name, path, p)
		}
	}
}

// terminationGracePeriodSeconds is tend run's stop bound for what the pod
// runs: with the default command, its app alone (--no-deps), so the drain
// delay + its kill_timeout + daemon.StopMargin; with a --command that may
// run the whole file, the largest kill_timeout of each depends_on layer,
// summed.
func TestKubernetesGrace(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tend.yaml")
	os.WriteFile(file, []byte(`apps:
  - name: db
    script: ./db
    kill_timeout: 4s
    listen_timeout: 20s
  - name: cache
    script: ./cache
    kill_timeout: 9s
  - name: migrate
    type: task
    script: ./migrate
    depends_on: {db: started}
  - name: web
    script: ./web
    port: 3000
    kill_timeout: 20s
    depends_on: {migrate: completed, cache: started}
`), 0o644)
	for _, c := range []struct {
		name    string
		drain   time.Duration
		command []string
		want    map[string]int64
		// startup: the startup probe's failures (one a second) allowed:
		// the listen_timeouts of the layers the pod starts, and 30 s.
		startup map[string]int32
	}{
		{"one app a pod", 5 * time.Second, nil, map[string]int64{"db": 5 + 4 + 3, "cache": 5 + 9 + 3, "migrate": 5 + 5 + 3, "web": 5 + 20 + 3},
			map[string]int32{"db": 20 + 30, "web": 3 + 30}},
		{"no drain", 0, nil, map[string]int64{"db": 4 + 3, "web": 20 + 3}, nil},
		// db and cache (9s), then migrate (5s by default), then web (20s);
		// the command names no --drain-delay, so tend run waits its
		// default 5s, whatever the export's 2s.
		// It starts db and cache (20s), migrate (3s by default), web (3s).
		{"the whole file", 2 * time.Second, []string{"tend", "run", "tend.yaml", "--health-addr", "[::]:9616"}, map[string]int64{"db": 5 + 9 + 5 + 20 + 3, "web": 5 + 9 + 5 + 20 + 3},
			map[string]int32{"db": 20 + 3 + 3 + 30, "web": 20 + 3 + 3 + 30}},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := testOptions(file)
			o.DrainDelay, o.Command = c.drain, c.command
			out, warnings := exportFile(t, "kubernetes", file, o)
			deps, _ := k8sDecode(t, out)
			for app, want := range c.want {
				d := deps[app]
				if g := *d.Spec.Template.Spec.TerminationGracePeriodSeconds; g != want {
					t.Errorf("%s: terminationGracePeriodSeconds %d, want %d", app, g, want)
				}
				checkTendProbes(t, d, 9616)
			}
			for app, want := range c.startup {
				if g := deps[app].Spec.Template.Spec.Containers[0].StartupProbe.FailureThreshold; g != want {
					t.Errorf("%s: startupProbe failureThreshold %d, want %d", app, g, want)
				}
			}
			// depends_on is dropped from a pod of one app, and applied by
			// tend run in a pod of the whole file.
			dropped := slices.ContainsFunc(warnings, func(w string) bool { return strings.Contains(w, "depends_on has no Kubernetes equivalent") })
			if dropped != (c.command == nil) {
				t.Errorf("depends_on dropped: %v, want %v: %q", dropped, c.command == nil, warnings)
			}
			if c.command == nil && !slices.Contains(deps["web"].Spec.Template.Spec.Containers[0].Command, "--no-deps") {
				t.Errorf("web's command %q: want --no-deps, the bound counts web alone", deps["web"].Spec.Template.Spec.Containers[0].Command)
			}
			if slices.ContainsFunc(warnings, func(w string) bool { return strings.Contains(w, "--health-addr") }) {
				t.Errorf("a warning about --health-addr: %q", warnings)
			}
		})
	}
}

// --health-port moves tend's endpoints and the probes; a port an app
// takes is refused; a --command that runs tend without --health-addr is
// warned of, and one that does not run tend gets no probes.
func TestKubernetesHealthPort(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tend.yaml")
	os.WriteFile(file, []byte("apps:\n  - name: web\n    script: ./web.js\n    port: 9616\n"), 0o644)
	o := testOptions(file)
	o.HealthPort = 9700
	out, _ := exportFile(t, "kubernetes", file, o)
	deps, _ := k8sDecode(t, out)
	checkTendProbes(t, deps["web"], 9700)

	tg, _ := Lookup("kubernetes")
	_, err := tg.Export(&bytes.Buffer{}, load(t, file, ""), testOptions(file))
	if err == nil || !strings.Contains(err.Error(), `app "web" has port 9616, where tend run serves the pod's probes: give tend export --health-port another port`) {
		t.Errorf("app on the health port: %v", err)
	}

	o = testOptions(file)
	o.HealthPort, o.Command = 9700, []string{"tend", "run", "tend.yaml"}
	_, warnings := exportFile(t, "kubernetes", file, o)
	if !slices.ContainsFunc(warnings, func(w string) bool {
		return strings.Contains(w, "add --health-addr [::]:9700 --drain-delay 5s --errored-fails-livez")
	}) {
		t.Errorf("no warning about --health-addr: %q", warnings)
	}

	o.Command = []string{"node", "web.js"}
	out, warnings = exportFile(t, "kubernetes", file, o)
	deps, _ = k8sDecode(t, out)
	c := deps["web"].Spec.Template.Spec.Containers[0]
	if c.StartupProbe != nil || c.ReadinessProbe != nil || c.LivenessProbe != nil || len(c.Ports) != 1 {
		t.Errorf("a pod without tend has probes or tend's port: %+v", c)
	}
	if g := *deps["web"].Spec.Template.Spec.TerminationGracePeriodSeconds; g != 5+3 {
		t.Errorf("terminationGracePeriodSeconds %d without a drain, want 8", g)
	}
	if !slices.ContainsFunc(warnings, func(w string) bool { return strings.Contains(w, "no probes and no drain delay") }) {
		t.Errorf("no warning that the pod has no drain: %q", warnings)
	}
}

// A --command that runs tend run with its own --drain-delay or
// --health-addr: the grace period counts the drain delay tend run will
// wait (its own, or tend run's default with --health-addr), never the
// export's flag alone; a health address the probes cannot reach (loopback,
// another port) is warned of.
func TestKubernetesCommandFlags(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tend.yaml")
	os.WriteFile(file, []byte("apps:\n  - name: web\n    script: ./web.js\n    port: 3000\n    kill_timeout: 20s\n"), 0o644)
	for _, c := range []struct {
		name    string
		drain   time.Duration // the export's --drain-delay
		command string
		grace   int64
		warning string
	}{
		{"its own drain delay", 5 * time.Second, "tend run tend.yaml --health-addr 0.0.0.0:9616 --drain-delay 30s", 30 + 20 + 3, ""},
		{"its own drain delay with =", 5 * time.Second, "tend run tend.yaml --health-addr=0.0.0.0:9616 --drain-delay=30s", 30 + 20 + 3, ""},
		{"tend run's default drain delay", 0, "tend run tend.yaml --health-addr 0.0.0.0:9616", 5 + 20 + 3, ""},
		{"loopback", 5 * time.Second, "tend run tend.yaml --health-addr 127.0.0.1:9616 --drain-delay 5s", 5 + 20 + 3, "the kubelet cannot reach"},
		{"no host", 5 * time.Second, "tend run tend.yaml --health-addr :9616 --drain-delay 5s", 5 + 20 + 3, "the kubelet cannot reach"},
		{"another port", 5 * time.Second, "tend run tend.yaml --health-addr 0.0.0.0:8081 --drain-delay 5s", 5 + 20 + 3, "the probes ask port 9616"},
		{"behind an init", 5 * time.Second, "tini -- /usr/local/bin/tend run tend.yaml --health-addr [::]:9616 --drain-delay 30s", 30 + 20 + 3, ""},
		{"in a shell", 5 * time.Second, `sh -c "exec tend run tend.yaml --health-addr [::]:9616 --drain-delay 30s"`, 30 + 20 + 3, ""},
		{"not tend", 5 * time.Second, "node web.js", 20 + 3, "does not run tend"},
		// A script's words end tend run's at its first control operator,
		// also one written against a word.
		{"in a script, ; after", 5 * time.Second, `sh -c "tend run tend.yaml --health-addr [::]:9616 --drain-delay 30s; echo stopped"`, 30 + 20 + 3, ""},
		{"in a script, | after", 5 * time.Second, `sh -c "tend run tend.yaml --health-addr [::]:9616 --drain-delay=30s|tee -a /log/tend"`, 30 + 20 + 3, ""},
		{"in a script, && before", 5 * time.Second, `sh -c "cd /app && exec tend run tend.yaml --health-addr [::]:9616 --drain-delay 30s 2>&1"`, 30 + 20 + 3, ""},
		{"in a script, another command's flags after", 5 * time.Second, `sh -c "tend run tend.yaml --health-addr [::]:9616 && notify --drain-delay 60s"`, 5 + 20 + 3, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := testOptions(file)
			command, err := tend.SplitWords(c.command)
			if err != nil {
				t.Fatal(err)
			}
			o.DrainDelay, o.Command = c.drain, command
			out, warnings := exportFile(t, "kubernetes", file, o)
			deps, _ := k8sDecode(t, out)
			if g := *deps["web"].Spec.Template.Spec.TerminationGracePeriodSeconds; g != c.grace {
				t.Errorf("terminationGracePeriodSeconds %d, want %d: tend run waits its drain delay before the 20s of kill_timeout", g, c.grace)
			}
			warned := slices.ContainsFunc(warnings, func(w string) bool { return c.warning != "" && strings.Contains(w, c.warning) })
			if c.warning != "" && !warned {
				t.Errorf("no warning %q in %q", c.warning, warnings)
			}
			if c.warning == "" && len(warnings) > 0 {
				t.Errorf("warnings %q, want none", warnings)
			}
		})
	}
}
