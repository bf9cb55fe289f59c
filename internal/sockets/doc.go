// Package sockets binds the listening sockets that tend keeps for an app's
// whole life, and hands copies of them to instances without breaking them.
//
// tend binds an app's port once (Listen) and every instance receives a copy
// of that one socket, so a crash or a reload never refuses a connection:
// connections queue in the backlog while no instance is accepting.
//
// With --sched reuseport each instance gets a socket of its own instead,
// in one SO_REUSEPORT group that tend holds the port of (reuseport.go).
//
// The trap this package exists to avoid: O_NONBLOCK belongs to the open file
// description, which every process holding a copy of the socket shares.
// (*os.File).Fd on a file obtained from (*net.TCPListener).File switches it to
// blocking mode, for tend and for every instance at once; a Node worker that
// then loses an accept race blocks inside accept(2) and stops answering its
// IPC channel. DupFD returns a copy that is safe to pass in
// exec.Cmd.ExtraFiles; NonBlocking lets tests and the daemon check the flag.
package sockets
