package cli_test

import (
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tendhq/tend"
)

// everySecond rotates logs every second (the cron parser takes seconds
// first in six fields), so that the tests need not wait for midnight.
const everySecond = "* * * * * *"

// datedRE matches the rotated files of <stem>.log, compressed or not, and
// captures their stamp.
func datedRE(stem string) *regexp.Regexp {
	return regexp.MustCompile(`^` + regexp.QuoteMeta(stem) + `__(\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d)(_\d{3})?\.log(\.gz)?$`)
}

// dated returns the names of the files rotated from dir/<stem>.log, in the
// order they were made (their names sort so).
func dated(t *testing.T, dir, stem string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	re := datedRE(stem)
	var names []string
	for _, e := range ents {
		if re.MatchString(e.Name()) {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names
}

// readLog returns the text of a log file, gunzipped if it ends in .gz; ok
// is false when the file went away meanwhile (rotated out).
func readLog(t *testing.T, path string) (string, bool) {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		r = zr
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return string(b), true
}

var tickRE = regexp.MustCompile(`tick (\d+) pid=`)

// ticks returns the numbers of the ticker's lines in text, in order.
func ticks(text string) []int {
	var out []int
	for _, m := range tickRE.FindAllStringSubmatch(text, -1) {
		n, _ := strconv.Atoi(m[1])
		out = append(out, n)
	}
	return out
}

// consecutive reports where ns stops counting up by one, -1 if it never
// does.
func consecutive(ns []int) int {
	for i := 1; i < len(ns); i++ {
		if ns[i] != ns[i-1]+1 {
			return i
		}
	}
	return -1
}

func TestLogRotateInterval(t *testing.T) {
	h := newHarness(t)
	h.env = append(h.env, "TICK_MS=1")
	// The daemon's default rotates every app's logs (and its own) every
	// second; the apps below set their own retention and compression.
	os.WriteFile(filepath.Join(h.home, "config.yaml"), []byte("logs:\n  rotate_interval: \""+everySecond+"\"\n  retain: 1000\n"), 0o600)
	h.ok("start", h.self, "--name", "off", "--log-rotate-interval", "false", "--", "serve")
	h.ok("start", h.self, "--name", "quiet", "--", "serve")
	h.ok("start", h.self, "--name", "tick", "--log-retain", "3", "--log-compress", "--", "ticker")
	h.ok("start", h.self, "--name", "burst", "--log-rotate-interval", everySecond, "--log-max-size", "4K", "--", "ticker")
	dir := filepath.Join(h.home, "logs")

	t.Run("rotates a file the app is not writing", func(t *testing.T) {
		var names []string
		h.poll("quiet's output in a dated file", func() bool {
			names = dated(t, dir, "quiet-out-0")
			return len(names) > 0
		})
		if text, _ := readLog(t, filepath.Join(dir, names[0])); !strings.Contains(text, "env app=quiet") {
			t.Errorf("%s = %q, want the app's one line", names[0], text)
		}
		h.poll("the daemon's own log rotated", func() bool { return len(dated(t, h.home, "tend")) > 0 })
	})

	t.Run("retention and compression", func(t *testing.T) {
		var first string
		h.poll("a compressed dated file", func() bool {
			names := dated(t, dir, "tick-out-0")
			if len(names) > 0 && first == "" {
				first = names[0]
			}
			return len(names) > 0 && strings.HasSuffix(names[len(names)-1], ".gz")
		})
		// Keep 3: the oldest files go as new ones come. A rotation renames,
		// then deletes the oldest: poll rather than catch that moment.
		h.poll("the oldest dated file deleted, 3 kept", func() bool {
			names := dated(t, dir, "tick-out-0")
			return !slices.Contains(names, first) && !slices.Contains(names, first+".gz") && len(names) == 3
		})
		var newest []int
		h.poll("a compressed file read whole", func() bool {
			names := dated(t, dir, "tick-out-0")
			text, ok := readLog(t, filepath.Join(dir, names[len(names)-1]))
			if !ok || !strings.HasSuffix(names[len(names)-1], ".gz") {
				return false
			}
			newest = ticks(text)
			return true
		})
		if len(newest) == 0 || consecutive(newest) >= 0 {
			t.Fatalf("the newest rotated file holds ticks %v, want a run of consecutive ones", newest)
		}
		// The live file goes on where the newest rotated one ended.
		h.poll("the live file continuing", func() bool {
			text, _ := readLog(t, filepath.Join(dir, "tick-out-0.log"))
			live := ticks(text)
			return len(live) > 0 && live[0] > newest[len(newest)-1]
		})
		// Seconds have passed: "off" would have rotated by now.
		if names := dated(t, dir, "off-out-0"); len(names) > 0 {
			t.Errorf("log_rotate_interval false rotated %q", names)
		}
	})

	t.Run("no line lost or doubled across rotations", func(t *testing.T) {
		// 4K files of ~20-byte lines at ~1000 lines/s: several size
		// rotations a second besides the one by time, in the same second.
		h.poll("burst past tick 2500", func() bool {
			got := ticks(h.ok("logs", "burst", "--nostream", "--lines", "5"))
			return len(got) > 0 && got[len(got)-1] >= 2500
		})
		h.poll("burst rotated over 3 seconds", func() bool {
			stamps := map[string]bool{}
			for _, n := range dated(t, dir, "burst-out-0") {
				stamps[datedRE("burst-out-0").FindStringSubmatch(n)[1]] = true
			}
			return len(stamps) >= 3
		})
		h.ok("stop", "burst")
		h.await("burst stopped", func(in []tend.Instance) bool {
			return slices.ContainsFunc(in, func(i tend.Instance) bool { return i.Name == "burst" && i.Status == tend.StatusStopped })
		})
		live := filepath.Join(dir, "burst-out-0.log")
		h.poll("the last lines rotated by time", func() bool {
			fi, err := os.Stat(live)
			return err == nil && fi.Size() == 0
		})
		var all strings.Builder
		names := dated(t, dir, "burst-out-0")
		for _, n := range names {
			text, ok := readLog(t, filepath.Join(dir, n))
			if !ok {
				t.Fatalf("%s went away", n)
			}
			all.WriteString(text)
		}
		got := ticks(all.String())
		if i := consecutive(got); i >= 0 || len(got) == 0 || got[0] != 0 {
			t.Fatalf("%d files hold %d ticks, not 0, 1, 2 ... once each: at %d: %v", len(names), len(got), i, got[max(i-3, 0):min(i+3, len(got))])
		}
		if !strings.Contains(all.String(), "stopping") {
			t.Error("the app's last line is missing")
		}
		if !slices.ContainsFunc(names, func(n string) bool { return datedRE("burst-out-0").FindStringSubmatch(n)[2] != "" }) {
			t.Errorf("no two rotations in one second among %q: size and time rotations were meant to meet", names)
		}
		t.Logf("%d lines in %d dated files", len(got), len(names))

		// tend logs reads back through the dated files.
		shown := ticks(h.ok("logs", "burst", "--nostream", "--lines", "1500"))
		if len(shown) < 1490 || consecutive(shown) >= 0 || shown[len(shown)-1] != got[len(got)-1] {
			t.Errorf("tend logs --lines 1500 shows %d ticks, want the last ones consecutive up to %d", len(shown), got[len(got)-1])
		}
		// tend flush empties the live files and leaves the rotated ones.
		h.ok("flush", "burst")
		if after := dated(t, dir, "burst-out-0"); !slices.Equal(after, names) {
			t.Errorf("flush changed the rotated files: %d before, %d after", len(names), len(after))
		}
	})
}

func TestLogRotateIntervalErrors(t *testing.T) {
	h := newHarness(t)
	msg := h.fail(2, "start", h.self, "--name", "x", "--log-rotate-interval", "weekly", "--", "serve")
	if !strings.Contains(msg, `"weekly" is not daily, hourly, false or a cron schedule`) {
		t.Errorf("error = %q", msg)
	}
	if len(h.ls()) != 0 {
		t.Error("an app started with a bad rotation interval")
	}

	h = newHarness(t)
	os.WriteFile(filepath.Join(h.home, "config.yaml"), []byte("logs:\n  rotate_interval: weekly\n"), 0o600)
	msg = h.fail(1, "ls")
	if !strings.Contains(msg, `config.yaml: logs.rotate_interval: "weekly" is not daily`) {
		t.Errorf("error = %q", msg)
	}
}
