// Package proxy forwards connections from an app's public listening socket
// to its instances, for apps that can take neither a Node cluster handle
// nor an activated socket (say, `python -m http.server $PORT`).
//
// Each instance listens on its own loopback port, which tend picks with
// sockets.FreePort and passes in PORT. The Proxy accepts on the public listener,
// picks an instance (round robin or least connections), and copies bytes
// both ways; on Linux io.Copy between two *net.TCPConn uses splice(2), so
// the data does not pass through user space. Half-closes are forwarded, so
// request/response protocols and HTTP keep-alive behave as if direct.
//
// An instance that is restarting refuses connections; the proxy then tries
// the others, and when none is up it holds the client for a bounded time
// (HoldTimeout) instead of refusing it, so a crash or a rolling reload is
// invisible to clients as long as one instance is up.
package proxy
