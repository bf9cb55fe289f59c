// Package cgroup gives each instance of an app a cgroup of its own, with
// the app's limits (memory, CPU quota, tasks), and reads back what the
// instance and everything it started use, and whether the kernel's OOM
// killer ended it.
//
// The layout, in every hierarchy tend uses (cgroup v2's one, or v1's
// memory, cpu, cpuacct and pids):
//
//	<the daemon's cgroup>/tend-<home>/app-<name>/i<slot>-<worker>
//
// tend-<home> is one daemon's (several tend homes may share a parent),
// app-<name> one app's, and the instance's leaf carries the limits, so
// that they apply to each instance as max_memory_restart does. On v2 a
// cgroup with processes cannot hand controllers to its children: a daemon
// whose own cgroup is not empty but for tend moves itself and its keeper
// into a leaf beside the apps, tend.supervisor (systemd's Delegate=yes
// gives tend such a cgroup of its own; a login shell's does not, and
// then limits are refused with that reason).
package cgroup
