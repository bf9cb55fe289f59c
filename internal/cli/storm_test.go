package cli_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tendhq/tend"
)

// TestCommandStorm: many commands at once on one app compose into a state
// that tend ls describes completely: every process tend keeps is an
// instance it lists or a child of one, and every command returns.
func TestCommandStorm(t *testing.T) {
	h := newHarness(t)
	start := []string{"start", h.self, "--name", "web", "-i", "2", "--kill-timeout", "3s", "--", "serve"}
	commands := [][]string{
		{"restart", "web"}, {"stop", "web"}, {"start", "web"}, {"reload", "web"},
		{"scale", "web", "1"}, {"scale", "web", "3"}, {"scale", "web", "+1"}, {"scale", "web", "-1"},
		{"send", "web", `"ping"`}, {"signal", "SIGUSR2", "web"}, {"ls"}, {"describe", "web"},
		{"delete", "web"}, start, {"restart", "0"}, {"stop", "1"}, {"delete", "2"}, {"reload", "web", "--parallel", "2"},
	}
	rounds := 20
	if testing.Short() {
		rounds = 3
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range rounds {
		h.ok(start[0:]...)
		daemon := h.ping().PID
		var dump sync.Once
		var wg sync.WaitGroup
		for range 50 {
			args := commands[rng.IntN(len(commands))]
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				cmd := exec.CommandContext(ctx, tendBin, args...)
				cmd.Env = h.env
				out, err := cmd.CombinedOutput()
				if ctx.Err() != nil {
					t.Errorf("round %d: tend %v did not return within a minute: %v\n%s", round, args, err, out)
					// The daemon's goroutines, in tend.log (printed below):
					// where it waits.
					dump.Do(func() { syscall.Kill(daemon, syscall.SIGQUIT) })
				}
			})
		}
		wg.Wait()
		checkAllListed(t, h, fmt.Sprintf("round %d", round))
		h.run("delete", "web")
	}
}

// checkAllListed fails unless every process under tend's keeper is the
// daemon, one of its children, an instance tend ls lists, or a descendant
// of one.
func checkAllListed(t *testing.T, h *harness, when string) {
	t.Helper()
	p := h.ping()
	listed := map[int]bool{p.PID: true}
	for _, d := range descendants(p.PID) {
		listed[d] = true
	}
	insts := h.ls()
	for _, in := range insts {
		if in.PID == 0 {
			continue
		}
		listed[in.PID] = true
		for _, d := range descendants(in.PID) {
			listed[d] = true
		}
	}
	for _, d := range descendants(p.KeeperPID) {
		if !listed[d] && processState(d) != "" && processState(d) != "Z" {
			t.Errorf("%s: pid %d (%s) under the keeper is not listed: %v", when, d, comm(d), summary(insts))
		}
	}
}

func summary(insts []tend.Instance) []string {
	var out []string
	for _, in := range insts {
		out = append(out, in.Name+"["+strconv.Itoa(in.Instance)+"] "+strconv.Itoa(in.PID)+" "+string(in.Status))
	}
	return out
}

// TestInterruptedCommand: a command the user interrupts says what goes on
// in the daemon and returns, instead of waiting for it.
func TestInterruptedCommand(t *testing.T) {
	h := newHarness(t)
	h.ok("start", h.self, "--name", "stubborn", "--kill-timeout", "4s", "--", "stubborn")
	h.await("online", allStatus(1, tend.StatusOnline))
	h.awaitLog("stubborn", "ignoring") // its signal handlers are in place
	cmd := exec.Command(tendBin, "stop", "stubborn")
	cmd.Env = h.env
	var out strings.Builder
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h.await("stopping", allStatus(1, tend.StatusStopping))
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(out.String(), "goes on with the stop of stubborn") {
			t.Errorf("interrupted tend stop: %v, %q", err, out.String())
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("tend stop did not return when interrupted")
	}
	if insts := h.ls(); insts[0].Status != tend.StatusStopping {
		t.Errorf("the stop did not go on: %+v", insts[0])
	}
}
