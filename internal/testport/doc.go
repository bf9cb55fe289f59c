// Package testport gives tests a TCP port to listen on that the kernel
// does not hand out meanwhile. A port from listening on :0, closed to be
// listened on again, lies in the kernel's ephemeral range, where every
// connect() on the host draws its source port: under load another test's
// client takes it in between. Free picks a port outside that range at
// random, checks that it is free, and never gives the same port twice in
// one test binary; test binaries running side by side can still draw the
// same one, rarely.
package testport
