// Package sticky picks the instance that serves a client by the client's
// address, so that every connection from one address reaches the same
// instance: what session-bound apps (Socket.IO's long-polling, in-memory
// sessions) need when several instances share a port.
//
// The choice is rendezvous (highest random weight) hashing over instance
// slots, the instance numbers 0..N-1 that `tend ls` shows, not over
// processes: each candidate slot gets a pseudo-random score from the
// client's address and the slot number, and the highest score wins. A
// process that replaces slot k (a restart, a reload) therefore gets slot
// k's clients, and when slot k has no process that can take a client,
// only slot k's clients move, each to its next-best slot; the others stay
// where they were.
package sticky
