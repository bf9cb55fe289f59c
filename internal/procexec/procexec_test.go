package procexec

import (
	"context"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return s[i+2] != 'Z'
}

// TestSignalTreeReachesEscapedDescendants: a child in the group and a
// grandchild that moved to its own session are both found and killed.
func TestSignalTreeReachesEscapedDescendants(t *testing.T) {
	r, w, _ := os.Pipe()
	// sh starts a sleep in its group and one in a new session (setsid),
	// prints both pids, then waits.
	p, err := Start(Cmd{Path: "/bin/sh", Args: []string{"sh", "-c", "sleep 60 & echo $!; setsid sleep 60 & echo $!; wait"}, Stdout: w})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	var out string
	for strings.Count(out, "\n") < 2 {
		n, err := r.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		out += string(buf[:n])
	}
	var pids []int
	for _, f := range strings.Fields(out) {
		n, _ := strconv.Atoi(f)
		pids = append(pids, n)
	}
	// setsid forks before it runs sleep: wait until the tree shows both.
	deadline := time.Now().Add(5 * time.Second)
	for len(Descendants(p.Pid)) < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	tree := p.Tree()
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	p.KillRest(tree)
	if st := p.Status(); st.Signal != syscall.SIGKILL || st.SignalName() != "SIGKILL" {
		t.Errorf("status = %v, want killed by SIGKILL", st)
	}
	for _, pid := range pids {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if alive(pid) {
			t.Errorf("descendant %d survived", pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func TestStatusOfExit(t *testing.T) {
	p, err := Start(Cmd{Path: "/bin/sh", Args: []string{"sh", "-c", "exit 7"}})
	if err != nil {
		t.Fatal(err)
	}
	if st := p.Status(); st.Code != 7 || st.Signal != 0 || st.String() != "exit code 7" {
		t.Errorf("status = %+v (%s), want exit code 7", st, st)
	}
}

func TestStatusOfSignal(t *testing.T) {
	p, err := Start(Cmd{Path: "/bin/sleep", Args: []string{"sleep", "60"}})
	if err != nil {
		t.Fatal(err)
	}
	p.Signal(syscall.SIGKILL)
	if st := p.Status(); st.Code != -1 || st.Signal != syscall.SIGKILL || st.String() != "killed by SIGKILL" {
		t.Errorf("status = %+v (%s), want killed by SIGKILL", st, st)
	}
	if alive(p.Pid) {
		t.Errorf("pid %d is still there after Status returned: not reaped", p.Pid)
	}
}

// Waiting for many processes holds no thread per process: exits are
// waited for on pidfds through Go's poller (os/exec's Wait would block a
// thread in wait4 for each).
func TestWaitingHoldsNoThreadPerProcess(t *testing.T) {
	const n = 64
	before := threads(t)
	var ps []*Process
	for range n {
		p, err := Start(Cmd{Path: "/bin/sleep", Args: []string{"sleep", "60"}})
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	during := threads(t)
	for _, p := range ps {
		p.Signal(syscall.SIGKILL)
	}
	for _, p := range ps {
		if st := p.Status(); st.Signal != syscall.SIGKILL {
			t.Errorf("pid %d: %s, want killed by SIGKILL", p.Pid, st)
		}
	}
	if during-before >= n/2 {
		t.Fatalf("threads went from %d to %d while waiting for %d processes", before, during, n)
	}
}

func threads(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	t.Fatal("no Threads line")
	return 0
}

// TestKillRestSparesReusedPids: a pid seen earlier is killed only if it
// still names the same process: a later start time is another one.
func TestKillRestSparesReusedPids(t *testing.T) {
	run := func() *exec.Cmd {
		c := exec.Command("sleep", "100")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Process.Kill(); c.Wait() })
		return c
	}
	same, other := run(), run()
	refs := Refs([]int{same.Process.Pid, other.Process.Pid})
	refs[1].Start++ // as if other's pid were reused since it was seen
	gone := exec.Command("true")
	gone.Run()
	KillRest(gone.Process.Pid, refs)
	if err := same.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("the process seen: %v, want killed", err)
	}
	if !alive(other.Process.Pid) {
		t.Error("a process with a reused pid was killed")
	}
}

// TestListenPorts: the ports a process listens on itself, not those it
// only connects from.
func TestListenPorts(t *testing.T) {
	// A port of its own, from port 0 or not: counted.
	own, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	// One with SO_REUSEPORT: the next copy binds beside it.
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1) })
	}}
	shared, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	c, err := net.Dial("tcp", own.Addr().String()) // connected sockets do not count
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := own.Addr().(*net.TCPAddr).Port
	if got := ListenPorts([]int{os.Getpid()}); !slices.Equal(got, []int{want}) {
		t.Errorf("ListenPorts = %v, want [%d] (not the SO_REUSEPORT %v)", got, want, shared.Addr())
	}
	sleep := exec.Command("sleep", "100")
	sleep.Start()
	defer func() { sleep.Process.Kill(); sleep.Wait() }()
	if got := ListenPorts([]int{sleep.Process.Pid}); len(got) != 0 {
		t.Errorf("sleep listens on %v", got)
	}
}
