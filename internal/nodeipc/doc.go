// Package nodeipc speaks Node.js's IPC channel (the one behind
// child_process.fork, process.send and process.on('message')) in its "json"
// serialization mode, from either end.
//
// The channel is an AF_UNIX SOCK_STREAM socketpair. Every message is one
// JSON.stringify(msg)+"\n" line. A message that carries a socket is wrapped as
// {"cmd":"NODE_HANDLE","type":...,"msg":<message>} and the descriptor travels
// as SCM_RIGHTS on the same sendmsg; the receiver answers NODE_HANDLE_ACK, or
// NODE_HANDLE_NACK when the descriptor did not arrive. Messages whose "cmd"
// starts with "NODE_" are Node's own (cluster, handle bookkeeping) and are
// never delivered to the app's 'message' listeners.
//
// A parent creates the pair with NewPair, starts the child with the child end
// as fd 3 (exec.Cmd.ExtraFiles[0]) and Env(3) in its environment, and then
// calls Channel.Recv in a loop. A Go program started that way wraps its end
// with FromFD.
//
// Two rules from Node's receiver shape this package: a blank or invalid line
// kills a Node child (so Send only ever writes json.Marshal output), and a
// sender that never sees an ACK holds back everything it sends afterwards (so
// Recv ACKs every handle before returning it).
package nodeipc
