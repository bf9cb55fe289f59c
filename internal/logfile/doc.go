// Package logfile turns an instance's stdout and stderr pipes into log files,
// a bounded in-memory tail and a live feed.
//
// The daemon opens one Sink per instance slot (app name + instance index) and
// runs Sink.ReadFrom in its own goroutine for each pipe. ReadFrom reads fixed
// 64 KiB chunks, splits them into lines on '\n' (a trailing '\r' is dropped),
// and for each chunk
//
//   - writes the formatted lines to the stream's file with one write call,
//     rotating by size between lines (files path, path.1 ... path.Keep, the
//     rotated ones optionally gzipped in the background), and by time when
//     Options.RotateAt says so (to dated names; one timer for all sinks of
//     the process rotates files nobody writes, see bytime.go);
//   - appends them to a small in-memory tail (Tail, the backlog of Subscribe);
//   - hands them to live subscribers (`tend logs -f`, the TUI) without ever
//     waiting for one: a subscriber that falls behind loses lines and is told
//     how many.
//
// Memory is bounded whatever the app prints: a line longer than MaxLine is
// cut into pieces marked Partial, and every buffer is allocated once per
// ReadFrom call and reused. In raw mode the write path allocates nothing per
// line.
//
// Writing never blocks the app. When the file cannot be opened or written
// (no space left, directory removed or unwritable) ReadFrom keeps draining the
// pipe, counts the lines it drops, and reports the failure through Problem. It
// retries at most once per second; when a write succeeds again it first writes
// "[tend: N lines dropped while the log could not be written: ...]".
//
// Timestamps (Options.TimeLayout) and JSON records (Options.JSON) are per
// line, never per read chunk: PM2 stamps chunks, so a process.stdout.write
// carrying three lines gets one stamp and a line cut across two reads gets
// two (pm2 #4026, #2792).
package logfile
