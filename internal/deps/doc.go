// Package deps orders the apps of an ecosystem file by their depends_on:
// the order they start in (dependencies first), the layers a stop goes
// through (dependents first), the apps a selection needs, and the cycle
// that makes an order impossible, named as the user wrote it
// ("depends_on cycle: web -> api -> web").
//
// A graph is a list of nodes, each with the names it needs. Names not
// among the nodes are outside the graph (an app already running): they
// order nothing. The order is stable: among apps free to go, the one
// listed first goes first, so a file without depends_on keeps its order.
package deps
