package cli_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/testport"
)

func healthApp(t *testing.T) string {
	return filepath.Join(repoRoot(t), "internal", "cli", "testdata", "health.js")
}

// healthy reports whether n instances are online and their probes pass.
func healthy(n int) func([]tend.Instance) bool {
	return func(insts []tend.Instance) bool {
		if len(insts) != n {
			return false
		}
		for _, in := range insts {
			if in.Status != tend.StatusOnline || in.Health != "healthy" {
				return false
			}
		}
		return true
	}
}

// replaced reports whether instance index runs a process other than pid,
// online and healthy.
func replaced(index, pid int) func([]tend.Instance) bool {
	return func(insts []tend.Instance) bool {
		for _, in := range insts {
			if in.Instance == index {
				return in.PID != 0 && in.PID != pid && in.Status == tend.StatusOnline && in.Health == "healthy"
			}
		}
		return false
	}
}

// An instance whose /health turns to 500 is replaced, in cluster mode
// (the probe's connection handed to that worker) and in proxy mode ($PORT
// is the instance's own); the other instance is left alone. With a
// command for a probe too.
func TestLivenessReplacesFailingInstance(t *testing.T) {
	for _, tc := range []struct {
		name  string
		probe []string
	}{
		{"cluster", []string{"--liveness-url", "http://127.0.0.1:$APP_PORT/health"}},
		{"proxy", []string{"--exec-mode", "proxy", "--liveness-url", "http://127.0.0.1:$PORT/health"}},
		{"exec", []string{"--liveness-exec", "test ! -e ${HEALTH_FILE}-${NODE_APP_INSTANCE}"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			port := testport.Free(t)
			flag := filepath.Join(t.TempDir(), "unwell")
			h.env = append(h.env, "HEALTH_FILE="+flag, "APP_PORT="+strconv.Itoa(port))
			args := append([]string{"start", healthApp(t), "--name", "hc", "-i", "2", "--port", strconv.Itoa(port),
				"--liveness-period", "100ms", "--liveness-failure-threshold", "3"}, tc.probe...)
			h.ok(args...)
			before := h.await("healthy", healthy(2))
			if err := os.WriteFile(flag+"-1", nil, 0o644); err != nil {
				t.Fatal(err)
			}
			h.await("instance 1 unhealthy", func(insts []tend.Instance) bool { return insts[1].Health == "unhealthy" })
			os.Remove(flag + "-1")
			after := h.await("instance 1 replaced", replaced(1, before[1].PID))
			if after[0].PID != before[0].PID || after[0].Restarts != 0 {
				t.Errorf("instance 0 was touched: %+v", after[0])
			}
			awaitExitCause(t, h, "hc", "unhealthy")
		})
	}
}

// A probe that fails every other time, below the threshold of 2 in a row,
// replaces nothing.
func TestLivenessFlappingBelowThreshold(t *testing.T) {
	h := newHarness(t)
	port := testport.Free(t)
	h.env = append(h.env, "FLAP=1", "HEALTH_FILE=/nonexistent")
	h.ok("start", healthApp(t), "--name", "flap", "--port", strconv.Itoa(port), "-i", "1", "--exec-mode", "proxy",
		"--liveness-url", "http://127.0.0.1:$PORT/health", "--liveness-period", "50ms", "--liveness-failure-threshold", "2")
	first := h.await("online", allStatus(1, tend.StatusOnline))[0]
	last := h.await("ten failed probes", func(insts []tend.Instance) bool { return insts[0].ProbeFailures >= 10 })[0]
	if last.PID != first.PID || last.Restarts != 0 || last.Health == "unhealthy" {
		t.Errorf("a probe failing every other time replaced the instance: %+v", last)
	}
}

// A Python service that pings WATCHDOG=1 (sd_notify, standard library
// only) and then stops pinging is replaced.
func TestWatchdog(t *testing.T) {
	h := newHarness(t)
	stall := filepath.Join(t.TempDir(), "stall")
	h.env = append(h.env, "STALL_FILE="+stall)
	py := filepath.Join(repoRoot(t), "internal", "cli", "testdata", "watchdog.py")
	h.ok("start", py, "--name", "dog", "--watchdog", "600ms")
	first := h.await("healthy", healthy(1))[0]
	if err := os.WriteFile(stall, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h.await("unhealthy", func(insts []tend.Instance) bool { return insts[0].Health == "unhealthy" })
	os.Remove(stall)
	h.await("replaced", replaced(0, first.PID))
	awaitExitCause(t, h, "dog", "unhealthy")
}

// An instance stopped with SIGSTOP, one of two under a bounded load of new
// connections: it is replaced, and no request sent after it was found
// unhealthy fails; those sent while it was stopped are counted.
func TestLivenessStoppedInstanceUnderLoad(t *testing.T) {
	h := newHarness(t)
	port := testport.Free(t)
	h.env = append(h.env, "HEALTH_FILE=/nonexistent")
	const period, threshold = 200 * time.Millisecond, 2
	h.ok("start", healthApp(t), "--name", "hc", "-i", "2", "--port", strconv.Itoa(port), "--kill-timeout", "1s",
		"--liveness-url", fmt.Sprintf("http://127.0.0.1:%d/health", port), "--liveness-timeout", "300ms",
		"--liveness-period", period.String(), "--liveness-failure-threshold", strconv.Itoa(threshold))
	before := h.await("healthy", healthy(2))
	l := startTimedLoad(fmt.Sprintf("http://127.0.0.1:%d/", port), 4)
	defer l.end()
	l.until(t, 50)
	stopped := time.Now()
	syscall.Kill(before[1].PID, syscall.SIGSTOP)
	defer syscall.Kill(before[1].PID, syscall.SIGCONT)
	h.await("instance 1 unhealthy", func(insts []tend.Instance) bool { return insts[1].Health == "unhealthy" })
	detected := time.Now()
	h.await("instance 1 replaced", replaced(1, before[1].PID))
	ready := time.Now()
	l.until(t, 50)
	l.end()
	t.Logf("detected %s after SIGSTOP (period %s x %d), replaced %s later", detected.Sub(stopped).Round(time.Millisecond),
		period, threshold, ready.Sub(detected).Round(time.Millisecond))
	var early, late []error
	for _, r := range l.results {
		switch {
		case r.err == nil:
		case r.start.Before(detected):
			early = append(early, r.err)
		default:
			late = append(late, r.err)
		}
	}
	t.Logf("%d requests; %d failed of those sent before detection: %v", len(l.results), len(early), early)
	if len(late) > 0 {
		t.Errorf("%d requests sent after detection failed: %v", len(late), late)
	}
}

// timedLoad sends requests on new connections and records when each
// began and how it ended.
type timedLoad struct {
	mu      sync.Mutex
	results []result
	ok      int
	stop    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

type result struct {
	start time.Time
	err   error
}

func startTimedLoad(url string, conc int) *timedLoad {
	l := &timedLoad{stop: make(chan struct{})}
	for range conc {
		l.wg.Go(func() {
			for n := 0; n < 100_000; n++ { // bounded, whatever happens
				select {
				case <-l.stop:
					return
				default:
				}
				start := time.Now()
				_, err := get(url)
				l.mu.Lock()
				l.results = append(l.results, result{start, err})
				if err == nil {
					l.ok++
				}
				l.mu.Unlock()
			}
		})
	}
	return l
}

// until waits for n more answered requests.
func (l *timedLoad) until(t *testing.T, n int) {
	t.Helper()
	l.mu.Lock()
	target := l.ok + n
	l.mu.Unlock()
	deadline := time.Now().Add(20 * time.Second)
	for {
		l.mu.Lock()
		ok := l.ok
		l.mu.Unlock()
		if ok >= target {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("load stalled at %d answered requests", ok)
		}
		time.Sleep(time.Millisecond)
	}
}

func (l *timedLoad) end() {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
}

// awaitExitCause waits until app's last exit has cause: the old process
// ends after its replacement is ready.
func awaitExitCause(t *testing.T, h *harness, app, cause string) {
	t.Helper()
	h.poll("an exit with cause "+cause, func() bool {
		x := describeApp(t, h, app).Exits
		return len(x) > 0 && x[len(x)-1].Cause == cause
	})
}

// describeApp is `tend describe app --json`'s one app.
func describeApp(t *testing.T, h *harness, app string) tend.App {
	t.Helper()
	var apps []tend.App
	if err := json.Unmarshal([]byte(h.ok("describe", app, "--json")), &apps); err != nil || len(apps) != 1 {
		t.Fatalf("describe %s: %v", app, err)
	}
	return apps[0]
}

// In proxy mode an instance that answers in 2 s while the other answers at
// once is taken out of rotation: the answers' p99 is fast again.
func TestProxyEjectsSlowInstance(t *testing.T) {
	h := newHarness(t)
	port := testport.Free(t)
	slow := filepath.Join(t.TempDir(), "slow")
	if err := os.WriteFile(slow+"-1", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h.env = append(h.env, "SLOW_FILE="+slow, "HEALTH_FILE=/nonexistent")
	h.ok("start", healthApp(t), "--name", "px", "-i", "2", "--port", strconv.Itoa(port), "--exec-mode", "proxy", "--eject-slow-after", "1s")
	h.await("online", allStatus(2, tend.StatusOnline))
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	l := startTimedLoad(url, 4)
	h.poll("the slow instance ejected", func() bool {
		b, _ := os.ReadFile(filepath.Join(h.home, "tend.log"))
		return strings.Contains(string(b), "ejected for")
	})
	l.end()
	var took []time.Duration
	for range 100 {
		start := time.Now()
		if _, err := get(url); err != nil {
			t.Fatal(err)
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	p99 := took[len(took)*99/100]
	t.Logf("p99 of 100 requests with the slow instance ejected: %s", p99)
	if p99 >= time.Second {
		t.Errorf("p99 %s: the slow instance still gets requests", p99)
	}
}

// Probes go on under a daemon that took over from one that was killed.
func TestLivenessAfterDaemonKill(t *testing.T) {
	h := newHarness(t)
	port := testport.Free(t)
	flag := filepath.Join(t.TempDir(), "unwell")
	h.env = append(h.env, "HEALTH_FILE="+flag)
	h.ok("start", healthApp(t), "--name", "hc", "-i", "2", "--port", strconv.Itoa(port),
		"--liveness-url", fmt.Sprintf("http://127.0.0.1:%d/health", port), "--liveness-period", "100ms", "--liveness-failure-threshold", "2")
	before := h.await("healthy", healthy(2))
	h.killDaemon()
	if err := os.WriteFile(flag+"-1", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h.await("instance 1 unhealthy", func(insts []tend.Instance) bool { return insts[1].Health == "unhealthy" })
	os.Remove(flag + "-1")
	h.await("instance 1 replaced", replaced(1, before[1].PID))
}

// When the replacement of an unhealthy instance cannot start (a broken
// build), the old process goes on serving, back in rotation, and is judged
// again: healthy once it is.
func TestLivenessFailedReplacement(t *testing.T) {
	h := newHarness(t)
	port := testport.Free(t)
	dir := t.TempDir()
	flag, crash := filepath.Join(dir, "unwell"), filepath.Join(dir, "crash")
	h.env = append(h.env, "HEALTH_FILE="+flag, "CRASH_FILE="+crash)
	h.ok("start", healthApp(t), "--name", "hc", "-i", "2", "--port", strconv.Itoa(port), "--listen-timeout", "10s",
		"--liveness-url", fmt.Sprintf("http://127.0.0.1:%d/health", port), "--liveness-period", "100ms", "--liveness-failure-threshold", "2")
	before := h.await("healthy", healthy(2))
	for _, f := range []string{crash, flag + "-1"} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h.poll("the failed replacement in the daemon's log", func() bool {
		b, _ := os.ReadFile(filepath.Join(h.home, "tend.log"))
		return strings.Contains(string(b), "its replacement failed")
	})
	os.Remove(flag + "-1")
	os.Remove(crash)
	after := h.await("instance 1 healthy again, the same process", func(insts []tend.Instance) bool {
		return insts[1].PID == before[1].PID && insts[1].Health == "healthy"
	})
	// Back in rotation: it answers requests again.
	seen := map[int]bool{}
	for range 20 {
		if pid, err := get(fmt.Sprintf("http://127.0.0.1:%d/", port)); err == nil {
			seen[pid] = true
		}
	}
	if !seen[after[1].PID] {
		t.Errorf("instance 1 (pid %d) got no request after it was healthy again: %v", after[1].PID, seen)
	}
}

// A readiness probe of the port every worker shares reaches the worker it
// judges: during a reload the new one is ready when its own /health says
// so, not when an old one answers.
func TestReadyURLReachesItsWorker(t *testing.T) {
	h := newHarness(t)
	port := testport.Free(t)
	h.env = append(h.env, "WARM_MS=1500", "HEALTH_FILE=/nonexistent")
	h.ok("start", healthApp(t), "--name", "warm", "-i", "2", "--port", strconv.Itoa(port),
		"--ready-url", fmt.Sprintf("http://127.0.0.1:%d/health", port), "--listen-timeout", "20s")
	h.await("ready", func(in []tend.Instance) bool { return len(in) == 2 && in[0].Ready && in[1].Ready })
	h.ok("reload", "warm")
	rep := lastReload(t, h, "warm")
	if rep == nil || !rep.OK || len(rep.Steps) != 2 {
		t.Fatalf("reload report %+v", rep)
	}
	for _, st := range rep.Steps {
		if st.ReadyBy != "http" || st.ReadyMS < 1500 {
			t.Errorf("instance %d ready by %s after %d ms: before its own warm-up of 1500 ms", st.Instance, st.ReadyBy, st.ReadyMS)
		}
	}
}
