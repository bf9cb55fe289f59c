// Package procexec starts app processes in their own process group and
// stops them with everything they spawned.
//
// Every instance runs as the leader of a new process group, so one signal to
// -pgid reaches the app and the helpers it forked. Descendants that left the
// group (setsid, double fork) are found through /proc and signalled too, and
// when the daemon is a child subreaper (SetSubreaper) orphans that outlive
// their parent are reparented to it and reaped by Reap instead of lingering
// as zombies.
package procexec
