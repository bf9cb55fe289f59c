package supervisor

import (
	"context"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/procexec"
)

// fakeProc is a process that exits when told to, under the synctest clock.
type fakeProc struct {
	pid  int
	done chan struct{}
	st   procexec.Status
	once sync.Once
}

func (p *fakeProc) PID() int                { return p.pid }
func (p *fakeProc) Done() <-chan struct{}   { return p.done }
func (p *fakeProc) Status() procexec.Status { <-p.done; return p.st }
func (p *fakeProc) Signal(s syscall.Signal) error {
	p.exit(procexec.Status{Code: -1, Signal: s})
	return nil
}
func (p *fakeProc) exit(st procexec.Status) { p.once.Do(func() { p.st = st; close(p.done) }) }
func (p *fakeProc) Tree() []procexec.Ref    { return nil }
func (p *fakeProc) KillRest([]procexec.Ref) {}
func (p *fakeProc) Release()                {}

// TestBackoffTiming runs a crash loop on the fake clock: each restart waits
// 100 ms, then x1.5, and after max_restarts unstable exits the instance is
// errored, with no real time spent.
func TestBackoffTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var starts []time.Time
		var procs []*fakeProc
		start := func(procexec.Cmd) (Proc, error) {
			mu.Lock()
			defer mu.Unlock()
			p := &fakeProc{pid: 1000 + len(procs), done: make(chan struct{})}
			starts = append(starts, time.Now())
			procs = append(procs, p)
			// Each run crashes 10 ms after it starts.
			time.AfterFunc(10*time.Millisecond, func() { p.exit(procexec.Status{Code: 1}) })
			return p, nil
		}
		spec := tend.AppSpec{Name: "loop", Instances: 1, MaxRestarts: 4, Cwd: t.TempDir()}
		a, err := New(spec, Resolved{Path: "/bin/true", Argv: []string{"true"}}, Options{LogDir: t.TempDir(), Start: start})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close(context.Background())
		if err := a.Start(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		in := a.Instances()[0]
		if in.Status != tend.StatusErrored {
			t.Fatalf("status = %s, want errored", in.Status)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(starts) != 4 {
			t.Fatalf("%d starts, want 4 (max_restarts unstable exits)", len(starts))
		}
		// gap = 10 ms of run + the backoff delay, less up to a fifth
		// of it (jitter)
		backoff := []time.Duration{100 * time.Millisecond, 150 * time.Millisecond, 225 * time.Millisecond}
		for i, b := range backoff {
			run := 10 * time.Millisecond
			if got := starts[i+1].Sub(starts[i]); got <= run+b-b/5 || got > run+b {
				t.Errorf("gap %d = %v, want %v to %v", i, got, run+b-b/5, run+b)
			}
		}
		if in.Restarts != 3 {
			t.Errorf("restarts = %d, want 3", in.Restarts)
		}
	})
}

// TestStopWaitsForKillTimeout: an instance that ignores its stop signal is
// SIGKILLed after kill_timeout, and Stop returns only then.
func TestStopWaitsForKillTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var p *stubborn
		start := func(procexec.Cmd) (Proc, error) {
			p = &stubborn{fakeProc{pid: 42, done: make(chan struct{})}}
			return p, nil
		}
		spec := tend.AppSpec{Name: "s", Instances: 1, KillTimeout: tend.Duration(3 * time.Second), Cwd: t.TempDir()}
		a, err := New(spec, Resolved{Path: "/bin/true", Argv: []string{"true"}}, Options{LogDir: t.TempDir(), Start: start})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close(context.Background())
		a.Start(context.Background(), nil)
		begin := time.Now()
		if err := a.Stop(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(begin); took != 3*time.Second {
			t.Errorf("stop took %v, want the kill timeout, 3s", took)
		}
		in := a.Instances()[0]
		if in.Status != tend.StatusStopped || in.LastExit.Signal != "SIGKILL" {
			t.Errorf("after stop: %+v, last exit %+v", in, in.LastExit)
		}
	})
}

// stubborn ignores every signal but SIGKILL.
type stubborn struct{ fakeProc }

func (p *stubborn) Signal(s syscall.Signal) error {
	if s == syscall.SIGKILL {
		p.exit(procexec.Status{Code: -1, Signal: s})
	}
	return nil
}

// A user stops the app while a recycle (watch, cron, memory) replaces its
// instances one by one, and the instances take their kill_timeout to go:
// the recycle must not bring any of them back.
func TestRecycleLeavesStoppingInstancesStopped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := 0
		start := func(procexec.Cmd) (Proc, error) {
			n++
			return &stubborn{fakeProc{pid: 100 + n, done: make(chan struct{})}}, nil
		}
		spec := tend.AppSpec{Name: "s", Instances: 2, KillTimeout: tend.Duration(3 * time.Second), Cwd: t.TempDir()}
		a, err := New(spec, Resolved{Path: "/bin/true", Argv: []string{"true"}}, Options{LogDir: t.TempDir(), Start: start})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close(context.Background())
		a.Start(context.Background(), nil)
		time.Sleep(10 * time.Second) // ready by listen_timeout
		go a.recycle(context.Background(), nil, "watch restart", "watch", "test")
		time.Sleep(4500 * time.Millisecond) // instance 0 replaced, its old process still going
		if err := a.Stop(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Second)
		synctest.Wait()
		for _, in := range a.Instances() {
			if in.Status != tend.StatusStopped {
				t.Errorf("instance %d was stopped, and is now %s (pid %d)", in.Instance, in.Status, in.PID)
			}
		}
	})
}

// TestAnswer: Answer returns once the actor runs, fails within its
// context while the actor is busy, and returns nil once the app is closed.
func TestAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		spec := tend.AppSpec{Name: "web", Instances: 1, Cwd: t.TempDir()}
		a, err := New(spec, Resolved{Path: "/bin/true", Argv: []string{"true"}}, Options{LogDir: t.TempDir(),
			Start: func(procexec.Cmd) (Proc, error) { return &fakeProc{pid: 1000, done: make(chan struct{})}, nil }})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Answer(context.Background()); err != nil {
			t.Fatalf("an idle actor: %v", err)
		}
		release := make(chan struct{})
		a.post(func() { <-release }) // the actor is stuck
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := a.Answer(ctx); err == nil || !strings.Contains(err.Error(), "app web: its supervisor") {
			t.Errorf("a stuck actor: %v", err)
		}
		close(release)
		if err := a.Answer(context.Background()); err != nil {
			t.Fatalf("the actor once free again: %v", err)
		}
		a.Close(context.Background())
		if err := a.Answer(context.Background()); err != nil {
			t.Errorf("a closed app (deleted meanwhile, not stuck): %v", err)
		}
	})
}
