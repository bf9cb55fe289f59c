package procexec

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Descendants returns the pids of every live descendant of pid, found by
// walking the parent links in /proc/*/stat. It is a snapshot: processes
// forked after it returns are not included (the process group covers those
// that stay in the group).
func Descendants(pid int) []int {
	parent := recentParentMap()
	children := map[int][]int{}
	for c, p := range parent {
		children[p] = append(children[p], c)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// parentMapTTL is how long one /proc scan answers Descendants. Stopping a
// thousand instances at once asks thousands of times within milliseconds;
// scanning /proc for each made `tend kill` take 23 s. A descendant forked
// within the TTL stays covered by the process group kill.
const parentMapTTL = 50 * time.Millisecond

var (
	pmMu   sync.Mutex
	pmAt   time.Time
	pmLast map[int]int
)

func recentParentMap() map[int]int {
	pmMu.Lock()
	defer pmMu.Unlock()
	if pmLast == nil || time.Since(pmAt) > parentMapTTL {
		pmLast, pmAt = ParentMap(), time.Now()
	}
	return pmLast
}

// ParentMap returns pid -> ppid for every process in /proc.
func ParentMap() map[int]int {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	m := make(map[int]int, len(names))
	buf := make([]byte, 512)
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		if pp, ok := readPPID(pid, buf); ok {
			m[pid] = pp
		}
	}
	return m
}

func readPPID(pid int, buf []byte) (int, bool) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	n, _ := f.Read(buf)
	f.Close()
	b := buf[:n]
	// The command name is in parentheses and may contain spaces or
	// parentheses itself: the fields after it start at the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+4 > len(b) {
		return 0, false
	}
	fields := bytes.Fields(b[i+2:])
	if len(fields) < 2 {
		return 0, false
	}
	pp, err := strconv.Atoi(string(fields[1]))
	return pp, err == nil
}

// StartTime returns the start time of process pid in clock ticks after
// boot (field 22 of /proc/pid/stat), 0 if it is gone. With the pid it
// names one process for good: a reused pid has a later start time.
func StartTime(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0
	}
	v, _ := strconv.ParseUint(f[19], 10, 64) // field 22; f[0] is field 3
	return v
}
