// Package web is tend's dashboard: a page, served by the daemon on a
// loopback TCP address when the user asks for it (tend web, or web_addr
// in config.yaml), that shows every app and instance live, charts their
// CPU, memory and the connections tend hands them over the last hour, lists the last reloads with what
// each did to every instance, follows their logs, and restarts, reloads,
// stops, starts and scales them.
//
// The page and its assets are embedded (assets/): plain HTML, CSS and
// JavaScript, nothing fetched from elsewhere, so it works offline.
//
// Nothing here acts on an app by itself. Reads and actions are the
// daemon's own control API (Server.API), called in-process with the same
// requests the CLI sends over the unix socket, so the dashboard and the
// CLI cannot disagree. The live view is one server-sent-events stream per
// page (GET /api/stream): the daemon's instance events as they happen,
// once a second the instances with their latest CPU and memory (the
// sample the daemon takes anyway), and the last reloads when one ended.
// The charts' history of one instance is asked for apart
// (GET /api/history?id=N).
//
// Access: the server hands out one-time tokens (Server.Token), which the
// CLI prints inside the page's URL, after '#' so that no server log or
// Referer sees it. The page trades the token for a session: an HttpOnly,
// SameSite=Strict cookie and a CSRF token the page sends back in a header
// with every action. Actions also need a same-origin Origin and a Host
// the server answers for, and a session that is not read-only. See auth.go.
//
// A daemon that restarts (a crash, tend update) serves the dashboard again
// with the same sessions: the server writes its address and the hashes of
// its tokens and sessions to a state file (State, Config.StatePath) after
// every change, and the next server on that address takes them back. The
// CSRF token is derived from the session id, so it is never stored. The
// page reconnects by itself.
//
// History keeps the charts' data in bounded memory: a ring of 360
// ten-second points per instance (HistoryBytes each). Reloads keeps the
// last MaxReloads reload reports, which the daemon adds as reloads end
// (Options.Reported of the supervisor), whoever started them.
package web
