// Package supervisor runs the instances of one app and keeps them running.
//
// Each App is an actor: one goroutine owns its slots (the instance
// positions 0..N-1), their processes, restart timers and stop timers, and
// every command reaches it as a closure on a channel. Readers never block
// the actor: they load the latest published snapshot.
//
// Restart policy is a pure function (decide) so its rules can be tested as
// a table; the timing of backoff is tested with testing/synctest through
// the App's Start seam, and spawning and signals with real processes.
package supervisor
