// Package testport gives tests a TCP port to listen on, from
// sockets.FreePort: outside the kernel's ephemeral range, where every
// connect() on the host draws its source port (a port from listening on
// :0, closed to be listened on again, is taken by another test's client
// under load), and never the same port twice in one test binary. Test
// binaries running side by side can still draw the same one, rarely.
package testport
