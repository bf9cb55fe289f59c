package metrics

import (
	"bytes"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"syscall"
)

// goFamilies are the Go runtime families, under the names client_golang
// gives them so that existing Go dashboards work (go_gc_cycles_total, which
// client_golang does not export by default, reads as theirs would), each
// the sum of the runtime/metrics samples in keys. runtime/metrics, unlike
// runtime.ReadMemStats, does not stop the world. go_threads counts the
// threads alive, where client_golang counted those ever created; the
// runtime seldom ends one, so the two rarely differ.
var goFamilies = []struct {
	name, help, typ string
	keys            []string
}{
	{"go_gc_cycles_total", "Completed garbage collection cycles.", counter,
		[]string{"/gc/cycles/total:gc-cycles"}},
	{"go_gc_gogc_percent", "Heap size target percentage (GOGC).", gauge,
		[]string{"/gc/gogc:percent"}},
	{"go_goroutines", "Number of goroutines that currently exist.", gauge,
		[]string{"/sched/goroutines:goroutines"}},
	{"go_memstats_alloc_bytes_total", "Total number of bytes allocated in the heap, even if freed since.", counter,
		[]string{"/gc/heap/allocs:bytes"}},
	{"go_memstats_heap_alloc_bytes", "Number of heap bytes allocated and currently in use.", gauge,
		[]string{"/memory/classes/heap/objects:bytes"}},
	{"go_memstats_heap_inuse_bytes", "Number of heap bytes in spans that are in use.", gauge,
		[]string{"/memory/classes/heap/objects:bytes", "/memory/classes/heap/unused:bytes"}},
	{"go_memstats_next_gc_bytes", "Heap size at which the next garbage collection will take place.", gauge,
		[]string{"/gc/heap/goal:bytes"}},
	{"go_memstats_sys_bytes", "Number of bytes obtained from the system by the Go runtime.", gauge,
		[]string{"/memory/classes/total:bytes"}},
	{"go_threads", "Number of OS threads owned by the Go runtime.", gauge,
		[]string{"/sched/threads/total:threads"}},
}

// writeGo writes the Go runtime families of the calling process.
func writeGo(w *textWriter) {
	var samples []metrics.Sample
	for _, f := range goFamilies {
		for _, k := range f.keys {
			samples = append(samples, metrics.Sample{Name: k})
		}
	}
	metrics.Read(samples)
	for _, f := range goFamilies {
		var v float64
		ok := true
		for _, s := range samples[:len(f.keys)] {
			switch s.Value.Kind() {
			case metrics.KindUint64:
				v += float64(s.Value.Uint64())
			case metrics.KindFloat64:
				v += s.Value.Float64()
			default: // not in this Go version
				ok = false
			}
		}
		samples = samples[len(f.keys):]
		if ok {
			w.family(f.name, f.help, f.typ)
			w.sample(v)
		}
	}
	w.family("go_info", "Information about the Go environment.", gauge)
	w.sample(1, "version", runtime.Version())
}

// clkTck is USER_HZ, the unit of CPU times in /proc: 100 on every Linux
// ABI that Go supports.
const clkTck = 100

// bootTime is the btime line of /proc/stat, the boot time in seconds since
// the epoch, which process start times in /proc count from; 0 if unknown.
var bootTime = sync.OnceValue(func() float64 {
	b, _ := os.ReadFile("/proc/stat")
	_, after, ok := bytes.Cut(b, []byte("\nbtime "))
	if !ok {
		return 0
	}
	line, _, _ := bytes.Cut(after, []byte("\n"))
	t, _ := strconv.ParseFloat(string(line), 64)
	return t
})

// writeProcess writes the process_* families of the calling process from
// /proc/self, as client_golang's process collector does. A family whose
// source cannot be read is left out.
func writeProcess(w *textWriter) {
	// Fields of /proc/self/stat after the command, which may hold spaces
	// and parentheses and so ends at the last ')'. proc(5) numbers them
	// from 1 (pid); the first after the command is field 3.
	b, _ := os.ReadFile("/proc/self/stat")
	var fields [][]byte
	if i := bytes.LastIndexByte(b, ')'); i >= 0 {
		fields = bytes.Fields(b[i+1:])
	}
	if len(fields) > 24-3 {
		field := func(n int) float64 {
			v, _ := strconv.ParseUint(string(fields[n-3]), 10, 64)
			return float64(v)
		}
		w.family("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", counter)
		w.sample((field(14) + field(15)) / clkTck) // utime + stime
		w.family("process_resident_memory_bytes", "Resident memory size in bytes.", gauge)
		w.sample(field(24) * float64(os.Getpagesize())) // rss, in pages
		w.family("process_virtual_memory_bytes", "Virtual memory size in bytes.", gauge)
		w.sample(field(23)) // vsize
		if bt := bootTime(); bt > 0 {
			w.family("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", gauge)
			w.sample(bt + field(22)/clkTck) // starttime, in ticks since boot
		}
	}

	// The directory's own descriptor is counted too, as client_golang does.
	if d, err := os.Open("/proc/self/fd"); err == nil {
		names, err := d.Readdirnames(-1)
		d.Close()
		if err == nil {
			w.family("process_open_fds", "Number of open file descriptors.", gauge)
			w.sample(float64(len(names)))
		}
	}
	// The soft limit, the "Max open files" of /proc/self/limits.
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
		w.family("process_max_fds", "Maximum number of open file descriptors.", gauge)
		w.sample(float64(lim.Cur))
	}
}
