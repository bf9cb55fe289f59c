package export

import (
	"cmp"
	"fmt"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/daemon"
	"github.com/tendhq/tend/internal/deps"
	yaml "go.yaml.in/yaml/v4"
)

// kubernetesTarget writes a Deployment per app, and a Service for each
// app with a port, in the fields of apps/v1 and core/v1.
var kubernetesTarget = &Target{
	Name: "kubernetes", Title: "Kubernetes", needsImage: true,
	write: writeKubernetes,
	Handling: dropping(handling(
		[]string{"name", "namespace", "env", "port", "instances", "max_memory_restart", "kill_timeout"},
		// A Deployment restarts the whole pod, never one instance; tend
		// checks the app's probes, and its /readyz and /livez say so.
		append([]string{"autorestart"}, probeKeys...)...),
		// Deployments start in no order.
		"depends_on"),
}

// The probes of tend run's health endpoints. They read tend's own view of
// the apps, which costs a lock and a list, so they may be asked often.
const (
	// readyPeriod: a pod whose instances stop being ready leaves the
	// Service within two periods.
	readyPeriod = 2
	// probeTimeout: /livez answers within podhealth.LiveBound (500 ms)
	// or fails; the rest is for a loaded node.
	probeTimeout = 2
	// livePeriod, liveFailures: the kubelet restarts the pod when tend's
	// supervision is stuck for 30 s, Kubernetes's own defaults.
	livePeriod, liveFailures = 10, 3
)

// StartupSlack is what an exported pod's startup probe, asked every
// second, allows beyond the app's listen_timeout: tend run's own start,
// an image's cold start of the interpreter, and a first crash and restart
// of an instance.
const StartupSlack = 30 * time.Second

// The subset of Kubernetes objects tend writes, with the API's field
// names; the tests decode the output strictly into k8s.io/api's types.
type (
	k8sObject struct {
		APIVersion string  `yaml:"apiVersion"`
		Kind       string  `yaml:"kind"`
		Metadata   k8sMeta `yaml:"metadata"`
		Spec       any     `yaml:"spec"`
	}
	k8sMeta struct {
		Name   string            `yaml:"name,omitempty"`
		Labels map[string]string `yaml:"labels,omitempty"`
	}
	k8sDeployment struct {
		Replicas int         `yaml:"replicas"`
		Selector k8sSelector `yaml:"selector"`
		Template k8sTemplate `yaml:"template"`
	}
	k8sSelector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	k8sTemplate struct {
		Metadata k8sMeta `yaml:"metadata"`
		Spec     k8sPod  `yaml:"spec"`
	}
	k8sPod struct {
		TerminationGracePeriodSeconds int            `yaml:"terminationGracePeriodSeconds"`
		Containers                    []k8sContainer `yaml:"containers"`
	}
	k8sContainer struct {
		Name           string        `yaml:"name"`
		Image          string        `yaml:"image"`
		Command        []string      `yaml:"command"`
		Env            []k8sEnv      `yaml:"env,omitempty"`
		Ports          []k8sPort     `yaml:"ports,omitempty"`
		StartupProbe   *k8sProbe     `yaml:"startupProbe,omitempty"`
		ReadinessProbe *k8sProbe     `yaml:"readinessProbe,omitempty"`
		LivenessProbe  *k8sProbe     `yaml:"livenessProbe,omitempty"`
		Resources      *k8sResources `yaml:"resources,omitempty"`
	}
	k8sEnv struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	}
	k8sPort struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
		Protocol      string `yaml:"protocol"`
	}
	k8sProbe struct {
		HTTPGet          k8sHTTPGet `yaml:"httpGet"`
		PeriodSeconds    int        `yaml:"periodSeconds"`
		TimeoutSeconds   int        `yaml:"timeoutSeconds"`
		FailureThreshold int        `yaml:"failureThreshold"`
	}
	k8sHTTPGet struct {
		Path   string `yaml:"path"`
		Port   string `yaml:"port"`
		Scheme string `yaml:"scheme"`
	}
	k8sResources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	}
	k8sService struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []k8sServicePort  `yaml:"ports"`
	}
	k8sServicePort struct {
		Name       string `yaml:"name"`
		Port       int    `yaml:"port"`
		TargetPort string `yaml:"targetPort"`
		Protocol   string `yaml:"protocol"`
	}
)

func writeKubernetes(w *writer, apps []tend.AppSpec) error {
	names, err := w.names(apps, dnsName)
	if err != nil {
		return err
	}
	for i := range apps {
		if s := &apps[i]; s.Port == w.o.HealthPort && w.runsTend() {
			return tend.Errorf(tend.EINVALID, "app %q has port %d, where tend run serves the pod's probes: give tend export --health-port another port", s.Name, s.Port)
		}
	}
	for i := range apps {
		s := &apps[i]
		name := names[s.Name]
		labels := map[string]string{"app.kubernetes.io/name": name}
		if s.Namespace != "" {
			labels["app.kubernetes.io/part-of"] = dnsName(s.Namespace)
		}
		objs := []k8sObject{{APIVersion: "apps/v1", Kind: "Deployment", Metadata: k8sMeta{Name: name, Labels: labels}, Spec: w.deployment(s, apps, name, labels)}}
		if s.Port != 0 {
			objs = append(objs, k8sObject{APIVersion: "v1", Kind: "Service", Metadata: k8sMeta{Name: name, Labels: labels},
				Spec: k8sService{Selector: map[string]string{"app.kubernetes.io/name": name},
					Ports: []k8sServicePort{{Name: "app", Port: s.Port, TargetPort: "app", Protocol: "TCP"}}}})
		}
		for _, o := range objs {
			if w.out.Len() > 0 {
				w.out.WriteString("---\n")
			}
			fmt.Fprintf(&w.out, "# %s %s of app %q\n", o.Kind, name, s.Name)
			if o.Kind == "Deployment" && w.runsTend() {
				w.out.WriteString(probesComment)
			}
			b, err := yaml.Dump(o)
			if err != nil {
				return err
			}
			w.out.Write(b)
		}
	}
	return nil
}

// probesComment heads a Deployment whose pod runs tend: where its probes
// and its grace period come from.
var probesComment = `# The probes ask tend run's health endpoints (--health-addr). /readyz holds
# while every instance runs, got ready at its start (listen, wait_ready,
# ready_url) and does not fail its liveness_* probe (tend replaces one that
# does); /livez fails once tend gave up restarting an instance. On SIGTERM
# /readyz fails at once, and tend waits --drain-delay before it stops the
# app. terminationGracePeriodSeconds is tend run's stop bound: the
# drain delay + kill_timeout + ` + daemon.StopMargin.String() + `.
`

// deployment is the spec of app s's Deployment: one pod of tend run.
func (w *writer) deployment(s *tend.AppSpec, apps []tend.AppSpec, name string, labels map[string]string) k8sDeployment {
	c := k8sContainer{Name: name, Image: w.o.Image, Command: refs(w.k8sCommand(s)...), Env: k8sEnvOf(s)}
	if s.Port != 0 {
		c.Ports = []k8sPort{{Name: "app", ContainerPort: s.Port, Protocol: "TCP"}}
		w.checkHost(s, "the Service")
	}
	if !s.AutorestartOn() {
		w.warn(s, "autorestart: false stops tend from restarting an instance, but a Deployment restarts the pod when tend run exits")
	}
	switch {
	case s.IsTask() && w.o.Command != nil && w.runsTend():
		w.warn(s, "type: task: the pod's startup probe allows the apps' listen_timeouts and %s, not the task's run: a longer task fails it", StartupSlack)
	case s.IsTask():
		w.warn(s, "type: task runs to its end once, but a Deployment restarts the pod when tend run exits: run it as a Job or an init container instead")
	}
	drain := w.o.DrainDelay
	if w.runsTend() {
		w.tendProbes(s, apps, &c)
	} else {
		drain = 0 // nothing in the pod fails readiness or waits
		if w.o.DrainDelay > 0 {
			w.warn(s, "--drain-delay: --command does not run tend, which would wait; the pod has no probes and no drain delay")
		}
	}
	if cpus, memory := resources(s); cpus > 0 || memory > 0 {
		r := map[string]string{}
		if cpus > 0 {
			r["cpu"] = strconv.Itoa(cpus)
		}
		if memory > 0 {
			r["memory"] = strconv.FormatInt(mebibytes(memory), 10) + "Mi"
		}
		c.Resources = &k8sResources{Requests: r, Limits: r}
	}
	var d k8sDeployment
	d.Replicas = 1
	d.Selector.MatchLabels = map[string]string{"app.kubernetes.io/name": name}
	d.Template.Metadata = k8sMeta{Labels: labels}
	d.Template.Spec = k8sPod{
		TerminationGracePeriodSeconds: wholeSeconds(w.stopBound(s, apps, drain)),
		Containers:                    []k8sContainer{c},
	}
	return d
}

// k8sCommand is what the pod runs: tend run for app s, serving its health
// endpoints on every address of the pod (the kubelet asks the pod's IP)
// and with the drain delay that the grace period counts on, unless the
// user gave another command.
func (w *writer) k8sCommand(s *tend.AppSpec) []string {
	cmd := w.command(s, "tend", filepath.Base(w.o.File))
	if w.o.Command != nil {
		if w.runsTend() {
			w.checkHealthAddr(s, w.commandFlags().healthAddr)
		}
		return cmd
	}
	return append(cmd, w.healthFlags()...)
}

// healthFlags are what tend run needs to serve the pod's probes: every
// address of the pod (IPv6 and IPv4; tend run falls back to IPv4 alone
// where the pod has no IPv6) on --health-port, the drain delay the grace
// period counts, and /livez failing once an instance is errored, since a
// Deployment restarts whole pods and tend has given up on that instance.
func (w *writer) healthFlags() []string {
	return []string{"--health-addr", net.JoinHostPort("::", strconv.Itoa(w.o.HealthPort)), "--drain-delay", w.o.DrainDelay.String(), "--errored-fails-livez"}
}

// checkHealthAddr warns when addr, the --health-addr of a --command that
// runs tend (nil: none), is not where the pod's probes ask: the kubelet
// asks the pod's IP on --health-port, so loopback (which an address
// without a host binds) or another port fails every probe, and the
// kubelet restarts a pod that never passes its startup probe.
func (w *writer) checkHealthAddr(s *tend.AppSpec, addr *string) {
	fix := strings.Join(w.healthFlags(), " ")
	if addr == nil {
		w.warn(s, "--command runs tend without --health-addr, and the probes ask port %d: add %s to it", w.o.HealthPort, fix)
		return
	}
	host, port, err := net.SplitHostPort(*addr)
	switch ip := net.ParseIP(host); {
	case err != nil:
		w.warn(s, "--command's --health-addr %q is not host:port: give it %s", *addr, fix)
	case host == "" || host == "localhost" || ip != nil && ip.IsLoopback():
		w.warn(s, "--command's --health-addr %s binds loopback, which the kubelet cannot reach: give it %s", *addr, fix)
	case port != strconv.Itoa(w.o.HealthPort):
		w.warn(s, "--command's --health-addr %s is not where the probes ask port %d: give it %s, or tend export --health-port %s", *addr, w.o.HealthPort, fix, port)
	}
}

// tendProbes gives container c tend run's health port and the probes that
// ask it. The startup probe allows the app's listen_timeout for its
// instances to be ready, and StartupSlack.
func (w *writer) tendProbes(s *tend.AppSpec, apps []tend.AppSpec, c *k8sContainer) {
	c.Ports = append(c.Ports, k8sPort{Name: "tend-health", ContainerPort: w.o.HealthPort, Protocol: "TCP"})
	probe := func(path string, period, failures int) *k8sProbe {
		return &k8sProbe{HTTPGet: k8sHTTPGet{Path: path, Port: "tend-health", Scheme: "HTTP"},
			PeriodSeconds: period, TimeoutSeconds: probeTimeout, FailureThreshold: failures}
	}
	// The apps start a depends_on layer at a time, each within its
	// listen_timeout; a task's run is not bounded (warned of).
	listen := deps.LayeredTime(w.runs(s, apps), func(a *tend.AppSpec) time.Duration {
		return cmp.Or(max(a.ListenTimeout.D(), 0), tend.DefaultListenTimeout.D())
	})
	c.StartupProbe = probe("/startupz", 1, wholeSeconds(listen+StartupSlack))
	c.ReadinessProbe = probe("/readyz", readyPeriod, 2)
	c.LivenessProbe = probe("/livez", livePeriod, liveFailures)
}

// k8sEnvOf is the app's environment, in the order of its names.
func k8sEnvOf(s *tend.AppSpec) []k8sEnv {
	var env []k8sEnv
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		env = append(env, k8sEnv{Name: k, Value: refs(s.Env[k])[0]})
	}
	return env
}

// refs escapes the words of l from Kubernetes's expansion of $(VAR) in
// a container's command and env: they are the app's, verbatim.
func refs(l ...string) []string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = strings.ReplaceAll(s, "$(", "$$(")
	}
	return out
}
