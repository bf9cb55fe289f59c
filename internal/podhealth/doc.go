// Package podhealth answers an orchestrator's probes about a tend daemon:
// /livez, /readyz and /startupz, as Kubernetes asks them of a pod whose
// PID 1 is `tend run`.
//
// The endpoints only read. On every request the handler asks a Source for
// the apps and their instances, as `tend ls` shows them, and judges them:
//
//   - /livez: the supervision works. Each app's goroutine answers within
//     LiveBound (a stuck one means tend itself is broken and the kubelet
//     should restart the pod). With Options.ErroredFailsLivez, an errored
//     instance (tend gave up restarting it) fails it too.
//   - /readyz: the pod may take traffic. No stop has begun, and every app
//     has at least Options.ReadyMin percent of its instances online and
//     ready (all of them by default). A crash-looping instance, waiting to
//     restart or errored, is not ready.
//   - /startupz: readiness held once since the daemon started; it never
//     turns false again.
//
// A Server's Drain turns /readyz false for good, before the daemon stops
// any app: the endpoints of the pod leave the Service while the apps still
// serve what is in flight.
//
// Every answer is JSON: {"ok":true} or {"ok":false,"reason":"..."}, with
// the per-app detail under "apps" for /readyz. The status is 200 or 503,
// which is all a probe reads.
package podhealth
