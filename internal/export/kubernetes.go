package export

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tendhq/tend"
	yaml "go.yaml.in/yaml/v4"
)

// kubernetesTarget writes a Deployment per app, and a Service for each
// app with a port, in the fields of apps/v1 and core/v1.
var kubernetesTarget = &Target{
	Name: "kubernetes", Title: "Kubernetes", needsImage: true,
	write: writeKubernetes,
	Handling: dropping(handling(
		append([]string{"name", "namespace", "env", "port", "instances", "max_memory_restart", "kill_timeout"}, probeKeys...),
		// A Deployment restarts the whole pod, never one instance.
		"autorestart"),
		// Deployments start in no order.
		"depends_on"),
}

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
		ReadinessProbe *k8sProbe     `yaml:"readinessProbe,omitempty"`
		LivenessProbe  *k8sProbe     `yaml:"livenessProbe,omitempty"`
		Lifecycle      *k8sLifecycle `yaml:"lifecycle,omitempty"`
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
		HTTPGet             *k8sHTTPGet `yaml:"httpGet,omitempty"`
		TCPSocket           *k8sTCP     `yaml:"tcpSocket,omitempty"`
		Exec                *k8sExec    `yaml:"exec,omitempty"`
		InitialDelaySeconds int         `yaml:"initialDelaySeconds,omitempty"`
		PeriodSeconds       int         `yaml:"periodSeconds,omitempty"`
		TimeoutSeconds      int         `yaml:"timeoutSeconds,omitempty"`
		FailureThreshold    int         `yaml:"failureThreshold,omitempty"`
	}
	k8sHTTPGet struct {
		Path   string `yaml:"path"`
		Port   int    `yaml:"port"`
		Scheme string `yaml:"scheme"`
	}
	k8sTCP struct {
		Port int `yaml:"port"`
	}
	k8sExec struct {
		Command []string `yaml:"command"`
	}
	k8sLifecycle struct {
		PreStop struct {
			Sleep struct {
				Seconds int `yaml:"seconds"`
			} `yaml:"sleep"`
		} `yaml:"preStop"`
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
		s := &apps[i]
		name := names[s.Name]
		labels := map[string]string{"app.kubernetes.io/name": name}
		if s.Namespace != "" {
			labels["app.kubernetes.io/part-of"] = dnsName(s.Namespace)
		}
		objs := []k8sObject{{APIVersion: "apps/v1", Kind: "Deployment", Metadata: k8sMeta{Name: name, Labels: labels}, Spec: w.deployment(s, name, labels)}}
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
			b, err := yaml.Dump(o)
			if err != nil {
				return err
			}
			w.out.Write(b)
		}
	}
	return nil
}

// deployment is the spec of app s's Deployment: one pod of tend run.
func (w *writer) deployment(s *tend.AppSpec, name string, labels map[string]string) k8sDeployment {
	c := k8sContainer{Name: name, Image: w.o.Image, Command: refs(w.command(s, "tend", filepath.Base(w.o.File))...), Env: k8sEnvOf(s)}
	if s.Port != 0 {
		c.Ports = []k8sPort{{Name: "app", ContainerPort: s.Port, Protocol: "TCP"}}
		w.checkHost(s, "the Service")
	}
	if !s.AutorestartOn() {
		w.warn(s, "autorestart: false stops tend from restarting an instance, but a Deployment restarts the pod when tend run exits")
	}
	if s.IsTask() {
		w.warn(s, "type: task runs to its end once, but a Deployment restarts the pod when tend run exits: run it as a Job or an init container instead")
	}
	ready, live := w.probes(s)
	if ready != nil {
		c.ReadinessProbe = w.k8sProbe(s, *ready)
	} else if s.Port != 0 {
		// The port accepts once tend holds it: in cluster mode, once a
		// worker has asked to listen.
		c.ReadinessProbe = &k8sProbe{TCPSocket: &k8sTCP{Port: s.Port}}
	}
	if live != nil {
		c.LivenessProbe = w.k8sProbe(s, *live)
		period, timeout, failures := livenessTiming(s)
		c.LivenessProbe.PeriodSeconds = w.seconds(s, "liveness_period", period, 1)
		c.LivenessProbe.TimeoutSeconds = w.seconds(s, "liveness_timeout", timeout, 1)
		c.LivenessProbe.FailureThreshold = failures
		c.LivenessProbe.InitialDelaySeconds = w.seconds(s, "liveness_initial_delay", s.LivenessDelay.D(), 0)
	}
	drain := 0
	if w.o.DrainDelay > 0 {
		drain = w.seconds(s, "--drain-delay", w.o.DrainDelay, 1)
		c.Lifecycle = &k8sLifecycle{}
		c.Lifecycle.PreStop.Sleep.Seconds = drain
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
		TerminationGracePeriodSeconds: drain + w.seconds(s, "kill_timeout", killTimeout(s), 1) + int(exitTime/time.Second),
		Containers:                    []k8sContainer{c},
	}
	return d
}

// k8sProbe is p as the kubelet runs it: against the pod's address, so
// the host p names is not used.
func (w *writer) k8sProbe(s *tend.AppSpec, p probe) *k8sProbe {
	switch p.scheme {
	case "exec":
		return &k8sProbe{Exec: &k8sExec{Command: p.command}}
	case "tcp":
		return &k8sProbe{TCPSocket: &k8sTCP{Port: p.port}}
	}
	if strings.Contains(p.path, "$") {
		w.warn(s, "%s: Kubernetes does not expand the variables in the path %s", p.key, p.path)
	}
	return &k8sProbe{HTTPGet: &k8sHTTPGet{Path: p.path, Port: p.port, Scheme: strings.ToUpper(p.scheme)}}
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
