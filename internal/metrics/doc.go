// Package metrics exports tend's process table to Prometheus.
//
// Nothing here keeps state between scrapes. On every scrape the collector
// asks a Source for a snapshot of the instances and apps and turns it into
// constant metrics, so the numbers are exactly what `tend ls` would show at
// that moment and no timer has to keep gauges fresh. The daemon implements
// Source by asking the goroutines that own the apps.
//
// Alongside tend's own families (tend_instance_*, tend_app_*,
// tend_build_info) the handler serves the Go runtime (go_*) and process
// (process_*) metrics of the daemon itself.
//
// The endpoint is opt-in: the daemon serves it only on a listener the user
// asked for, and Listen binds loopback when the address names no host
// (":9615"), so that metrics about every app on the machine do not leak to
// the network unless the user names an address such as "0.0.0.0:9615".
//
// Instance metrics carry the labels app (the app name), index (the index
// within the app, NODE_APP_INSTANCE) and id (tend's global id). The index
// is not called instance because Prometheus gives that name to the target
// it scrapes.
package metrics
