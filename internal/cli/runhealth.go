package cli

import (
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/daemon"
	"github.com/tendhq/tend/internal/podhealth"
)

// podFlags are the flags of tend run for a pod's PID 1: the probes it
// answers and how it stops.
type podFlags struct {
	healthAddr, drainDelay, readyMin string
	erroredFailsLivez                bool
}

func (p *podFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&p.healthAddr, "health-addr", "",
		"serve /livez, /readyz and /startupz on this host:port for the orchestrator's probes (a host left out means 127.0.0.1; in Kubernetes give 0.0.0.0:PORT)")
	fs.StringVar(&p.drainDelay, "drain-delay", "",
		"after SIGTERM, fail /readyz for this `duration` before the apps stop, so that the pod leaves the Service while it still serves (default 5s with --health-addr, 0 without: nothing would notice)")
	fs.StringVar(&p.readyMin, "ready-min", "100%",
		"the share of each app's instances that must be ready for /readyz, such as 50%")
	fs.BoolVar(&p.erroredFailsLivez, "errored-fails-livez", false,
		"fail /livez while an instance is errored (tend gave up restarting it), so that the kubelet restarts the pod")
}

// pod checks the flags and returns what the daemon is run with; nothing
// has started yet.
func (p *podFlags) pod() (daemon.Pod, error) {
	pod := daemon.Pod{HealthAddr: p.healthAddr, DrainDelay: -1,
		Options: podhealth.Options{ErroredFailsLivez: p.erroredFailsLivez}}
	if p.drainDelay != "" {
		d, err := tend.ParseDuration(p.drainDelay)
		if err != nil {
			return pod, usageErr("--drain-delay %q: %v", p.drainDelay, err)
		}
		pod.DrainDelay = d.D()
	}
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(p.readyMin), "%"))
	if err != nil || n < 1 || n > 100 {
		return pod, usageErr("--ready-min %q is not a percentage from 1%% to 100%%, such as 50%%", p.readyMin)
	}
	pod.ReadyMin = n
	return pod, nil
}

// withoutLogFiles makes the apps of specs write no log files unless they
// name one: under tend run their lines go to its stdout and stderr, which
// the container runtime keeps, and files would only fill the container's
// disk. (The daemon still keeps each instance's recent lines for tend logs.)
func withoutLogFiles(specs []tend.AppSpec) {
	for i := range specs {
		s := &specs[i]
		if s.OutFile == "" {
			s.OutFile = "/dev/null"
		}
		if s.ErrorFile == "" {
			s.ErrorFile = "/dev/null"
		}
	}
}

// drainHelp is what tend run's help says about probes and the stop.
var drainHelp = `
In a Kubernetes pod, --health-addr serves the probes:
  /livez     tend's supervision answers (each app's goroutine within ` + podhealth.LiveBound.String() + `);
             with --errored-fails-livez, no instance is errored either
  /readyz    no stop has begun and every app has --ready-min of its
             instances online and ready; a crash-looping instance (waiting
             to restart, or errored) is not ready
  /startupz  /readyz has succeeded once
Each answers 200 or 503 with a JSON body saying why ({"ok":..., "reason":
..., "apps": [...] for /readyz}). On SIGTERM, /readyz fails first, tend
waits --drain-delay, then stops every app as tend stop does; a second
signal skips what is left of the delay. tend run ends within the drain
delay + the largest kill_timeout (with depends_on, the sum over its layers,
which stop one after another) + ` + daemon.StopMargin.String() + `: what still runs a second
before that is SIGKILLed, and it exits 1. Set terminationGracePeriodSeconds
to at least that sum (the default 30 s covers 5s + 5s + ` + daemon.StopMargin.String() + `).`
