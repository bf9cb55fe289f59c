// Package testport gives tests a TCP port to listen on that nothing else
// takes meanwhile. A port from listening on :0, closed to be listened on
// again, lies in the kernel's ephemeral range, where every connect() on
// the host draws its source port: under load another test's client takes
// it in between. Ports below that range are never handed out by the
// kernel; Free picks one at random and checks that it is free.
package testport
