package procexec

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
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
