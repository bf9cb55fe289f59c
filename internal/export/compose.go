package export

import (
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/tendhq/tend"
	yaml "go.yaml.in/yaml/v4"
)

// composeTarget writes one compose file with a service per app.
var composeTarget = &Target{
	Name: "compose", Title: "docker compose", needsImage: true,
	write: writeCompose,
	Handling: handling(
		append([]string{"name", "env", "port", "instances", "max_memory_restart", "kill_timeout", "autorestart", "depends_on"}, probeKeys...),
		"namespace"),
}

// The subset of the compose specification tend writes; the tests load
// the output with compose-go.
type (
	composeFile struct {
		Services map[string]composeService `yaml:"services"`
	}
	composeService struct {
		Image           string                       `yaml:"image"`
		Command         []string                     `yaml:"command"`
		Environment     map[string]string            `yaml:"environment,omitempty"`
		Ports           []composePort                `yaml:"ports,omitempty"`
		Healthcheck     *composeHealth               `yaml:"healthcheck,omitempty"`
		StopGracePeriod string                       `yaml:"stop_grace_period"`
		Restart         string                       `yaml:"restart"`
		Deploy          *composeDeployment           `yaml:"deploy,omitempty"`
		DependsOn       map[string]composeDependency `yaml:"depends_on,omitempty"`
	}
	composeDependency struct {
		Condition string `yaml:"condition"`
	}
	composePort struct { // the long form: "3000:3000" would need quotes
		Target    int    `yaml:"target"`
		Published string `yaml:"published"`
		Protocol  string `yaml:"protocol"`
	}
	composeHealth struct {
		Test        []string `yaml:"test"`
		Interval    string   `yaml:"interval,omitempty"`
		Timeout     string   `yaml:"timeout,omitempty"`
		Retries     int      `yaml:"retries,omitempty"`
		StartPeriod string   `yaml:"start_period,omitempty"`
	}
	composeDeployment struct {
		Resources struct {
			Limits       composeResources `yaml:"limits"`
			Reservations composeResources `yaml:"reservations"`
		} `yaml:"resources"`
	}
	composeResources struct {
		CPUs   string `yaml:"cpus,omitempty"`
		Memory string `yaml:"memory,omitempty"`
	}
)

func writeCompose(w *writer, apps []tend.AppSpec) error {
	names, err := w.names(apps, dnsName)
	if err != nil {
		return err
	}
	f := composeFile{Services: map[string]composeService{}}
	for i := range apps {
		s := &apps[i]
		svc := composeService{
			Image:   dollars(w.o.Image),
			Command: dollarsAll(w.command(s, "tend", filepath.Base(w.o.File))),
			// tend run without --health-addr waits no drain delay.
			StopGracePeriod: w.stopBound(s, apps, 0).String(),
			Restart:         "on-failure", // tend run exits 1 when an instance errored
		}
		if !s.AutorestartOn() {
			svc.Restart = "no"
		}
		if len(s.Env) > 0 {
			svc.Environment = map[string]string{}
			for k, v := range s.Env {
				svc.Environment[k] = dollars(v)
			}
		}
		if s.Port != 0 {
			svc.Ports = []composePort{{Target: s.Port, Published: strconv.Itoa(s.Port), Protocol: "tcp"}}
			w.checkHost(s, "the published port")
		}
		svc.Healthcheck = w.composeHealth(s)
		if cpus, memory := resources(s); cpus > 0 || memory > 0 {
			var r composeResources
			if cpus > 0 {
				r.CPUs = strconv.Itoa(cpus)
			}
			if memory > 0 {
				r.Memory = strconv.FormatInt(mebibytes(memory), 10) + "M" // compose's M is MiB
			}
			svc.Deploy = &composeDeployment{}
			svc.Deploy.Resources.Limits, svc.Deploy.Resources.Reservations = r, r
		}
		svc.DependsOn = w.composeDepends(s, apps, names)
		f.Services[names[s.Name]] = svc
	}
	fmt.Fprintf(&w.out, "# compose.yaml: the apps of %s\n", filepath.Base(w.o.File))
	b, err := yaml.Dump(f)
	w.out.Write(b)
	return err
}

// composeDepends is s's depends_on in compose's terms. ready is
// service_healthy, which needs the dependency's healthcheck: without one
// it is service_started, with a warning.
func (w *writer) composeDepends(s *tend.AppSpec, apps []tend.AppSpec, names map[string]string) map[string]composeDependency {
	if len(s.DependsOn) == 0 {
		return nil
	}
	out := map[string]composeDependency{}
	for _, d := range s.DependsOn {
		cond := map[tend.Condition]string{tend.CondStarted: "service_started", tend.CondReady: "service_healthy", tend.CondCompleted: "service_completed_successfully"}[d.Condition]
		if i := slices.IndexFunc(apps, func(a tend.AppSpec) bool { return a.Name == d.App }); d.Condition == tend.CondReady && i >= 0 {
			if dep := &apps[i]; dep.ReadyURL == "" && !dep.HasLiveness() {
				w.warn(s, "depends_on %s: ready needs a healthcheck of %s in compose (ready_url or a liveness probe); service_started instead", d.App, d.App)
				cond = "service_started"
			}
		}
		out[names[d.App]] = composeDependency{Condition: cond}
	}
	return out
}

// composeHealth is the app's healthcheck: its liveness probe, or else
// its ready_url (compose has one check for both). It runs in the
// container, so the host the setting names is used.
//
// It probes the app, not tend run's /readyz as a Kubernetes pod does:
// compose never restarts an unhealthy container and has no Service for a
// stopping one to leave, so a healthcheck serves depends_on's
// service_healthy and docker ps alone, and /readyz would need curl in
// every image, where the app's own probe needs it only for a URL (bash
// for a port, nothing for liveness_exec).
func (w *writer) composeHealth(s *tend.AppSpec) *composeHealth {
	ready, live := w.probes(s)
	p := live
	if p == nil {
		p = ready
	} else if ready != nil {
		w.warn(s, "ready_url: compose has one healthcheck, which checks %s; dropped", live.key)
	}
	if p == nil {
		return nil
	}
	host := p.host
	if host == "" || host == "0.0.0.0" || strings.Contains(host, "$") {
		host = "127.0.0.1"
	}
	var h composeHealth
	switch p.scheme {
	case "exec":
		h.Test = append([]string{"CMD"}, dollarsAll(p.command)...)
	case "tcp":
		h.Test = []string{"CMD", "bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/%s/%d", host, p.port)}
		w.warn(s, "%s: the healthcheck runs bash in the container: the image must have it", p.key)
	default:
		url := fmt.Sprintf("%s://%s%s", p.scheme, net.JoinHostPort(host, strconv.Itoa(p.port)), p.path)
		h.Test = []string{"CMD", "curl", "-fsS", "-o", "/dev/null", dollars(url)}
		w.warn(s, "%s: the healthcheck runs curl in the container: the image must have it", p.key)
	}
	if p == live {
		period, timeout, failures := livenessTiming(s)
		h.Interval, h.Timeout, h.Retries = period.String(), timeout.String(), failures
		if d := s.LivenessDelay.D(); d > 0 {
			h.StartPeriod = d.String()
		}
	}
	return &h
}

// dollars escapes s from compose's interpolation of $VARIABLES: the
// value is the app's, not the shell's that runs compose.
func dollars(s string) string { return strings.ReplaceAll(s, "$", "$$") }

func dollarsAll(l []string) []string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = dollars(s)
	}
	return out
}
