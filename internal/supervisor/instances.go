package supervisor

import "sync"

// instances are the pids of the live instances of every app of this
// process: what procexec.Escaped must not mistake for an escapee (nor
// spend a read of its environment on). A pid is counted, not just
// marked: the exit of one process must not unmark a newer one that got
// its pid before the exit was seen.
var instances = struct {
	sync.Mutex
	pids map[int]int
}{pids: map[int]int{}}

func addInstance(pid int) {
	instances.Lock()
	instances.pids[pid]++
	instances.Unlock()
}

func removeInstance(pid int) {
	instances.Lock()
	if instances.pids[pid]--; instances.pids[pid] <= 0 {
		delete(instances.pids, pid)
	}
	instances.Unlock()
}

func isInstance(pid int) bool {
	instances.Lock()
	defer instances.Unlock()
	return instances.pids[pid] > 0
}
