// Package activation speaks systemd's socket activation protocol
// (sd_listen_fds(3)) on both sides.
//
// tend side: an app in socket mode is started as
//
//	<tend binary> __activate -- <argv...>
//
// with the shared listening socket at fd 3 (exec.Cmd.ExtraFiles), the
// environment cleaned with StripEnv and extended with Env. The protocol
// requires LISTEN_PID to equal the receiving process's pid, which os/exec
// cannot know before fork; so the shim (Main, then Exec) sets
// LISTEN_PID=getpid() and exec(2)s the app, whose pid is the shim's.
// This is what systemd-socket-activate and systemfd do.
//
// App side: Go programs call Listeners (the cluster package does), and
// gunicorn, uvicorn --fd 3, listenfd (Rust), Caddy and others read the same
// variables.
package activation
