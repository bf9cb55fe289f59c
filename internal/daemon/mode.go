package daemon

import (
	"cmp"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/config"
	"github.com/tendhq/tend/internal/nodepreload"
	"github.com/tendhq/tend/internal/private"
	"github.com/tendhq/tend/internal/procexec"
	"github.com/tendhq/tend/internal/sockets"
	"github.com/tendhq/tend/internal/supervisor"
)

// normalize checks a spec as it arrives (tend.AppSpec.Validate, the same
// checks as the CLI's and the file's) and completes what the daemon needs.
func normalize(s *tend.AppSpec) error {
	if err := s.Validate(); err != nil {
		return err
	}
	s.Instances = max(s.Instances, 1)
	return nil
}

// chooseMode settles how the instances of spec share its port, in r (the
// spec keeps what the user asked): Node scripts get the Node cluster
// protocol (with a port, more than one instance, or a count the user
// gave, as PM2 does), anything else with a port gets socket activation;
// the rest is a plain fork.
func chooseMode(s *tend.AppSpec, r *supervisor.Resolved) error {
	r.Mode, r.Sched = s.ExecMode, s.Sched
	switch r.Mode {
	case "":
		switch {
		case r.Node && (s.Port > 0 || s.Instances > 1 || s.InstancesGiven):
			r.Mode = tend.ModeCluster
		case s.Port > 0:
			r.Mode = tend.ModeSocket
		default:
			r.Mode = tend.ModeFork
		}
	case tend.ModeFork:
	case tend.ModeCluster:
		if !r.Node {
			return tend.Errorf(tend.EINVALID, "app %s: cluster mode speaks Node's cluster protocol and %s is not a Node script; use --exec-mode socket (the app takes fd 3) or proxy (the app listens on $PORT)", s.Name, s.Script)
		}
	case tend.ModeSocket, tend.ModeProxy:
		if s.Port == 0 {
			return tend.Errorf(tend.EINVALID, "app %s: %s mode needs --port: the port the instances share", s.Name, r.Mode)
		}
	default:
		return tend.Errorf(tend.EINVALID, "app %s: exec mode %q is not one of fork, cluster, socket, proxy", s.Name, r.Mode)
	}
	valid := map[tend.Mode][]tend.Sched{
		tend.ModeCluster: {tend.SchedRoundRobin, tend.SchedShared, tend.SchedSticky, tend.SchedReusePort},
		tend.ModeSocket:  {tend.SchedShared, tend.SchedReusePort},
		tend.ModeProxy:   {tend.SchedRoundRobin, tend.SchedLeastConn, tend.SchedSticky},
	}[r.Mode]
	if r.Mode == tend.ModeFork {
		if r.Sched != "" {
			return tend.Errorf(tend.EINVALID, "app %s: --sched applies only when instances share a port (--port)", s.Name)
		}
		return nil
	}
	if r.Sched == "" {
		r.Sched = valid[0]
	}
	if !slices.Contains(valid, r.Sched) {
		choices := fmt.Sprint(valid) // [rr shared]
		return tend.Errorf(tend.EINVALID, "app %s: scheduling %q is not available in %s mode (choose %s)", s.Name, r.Sched, r.Mode,
			strings.ReplaceAll(strings.Trim(choices, "[]"), " ", " or "))
	}
	return nil
}

// reusePortNote makes sure, for an app with --sched reuseport, that the
// kernel moves the connections queued on an instance's socket to another
// instance's when it closes, and says what the user should know about it
// (sockets.EnableMigration), in the start's output and the daemon's log.
func (d *Daemon) reusePortNote(s *tend.AppSpec, sched tend.Sched) string {
	if sched != tend.SchedReusePort {
		return ""
	}
	n := sockets.EnableMigration("")
	if n == "" {
		return ""
	}
	d.log.Warn("sched reuseport", "app", s.Name, "note", n)
	return s.Name + ": " + n
}

// readyURLWarning warns of a ready_url on the port the instances share in
// socket mode: any instance may answer there, so during a reload an old
// one answers for the new one, which counts as ready before it is. (Proxy
// mode probes each instance's own port; cluster mode hands the probe's
// connection to the worker it judges.) A warning, not an error: apps saved
// with one must still come back at boot.
func readyURLWarning(s *tend.AppSpec, mode tend.Mode) string {
	if s.ReadyURL == "" || mode != tend.ModeSocket || !onSharedPort(s, s.ReadyURL) {
		return ""
	}
	return fmt.Sprintf("%s: ready_url %s probes port %d, which every instance shares in %s mode: during a reload an old instance "+
		"answers for the new one, which then counts as ready before it is; have the app say it is ready (sd_notify READY=1, or "+
		"--wait-ready and process.send('ready')), probe a port of each instance's own, or use --exec-mode proxy, which probes each instance",
		s.Name, s.ReadyURL, s.Port, mode)
}

// livenessWarning warns of a liveness probe of the port the instances
// share in socket mode: the kernel picks which instance answers, so the
// probe may judge one by another's answer. (Cluster mode hands the probe's
// connection to the worker it judges; proxy mode probes each instance's
// own port.)
func livenessWarning(s *tend.AppSpec, mode tend.Mode) string {
	target := cmp.Or(s.LivenessHTTP, s.LivenessTCP)
	if mode != tend.ModeSocket || target == "" || !onSharedPort(s, target) {
		return ""
	}
	return fmt.Sprintf("%s: the liveness probe %s reaches port %d, which every instance shares in socket mode: whichever instance "+
		"the kernel picks answers for the one probed; use --liveness-exec, the watchdog (--watchdog), a port of each instance's own, "+
		"or --exec-mode proxy, which probes each instance", s.Name, target, s.Port)
}

// onSharedPort reports whether a probe target (a URL or host:port) is the
// app's shared port: the port itself, or $PORT, which is it in cluster
// and socket modes.
func onSharedPort(s *tend.AppSpec, target string) bool {
	if s.Port == 0 {
		return false
	}
	rest := target
	if _, after, ok := strings.Cut(rest, "://"); ok {
		rest = after
	}
	hostport, _, _ := strings.Cut(rest, "/")
	_, port, err := net.SplitHostPort(hostport)
	return err == nil && (port == "$PORT" || port == "${PORT}" || port == strconv.Itoa(s.Port))
}

// envFiles reads spec's env_file list; ${VAR} in them is an earlier
// variable of the files, else the shell's that started the app. An app
// that runs as another user (cred) gets only files that user can read.
func envFiles(spec *tend.AppSpec, cred *procexec.Cred) (map[string]string, error) {
	if len(spec.EnvFile) == 0 {
		return nil, nil
	}
	var as *private.User
	if cred != nil {
		as = &private.User{UID: cred.UID, GID: cred.GID, Groups: cred.Groups}
	}
	shell := tend.EnvMap(spec.BaseEnv)
	env, err := config.LoadEnvFiles(spec.EnvFile, spec.Cwd, as, func(k string) (string, bool) {
		v, ok := shell[k]
		return v, ok
	})
	if err != nil {
		return nil, tend.Causef(err, tend.ErrorCode(err), "app %s: %v", spec.Name, err)
	}
	return env, nil
}

// checkNodeCluster verifies, once per node binary, that tend can be its
// cluster primary. If not, an app with --port falls back to socket mode
// with the listen preload, and the returned note says so; without a port
// there is nothing to fall back to.
func (d *Daemon) checkNodeCluster(s *tend.AppSpec, r *supervisor.Resolved) (string, error) {
	if r.Mode != tend.ModeCluster {
		return "", nil
	}
	err := nodepreload.Check(r.Path, tend.Home(d.home).Run())
	if err == nil {
		return "", nil
	}
	d.log.Warn("Node's cluster protocol failed tend's check", "node", r.Path, "err", err)
	if s.Port == 0 && s.Instances <= 1 {
		// A cluster only because -i was given: one process does as well.
		r.Mode, r.Sched = tend.ModeFork, ""
		return fmt.Sprintf("%s: Node's cluster protocol failed tend's check (%v): running in fork mode", s.Name, err), nil
	}
	if s.Port == 0 {
		return "", tend.Errorf(tend.EFAILED, "app %s: tend cannot be the cluster primary of %s (%v); give --port so its instances can share the port through socket activation instead", s.Name, r.Path, err)
	}
	r.Mode, r.Sched = tend.ModeSocket, tend.SchedShared
	return fmt.Sprintf("%s: Node's cluster protocol failed tend's check (%v): running in socket mode, with a preload that hands listen(%d) the shared socket", s.Name, err, s.Port), nil
}
