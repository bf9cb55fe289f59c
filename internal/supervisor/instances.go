package supervisor

import "sync"

// instances are the pids of the live instances of every app of this
// process: what procexec.Escaped must not mistake for an escapee (nor
// spend a read of its environment on).
var instances = struct {
	sync.Mutex
	pids map[int]struct{}
}{pids: map[int]struct{}{}}

func addInstance(pid int) {
	instances.Lock()
	instances.pids[pid] = struct{}{}
	instances.Unlock()
}

func removeInstance(pid int) {
	instances.Lock()
	delete(instances.pids, pid)
	instances.Unlock()
}

func isInstance(pid int) bool {
	instances.Lock()
	defer instances.Unlock()
	_, ok := instances.pids[pid]
	return ok
}
