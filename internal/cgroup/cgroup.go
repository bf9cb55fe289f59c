package cgroup

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// v1Controllers are the v1 hierarchies tend makes cgroups in.
var v1Controllers = []string{"memory", "cpu", "cpuacct", "pids"}

// v2Controllers are those it enables for its children on v2.
var v2Controllers = []string{"memory", "cpu", "pids"}

// supervisorLeaf is where a v2 daemon moves itself and its keeper.
const supervisorLeaf = "tend.supervisor"

// Tree is one daemon's cgroups.
type Tree struct {
	mu sync.Mutex // Make and Remove
	v2 bool
	// dirs is tend's directory per hierarchy: per v1 controller, or
	// under "" on v2.
	dirs map[string]string
}

// Open finds this process's cgroups and makes tend's directory, name, in
// them; own are the pids to move out of the way on v2 (the daemon and
// its keeper). The error says why tend cannot use cgroups here.
func Open(name string, own ...int) (*Tree, error) {
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	t, err := locate(self, mounts)
	if err != nil {
		return nil, err
	}
	if err := t.setUp(name, own); err != nil {
		return nil, err
	}
	return t, nil
}

// mount is one cgroup filesystem: where it is mounted, which directory of
// the hierarchy is its root, and (v1) its controllers.
type mount struct {
	point, root string
	v2          bool
	controllers []string
}

// placed is where /proc/self/cgroup puts a process, as directories:
// per v1 controller, and its v2 one ("" when none).
type placed struct {
	v1 map[string]string
	v2 string
}

// mounts are the cgroup filesystems mountinfo (/proc/self/mountinfo)
// lists.
func mounts(mountinfo []byte) []mount {
	var out []mount
	sc := bufio.NewScanner(bytes.NewReader(mountinfo))
	for sc.Scan() {
		// id parent major:minor root point options ... - fstype source superoptions
		f := strings.Fields(sc.Text())
		sep := slices.Index(f, "-")
		if sep < 5 || len(f) < sep+4 {
			continue
		}
		root, point := unescape(f[3]), unescape(f[4])
		switch f[sep+1] {
		case "cgroup2":
			out = append(out, mount{point: point, root: root, v2: true})
		case "cgroup":
			out = append(out, mount{point: point, root: root, controllers: strings.Split(f[sep+3], ",")})
		}
	}
	return out
}

// unescape undoes mountinfo's octal escapes (a space is \040).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// place reads self (/proc/self/cgroup) against ms: a hierarchy mounted
// from a directory of its own (a container's /docker/<id>) is read
// relative to it.
func place(self []byte, ms []mount) placed {
	p := placed{v1: map[string]string{}}
	for line := range strings.SplitSeq(strings.TrimSpace(string(self)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, m := range ms {
			rel, ok := under(parts[2], m.root)
			switch {
			case !ok:
			case m.v2 && parts[0] == "0" && parts[1] == "":
				p.v2 = filepath.Join(m.point, rel)
			case !m.v2 && parts[1] != "":
				for _, c := range strings.Split(parts[1], ",") {
					if slices.Contains(m.controllers, c) {
						p.v1[c] = filepath.Join(m.point, rel)
					}
				}
			}
		}
	}
	return p
}

// Ancestors are the directories of the cgroups this process is in, as
// self and mountinfo say (the contents of /proc/self/cgroup and
// /proc/self/mountinfo), and of their ancestors up to each mount: where a
// limit on it may be set. controller names the v1 hierarchy; the v2 one
// comes too, after it.
func Ancestors(self, mountinfo []byte, controller string) []string {
	ms := mounts(mountinfo)
	p := place(self, ms)
	var dirs []string
	for _, dir := range []string{p.v1[controller], p.v2} {
		if dir == "" {
			continue
		}
		top := mountOf(dir, ms)
		for d := dir; ; d = filepath.Dir(d) {
			dirs = append(dirs, d)
			if d == top || d == "/" || d == "." {
				break
			}
		}
	}
	return dirs
}

// mountOf is the mount point of the cgroup mount of ms that holds dir.
func mountOf(dir string, ms []mount) string {
	best := "/"
	for _, m := range ms {
		if (dir == m.point || strings.HasPrefix(dir, m.point+"/")) && len(m.point) > len(best) {
			best = m.point
		}
	}
	return best
}

// locate finds this process's cgroup directories from /proc/self/cgroup
// and /proc/self/mountinfo. It prefers v1 hierarchies for the controllers
// that have one (a hybrid host's v2 hierarchy has none of them).
func locate(self, mountinfo []byte) (*Tree, error) {
	p := place(self, mounts(mountinfo))
	t := &Tree{dirs: map[string]string{}}
	for _, c := range v1Controllers {
		if dir, ok := p.v1[c]; ok {
			t.dirs[c] = dir
		}
	}
	v2dir := p.v2
	if len(t.dirs) == len(v1Controllers) {
		return t, nil
	}
	if v2dir != "" {
		avail, _ := os.ReadFile(filepath.Join(v2dir, "cgroup.controllers"))
		have := strings.Fields(string(avail))
		if filepath.Base(v2dir) == supervisorLeaf { // a daemon before this one moved there
			v2dir = filepath.Dir(v2dir)
			avail, _ = os.ReadFile(filepath.Join(v2dir, "cgroup.controllers"))
			have = strings.Fields(string(avail))
		}
		if missing := missingFrom(have, v2Controllers); len(missing) == 0 {
			return &Tree{v2: true, dirs: map[string]string{"": v2dir}}, nil
		} else if len(t.dirs) == 0 {
			return nil, fmt.Errorf("cgroup v2 at %s offers no %s controller to tend", v2dir, strings.Join(missing, ", "))
		}
	}
	missing := missingFrom(slices.Collect(mapKeys(t.dirs)), v1Controllers)
	if len(missing) == 0 {
		return t, nil
	}
	return nil, fmt.Errorf("no cgroup hierarchy with the %s controller is mounted", strings.Join(missing, ", "))
}

// under returns p relative to root, when it is below it.
func under(p, root string) (string, bool) {
	if root == "/" {
		return p, true
	}
	if p == root {
		return "/", true
	}
	rel, ok := strings.CutPrefix(p, root+"/")
	return "/" + rel, ok
}

func missingFrom(have, want []string) []string {
	var out []string
	for _, c := range want {
		if !slices.Contains(have, c) {
			out = append(out, c)
		}
	}
	return out
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// setUp makes tend's directory in every hierarchy. On v2 it also hands
// the controllers down to it, moving own out of the parent if need be.
func (t *Tree) setUp(name string, own []int) error {
	for c, parent := range maps.Clone(t.dirs) {
		dir := filepath.Join(parent, name)
		if t.v2 {
			if err := t.delegate(parent, own); err != nil {
				return err
			}
		}
		if err := mkdir(dir); err != nil {
			return err
		}
		if t.v2 {
			if err := enable(dir); err != nil {
				return err
			}
		}
		t.dirs[c] = dir
	}
	return nil
}

// delegate enables tend's controllers in parent's children. The kernel
// refuses (EBUSY) while parent has processes of its own: then the daemon
// and its keeper move to a leaf beside tend's directory, and if parent
// still has processes, someone else's, tend cannot have cgroups here.
func (t *Tree) delegate(parent string, own []int) error {
	err := enable(parent)
	if err == nil || !errors.Is(err, errBusy) {
		return err
	}
	leaf := filepath.Join(parent, supervisorLeaf)
	if err := mkdir(leaf); err != nil {
		return err
	}
	for _, pid := range own {
		if err := writeFile(filepath.Join(leaf, "cgroup.procs"), fmt.Sprint(pid)); err != nil {
			return fmt.Errorf("moving tend (pid %d) to %s: %w", pid, leaf, err)
		}
	}
	if err := enable(parent); err != nil {
		return fmt.Errorf("cgroup %s holds processes other than tend's, so it cannot give tend cgroups of its own (%w); run tend's daemon under systemd (tend startup's unit delegates one) or as a container's PID 1", parent, err)
	}
	return nil
}
