// Package notify implements the sd_notify(3) readiness protocol: a server
// that tend runs per instance, and a client for Go apps.
//
// tend creates one unixgram socket per instance (Listen) and starts the
// instance with NOTIFY_SOCKET set to its path. The app, or any library that
// speaks sd_notify (python-systemd, sdnotify, go-systemd, systemd-notify,
// Notify here), sends datagrams of newline-separated KEY=VALUE lines:
// READY=1 when it can serve, STATUS=... for humans, STOPPING=1,
// RELOADING=1, MAINPID=..., WATCHDOG=1. Because the socket belongs to one
// instance, a message is attributed to that instance even when the sender
// is a child or grandchild of it; the sender's pid from SCM_CREDENTIALS is
// reported as well.
//
// Naming the sockets: sun_path holds 108 bytes including the final NUL, so
// a path may have at most MaxPathLen bytes, and the home directory of a
// user can be long. The daemon should put them in a short, private (0700)
// directory of its own and name each by a short instance key, e.g.
// $XDG_RUNTIME_DIR/tend/n/<app-id>-<instance> or <tend home>/n/<id>, and
// check the length once at startup rather than per instance. Abstract
// sockets ("@name") are accepted too but any process in the network
// namespace can send to them: the daemon uses one only for an instance that
// runs as another user (who could not reach a socket in tend's private
// directory), and then accepts messages from that user, root and itself
// only.
package notify
