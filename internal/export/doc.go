// Package export writes what runs an ecosystem file's apps elsewhere:
// Kubernetes manifests, a docker compose file and systemd units
// (`tend export kubernetes|compose|systemd`).
//
// Each target runs tend itself by default (tend run <file> --only <app>),
// so what the target cannot say, tend still does inside the pod, the
// container or the unit: restarts, cron restarts, hooks, logs. What the
// target can say (ports, probes, resources, the stop grace period, the
// environment) is written in its own terms.
//
// Every key of tend.Settings is accounted for by every Target, in its
// Handling table: Mapped (the output expresses it), ByTend (tend run in
// the target applies it from the file) or Dropped (nothing does: a
// warning says so). A setting the output cannot carry is never dropped
// silently: the warnings name the app and the key. The output is built
// with go.yaml.in/yaml/v4 and plain text; the Kubernetes and compose
// types are used only by the tests that check it, so that they stay out
// of the tend binary.
package export
