package nodeconform

import (
	"bytes"
	"encoding/json"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/cluster"
	"golang.org/x/sys/unix"
)

// exitSeen is what a primary tells of a worker's end, as Node's primary
// does: the exit code (null when a signal ended it), the signal, and
// whether the exit was meant (exitedAfterDisconnect).
type exitSeen struct {
	Code    *int    `json:"code"`
	Signal  *string `json:"signal"`
	Planned bool    `json:"planned"`
}

// TestConformanceExits ends a worker each way Node apps end them and
// compares what Node's primary, tend and the cluster package's primary
// record of it.
func TestConformanceExits(t *testing.T) {
	for _, exit := range []string{"code", "signal", "disconnect", "destroy"} {
		t.Run(exit, func(t *testing.T) {
			t.Parallel()
			env := []string{"GROUP=exit", "EXIT=" + exit}
			want := canonical(t, runNode(t, "rr", 1, env)["exit"])
			t.Logf("Node's primary: %s", want)
			for under, got := range map[string]exitSeen{"tend": tendExit(t, env), "the cluster package's primary": goExit(t, env)} {
				b, _ := json.Marshal(got)
				if b = canonical(t, b); !bytes.Equal(b, want) {
					t.Errorf("a worker's exit by %s: Node's primary saw %s, %s %s", exit, want, under, b)
				}
			}
		})
	}
}

// tendExit runs the worker under tend and reads its exit from describe.
func tendExit(t *testing.T, env []string) exitSeen {
	run, _ := tendIn(t, env)
	defer run("kill")
	run("start", casesScript(t), "--name", "conform", "-i", "1", "--no-autorestart")
	deadline := time.Now().Add(resultWait)
	for {
		var apps []struct{ Exits []tend.Exit }
		if err := json.Unmarshal(run("describe", "conform", "--json"), &apps); err != nil {
			t.Fatal(err)
		}
		if len(apps) == 1 && len(apps[0].Exits) > 0 {
			ex := apps[0].Exits[0]
			seen := exitSeen{Planned: ex.Cause != "crash" && ex.Cause != "exit"}
			if ex.Signal != "" {
				seen.Signal = &ex.Signal
			} else {
				seen.Code = &ex.Code
			}
			return seen
		}
		if time.Now().After(deadline) {
			t.Fatalf("no exit recorded by tend within %v", resultWait)
		}
		time.Sleep(50 * time.Millisecond) // a poll, bounded by the deadline
	}
}

// goExit runs the worker under a cluster.Primary and reads its Exit event.
func goExit(t *testing.T, env []string) exitSeen {
	p, err := cluster.NewPrimary(cluster.Settings{Exec: "node", Args: []string{"testdata/cases.cjs"}, Env: env,
		Stdout: os.Stderr, Stderr: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	w, err := p.Fork(nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.Done():
	case <-time.After(resultWait):
		t.Fatalf("the worker did not exit within %v", resultWait)
	}
	code, sig := w.Wait()
	seen := exitSeen{Planned: w.ExitedAfterDisconnect()}
	if s, ok := sig.(syscall.Signal); ok {
		name := unix.SignalName(s)
		seen.Signal = &name
	} else {
		seen.Code = &code
	}
	return seen
}
