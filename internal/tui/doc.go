// Package tui is tend's full-screen dashboard, `tend monit`: a Bubble Tea
// model over a Source of instances, app descriptions, actions and logs.
//
// The screen has the panes of `pm2 monit`: the list of apps and instances
// (status, cpu, memory, restarts, uptime, and sparklines of cpu and memory
// over the last minutes), the selected row's metadata, and its live log
// tail. On a wide terminal the list is on the left and the rest on the
// right; on a narrow one they are stacked.
//
// The model refreshes once a second and keeps a bounded history per
// instance id, so its memory does not grow with time. It talks to the
// daemon only through Source, which *client.Client satisfies and tests
// replace with a fake.
package tui
