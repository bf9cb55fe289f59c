// Package procstat measures CPU and memory of process trees from /proc.
//
// One Sample reads /proc/*/stat once and answers for every root pid asked
// about, so the cost of `tend ls` does not grow with a per-pid syscall storm
// (PM2 runs pidusage per pid on every list).
package procstat

import (
	"bytes"
	"os"
	"slices"
	"strconv"
	"time"
)

// Usage is the resource use of a process and all its descendants.
type Usage struct {
	CPU        float64 // percent of one core since the previous sample
	CPUSeconds float64 // user+system CPU time of the live tree, cumulative
	Memory     uint64  // resident bytes
	Pids       []int   // the tree, root first
}

type proc struct {
	ppid  int
	ticks uint64 // utime+stime
	rss   uint64 // pages
}

// Sampler computes CPU percentages from the difference between two samples.
// It is not safe for concurrent use; the daemon runs one in one goroutine.
type Sampler struct {
	prevCPU  map[int]float64 // per root pid, tree total, seconds
	prevTime time.Time
	buf      []byte
}

// Group gives the CPU time of root's cgroup and the pids in it, which
// count what left root's tree too; false when it has none.
type Group func(root int) (cpu time.Duration, pids []int, ok bool)

var (
	pageSize = uint64(os.Getpagesize())
	// clkTck is USER_HZ, 100 on every Linux ABI that Go supports.
	clkTck = 100.0
)

// NewSampler returns a Sampler with no history: the first sample reports 0 % CPU.
func NewSampler() *Sampler {
	return &Sampler{prevCPU: map[int]float64{}, buf: make([]byte, 1024)}
}

// Sample returns the usage of each root's tree: its resident memory, and
// its CPU time from /proc; where group has root's cgroup (nil: none
// has), the CPU time of the cgroup and the memory of every process in it.
func (s *Sampler) Sample(roots []int, group Group) map[int]Usage {
	now := time.Now()
	procs := s.readAll()
	children := make(map[int][]int, len(procs))
	for pid, p := range procs {
		children[p.ppid] = append(children[p.ppid], pid)
	}
	elapsed := now.Sub(s.prevTime).Seconds()
	out := make(map[int]Usage, len(roots))
	next := make(map[int]float64, len(roots))
	for _, root := range roots {
		p, ok := procs[root]
		if !ok {
			continue
		}
		u := Usage{Pids: []int{root}}
		ticks, rss := p.ticks, p.rss
		for i := 0; i < len(u.Pids); i++ {
			for _, c := range children[u.Pids[i]] {
				u.Pids = append(u.Pids, c)
				ticks += procs[c].ticks
				rss += procs[c].rss
			}
		}
		u.CPUSeconds = float64(ticks) / clkTck
		if group != nil {
			if cpu, pids, ok := group(root); ok {
				// The tree, and what of the cgroup left it.
				u.CPUSeconds = cpu.Seconds()
				for _, pid := range pids {
					if !slices.Contains(u.Pids, pid) {
						u.Pids = append(u.Pids, pid)
						rss += procs[pid].rss
					}
				}
			}
		}
		u.Memory = rss * pageSize
		if prev, ok := s.prevCPU[root]; ok && elapsed > 0 && u.CPUSeconds >= prev {
			u.CPU = (u.CPUSeconds - prev) / elapsed * 100
		}
		next[root] = u.CPUSeconds
		out[root] = u
	}
	s.prevCPU, s.prevTime = next, now
	return out
}

func (s *Sampler) readAll() map[int]proc {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	m := make(map[int]proc, len(names))
	for _, n := range names {
		if n[0] < '0' || n[0] > '9' {
			continue
		}
		pid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		if p, ok := s.read(pid); ok {
			m[pid] = p
		}
	}
	return m
}

// read parses /proc/pid/stat. Field numbers are from proc(5): 4 ppid,
// 14 utime, 15 stime, 24 rss.
func (s *Sampler) read(pid int) (proc, bool) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return proc{}, false
	}
	n, _ := f.Read(s.buf)
	f.Close()
	b := s.buf[:n]
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 > len(b) {
		return proc{}, false
	}
	// fields[0] is field 3 (state).
	fields := bytes.Fields(b[i+2:])
	if len(fields) < 22 {
		return proc{}, false
	}
	num := func(k int) uint64 {
		v, _ := strconv.ParseUint(string(fields[k-3]), 10, 64)
		return v
	}
	return proc{ppid: int(num(4)), ticks: num(14) + num(15), rss: num(24)}, true
}
