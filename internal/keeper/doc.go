// Package keeper is the small process that outlives tend's daemon, so that
// a daemon that crashes, is killed or is upgraded never takes an app with it.
//
// The keeper is the parent of every app process and of the daemon. It
// holds a copy of every descriptor an app depends on: the read ends of its
// stdout and stderr pipes, tend's end of its message channel, its notify
// socket, and the listening sockets of its port, in a store the daemon
// deposits into and takes back (systemd's fd store, FDSTORE=1). While no
// daemon runs, nothing an app holds is closed: its port keeps a backlog, its
// output waits in the pipes, a Node worker's channel stays connected. The
// keeper reaps its children and keeps their exit statuses until a daemon
// has taken note of them.
//
// The model, in the keeper's words:
//
//   - It starts the daemon (`tend daemon`) with one end of a SOCK_SEQPACKET
//     socketpair as fd 3, sends it everything it holds (the inventory: each
//     child with its label, start time, pidfd, exit status and held
//     descriptors, then each named store entry), and then serves its
//     requests: spawn a process, put or drop a store entry, release an
//     exited child, quit, upgrade.
//   - When the daemon dies without having said quit, the keeper starts a new
//     one at once (with a backoff if it keeps dying), which resumes from the
//     inventory and from the state files the apps wrote.
//   - On upgrade the keeper re-executes itself as the new binary (exec
//     keeps its pid, so it stays the apps' parent), passing its tables in a
//     memfd, and the new keeper starts the new daemon: tableflip's and
//     systemd's daemon-reexec, for a process manager.
//
// Each message is one packet: a JSON header, and the descriptors it carries
// as SCM_RIGHTS. The keeper does nothing else: it never reads an app's
// output, never decides a restart, and knows apps only by the opaque label
// the daemon gave each process. Conn is the daemon's side of the protocol,
// and Process an app process the daemon reaches through it.
package keeper
