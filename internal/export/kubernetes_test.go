package export

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

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
	if !slices.Equal(c.Command, []string{"tend", "run", "every.yaml", "--only", "API_v2"}) {
		t.Errorf("command %q", c.Command)
	}
	if c.Image != "registry.example.com/shop:1.0" || *api.Spec.Replicas != 1 {
		t.Errorf("image %q, replicas %d", c.Image, *api.Spec.Replicas)
	}
	// 5s of drain, 20s of kill_timeout, 1s for tend to exit.
	if g := *pod.TerminationGracePeriodSeconds; g != 28 {
		t.Errorf("terminationGracePeriodSeconds %d, want 28", g)
	}
	if c.Lifecycle.PreStop.Sleep.Seconds != 5 {
		t.Errorf("preStop %+v, want a sleep of 5s", c.Lifecycle.PreStop)
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
	if p := c.ReadinessProbe; p == nil || p.TCPSocket == nil || p.TCPSocket.Port.IntValue() != 8080 {
		t.Errorf("readiness probe %+v, want a TCP check of 8080", p)
	}
	lp := c.LivenessProbe
	if lp == nil || lp.Exec == nil || !slices.Equal(lp.Exec.Command, []string{"./check", "--port", "8080", "--deep"}) {
		t.Fatalf("liveness probe %+v, want liveness_exec's command", lp)
	}
	if lp.PeriodSeconds != 2 || lp.TimeoutSeconds != 1 || lp.FailureThreshold != 5 {
		t.Errorf("liveness timing %d/%d/%d, want 2/1/5", lp.PeriodSeconds, lp.TimeoutSeconds, lp.FailureThreshold)
	}
	if api.Labels["app.kubernetes.io/part-of"] != "shop" {
		t.Errorf("labels %v: the namespace is missing", api.Labels)
	}
	svc := svcs["api-v2"]
	if svc.Spec.Selector["app.kubernetes.io/name"] != "api-v2" || svc.Spec.Ports[0].Port != 8080 || svc.Spec.Ports[0].TargetPort.String() != "app" {
		t.Errorf("service %+v", svc.Spec)
	}
	if c.Ports[0].Name != "app" || c.Ports[0].ContainerPort != 8080 {
		t.Errorf("container ports %+v", c.Ports)
	}

	rp := deps["proxied"].Spec.Template.Spec.Containers[0].ReadinessProbe
	if rp == nil || rp.HTTPGet == nil || rp.HTTPGet.Path != "/ready?deep=1" || rp.HTTPGet.Port.IntValue() != 9100 || rp.HTTPGet.Scheme != corev1.URISchemeHTTPS {
		t.Errorf("readiness probe %+v, want ready_url's HTTPS GET on 9100", rp)
	}
	worker := deps["worker-eu"].Spec.Template.Spec.Containers[0]
	if worker.LivenessProbe.TCPSocket.Port.IntValue() != 9000 || worker.Resources.Limits != nil {
		t.Errorf("worker: liveness %+v, limits %v", worker.LivenessProbe, worker.Resources.Limits)
	}
}
