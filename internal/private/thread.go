package private

import "runtime"

// OnOwnThread runs f on an OS thread of its own that ends with it, and
// returns what f returns: for changes to a thread (its file-system ids,
// its cgroups) that must never reach another goroutine. The goroutine
// ends locked to the thread, and the Go runtime then ends the thread.
func OnOwnThread(f func() (int, error)) (int, error) {
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see above
		n, err := f()
		done <- result{n, err}
	}()
	r := <-done
	return r.n, r.err
}
