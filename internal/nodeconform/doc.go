// Package nodeconform holds the conformance suite of tend's Node cluster
// primary: the promise that an unmodified Node app cannot tell tend from
// Node's own primary, checked against Node itself.
//
// testdata/cases.cjs runs a list of worker-side behaviours (bind errors,
// addresses and families, servers closed and opened again, exclusive
// servers, unix sockets, UDP, ...) and writes what it saw; in the exit
// group it ends itself each way Node apps do, and the primaries' records
// of the exit are compared. The test runs
// it under Node's own primary (testdata/primary.cjs) in both scheduling
// policies, under tend in the matching ones (rr, and shared for Node's
// SCHED_NONE) and under a primary of the Go cluster package, and fails on
// any difference. Node is the oracle, so
// the suite stays true when Node changes. It has no code of its own
// beyond the test: `go test ./internal/nodeconform` runs it.
package nodeconform
