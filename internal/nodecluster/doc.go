// Package nodecluster makes tend the cluster primary of a Node.js app, so
// that N unmodified instances share one port exactly as under Node's own
// cluster module or PM2.
//
// Each worker is started as `node <script>` with NODE_UNIQUE_ID=<id> and a
// nodeipc channel on fd 3. Node's internal/cluster/child then routes every
// server.listen() of the app to the primary as a NODE_CLUSTER "queryServer"
// message. The Primary binds the address once per server key and answers:
//
//   - "rr" (round robin, the default): tend accepts every connection and
//     hands its fd to a free worker ("newconn"), at most one in flight per
//     worker, as Node's RoundRobinHandle does; the free worker that has had
//     the fewest connections gets it, so sequential connections alternate
//     exactly and under load none falls behind (see pick).
//   - "shared": the bound socket itself goes to every worker, which accept
//     on their own; the kernel picks (fast, but skewed under bursts).
//   - "sticky": tend accepts as in rr, and the client's IP address picks
//     the worker, by its slot (SetSlot, package sticky): every connection
//     from one address reaches one worker, as session-bound apps need.
//   - "reuseport": every worker gets a socket of its own, bound with
//     SO_REUSEPORT to the same address, and accepts on it; the kernel
//     spreads connections over the group (see reuseport.go).
//
// Unlike Node's primary, a Primary never closes a listening socket when the
// last worker lets go of it: the port stays bound while instances crash,
// restart or reload, so clients wait in the backlog instead of being
// refused. Sockets close only with Primary.Close.
//
// The protocol is Node's and internal (lib/internal/cluster/*.js in Node's
// source); internal/nodeconform checks it against Node's own primary.
package nodecluster
