package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// tree writes files under root: path -> content.
func tree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// A hybrid host (this one's): v1 hierarchies for the controllers, an
// empty v2 one beside them; the memory hierarchy mounted with a root of
// its own, as in a container.
func TestLocateV1Hybrid(t *testing.T) {
	root := t.TempDir()
	mountinfo := strings.ReplaceAll(`32 31 0:29 / R/cpu rw - cgroup cgroup rw,cpu
33 31 0:30 / R/cpuacct rw - cgroup cgroup rw,cpuacct
35 31 0:32 /outer R/memory rw - cgroup cgroup rw,memory
39 31 0:36 / R/pids rw - cgroup cgroup rw,pids
41 31 0:38 / R/unified rw - cgroup2 cgroup2 rw
`, "R", root)
	self := "8:pids:/\n4:memory:/outer/svc\n2:cpuacct:/\n1:cpu:/\n0::/\n"
	got, err := locate([]byte(self), []byte(mountinfo))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"cpu": root + "/cpu", "cpuacct": root + "/cpuacct", "memory": root + "/memory/svc", "pids": root + "/pids"}
	if got.v2 || len(got.dirs) != 4 {
		t.Fatalf("got %+v", got)
	}
	for c, d := range want {
		if got.dirs[c] != d {
			t.Errorf("%s: %s, want %s", c, got.dirs[c], d)
		}
	}
}

// v2 only: the daemon's own cgroup, or its parent when a daemon before
// it moved into tend.supervisor; an error naming what is missing.
func TestLocateV2(t *testing.T) {
	root := t.TempDir()
	tree(t, root, map[string]string{
		"system.slice/tend.service/cgroup.controllers": "cpuset cpu io memory pids\n",
		"user.slice/cgroup.controllers":                "cpu\n",
	})
	mountinfo := "30 25 0:26 / " + root + " rw - cgroup2 cgroup2 rw\n"
	for self, want := range map[string]string{
		"0::/system.slice/tend.service\n":                 root + "/system.slice/tend.service",
		"0::/system.slice/tend.service/tend.supervisor\n": root + "/system.slice/tend.service",
	} {
		got, err := locate([]byte(self), []byte(mountinfo))
		if err != nil || !got.v2 || got.dirs[""] != want {
			t.Errorf("%s: %+v %v, want v2 at %s", self, got, err, want)
		}
	}
	_, err := locate([]byte("0::/user.slice\n"), []byte(mountinfo))
	if err == nil || !strings.Contains(err.Error(), "no memory, pids controller") {
		t.Errorf("a cgroup without memory and pids: %v", err)
	}
}

// On v2, Make hands the controllers down at every level and writes the
// limits into the instance's leaf; OOMKills and Usage read it back.
func TestMakeV2(t *testing.T) {
	base := t.TempDir()
	leaf := "tend-x/app-api/i3-7"
	files := map[string]string{"cgroup.subtree_control": "", "tend-x/cgroup.subtree_control": "", "tend-x/app-api/cgroup.subtree_control": ""}
	for _, f := range []string{"memory.max", "memory.swap.max", "cpu.max", "pids.max"} {
		files[leaf+"/"+f] = ""
	}
	files[leaf+"/memory.events"] = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n"
	files[leaf+"/cpu.stat"] = "usage_usec 2500000\nuser_usec 2000000\n"
	files[leaf+"/cgroup.procs"] = "12\n34\n"
	tree(t, base, files)
	tr := &Tree{v2: true, dirs: map[string]string{"": base}}
	if err := tr.setUp("tend-x", nil); err != nil {
		t.Fatal(err)
	}
	dirs, err := tr.Make("api", "3-7", Limits{Memory: 256 << 20, CPUPercent: 150, Pids: 64})
	if err != nil || len(dirs) != 1 || dirs[0] != filepath.Join(base, leaf) {
		t.Fatalf("Make: %v %v", dirs, err)
	}
	for f, want := range map[string]string{
		"cgroup.subtree_control": "+memory +cpu +pids", "tend-x/cgroup.subtree_control": "+memory +cpu +pids",
		"tend-x/app-api/cgroup.subtree_control": "+memory +cpu +pids",
		leaf + "/memory.max":                    "268435456", leaf + "/memory.swap.max": "0", leaf + "/cpu.max": "150000 100000", leaf + "/pids.max": "64",
	} {
		if got := read(t, filepath.Join(base, f)); got != want {
			t.Errorf("%s = %q, want %q", f, got, want)
		}
	}
	if n := tr.OOMKills("api", "3-7"); n != 1 {
		t.Errorf("OOMKills = %d, want 1", n)
	}
	cpu, pids, ok := tr.Usage("api", "3-7")
	if !ok || cpu.Seconds() != 2.5 || fmt.Sprint(pids) != "[12 34]" {
		t.Errorf("Usage = %v %v %v, want 2.5s, [12 34]", cpu, pids, ok)
	}
	// No limits: every one back to "max".
	if _, err := tr.Make("api", "3-7", Limits{}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(base, leaf, "cpu.max")) + " " + read(t, filepath.Join(base, leaf, "memory.max")); got != "max 100000 max" {
		t.Errorf("without limits: %q", got)
	}
}

// On v1, each controller's hierarchy gets the instance's cgroup and its
// own files; a kernel without swap accounting has no memsw files.
func TestMakeV1(t *testing.T) {
	base := t.TempDir()
	leaf := "tend-x/app-api/i0-1"
	tree(t, base, map[string]string{
		"memory/" + leaf + "/memory.limit_in_bytes": "", "memory/" + leaf + "/memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
		"cpu/" + leaf + "/cpu.cfs_period_us": "", "cpu/" + leaf + "/cpu.cfs_quota_us": "",
		"cpuacct/" + leaf + "/cpuacct.usage": "1000000000\n",
		// The spawner's thread, in the cgroup for the moment of a fork, is
		// not one of the instance's processes.
		"cpuacct/" + leaf + "/cgroup.procs": fmt.Sprintf("%d\n7\n%d\n", os.Getpid(), os.Getppid()),
		"pids/" + leaf + "/pids.max":        "",
	})
	tr := &Tree{dirs: map[string]string{"memory": base + "/memory", "cpu": base + "/cpu", "cpuacct": base + "/cpuacct", "pids": base + "/pids"}}
	if err := tr.setUp("tend-x", nil); err != nil {
		t.Fatal(err)
	}
	dirs, err := tr.Make("api", "0-1", Limits{Memory: 1 << 20, CPUPercent: 50})
	if err != nil || len(dirs) != 4 {
		t.Fatalf("Make: %v %v", dirs, err)
	}
	for f, want := range map[string]string{
		"memory/" + leaf + "/memory.limit_in_bytes": "1048576", "cpu/" + leaf + "/cpu.cfs_quota_us": "50000",
		"cpu/" + leaf + "/cpu.cfs_period_us": "100000", "pids/" + leaf + "/pids.max": "max",
	} {
		if got := read(t, filepath.Join(base, f)); got != want {
			t.Errorf("%s = %q, want %q", f, got, want)
		}
	}
	if n := tr.OOMKills("api", "0-1"); n != 2 {
		t.Errorf("OOMKills = %d, want 2", n)
	}
	if cpu, pids, ok := tr.Usage("api", "0-1"); !ok || cpu.Seconds() != 1 || fmt.Sprint(pids) != "[7]" {
		t.Errorf("Usage = %v %v %v", cpu, pids, ok)
	}
	if !tr.Has("api", "0-1") || tr.Has("api", "0-2") {
		t.Error("Has")
	}
}

// A Make that one hierarchy refuses (here the cpu one) leaves no cgroup
// of the instance in the others.
func TestMakeFailureLeavesNothing(t *testing.T) {
	base := t.TempDir()
	tr := &Tree{dirs: map[string]string{"memory": base + "/memory", "cpu": base + "/cpu", "cpuacct": base + "/cpuacct", "pids": base + "/pids"}}
	for _, c := range []string{"memory", "cpu", "cpuacct", "pids"} {
		os.MkdirAll(filepath.Join(base, c), 0o755)
	}
	if err := tr.setUp("tend-x", nil); err != nil {
		t.Fatal(err)
	}
	// cpu's app directory is unusable: every Make fails there.
	os.WriteFile(filepath.Join(base, "cpu/tend-x/app-api"), nil, 0o644)
	for i := range 20 {
		key := "0-" + strconv.Itoa(i)
		if _, err := tr.Make("api", key, Limits{}); err == nil {
			t.Fatal("Make succeeded")
		}
		for _, c := range []string{"memory", "cpuacct", "pids"} {
			if _, err := os.Stat(filepath.Join(base, c, "tend-x/app-api/i"+key)); err == nil {
				t.Fatalf("a failed Make left %s's cgroup i%s behind", c, key)
			}
		}
	}
}

// The app's cgroup, removed with its last instance while a new instance
// is being made (a delete and a start of the same name), is made again.
func TestMakeRacesRemove(t *testing.T) {
	base := t.TempDir()
	tr := &Tree{dirs: map[string]string{"cpuacct": base}} // cpuacct: no files to write
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() { // leaveCgroup of the previous instance, retrying
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				tr.Remove("api", "0-1")
			}
		}
	}()
	var err error
	for i := 2; i < 300 && err == nil; i++ {
		key := "0-" + strconv.Itoa(i)
		_, err = tr.Make("api", key, Limits{})
		os.Remove(filepath.Join(base, "app-api", "i"+key))
	}
	close(stop)
	wg.Wait()
	if err != nil {
		t.Errorf("Make failed as the previous instance's cgroup was removed: %v (not exist: %v)", err, errors.Is(err, os.ErrNotExist))
	}
}
