// Package metrics exports tend's process table to Prometheus.
//
// Nothing here keeps state between scrapes. On every scrape the handler
// asks a Source for a snapshot of the instances and apps and writes it out,
// so the numbers are exactly what `tend ls` would show at that moment and no
// timer has to keep gauges fresh. The daemon implements Source by asking the
// goroutines that own the apps.
//
// The handler writes the Prometheus text exposition format (version 0.0.4)
// itself rather than through client_golang: serving a snapshot needs none
// of its registry, and client_golang with the protobuf, procfs and expvar
// code it brings was 2.1 MB of mapped binary, about what separates the
// daemon from its RSS target.
//
// Alongside tend's own families (tend_instance_*, tend_app_*,
// tend_build_info) the handler serves a few families about the daemon
// itself, under the names client_golang uses so that the usual Go
// dashboards work:
//
//   - from runtime/metrics: go_gc_cycles_total, go_gc_gogc_percent,
//     go_goroutines, go_memstats_alloc_bytes_total,
//     go_memstats_heap_alloc_bytes, go_memstats_heap_inuse_bytes,
//     go_memstats_next_gc_bytes, go_memstats_sys_bytes, go_threads and
//     go_info{version};
//   - from /proc/self: process_cpu_seconds_total,
//     process_resident_memory_bytes, process_virtual_memory_bytes,
//     process_start_time_seconds, process_open_fds and process_max_fds;
//   - promhttp_metric_handler_errors_total{cause="gathering"}, the series
//     left out of scrapes so far because a label value (an app name, say)
//     was not valid UTF-8, which the format cannot carry.
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
