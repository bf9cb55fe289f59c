package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/testport"
)

// testBound bounds the whole test, podman's commands included: it takes
// about 15 s on an idle 2-core machine (see the report in the test's
// log), and a loaded one may take a few times that.
const testBound = 2 * time.Minute

// stopBound is what tend run may take to stop this container: no drain
// delay (no --health-addr), the largest kill_timeout of its apps (web's
// 8 s, slow's default 5 s: one layer) and daemon.StopMargin's 3 s; podman
// is given a second more for its own part.
const stopBound = 8*time.Second + 3*time.Second + time.Second

// The example image, made from a root filesystem built here and imported
// into podman (no registry), runs as the Dockerfile says: tend run is PID
// 1 as the user node, the Node example answers on the published port, and
// podman stop, while a request is in flight, lets it end with its answer,
// then tend exits 0 within its bound and says so in the logs.
func TestPodman(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), testBound)
	defer cancel()
	if _, err := exec.LookPath("podman"); err != nil {
		t.Fatal("podman is not installed: .ci/run installs it (apt-get install podman runc iptables)")
	}
	name := fmt.Sprintf("tend-example-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	p := &podman{t: t, ctx: ctx, name: name}
	image := "localhost/" + name
	t.Cleanup(func() {
		// Its own context: the test's may have run out.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		exec.CommandContext(ctx, "podman", "rm", "--force", "--time", "0", name).Run()
		exec.CommandContext(ctx, "podman", "rmi", "--force", image).Run()
	})

	began := time.Now()
	root := exampleRootfs(t, t.TempDir())
	importArgs := []string{"import", "--quiet"}
	for _, c := range append(dockerfileChanges(t), "ENV HOME=/home/node") { // node:20-slim's environment has it
		importArgs = append(importArgs, "--change", c)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(root.writeTar(pw)) }()
	p.ok(pr, append(importArgs, "-", image)...)
	t.Logf("image %s made in %s", image, since(began))

	web, slow := testport.Free(t), testport.Free(t)
	began = time.Now()
	// runc: crun refuses this machine's hybrid cgroups. The limits:
	// podman's defaults may be above what the host allows a process.
	p.ok(nil, "--runtime", "runc", "run", "--detach", "--name", name,
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096",
		"--publish", fmt.Sprintf("127.0.0.1:%d:3000", web), "--publish", fmt.Sprintf("127.0.0.1:%d:3001", slow), image)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	p.await("the example answering on the published port", func() bool {
		body, err := get(client, fmt.Sprintf("http://127.0.0.1:%d/", web))
		return err == nil && strings.HasPrefix(body, "hello from node")
	})
	p.awaitOnline("web", 2)
	t.Logf("the example answered %s after podman run", since(began))

	// A second app in the same tend run, which answers after 2 s.
	p.ok(nil, "exec", name, "tend", "start", "slow.js", "--name", "slow", "-i", "2", "--port", "3001")
	p.awaitOnline("slow", 2)
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/in-flight", slow))
	if err != nil {
		p.fatal("GET the slow app: %v", err)
	}
	defer resp.Body.Close()
	// Its status and headers are in: the request is in flight.
	stopped := make(chan time.Duration, 1)
	stopBegan := time.Now()
	go func() {
		// podman's own timeout, after which it SIGKILLs, is well past
		// tend's bound: an exit 0 is tend's.
		out, err := exec.CommandContext(ctx, "podman", "stop", "--time", "60", name).CombinedOutput()
		if err != nil {
			t.Errorf("podman stop: %v\n%s", err, out)
		}
		stopped <- time.Since(stopBegan)
	}()
	body, err := io.ReadAll(resp.Body)
	answered := time.Since(stopBegan)
	if err != nil || resp.StatusCode != 200 || string(body) != "slow answer\n" {
		t.Errorf("the request in flight during the stop: status %d, body %q, error %v; want 200 and its whole answer", resp.StatusCode, body, err)
	}
	took := <-stopped
	t.Logf("the request in flight was answered %s into the stop; podman stop took %s", answered.Round(time.Millisecond), took.Round(time.Millisecond))
	if took < answered {
		t.Errorf("podman stop ended %s after it began, before the request in flight was answered (%s)", took, answered)
	}
	if took > stopBound {
		t.Errorf("podman stop took %s, more than tend run's bound %s", took, stopBound)
	}
	if code := strings.TrimSpace(p.ok(nil, "inspect", "--format", "{{.State.ExitCode}}", name)); code != "0" {
		t.Errorf("the container exited %s, want 0", code)
	}
	logs := p.logs()
	for _, want := range []string{"slow request /in-flight began", "signal received: stopping every app", "daemon stopped"} {
		if !strings.Contains(logs, want) {
			t.Errorf("podman logs has no %q", want)
		}
	}
	if t.Failed() {
		t.Logf("the container's logs:\n%s", logs)
	}
}

// podman runs podman's commands on container name for a test.
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
