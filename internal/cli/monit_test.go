package cli_test

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var exitRE = regexp.MustCompile(`monit exited with (\d+)`)

// TestMonitInTmux runs `tend monit` in a real terminal: a detached tmux
// session of 100x30. tmux is required (the Debian package tmux): without
// it the test fails rather than skipping, so CI cannot lose it silently.
func TestMonitInTmux(t *testing.T) {
	tmuxBin, err := exec.LookPath("tmux")
	if err != nil {
		t.Fatalf("this test needs tmux (apt-get install -y tmux): %v", err)
	}
	h := newHarness(t)
	h.ok("start", "/bin/sleep", "--name", "sleepy", "--", "3600")

	// A private server (-L) without the user's configuration. Variables
	// of an enclosing tmux would point at the wrong server.
	sock := "tend-monit-" + strconv.Itoa(os.Getpid())
	var env []string
	for _, kv := range h.env {
		if !strings.HasPrefix(kv, "TMUX") && !strings.HasPrefix(kv, "TERM=") {
			env = append(env, kv)
		}
	}
	env = append(env, "TERM=xterm-256color")
	tmux := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(tmuxBin, append([]string{"-L", sock, "-f", "/dev/null"}, args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	// A shell waits for monit and prints how it exited: tmux 3.3 was
	// seen to leave an exited pane process unreaped (a zombie), so that
	// its pane_dead_status never came.
	tmux("new-session", "-d", "-s", "monit", "-x", "100", "-y", "30", "-e", "TEND_HOME="+h.home,
		"/bin/sh", "-c", `"$0" monit; echo "monit exited with $?"; exec sleep 600`, tendBin)
	t.Cleanup(func() { exec.Command(tmuxBin, "-L", sock, "kill-server").Run() })

	// Wait for the app's row, online, and the key help.
	var screen string
	deadline := time.Now().Add(20 * time.Second)
	for {
		screen = tmux("capture-pane", "-p", "-t", "monit")
		if strings.Contains(screen, "sleepy") && strings.Contains(screen, "online") && strings.Contains(screen, "q quit") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("monit did not show the app in 20s; screen:\n%s", screen)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if strings.Contains(screen, "daemon:") {
		t.Errorf("monit reports a daemon error:\n%s", screen)
	}

	tmux("send-keys", "-t", "monit", "q")
	deadline = time.Now().Add(10 * time.Second)
	for {
		screen = tmux("capture-pane", "-p", "-t", "monit")
		if m := exitRE.FindStringSubmatch(screen); m != nil {
			if m[1] != "0" {
				t.Fatalf("monit exited with status %s; screen:\n%s", m[1], screen)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("monit still runs 10s after q; screen:\n%s", screen)
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.ok("kill")
}
