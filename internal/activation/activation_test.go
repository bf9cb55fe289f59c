package activation

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tendhq/tend/internal/sockets"
)

// helperEnv selects a helper role when the test binary runs as an app.
const helperEnv = "TEND_ACTIVATION_HELPER"

// TestMain lets the test binary play both parts: the shim (as tend's
// binary would, dispatching on ShimArg) and a Go app receiving sockets.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == ShimArg {
		os.Exit(Main(os.Args[2:], os.Stderr))
	}
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "listeners":
		lns, err := Listeners()
		left := os.Getenv(envPID) + os.Getenv(envFDs) + os.Getenv(envNames)
		fmt.Printf("n=%d err=%v env=%q\n", len(lns), err, left)
		if len(lns) > 0 {
			// Answer one connection with our pid, proving the socket works.
			c, err := lns[0].Accept()
			if err == nil {
				fmt.Fprintf(c, "%d\n", os.Getpid())
				c.Close()
			}
		}
	case "named":
		named, err := Named()
		var parts []string
		for name, ls := range named {
			parts = append(parts, fmt.Sprintf("%s=%d", name, len(ls)))
		}
		slices.Sort(parts)
		fmt.Printf("%s err=%v\n", strings.Join(parts, ","), err)
	}
	os.Exit(0)
}

// start runs argv through the shim with files at fds 3, 4, ... and env
// added to a clean environment. It returns the process and its stdout.
func start(t *testing.T, argv, env []string, files ...*os.File) (*exec.Cmd, *bufio.Reader, *strings.Builder) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	cmd := exec.CommandContext(ctx, os.Args[0], append([]string{ShimArg, "--"}, argv...)...)
	cmd.Env = append(StripEnv(os.Environ()), env...)
	cmd.ExtraFiles = files
	stderr := new(strings.Builder)
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		cancel()
	})
	return cmd, bufio.NewReader(out), stderr
}

// listen returns a shared listening socket and a duplicate for a child.
func listen(t *testing.T) (*net.TCPListener, *os.File) {
	t.Helper()
	ln, err := sockets.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln, dup(t, ln)
}

func dup(t *testing.T, ln *net.TCPListener) *os.File {
	t.Helper()
	f, err := sockets.DupFD(ln)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func readLine(t *testing.T, r *bufio.Reader, stderr *strings.Builder) string {
	t.Helper()
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("reading child output: %v (stderr: %s)", err, stderr)
	}
	return strings.TrimSpace(line)
}

func TestEnv(t *testing.T) {
	got := Env([]string{"web", "admin"})
	want := []string{"LISTEN_FDS=2", "LISTEN_FDNAMES=web:admin"}
	if !slices.Equal(got, want) {
		t.Errorf("Env = %q, want %q", got, want)
	}
}

func TestStripEnv(t *testing.T) {
	in := []string{"PATH=/bin", "LISTEN_PID=1", "LISTEN_FDS=1", "LISTEN_FDNAMES=x", "LISTEN_PIDFDID=9", "LISTEN_PORT=80", "HOME=/root"}
	want := []string{"PATH=/bin", "LISTEN_PORT=80", "HOME=/root"}
	if got := StripEnv(in); !slices.Equal(got, want) {
		t.Errorf("StripEnv = %q, want %q", got, want)
	}
	if in[1] != "LISTEN_PID=1" {
		t.Error("StripEnv modified its argument")
	}
}

// TestGoListeners runs a Go app through the shim and checks that it finds
// its socket, that LISTEN_PID matched its own pid, and that the variables
// are gone afterwards.
func TestGoListeners(t *testing.T) {
	ln, f := listen(t)
	env := append(Env([]string{"web"}), helperEnv+"=listeners")
	cmd, out, stderr := start(t, []string{os.Args[0]}, env, f)
	if got := readLine(t, out, stderr); got != `n=1 err=<nil> env=""` {
		t.Fatalf("child: %s (stderr: %s)", got, stderr)
	}
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	pid, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	// The shim exec'd the app, so the shim's pid is the app's.
	if strings.TrimSpace(pid) != strconv.Itoa(cmd.Process.Pid) {
		t.Errorf("app pid %s, shim pid %d", pid, cmd.Process.Pid)
	}
	mustNonBlocking(t, ln)
}

func TestNamed(t *testing.T) {
	ln1, f1 := listen(t)
	_, f2 := listen(t)
	_ = ln1
	env := append(Env([]string{"web", "admin"}), helperEnv+"=named")
	_, out, stderr := start(t, []string{os.Args[0]}, env, f1, f2)
	if got := readLine(t, out, stderr); got != "admin=1,web=1 err=<nil>" {
		t.Errorf("child: %s", got)
	}
}

// TestNotForUs starts the app directly, without the shim, with a
// LISTEN_PID of another process: the sockets are not for it.
func TestNotForUs(t *testing.T) {
	_, f := listen(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(StripEnv(os.Environ()), append(Env([]string{"web"}), "LISTEN_PID=1", helperEnv+"=listeners")...)
	cmd.ExtraFiles = []*os.File{f}
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != `n=0 err=<nil> env=""` {
		t.Errorf("child: %s", got)
	}
}

func TestShimCannotExec(t *testing.T) {
	cmd, _, stderr := start(t, []string{"tend-no-such-program"}, nil)
	err := cmd.Wait()
	if cmd.ProcessState.ExitCode() != ExitCannotExec {
		t.Fatalf("exit: %v, want status %d", err, ExitCannotExec)
	}
	if !strings.Contains(stderr.String(), "cannot run tend-no-such-program") {
		t.Errorf("stderr = %q", stderr)
	}
}

// pythonApp is a stock http.server that takes its socket from fd 3, after
// checking the activation variables as sd_listen_fds would. Each request
// sleeps briefly so that concurrent requests spread over the instances.
const pythonApp = `
import os, socket, sys, time, http.server
if os.environ.get("LISTEN_PID") != str(os.getpid()):
    sys.exit("LISTEN_PID=%r but pid is %d" % (os.environ.get("LISTEN_PID"), os.getpid()))
if os.environ.get("LISTEN_FDS") != "1" or os.environ.get("LISTEN_FDNAMES") != "web":
    sys.exit("bad LISTEN_FDS or LISTEN_FDNAMES")
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(0.05)
        body = str(os.getpid()).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H, bind_and_activate=False)
srv.socket.close()
srv.socket = socket.socket(fileno=3)
print("ready", flush=True)
srv.serve_forever()
`

// TestPythonInstancesShareOnePort runs two Python http.server instances
// on one socket through the shim and checks that both serve.
func TestPythonInstancesShareOnePort(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	ln, f := listen(t)
	pids := map[string]bool{}
	for range 2 {
		cmd, out, stderr := start(t, []string{"python3", "-c", pythonApp}, Env([]string{"web"}), f)
		if got := readLine(t, out, stderr); got != "ready" {
			t.Fatalf("python: %s", got)
		}
		pids[strconv.Itoa(cmd.Process.Pid)] = false
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	url := "http://" + ln.Addr().String() + "/"
	deadline := time.Now().Add(20 * time.Second)
	for seen := 0; seen < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("not every instance served: %v", pids)
		}
		// Two at a time: while one instance sleeps in its handler, the
		// other accepts.
		bodies := make(chan string, 2)
		for range 2 {
			go func() {
				resp, err := client.Get(url)
				if err != nil {
					bodies <- "error: " + err.Error()
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				bodies <- string(b)
			}()
		}
		for range 2 {
			b := <-bodies
			served, ok := pids[b]
			if !ok {
				t.Fatalf("unexpected response %q (instances %v)", b, pids)
			}
			if !served {
				pids[b] = true
				seen++
			}
		}
	}
	mustNonBlocking(t, ln)
}

func mustNonBlocking(t *testing.T, ln *net.TCPListener) {
	t.Helper()
	if nb, err := sockets.NonBlocking(ln); err != nil || !nb {
		t.Errorf("tend's listening socket non-blocking = %v, %v", nb, err)
	}
}
