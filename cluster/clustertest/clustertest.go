// Package clustertest runs a cluster in one process, for tests, as
// net/http/httptest runs a server: the Primary is real (it binds real
// sockets, hands over real connections and speaks the real protocol over
// real socketpairs), but each worker is a goroutine running a function
// instead of a re-executed program.
//
// Write worker logic against a *cluster.Child and primary logic against a
// *cluster.Primary; main passes cluster.Self() and cluster.Default(), tests
// pass what NewPrimary returns and what it hands each worker.
package clustertest

import (
	"fmt"
	"os"
	"sync"
	"syscall"
	"testing"

	"github.com/tendhq/tend/cluster"
	"github.com/tendhq/tend/cluster/internal/seam"
)

// FakePIDBase is added to a worker's id to make its PID: the workers share
// the test's real pid, but Event logs and maps keyed by PID want distinct
// ones.
const FakePIDBase = 1 << 22

// NewPrimary returns a Primary with settings s whose Fork runs worker(c)
// in a new goroutine, c being that worker's Child. s.Exec, s.Args, s.Env
// and s.Stdout/Stderr are ignored; the env passed to Fork is not visible
// to worker either (goroutines share one environment). The worker
// "exits" with code 0 when worker returns, 2 when it panics (the panic is
// reported with t.Error), and -1 with the signal when Kill is called,
// which closes its channel and listeners at once; its goroutine is then
// abandoned and should return soon. The Primary is closed by t.Cleanup.
func NewPrimary(t testing.TB, s cluster.Settings, worker func(c *cluster.Child)) *cluster.Primary {
	t.Helper()
	spawn := func(id int, channel *os.File, _ []string) (seam.Process, error) {
		child, err := seam.NewChild(id, channel)
		if err != nil {
			return nil, err
		}
		p := &proc{pid: FakePIDBase + id, child: child, done: make(chan struct{})}
		go func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("clustertest: worker %d panicked: %v", id, r)
					p.exit(2, nil)
				}
			}()
			worker(child.(*cluster.Child))
			p.exit(0, nil)
		}()
		return p, nil
	}
	pr, err := seam.NewPrimary(s, spawn)
	if err != nil {
		t.Fatalf("clustertest: %v", err)
	}
	primary := pr.(*cluster.Primary)
	t.Cleanup(func() { primary.Close() })
	return primary
}

// proc is a worker goroutine seen as a process.
type proc struct {
	pid   int
	child any
	once  sync.Once
	done  chan struct{}
	code  int
	sig   os.Signal
}

// exit ends the worker as the end of its process would: the channel and
// listeners close, then Wait returns.
func (p *proc) exit(code int, sig os.Signal) {
	p.once.Do(func() {
		seam.Kill(p.child)
		p.code, p.sig = code, sig
		close(p.done)
	})
}

func (p *proc) Pid() int { return p.pid }

func (p *proc) Signal(sig os.Signal) error {
	select {
	case <-p.done:
		return os.ErrProcessDone
	default:
	}
	if s, ok := sig.(syscall.Signal); ok && s == 0 {
		return nil
	}
	if sig == nil {
		return fmt.Errorf("clustertest: nil signal")
	}
	p.exit(-1, sig)
	return nil
}

func (p *proc) Wait() (int, os.Signal) {
	<-p.done
	return p.code, p.sig
}
