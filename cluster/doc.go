// Package cluster gives Go programs the model of Node's cluster module:
// one program, run as a primary that forks workers, and as workers that
// share one listening port.
//
//	if cluster.IsPrimary() {
//		for range runtime.NumCPU() {
//			cluster.Fork(nil)
//		}
//		for ev := range cluster.Events() {
//			if ev.Kind == cluster.Exit {
//				log.Printf("worker %d died (%v), restarting", ev.Worker.PID(), ev)
//				cluster.Fork(nil)
//			}
//		}
//	} else {
//		ln, err := cluster.Listen("tcp", ":3000")
//		if err != nil {
//			log.Fatal(err)
//		}
//		if err := cluster.Serve(&http.Server{Handler: h}, ln); err != nil {
//			log.Fatal(err)
//		}
//	}
//
// # Processes
//
// A worker is the same executable re-executed (Settings.Exec and Args
// change that) with NODE_UNIQUE_ID=<id> and a Node IPC channel on fd 3
// (NODE_CHANNEL_FD): exactly how Node starts its workers. The channel
// carries JSON lines, and sockets as SCM_RIGHTS; it is the same wire
// protocol Node uses, so the tools that read one read the other, and a Go
// worker could be forked by a Node primary or by tend.
//
// # Sharing a port
//
// A worker's Listen asks the primary ("queryServer"). The primary binds
// the address once per address, port and index, and keeps the socket
// while workers come and go, so a restarting worker never refuses a
// connection (clients wait in the backlog). Then, by Settings.Sched:
//
//   - RoundRobin (default): the primary accepts each connection and hands
//     its descriptor to the next free worker ("newconn"), at most one in
//     flight per worker, so sequential connections alternate exactly.
//   - Shared: the primary sends the listening socket itself; every worker
//     accepts on it and the kernel chooses.
//
// In the primary, Listen is net.Listen, as listen() in Node's primary.
//
// Listen also takes "unix" with a path, shared like a TCP address, and
// ListenPacket a UDP address: every worker that binds it gets the
// primary's socket, as Node shares a dgram socket under either policy.
// "tcp6" on "::" is IPv6 only and "tcp" on "::" both families, as in Go's
// net; the primary is told so (Node's ipv6Only).
//
// # Lifecycle
//
// The primary sees each worker's Forked, Online, Listening, Message,
// Disconnected and Exit events on Events() (Node's fork, online, ...,
// exit), Configured after Setup, plus Error when the primary could not
// bind what the worker asked for or the worker did not listen within
// Settings.ListenTimeout. Worker.IsConnected and IsDead tell where a
// worker is; ExitedAfterDisconnect whether its exit was meant (the
// primary asked, or the worker disconnected itself). Worker ids start at
// 1 and are never reused, under this package's primary, Node's and tend.
// Primary.Disconnect (DisconnectAll) disconnects every worker and waits
// for them, as Node's cluster.disconnect(). Worker.Kill signals a worker; Worker.Disconnect
// asks it to stop gracefully: it gets no new connections, Serve answers
// with "Connection: close" so keep-alive clients move to other workers
// without losing a request (idle connections get a second), lets the
// requests in flight finish (http.Server.Shutdown) and returns nil, main
// returns, the worker exits 0. A worker whose primary dies exits at once,
// as Node's do, so orphans never hold a port.
//
// # Messages
//
// Worker.Send, Primary.Broadcast and, in the worker, Send encode any Go
// value with encoding/json; a value it rejects returns its error and
// nothing is sent. Messages arrive as json.RawMessage: Event.Msg in the
// primary, Messages() in the worker.
//
// # Under tend
//
// The same program runs unchanged under tend, which is then the primary:
// IsPrimary is false in every instance, so each runs its worker branch.
// With `tend start ./app -i max --port 3000` (socket mode) Listen returns
// the socket tend passed (LISTEN_FDS, systemd's protocol, so systemd
// socket units work too); when a manager sets NOTIFY_SOCKET, a successful
// Listen sends READY=1 (sd_notify); when it passes a channel
// (NODE_CHANNEL_FD, or TEND_CHANNEL_FD in tend's socket mode) Send and
// Messages use it (`tend send`). tend stops an instance with SIGINT
// (systemd with SIGTERM): Serve takes either as its disconnect and stops
// gracefully.
//
// # Platforms
//
// The package builds on Linux, macOS and the BSDs (CI cross-builds it for
// macOS and FreeBSD; its tests run on Linux only): the protocol needs
// unix sockets and descriptor passing, which they all have. tend itself,
// the daemon that runs apps, is Linux only.
//
// # Testing
//
// Write primary logic against a *Primary and worker logic against a
// *Child; main passes Default() and Self(). Package clustertest runs both
// in one test process. Tests of programs that fork real workers re-execute
// the test binary, dispatching in TestMain on IsWorker.
package cluster
