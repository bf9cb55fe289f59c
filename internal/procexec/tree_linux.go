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
	procs := recentProcs(time.Time{})
	children := map[int][]int{}
	for c, p := range procs {
		children[p.ppid] = append(children[p.ppid], c)
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

// procInfo is what /proc/pid/stat says of a process's place: its parent,
// process group and session.
type procInfo struct{ ppid, pgid, sid int }

// procsTTL is how long one /proc scan answers Descendants and Escaped.
// Stopping a thousand instances at once asks thousands of times within
// milliseconds; scanning /proc for each made `tend kill` take 23 s. A
// descendant forked within the TTL stays covered by the process group kill.
const procsTTL = 50 * time.Millisecond

var (
	procsMu   sync.Mutex
	procsAt   time.Time
	procsLast map[int]procInfo
)

// recentProcs returns a scan of /proc begun no earlier than since and
// at most procsTTL ago.
func recentProcs(since time.Time) map[int]procInfo {
	procsMu.Lock()
	defer procsMu.Unlock()
	if procsLast == nil || time.Since(procsAt) > procsTTL || procsAt.Before(since) {
		at := time.Now()
		procsLast, procsAt = scanProcs(), at
	}
	return procsLast
}

// scanProcs reads every process in /proc.
func scanProcs() map[int]procInfo {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	m := make(map[int]procInfo, len(names))
	buf := make([]byte, 512)
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		if info, ok := readStat(pid, buf); ok {
			m[pid] = info
		}
	}
	return m
}

func readStat(pid int, buf []byte) (procInfo, bool) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procInfo{}, false
	}
	n, _ := f.Read(buf)
	f.Close()
	b := buf[:n]
	// The command name is in parentheses and may contain spaces or
	// parentheses itself: the fields after it start at the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+4 > len(b) {
		return procInfo{}, false
	}
	fields := bytes.Fields(b[i+2:]) // state ppid pgrp session ...
	if len(fields) < 4 {
		return procInfo{}, false
	}
	var v [3]int
	for k := range v {
		if v[k], err = strconv.Atoi(string(fields[1+k])); err != nil {
			return procInfo{}, false
		}
	}
	return procInfo{ppid: v[0], pgid: v[1], sid: v[2]}, true
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
