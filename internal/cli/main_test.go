package cli_test

import (
	"crypto/sha256"
	"net/http"

	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tendhq/tend/internal/activation"
	"github.com/tendhq/tend/internal/notify"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/client"
)

// tendBin is the tend binary built for these tests: they run it as a user
// would. Fake apps are this test binary, re-executed with TEND_FAKE_APP set.
var tendBin string

func TestMain(m *testing.M) {
	if os.Getenv("TEND_FAKE_APP") != "" && len(os.Args) > 1 && !strings.HasPrefix(os.Args[1], "-test.") {
		fakeApp(os.Args[1:])
		return
	}
	dir, err := os.MkdirTemp("", "tend-bin")
	if err != nil {
		panic(err)
	}
	tendBin = filepath.Join(dir, "tend")
	if out, err := goBuild(tendBin); err != nil {
		fmt.Fprintf(os.Stderr, "building tend: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// goBuild builds cmd/tend to out as the README does: static, without cgo.
func goBuild(out string, flags ...string) ([]byte, error) {
	args := append([]string{"build", "-o", out}, flags...)
	cmd := exec.Command("go", append(args, "github.com/tendhq/tend/cmd/tend")...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	return cmd.CombinedOutput()
}

// fakeApp is every app the tests run.
func fakeApp(args []string) {
	forever := func() {
		for {
			time.Sleep(time.Hour)
		}
	}
	exitOnStop := func() {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGINT, syscall.SIGTERM)
		go func() { <-c; fmt.Println("stopping"); os.Exit(0) }()
	}
	switch args[0] {
	case "serve": // print what it was given, run until stopped
		exitOnStop()
		fmt.Printf("env app=%s instance=%s nai=%s port=%s shell=%s flag=%s pid=%d\n", os.Getenv("TEND_APP"), os.Getenv("TEND_INSTANCE"),
			os.Getenv("NODE_APP_INSTANCE"), os.Getenv("PORT"), os.Getenv("FROM_SHELL"), os.Getenv("FROM_FLAG"), os.Getpid())
		fmt.Fprintln(os.Stderr, "ready on stderr")
		forever()
	case "hello": // says hello and exits 0
		fmt.Printf("hello from %d\n", os.Getpid())
	case "sayexit": // prints its arguments, then exits 1
		fmt.Println(strings.Join(args[1:], " "))
		os.Exit(1)
	case "crash":
		fmt.Fprintln(os.Stderr, "crashing")
		os.Exit(3)
	case "stubborn": // ignores the polite signals
		signal.Ignore(syscall.SIGINT, syscall.SIGTERM)
		fmt.Println("ignoring")
		forever()
	case "family": // leaves a child in its group and a grandchild in a new session
		exitOnStop()
		self, _ := os.Executable()
		inGroup := exec.Command(self, "sleeper")
		inGroup.Start()
		escaped := exec.Command(self, "sleeper")
		escaped.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		escaped.Start()
		fmt.Printf("family %d %d\n", inGroup.Process.Pid, escaped.Process.Pid)
		forever()
	case "channel": // reads JSON lines on $TEND_CHANNEL_FD and prints them
		exitOnStop()
		fd, _ := strconv.Atoi(os.Getenv("TEND_CHANNEL_FD"))
		f := os.NewFile(uintptr(fd), "channel")
		fmt.Printf("channel fd %d\n", fd)
		r := bufio.NewReader(f)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				forever()
			}
			fmt.Printf("got %s", line)
			f.Write([]byte(`{"ack":true}` + "\n"))
		}
	case "activated": // socket mode: serve fd 3, then say READY=1
		exitOnStop()
		lns, err := activation.Listeners()
		if err != nil || len(lns) == 0 {
			fmt.Fprintln(os.Stderr, "no socket", err)
			os.Exit(1)
		}
		go http.Serve(lns[0], http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "pid %d\n", os.Getpid())
		}))
		time.Sleep(50 * time.Millisecond)
		notify.Notify("READY=1")
		forever()
	case "portserver": // listens on $PORT; /health is 200 once HEALTH_DELAY_MS passed
		exitOnStop()
		start := time.Now()
		delay, _ := time.ParseDuration(os.Getenv("HEALTH_DELAY_MS") + "ms")
		http.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
			if time.Since(start) < delay {
				w.WriteHeader(503)
			}
		})
		http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "pid %d\n", os.Getpid()) })
		fmt.Println(http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil))
		os.Exit(1)
	case "hog": // holds 80 MB of touched memory
		exitOnStop()
		b := make([]byte, 80<<20)
		for i := range b {
			b[i] = byte(i)
		}
		fmt.Println("holding", len(b))
		forever()
		_ = b[0]
	case "flood": // writes args[1] MB of lines, a 10 MB line and binary junk, then "flood done"
		exitOnStop()
		mb, _ := strconv.Atoi(args[1])
		w := bufio.NewWriterSize(os.Stdout, 1<<16)
		line := strings.Repeat("x", 89) + "\n"
		for i := 0; i < mb<<20/90; i++ {
			w.WriteString(line)
		}
		w.WriteString(strings.Repeat("y", 10<<20) + "\n")
		w.Write([]byte{0, 1, 2, 0xff, 0xfe, '\n'})
		w.WriteString("flood done\n")
		w.Flush()
		forever()
	case "sleeper":
		signal.Ignore(syscall.SIGINT, syscall.SIGTERM)
		forever()
	case "doublefork": // a daemon as C programs make one: fork, setsid, fork; the middle one exits
		exitOnStop()
		self, _ := os.Executable()
		mid := exec.Command(self, "midfork")
		mid.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		mid.Stdout = os.Stdout
		mid.Run()
		forever()
	case "groupfork": // a child in a process group of its own; with "exit", exits at once
		exitOnStop()
		self, _ := os.Executable()
		c := exec.Command(self, "sleeper")
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		c.Start()
		fmt.Printf("escaped %d\n", c.Process.Pid)
		if len(args) > 1 && args[1] == "exit" {
			os.Exit(0)
		}
		forever()
	case "badchannel": // writes lines that are not JSON on its channel, fast
		exitOnStop()
		fd, _ := strconv.Atoi(os.Getenv("TEND_CHANNEL_FD"))
		w := bufio.NewWriter(os.NewFile(uintptr(fd), "channel"))
		for range 100_000 {
			w.WriteString("not json\n")
		}
		w.Flush()
		fmt.Println("garbage sent")
		forever()
	case "orphan": // leaves an orphan that exits once the file $ORPHAN_EXIT exists
		exitOnStop()
		self, _ := os.Executable()
		exec.Command(self, "orphanmid").Run()
		fmt.Println("orphan left")
		forever()
	case "orphanmid":
		self, _ := os.Executable()
		exec.Command(self, "orphaned").Start()
	case "orphaned":
		for {
			if _, err := os.Stat(os.Getenv("ORPHAN_EXIT")); err == nil {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	case "midfork":
		self, _ := os.Executable()
		g := exec.Command(self, "sleeper")
		g.Start()
		fmt.Printf("escaped %d\n", g.Process.Pid)
	case "ticker": // a numbered line every 20 ms (TICK_MS)
		exitOnStop()
		every := 20 * time.Millisecond
		if ms, err := strconv.Atoi(os.Getenv("TICK_MS")); err == nil {
			every = time.Duration(ms) * time.Millisecond
		}
		for i := 0; ; i++ {
			fmt.Printf("tick %d pid=%d\n", i, os.Getpid())
			time.Sleep(every)
		}
	default:
		fmt.Fprintln(os.Stderr, "unknown fake app", args)
		os.Exit(2)
	}
}

// removeCgroups removes what a test's daemon left of its cgroups (one
// that ended before its instances, as tend run past its stop bound):
// the instances are gone or going, so their cgroups empty within moments.
func removeCgroups(home string) {
	sum := sha256.Sum256([]byte(home))
	name := "tend-" + hex.EncodeToString(sum[:4])
	var dirs []string
	for _, pattern := range []string{"/sys/fs/cgroup/*/" + name, "/sys/fs/cgroup/*/*/" + name, "/sys/fs/cgroup/*/*/*/" + name, "/sys/fs/cgroup/" + name} {
		m, _ := filepath.Glob(pattern)
		dirs = append(dirs, m...)
	}
	for range 50 {
		left := false
		for _, dir := range dirs {
			subs, _ := filepath.Glob(filepath.Join(dir, "*", "*"))
			apps, _ := filepath.Glob(filepath.Join(dir, "*"))
			for _, d := range append(subs, append(apps, dir)...) {
				if fi, err := os.Lstat(d); err == nil && fi.IsDir() {
					if os.Remove(d) != nil {
						left = true
					}
				}
			}
		}
		if !left {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// harness runs tend against a private TEND_HOME.
type harness struct {
	t    *testing.T
	home string
	env  []string
	self string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	// Not t.TempDir(): its long path would not fit a unix socket path.
	home, err := os.MkdirTemp("", "tend")
	if err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()
	h := &harness{t: t, home: home, self: self,
		env: append(os.Environ(), "TEND_HOME="+home, "TEND_FAKE_APP=1", "NO_COLOR=1")}
	t.Cleanup(func() {
		h.run("kill")
		defer removeCgroups(home)
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(home, "tend.log")); err == nil {
				t.Logf("daemon log:\n%s", b)
			}
		}
		os.RemoveAll(home)
	})
	return h
}

// run runs tend with args and returns its stdout, stderr and exit code.
func (h *harness) run(args ...string) (string, string, int) {
	cmd := exec.Command(tendBin, args...)
	cmd.Env = h.env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		h.t.Fatalf("running tend %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

// ok runs tend and fails the test unless it exits 0.
func (h *harness) ok(args ...string) string {
	h.t.Helper()
	out, errOut, code := h.run(args...)
	if code != 0 {
		h.t.Fatalf("tend %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// fail runs tend, expects exit code want and returns stderr.
func (h *harness) fail(want int, args ...string) string {
	h.t.Helper()
	out, errOut, code := h.run(args...)
	if code != want {
		h.t.Fatalf("tend %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out, errOut)
	}
	return errOut
}

func (h *harness) ls() []tend.Instance {
	h.t.Helper()
	var insts []tend.Instance
	if err := json.Unmarshal([]byte(h.ok("ls", "--json")), &insts); err != nil {
		h.t.Fatalf("ls --json: %v", err)
	}
	return insts
}

// await returns the instances once cond holds for them: it checks `tend
// ls` now and again after each event of `tend events`, up to a deadline.
func (h *harness) await(what string, cond func([]tend.Instance) bool) []tend.Instance {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := client.New(h.home).EventStream(ctx, "")
	if err != nil {
		h.t.Fatalf("waiting for %s: %v", what, err)
	}
	defer st.Close()
	changed := make(chan struct{}, 1)
	go func() {
		for {
			if _, err := st.Next(); err != nil {
				return
			}
			select {
			case changed <- struct{}{}:
			default:
			}
		}
	}()
	for {
		insts := h.ls()
		if cond(insts) {
			return insts
		}
		select {
		case <-changed:
		case <-ctx.Done():
			h.t.Fatalf("timed out waiting for %s; instances: %+v", what, insts)
		}
	}
}

// poll waits until cond holds, checking every 10 ms, for what no event
// reports: the contents of files and sampled figures (memory).
func (h *harness) poll(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// awaitLog waits until the logs of target contain substr and returns them.
func (h *harness) awaitLog(target, substr string) string {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out := h.ok("logs", target, "--nostream", "--lines", "1000")
		if strings.Contains(out, substr) {
			return out
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %q in the logs of %s:\n%s", substr, target, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func allStatus(n int, s tend.Status) func([]tend.Instance) bool {
	return func(insts []tend.Instance) bool {
		if len(insts) != n {
			return false
		}
		for _, in := range insts {
			if in.Status != s {
				return false
			}
		}
		return true
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z'
}

// awaitGone waits until none of pids is alive.
func awaitGone(t *testing.T, pids ...int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range pids {
		for alive(p) {
			if time.Now().After(deadline) {
				t.Fatalf("pid %d is still alive", p)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
