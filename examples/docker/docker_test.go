package docker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/config"
	"github.com/tendhq/tend/internal/export"
	"github.com/tendhq/tend/internal/testport"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"
)

// testBound bounds the whole test, podman's commands included: it took
// 12 to 25 s on a loaded 2-core machine, most of the difference being
// whether tend's build was cached.
const testBound = 2 * time.Minute

// The example image, made from a root filesystem built here and imported
// into podman (no registry), runs as the Dockerfile says, and as tend
// export kubernetes runs it.
func TestPodman(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), testBound)
	defer cancel()
	if _, err := exec.LookPath("podman"); err != nil {
		t.Fatal("podman is not installed: .ci/run installs it (apt-get install podman runc iptables)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("this test runs podman as root (rootful: runc, published ports); run it as root, as .ci/run does")
	}
	sweep(ctx)
	name := fmt.Sprintf("%s%d-%d", namePrefix, os.Getpid(), time.Now().UnixNano())
	image := "localhost/" + name
	t.Cleanup(func() {
		// Its own context: the test's may have run out.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		exec.CommandContext(ctx, "podman", "rmi", "--force", image).Run()
	})
	began := time.Now()
	importImage(t, &podman{t: t, ctx: ctx}, image)
	t.Logf("image %s made in %s", image, since(began))

	t.Run("its command", func(t *testing.T) { testImageCommand(t, &podman{t: t, ctx: ctx, name: name + "-cmd"}, image) })
	t.Run("tend export kubernetes", func(t *testing.T) { testKubernetesCommand(t, &podman{t: t, ctx: ctx, name: name + "-k8s"}, image) })
}

// importImage makes image from the example's root filesystem, set up as
// the Dockerfile's last stage says.
func importImage(t *testing.T, p *podman, image string) {
	root := exampleRootfs(t, t.TempDir())
	args := []string{"import", "--quiet"}
	for _, c := range append(dockerfileChanges(t), "ENV HOME=/home/node") { // node:20-slim's environment has it
		args = append(args, "--change", c)
	}
	pr, pw := io.Pipe()
	defer pr.Close() // ends the writer if podman stopped reading
	go func() { pw.CloseWithError(root.writeTar(pw)) }()
	p.ok(pr, append(args, "-", image)...)
}

// stopBound is what tend run may take to stop the image's command: no
// drain delay (no --health-addr), the largest kill_timeout of its apps
// (web's 8 s, slow's default 5 s: one layer) and daemon.StopMargin's 3 s;
// podman is given a second more for its own part.
const stopBound = 8*time.Second + 3*time.Second + time.Second

// The image's own command: tend run is PID 1 as the user node, the Node
// example answers on the published port, and podman stop, while a request
// is in flight, lets it end with its answer, then tend exits 0 within its
// bound and says so in the logs.
func testImageCommand(t *testing.T, p *podman, image string) {
	web, slow := testport.Free(t), testport.Free(t)
	began := time.Now()
	p.run(image, map[int]int{web: 3000, slow: 3001})
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	p.await("the example answering on the published port", func() bool {
		body, err := get(client, fmt.Sprintf("http://127.0.0.1:%d/", web))
		return err == nil && strings.HasPrefix(body, "hello from node")
	})
	p.awaitOnline("web", 2)
	t.Logf("the example answered %s after podman run", since(began))

	// A second app in the same tend run, which answers 1 s after its stop
	// began.
	p.ok(nil, "exec", p.name, "tend", "start", "slow.js", "--name", "slow", "-i", "2", "--port", "3001")
	p.awaitOnline("slow", 2)
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/in-flight", slow))
	if err != nil {
		p.fatal("GET the slow app: %v", err)
	}
	defer resp.Body.Close()
	// Its status and headers are in: the request is in flight.
	stopBegan := time.Now()
	stopped := p.stop()
	body, err := io.ReadAll(resp.Body)
	answered := time.Since(stopBegan)
	// slow.js answers 1 s after its stop began: its whole answer means
	// the stop reached it while the request was in flight and waited.
	if err != nil || resp.StatusCode != 200 || string(body) != "slow answer after the stop began\n" {
		t.Errorf("the request in flight during the stop: status %d, body %q, error %v; want 200 and its whole answer", resp.StatusCode, body, err)
	}
	took := p.stopped(stopped)
	t.Logf("the request in flight was answered %s into the stop; podman stop took %s", answered.Round(time.Millisecond), took.Round(time.Millisecond))
	if took < answered {
		t.Errorf("podman stop ended %s after it began, before the request in flight was answered (%s)", took, answered)
	}
	if took > stopBound {
		t.Errorf("podman stop took %s, more than tend run's bound %s", took, stopBound)
	}
	p.checkExit("slow request /in-flight began", "signal received: stopping every app", "daemon stopped")
}

// The command and the probes of tend export kubernetes, run in the image:
// tend run serves /startupz and /readyz on the port the probes ask,
// reachable from outside the container; on SIGTERM /readyz fails while the
// app still serves, for the drain delay, and the container exits 0 within
// the pod's terminationGracePeriodSeconds.
func testKubernetesCommand(t *testing.T, p *podman, image string) {
	const drain = 3 * time.Second // long enough to see the app serve after /readyz fails on a loaded machine
	specs, err := config.Load("tend.yaml", config.Options{EnvName: "production"})
	if err != nil {
		t.Fatal(err)
	}
	k8s, _ := export.Lookup("kubernetes")
	var out bytes.Buffer
	if _, err := k8s.Export(&out, specs, export.Options{File: "tend.yaml", EnvName: "production", Image: image, DrainDelay: drain}); err != nil {
		t.Fatal(err)
	}
	doc, _, _ := strings.Cut(out.String(), "\n---\n")
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict([]byte(doc), &d); err != nil {
		t.Fatalf("%v in:\n%s", err, doc)
	}
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	grace := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
	ports := map[string]int{}
	for _, cp := range c.Ports {
		ports[cp.Name] = int(cp.ContainerPort)
	}
	path := map[string]string{"startup": c.StartupProbe.HTTPGet.Path, "ready": c.ReadinessProbe.HTTPGet.Path}
	if c.StartupProbe.HTTPGet.Port.String() != "tend-health" || c.ReadinessProbe.HTTPGet.Port.String() != "tend-health" || ports["tend-health"] == 0 {
		t.Fatalf("the probes do not ask the port tend-health: %+v", c)
	}

	web, health := testport.Free(t), testport.Free(t)
	p.run(image, map[int]int{web: ports["app"], health: ports["tend-health"]}, c.Command...)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	probe := func(what string) int {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d%s", health, path[what]))
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	p.await("200 from the startup probe, then the readiness probe", func() bool { return probe("startup") == 200 && probe("ready") == 200 })
	if _, err := get(client, fmt.Sprintf("http://127.0.0.1:%d/", web)); err != nil {
		p.fatal("ready, yet the app does not answer: %v", err)
	}

	stopped := p.stop()
	p.await("503 from the readiness probe after podman stop", func() bool {
		select {
		case s := <-stopped:
			p.fatal("the container stopped (in %s, %v) before /readyz failed", s.took, s.err)
		default:
		}
		return probe("ready") == 503
	})
	if _, err := get(client, fmt.Sprintf("http://127.0.0.1:%d/", web)); err != nil {
		t.Errorf("the app does not answer while /readyz fails in the drain delay: %v", err)
	}
	took := p.stopped(stopped)
	t.Logf("podman stop took %s: a drain delay of %s, and terminationGracePeriodSeconds %s", took.Round(time.Millisecond), drain, grace)
	if took < drain || took > grace {
		t.Errorf("podman stop took %s; want at least the drain delay %s and at most the grace period %s", took, drain, grace)
	}
	p.checkExit("readiness withdrawn; waiting before stopping the apps", "daemon stopped")
}

// podman runs podman's commands for a test, on container name.
type podman struct {
	t    *testing.T
	ctx  context.Context
	name string
}

// ok runs podman with args (and stdin, if not nil) and returns its
// output; a failure fails the test.
func (p *podman) ok(stdin io.Reader, args ...string) string {
	p.t.Helper()
	cmd := exec.CommandContext(p.ctx, "podman", args...)
	cmd.Stdin = stdin
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		p.t.Fatalf("podman %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// run starts container p.name from image, with its ports published on
// loopback (host port: container port) and the command cmd, if any;
// the container is removed when the test ends.
func (p *podman) run(image string, publish map[int]int, cmd ...string) {
	p.t.Helper()
	p.t.Cleanup(func() {
		// Its own context: the test's may have run out.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		exec.CommandContext(ctx, "podman", "rm", "--force", "--time", "0", p.name).Run()
	})
	// runc: crun refuses this machine's hybrid cgroups. The limits:
	// podman's defaults may be above what the host allows a process.
	args := []string{"--runtime", "runc", "run", "--detach", "--name", p.name,
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"}
	for host, ctr := range publish {
		args = append(args, "--publish", fmt.Sprintf("127.0.0.1:%d:%d", host, ctr))
	}
	p.ok(nil, append(append(args, image), cmd...)...)
}

// stopResult is how podman stop went: how long it took, and its error
// with its output.
type stopResult struct {
	took time.Duration
	err  error
}

// stop runs podman stop in the background; the channel receives how it
// went. podman's own timeout, after which it SIGKILLs, is well past
// tend's bound: an exit 0 is tend's. The goroutine never touches p.t, so
// that a test that ended (a Fatal while the stop runs) cannot be failed
// from it, which panics and skips every cleanup.
func (p *podman) stop() <-chan stopResult {
	c := make(chan stopResult, 1)
	began := time.Now()
	go func() {
		out, err := exec.CommandContext(p.ctx, "podman", "stop", "--time", "60", p.name).CombinedOutput()
		if err != nil {
			err = fmt.Errorf("podman stop: %w\n%s", err, out)
		}
		c <- stopResult{took: time.Since(began), err: err}
	}()
	return c
}

// stopped waits for the stop begun with stop and returns how long it
// took; an error fails the test.
func (p *podman) stopped(c <-chan stopResult) time.Duration {
	p.t.Helper()
	s := <-c
	if s.err != nil {
		p.t.Error(s.err)
	}
	return s.took
}

// checkExit checks that the stopped container exited 0 and logged each
// of lines.
func (p *podman) checkExit(lines ...string) {
	p.t.Helper()
	if code := strings.TrimSpace(p.ok(nil, "inspect", "--format", "{{.State.ExitCode}}", p.name)); code != "0" {
		p.t.Errorf("the container exited %s, want 0", code)
	}
	logs := p.logs()
	for _, want := range lines {
		if !strings.Contains(logs, want) {
			p.t.Errorf("podman logs has no %q", want)
		}
	}
	if p.t.Failed() {
		p.t.Logf("the container's logs:\n%s", logs)
	}
}

// logs is what the container printed, stdout and stderr.
func (p *podman) logs() string {
	p.t.Helper()
	out, err := exec.CommandContext(p.ctx, "podman", "logs", p.name).CombinedOutput()
	if err != nil {
		p.t.Fatalf("podman logs: %v\n%s", err, out)
	}
	return string(out)
}

// fatal fails the test with the container's logs.
func (p *podman) fatal(format string, args ...any) {
	p.t.Helper()
	// Its own context: the test's may have run out.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, "podman", "logs", p.name).CombinedOutput()
	p.t.Fatalf(format+"\nthe container's logs:\n%s", append(args, out)...)
}

// await polls cond until it holds, and fails the test past its bound.
func (p *podman) await(what string, cond func() bool) {
	p.t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-p.ctx.Done():
			p.fatal("no %s within the test's bound, %s", what, testBound)
		case <-tick.C:
		}
	}
}

// awaitOnline waits until tend ls in the container shows n instances of
// app online, each run as the user node.
func (p *podman) awaitOnline(app string, n int) {
	p.t.Helper()
	var last []byte
	defer func() {
		if p.t.Failed() {
			p.t.Logf("the last tend ls --json: %s", last)
		}
	}()
	p.await(fmt.Sprintf("%d instances of %s online as node", n, app), func() bool {
		out, err := exec.CommandContext(p.ctx, "podman", "exec", p.name, "tend", "ls", "--json").Output()
		last = out
		var insts []tend.Instance
		if err != nil || json.Unmarshal(out, &insts) != nil {
			return false
		}
		online := 0
		for _, in := range insts {
			if in.Name == app && in.Status == tend.StatusOnline && in.User == "node" {
				online++
			}
		}
		return online == n
	})
}

// get returns the body of a 200 answer to GET url.
func get(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), err
}

func since(t time.Time) time.Duration { return time.Since(t).Round(time.Millisecond) }

// namePrefix begins the names of the test's containers and images, then
// the pid of the test that made them.
const namePrefix = "tend-example-test-"

// sweep removes the containers and images that a test left behind when it
// was killed before its cleanup ran: those whose test process is gone.
func sweep(ctx context.Context) {
	left := func(name string) bool {
		rest, ours := strings.CutPrefix(strings.TrimPrefix(name, "localhost/"), namePrefix)
		pid, _, ok := strings.Cut(rest, "-")
		if !ours || !ok {
			return false
		}
		n, err := strconv.Atoi(pid)
		return err == nil && syscall.Kill(n, 0) == syscall.ESRCH
	}
	for _, list := range []struct{ ls, rm []string }{
		{[]string{"ps", "--all", "--format", "{{.Names}}"}, []string{"rm", "--force", "--time", "0"}},
		{[]string{"images", "--format", "{{.Repository}}"}, []string{"rmi", "--force"}},
	} {
		out, _ := exec.CommandContext(ctx, "podman", list.ls...).Output()
		for name := range strings.FieldsSeq(string(out)) {
			if left(name) {
				exec.CommandContext(ctx, "podman", append(list.rm, name)...).Run()
			}
		}
	}
}
