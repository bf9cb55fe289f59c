package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/tendhq/tend"
)

func TestMaxMemoryRestart(t *testing.T) {
	h := newHarness(t)
	h.ok("start", h.self, "--name", "hog", "--max-memory-restart", "40M", "--", "hog")
	first := h.ls()[0].PID
	h.await("replaced for memory", func(in []tend.Instance) bool {
		return in[0].PID != first && in[0].PID != 0 && in[0].LastExit != nil
	})
	if ex := h.ls()[0].LastExit; ex.Cause != "memory" {
		t.Errorf("last exit = %+v, want cause memory", ex)
	}
	if !strings.Contains(h.ok("describe", "hog"), "memory") {
		t.Error("describe does not show the memory restart")
	}
}

func TestLogRotationAndFormats(t *testing.T) {
	h := newHarness(t)
	h.env = append(h.env, "TICK_MS=1")
	h.ok("start", h.self, "--name", "tick", "--time", "--log-max-size", "4K", "--log-retain", "2", "--", "ticker")
	h.ok("start", h.self, "--name", "js", "--log-type", "json", "--", "ticker")
	out := filepath.Join(h.home, "logs", "tick-out-0.log")
	// ~50 bytes a line every ms: 4 KB fill in a tenth of a second.
	h.awaitLog("tick", "tick 300 ")
	for _, p := range []string{out, out + ".1", out + ".2"} {
		h.awaitFile(p) // a rotation renames, then creates: wait out that moment
		fi, err := os.Stat(p)
		if err != nil {
			continue // rotated again meanwhile
		}
		if fi.Size() > 4<<10 {
			t.Errorf("%s is %d bytes, over the 4K rotation size", p, fi.Size())
		}
	}
	if _, err := os.Stat(out + ".3"); err == nil {
		t.Errorf("%s.3 exists: only 2 rotated files should be kept", out)
	}
	b, _ := os.ReadFile(out + ".1")
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d: tick \d+`).MatchString(l) {
			t.Fatalf("line without its own timestamp: %q", l)
		}
	}
	jb, _ := os.ReadFile(filepath.Join(h.home, "logs", "js-out-0.log"))
	first := strings.SplitN(string(jb), "\n", 2)[0]
	var rec map[string]any
	if err := json.Unmarshal([]byte(first), &rec); err != nil || rec["app"] != "js" || !strings.HasPrefix(rec["message"].(string), "tick 0") {
		t.Errorf("json log line %q: %v", first, err)
	}
	// tend logs --json and --instance
	jl := h.ok("logs", "js", "--nostream", "--json", "--lines", "2", "--instance", "0")
	var ll tend.LogLine
	if err := json.Unmarshal([]byte(strings.SplitN(jl, "\n", 2)[0]), &ll); err != nil || ll.App != "js" {
		t.Errorf("logs --json: %q (%v)", jl, err)
	}
	if h.ok("logs", "js", "--nostream", "--instance", "1") != "" {
		t.Error("--instance 1 should match nothing")
	}

	// An external rotator moves the file and signals the daemon.
	pid := daemonPID(t, h)
	os.Rename(out, out+".moved")
	syscall.Kill(pid, syscall.SIGUSR1)
	h.awaitFile(out)
	h.ok("flush", "tick")
}

func (h *harness) awaitFile(path string) {
	h.t.Helper()
	h.poll("file "+path, func() bool { _, err := os.Stat(path); return err == nil })
}

func daemonPID(t *testing.T, h *harness) int {
	t.Helper()
	m := regexp.MustCompile(`pid (\d+)`).FindStringSubmatch(h.ok("ping"))
	pid, _ := strconv.Atoi(m[1])
	return pid
}

// vmRSS is a process's resident memory in bytes.
func vmRSS(t *testing.T, pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`VmRSS:\s+(\d+) kB`).FindSubmatch(b)
	kb, _ := strconv.Atoi(string(m[1]))
	return kb << 10
}

func TestLogFloodKeepsDaemonMemoryBounded(t *testing.T) {
	h := newHarness(t)
	h.ok("start", h.self, "--name", "flood", "--", "flood", "100")
	h.awaitLog("flood", "flood done")
	rss := vmRSS(t, daemonPID(t, h))
	t.Logf("daemon RSS after 100 MB of logs, a 10 MB line and binary junk: %d MB", rss>>20)
	// The daemon holds fixed buffers and bounded tails; 64 MB leaves room
	// for the Go runtime while catching anything that keeps what it reads.
	if rss > 64<<20 {
		t.Errorf("daemon RSS %d MB after the flood", rss>>20)
	}
	if out := h.ok("logs", "flood", "--nostream", "--lines", "5"); !strings.Contains(out, "flood done") {
		t.Errorf("tend logs after the flood:\n%.500s", out)
	}
}

func TestUnwritableLogKeepsAppRunning(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.log")
	// A directory where the log file should be: open fails, for root too.
	os.Mkdir(out, 0o700)
	h.ok("start", h.self, "--name", "tick", "-o", out, "--", "ticker")
	h.poll("problem reported", func() bool {
		return strings.Contains(h.ok("describe", "tick"), "out.log") && strings.Contains(h.ok("describe", "tick"), "!")
	})
	if in := h.ls()[0]; in.Status != tend.StatusOnline {
		t.Fatalf("the app should keep running: %+v", in)
	}
	// The problem is found as the file opens, before the first tick.
	h.poll("tend logs shows the live tail", func() bool { return strings.Contains(h.ok("logs", "tick", "--nostream"), "tick ") })
	h.poll("the daemon's log reports it", func() bool {
		b, _ := os.ReadFile(filepath.Join(h.home, "tend.log"))
		return strings.Contains(string(b), "logs cannot be written")
	})
	// The way is clear again: logging resumes.
	os.Remove(out)
	h.awaitFile(out)
	h.poll("lines in the file", func() bool {
		b, _ := os.ReadFile(out)
		return strings.Contains(string(b), "tick ")
	})
}

func TestMergeLogs(t *testing.T) {
	h := newHarness(t)
	h.ok("start", h.self, "--name", "m", "-i", "2", "--merge-logs", "--", "serve")
	merged := filepath.Join(h.home, "logs", "m-out.log")
	h.poll("both instances in one file", func() bool {
		b, _ := os.ReadFile(merged)
		return strings.Contains(string(b), "instance=0") && strings.Contains(string(b), "instance=1")
	})
	if _, err := os.Stat(filepath.Join(h.home, "logs", "m-out-0.log")); err == nil {
		t.Error("--merge-logs still wrote a per-instance file")
	}
}

func TestLogsLinesBeyondMemoryTail(t *testing.T) {
	h := newHarness(t)
	// 3000 lines, more than the 200 kept in memory, then quiet.
	h.ok("start", "sh -c 'seq 3000; exec sleep 60'", "--name", "t")
	h.awaitLog("t", "| 3000")
	out := h.ok("logs", "t", "--nostream", "--lines", "1000")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 1000 || lines[0] != "t[0] | 2001" || lines[999] != "t[0] | 3000" {
		t.Errorf("--lines 1000 printed %d lines, %q ... %q", len(lines), lines[0], lines[len(lines)-1])
	}
}

func TestLogsFollowsInstancesStartedLater(t *testing.T) {
	h := newHarness(t)
	// Following everything before any app runs waits for one.
	all := h.start("logs")
	h.ok("start", h.self, "--name", "web", "--", "serve")
	all.await(all.lines, "web[0] | env app=web instance=0")
	// Following one app takes in its later instances, from their first
	// line, and nothing of apps started later.
	web := h.start("logs", "web", "--lines", "0")
	h.ok("start", h.self, "--name", "other", "--", "serve")
	all.await(all.lines, "other[0] | env app=other")
	h.ok("scale", "web", "2")
	_, passed := web.await(web.lines, "web[1] | env app=web instance=1")
	all.await(all.lines, "web[1] | env app=web instance=1")
	h.ok("stop", "web")
	web.awaitAll(web.lines, "web[0] | stopping", "web[1] | stopping")
	for _, l := range passed {
		if strings.Contains(l, "other") {
			t.Errorf("tend logs web printed a line of another app: %q", l)
		}
	}
	if errOut := h.fail(3, "logs", "nope"); !strings.Contains(errOut, `"nope"`) {
		t.Errorf("logs of a missing app: %q", errOut)
	}
	// Once no app is left, ids start again at 0: a new app's instance is
	// followed although an old one had its id.
	h.ok("delete", "all")
	h.ok("start", h.self, "--name", "again", "--", "serve")
	all.await(all.lines, "again[0] | env app=again")
}

// What an app writes as it stops reaches its log file even when the app
// goes away with it (delete, scale down, kill).
func TestLastWordsReachTheLog(t *testing.T) {
	h := newHarness(t)
	h.ok("start", h.self, "--name", "web", "-i", "4", "--", "serve")
	h.await("4 online", allStatus(4, tend.StatusOnline))
	// Each has set its stop handler once it printed: before that a stop
	// signal kills it with nothing said.
	for i := range 4 {
		h.awaitLog("web", "app=web instance="+strconv.Itoa(i)+" ")
	}
	h.ok("scale", "web", "2")
	h.ok("kill")
	for i := range 4 {
		b, _ := os.ReadFile(filepath.Join(h.home, "logs", "web-out-"+strconv.Itoa(i)+".log"))
		if !strings.Contains(string(b), "stopping") {
			t.Errorf("web[%d]'s log lacks its last line: %q", i, b)
		}
	}
}

// TestLogsLinesPerInstance: --lines counts per instance, so a chatty app
// does not hide a quiet one beside it.
func TestLogsLinesPerInstance(t *testing.T) {
	h := newHarness(t)
	h.env = append(h.env, "TICK_MS=1")
	h.ok("start", h.self, "--name", "chatty", "-i", "2", "--", "ticker")
	h.ok("start", h.self, "--name", "quiet", "--", "serve")
	h.awaitLog("chatty", "tick 50 ")
	h.awaitLog("quiet", "env app=quiet")
	out := h.ok("logs", "--nostream", "--lines", "5")
	counts := map[string]int{}
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		if i := strings.IndexAny(line, "|!"); i > 0 {
			counts[strings.TrimSpace(line[:i])]++
		}
	}
	if counts["chatty[0]"] != 5 || counts["chatty[1]"] != 5 || counts["quiet[0]"] < 1 {
		t.Errorf("tend logs --lines 5 printed %v, want 5 of each chatty instance and quiet's lines:\n%s", counts, out)
	}
}
