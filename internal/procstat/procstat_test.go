package procstat

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestSampleCountsTheTree(t *testing.T) {
	// sh forks a sleep child: the tree has two processes.
	cmd := exec.Command("sh", "-c", "sleep 30 & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	s := NewSampler()
	var u Usage
	for range 1000 { // the child appears once sh has forked it
		u = s.Sample([]int{cmd.Process.Pid}, nil)[cmd.Process.Pid]
		if len(u.Pids) == 2 {
			break
		}
	}
	if len(u.Pids) != 2 {
		t.Fatalf("tree of sh = %v, want sh and its sleep child", u.Pids)
	}
	if u.Memory == 0 {
		t.Errorf("Memory = 0, want the resident size of both")
	}
}

func TestSampleCPU(t *testing.T) {
	s := NewSampler()
	self := os.Getpid()
	s.Sample([]int{self}, nil)
	// CPU time advances in 10 ms ticks: spin until one is counted, bounded.
	deadline := time.Now().Add(5 * time.Second)
	var u Usage
	for u.CPU <= 0 && time.Now().Before(deadline) {
		x := 0
		for i := range 5_000_000 {
			x += i
		}
		_ = x
		u = s.Sample([]int{self}, nil)[self]
	}
	if u.CPU <= 0 {
		t.Errorf("CPU after busy loops = %v, want > 0", u.CPU)
	}
	if got := s.Sample([]int{1 << 30}, nil); len(got) != 0 {
		t.Errorf("Sample of a missing pid = %v, want nothing", got)
	}
}
