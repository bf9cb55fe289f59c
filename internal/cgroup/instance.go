package cgroup

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Limits bound one instance with what it starts. Zero is no limit.
type Limits struct {
	Memory     int64 // bytes, swap included
	CPUPercent int   // percent of one CPU
	Pids       int   // processes and threads
}

// cpuPeriod is the CFS period tend's quotas are written in.
const cpuPeriod = 100000 // µs

// Make creates the cgroup of instance key of app, with limits l, and
// returns the directories the instance joins. Limits that were there (a
// cgroup left by a daemon that died) are rewritten. On v1 an instance
// without a memory limit joins no memory cgroup: moving a process between
// memory cgroups costs the kernel some 10 ms, and tend reads its memory
// from its processes. A failure leaves nothing made.
func (t *Tree) Make(app, key string, l Limits) ([]string, error) {
	// One at a time with Remove: the app's cgroup, removed with its last
	// instance, must not go between the two mkdirs of a new one.
	t.mu.Lock()
	defer t.mu.Unlock()
	var dirs []string
	for c, base := range t.dirs {
		if c == "memory" && l.Memory <= 0 {
			continue
		}
		dir, err := t.makeLeaf(base, app, key)
		if err == nil {
			dirs = append(dirs, dir)
			err = t.limit(c, dir, l)
		}
		if err != nil {
			t.remove(app, key)
			return nil, err
		}
	}
	return dirs, nil
}

// makeLeaf makes app's cgroup under base and the instance's under it.
func (t *Tree) makeLeaf(base, app, key string) (string, error) {
	appDir := filepath.Join(base, "app-"+app)
	if err := mkdir(appDir); err != nil {
		return "", err
	}
	if t.v2 {
		if err := enable(appDir); err != nil {
			return "", err
		}
	}
	dir := filepath.Join(appDir, "i"+key)
	return dir, mkdir(dir)
}

// limit writes l into dir, the cgroup of controller c (v1) or of all (v2).
func (t *Tree) limit(c, dir string, l Limits) error {
	mem, pids := "max", "max"
	if l.Memory > 0 {
		mem = strconv.FormatInt(l.Memory, 10)
	}
	if l.Pids > 0 {
		pids = strconv.Itoa(l.Pids)
	}
	quota := int64(-1)
	if l.CPUPercent > 0 {
		quota = int64(l.CPUPercent) * cpuPeriod / 100
	}
	var files [][2]string
	switch {
	case t.v2:
		cpu := "max " + strconv.Itoa(cpuPeriod)
		if quota > 0 {
			cpu = fmt.Sprintf("%d %d", quota, cpuPeriod)
		}
		// A hard limit: no swapping past it instead of the OOM killer.
		swap := "max"
		if l.Memory > 0 {
			swap = "0"
		}
		files = [][2]string{{"memory.max", mem}, {"memory.swap.max", swap}, {"cpu.max", cpu}, {"pids.max", pids}}
	case c == "memory":
		if l.Memory <= 0 {
			mem = "-1"
		}
		// memsw (memory and swap) must stay at or above the memory limit:
		// raise it first when there is one.
		files = [][2]string{{"memory.memsw.limit_in_bytes", "-1"}, {"memory.limit_in_bytes", mem}, {"memory.memsw.limit_in_bytes", mem}}
	case c == "cpu":
		files = [][2]string{{"cpu.cfs_period_us", strconv.Itoa(cpuPeriod)}, {"cpu.cfs_quota_us", strconv.FormatInt(quota, 10)}}
	case c == "pids":
		files = [][2]string{{"pids.max", pids}}
	}
	for _, f := range files {
		err := writeFile(filepath.Join(dir, f[0]), f[1])
		if err != nil && !(errors.Is(err, os.ErrNotExist) && optional(f[0])) {
			return fmt.Errorf("setting %s of %s to %s: %w", f[0], dir, f[1], err)
		}
	}
	return nil
}

// optional files are those a kernel may lack: swap accounting.
func optional(name string) bool { return strings.Contains(name, "sw") }

// Remove deletes the cgroup of instance key of app, and the app's when it
// was its last, and reports whether it is gone: processes still in it
// keep it.
func (t *Tree) Remove(app, key string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.remove(app, key)
}

func (t *Tree) remove(app, key string) bool {
	gone := true
	for _, base := range t.dirs {
		appDir := filepath.Join(base, "app-"+app)
		if err := os.Remove(filepath.Join(appDir, "i"+key)); err != nil && !errors.Is(err, os.ErrNotExist) {
			gone = false
		}
		os.Remove(appDir) // fails while another instance has one
	}
	return gone
}

// Has reports whether instance key of app has a cgroup; false on a nil
// Tree.
func (t *Tree) Has(app, key string) bool {
	if t == nil {
		return false
	}
	_, err := os.Stat(filepath.Join(t.accounting(), "app-"+app, "i"+key))
	return err == nil
}

// accounting is tend's directory in the hierarchy every instance joins,
// which counts its CPU and lists its processes.
func (t *Tree) accounting() string {
	if t.v2 {
		return t.dirs[""]
	}
	return t.dirs["cpuacct"]
}

// Close removes tend's cgroups that no process is left in, waiting a
// moment for those whose processes were just killed to empty.
func (t *Tree) Close() {
	for range 20 {
		left := false
		for _, dir := range t.dirs {
			left = removeEmpty(dir) || left
		}
		if !left {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// removeEmpty removes dir and the cgroups below it, deepest first, and
// reports whether some are left.
func removeEmpty(dir string) (left bool) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			left = removeEmpty(filepath.Join(dir, e.Name())) || left
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return true
	}
	return left
}

// OOMKills is how many processes of instance key of app the kernel's OOM
// killer has killed.
func (t *Tree) OOMKills(app, key string) int {
	name, base := "memory.events", t.dirs[""]
	if !t.v2 {
		name, base = "memory.oom_control", t.dirs["memory"]
	}
	b, _ := os.ReadFile(filepath.Join(base, "app-"+app, "i"+key, name))
	return int(field(b, "oom_kill"))
}

// Usage is the CPU time that instance key of app and everything in its
// cgroup used, and the pids in it now (the instance, and what it started,
// wherever they went).
func (t *Tree) Usage(app, key string) (cpu time.Duration, pids []int, ok bool) {
	rel := filepath.Join("app-"+app, "i"+key)
	var procs []byte
	var err error
	if t.v2 {
		dir := filepath.Join(t.dirs[""], rel)
		stat, serr := os.ReadFile(filepath.Join(dir, "cpu.stat"))
		procs, err = os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if serr != nil || err != nil {
			return 0, nil, false
		}
		cpu = time.Duration(field(stat, "usage_usec")) * time.Microsecond
	} else {
		usage, uerr := os.ReadFile(filepath.Join(t.dirs["cpuacct"], rel, "cpuacct.usage"))
		procs, err = os.ReadFile(filepath.Join(t.dirs["cpuacct"], rel, "cgroup.procs"))
		if uerr != nil || err != nil {
			return 0, nil, false
		}
		cpu = time.Duration(number(usage))
	}
	// On v1 a process is forked from a thread of the spawner (this
	// process, or the keeper, its parent) that joins the cgroup first, so
	// for a moment the spawner is listed too: never count it.
	self, parent := os.Getpid(), os.Getppid()
	for f := range strings.FieldsSeq(string(procs)) {
		if pid, err := strconv.Atoi(f); err == nil && pid != self && pid != parent {
			pids = append(pids, pid)
		}
	}
	return cpu, pids, true
}

// field is the value of "name N" in a flat keyed file.
func field(b []byte, name string) uint64 {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), " "); ok && k == name {
			return number([]byte(v))
		}
	}
	return 0
}

func number(b []byte) uint64 {
	n, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return n
}

// errBusy is the kernel's refusal to enable controllers in a cgroup that
// has processes.
var errBusy = syscall.EBUSY

// enable hands tend's controllers to dir's children (v2).
func enable(dir string) error {
	return writeFile(filepath.Join(dir, "cgroup.subtree_control"), "+memory +cpu +pids")
}

func mkdir(dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("making cgroup %s: %w", dir, err)
	}
	return nil
}

// writeFile writes one value to a cgroup interface file, which exists
// (cgroup files are never created): no symlink is followed.
func writeFile(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC|syscall.O_NOFOLLOW, 0) // as a shell's > does
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
