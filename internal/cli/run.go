package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/client"
	"github.com/tendhq/tend/internal/daemon"
)

// runOptions are the flags of `tend run` beyond the app's.
type runOptions struct {
	noAutoExit, raw, asJSON, stamp, logFiles bool
	pod                                      daemon.Pod
}

func runCmd(e *env) *cobra.Command {
	var f startFlags
	var o runOptions
	var p podFlags
	cmd := &cobra.Command{
		Use:     "run <script|command|config file> [-- args...]",
		GroupID: "daemon",
		Short:   "Run apps in the foreground, with the daemon in this process (a container's PID 1)",
		Long: `Run the daemon in this process, start the apps as tend start would, and
print every line they write: their stdout on stdout, their stderr on
stderr. For a container's entrypoint:

  CMD ["tend", "run", "tend.yaml"]

Each line carries its app and instance (name[i] |), or is a JSON object
with --json. tend run writes no log files unless an app names out_file or
error_file, or --log-files asks for them under $TEND_HOME/logs.

tend run reaps orphaned processes, and SIGTERM or SIGINT stop every app
gracefully (each within its kill_timeout) before it exits 0 (1 if an
instance was errored or crash-looping when the signal came). While it runs,
the other commands reach it as usual (docker exec ... tend ls, reload,
logs). It exits by itself when no instance runs or will run any more
(every one stopped, errored or deleted): with code 1 if an instance
errored or crashed without a restart, 0 otherwise; --no-auto-exit keeps it
up instead. It needs a TEND_HOME no other daemon serves.
` + drainHelp,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.raw && o.asJSON {
				return usageErr("--raw and --json exclude each other")
			}
			pod, err := p.pod()
			if err != nil {
				return err
			}
			o.pod = pod
			specs, err := f.specs(cmd, args)
			if err != nil {
				return err
			}
			e.sayOrder(specs, f.added)
			if !o.logFiles {
				withoutLogFiles(specs)
			}
			return e.run(cmd.Context(), specs, o)
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().MarkHidden("force") // a daemon of its own has no app to replace
	cmd.Flags().BoolVar(&o.noAutoExit, "no-auto-exit", false, "keep running when no instance runs any more")
	cmd.Flags().BoolVar(&o.raw, "raw", false, "print the apps' lines as they wrote them, without the name[i] prefix")
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "print the apps' lines as JSON, one object per line, on stdout")
	cmd.Flags().BoolVar(&o.stamp, "timestamp", false, "prefix lines with the time they were captured")
	cmd.Flags().BoolVar(&o.logFiles, "log-files", false, "also write the apps' log files under $TEND_HOME/logs, as tend start does")
	p.register(cmd.Flags())
	return cmd
}

// run is tend run: a daemon in this process, the apps of specs in it, and
// their output here until the daemon ends.
func (e *env) run(ctx context.Context, specs []tend.AppSpec, o runOptions) error {
	if ctx.Err() != nil {
		return nil // stopped before anything started
	}
	// A reader of our output that goes away (tend run | head) must not
	// kill the process that holds the apps, as Go's default for SIGPIPE
	// on stdout would: writes fail instead, and printing stops. (Notify,
	// not Ignore: the apps must not inherit an ignored SIGPIPE.)
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	ready := make(chan struct{})
	served := make(chan error, 1)
	// bySignal: the daemon caught the signal that stops it. Our ctx is
	// canceled by the same signal, but on a goroutine of its own, which
	// may run after the stop made a request fail: either tells a stop
	// from a failure.
	var bySignal atomic.Bool
	go func() {
		served <- daemon.Run(e.home, daemon.RunOptions{Ready: func(func(string) error) { close(ready) }, Pod: o.pod, Signaled: func() { bySignal.Store(true) }})
	}()
	select {
	case <-ready:
	case err := <-served:
		if errors.Is(err, daemon.ErrRunning) {
			return tend.Errorf(tend.ECONFLICT, "%v (%s); tend run needs a home of its own: stop that daemon with tend kill, or set TEND_HOME for tend run", err, e.home)
		}
		return err
	}
	// From here on a signal reaches the daemon, which stops every app; the
	// streams below end when it is gone, so they do not take ctx's cancel.
	// signaled tells such a stop from apps that ended by themselves.
	sigCtx := ctx
	signaled := func() bool { return sigCtx.Err() != nil || bySignal.Load() }
	ctx = context.WithoutCancel(ctx)
	c := client.New(e.home)
	// ended waits for the daemon to end and for the last lines to be
	// printed; abort stops it first.
	var printing sync.WaitGroup
	ended := func(err error) error {
		if derr := <-served; err == nil {
			err = derr
		}
		printing.Wait()
		return err
	}
	abort := func(err error) error {
		c.Kill(ctx)
		if signaled() {
			err = nil // a signal stopped the start: a clean stop
		}
		return ended(err)
	}
	logs, err := c.LogStream(ctx, client.LogQuery{Follow: true})
	if err != nil {
		return abort(err)
	}
	events, err := c.EventStream(ctx, "")
	if err != nil {
		return abort(err)
	}
	printing.Go(func() { e.printRunLogs(logs, o) })
	res, err := c.Start(ctx, tend.StartRequest{Apps: specs})
	if err != nil || signaled() {
		return abort(err)
	}
	for _, s := range specs {
		fmt.Fprintf(e.errOut, "tend: started %s (%d %s)\n", s.Name, s.Instances, plural(s.Instances, "instance"))
	}
	for _, n := range res.Notes {
		fmt.Fprintf(e.errOut, "tend: note: %s\n", n)
	}
	// Events only wake the check: what decides is the list itself.
	for {
		if !o.noAutoExit && !signaled() {
			if finished, failed := e.runFinished(ctx, c); finished && !signaled() {
				events.Close()
				if _, err := c.Kill(ctx); err != nil {
					return abort(err)
				}
				if err := ended(nil); err != nil {
					return err
				}
				return e.runDone(failed)
			}
		}
		if !awaitStop(events) {
			return ended(nil) // the daemon ended: a signal or tend kill
		}
	}
}

// awaitStop reads events until an instance stops, errs or goes away (or
// some events were lost); false when the stream ended.
func awaitStop(events *client.Stream[tend.Event]) bool {
	for {
		ev, err := events.Next()
		if err != nil {
			return false
		}
		if ev.Kind != tend.EventInstance || ev.Status == tend.StatusStopped || ev.Status == tend.StatusErrored || ev.Status == tend.StatusCompleted {
			return true
		}
	}
}

// runDone says why tend run ended by itself: an error if some instances
// failed.
func (e *env) runDone(failed []string) error {
	if len(failed) > 0 {
		return tend.Errorf(tend.EFAILED, "no instance runs any more; failed: %s", strings.Join(failed, ", "))
	}
	fmt.Fprintln(e.errOut, "tend: no instance runs any more")
	return nil
}

// runFinished reports whether no instance runs or will run, and which
// ones failed (errored, or crashed with no restart to come). An error
// means the daemon is going away, which the events will tell.
func (e *env) runFinished(ctx context.Context, c *client.Client) (finished bool, failed []string) {
	insts, err := c.Instances(ctx)
	if err != nil {
		return false, nil
	}
	for _, in := range insts {
		x := in.LastExit
		switch {
		case in.Status == tend.StatusStopped && x != nil && x.Cause == "restart":
			return false, nil // between the stop and the start of tend restart
		case in.Status == tend.StatusCompleted:
			// a task that ran to its end: nothing more to come
		case in.Status == tend.StatusErrored:
			failed = append(failed, fmt.Sprintf("%s[%d] errored", in.Name, in.Instance))
		case in.Status == tend.StatusStopped && x != nil && x.Cause == "crash":
			failed = append(failed, fmt.Sprintf("%s[%d] exited with code %d", in.Name, in.Instance, x.Code))
		case in.Status != tend.StatusStopped:
			return false, nil
		}
	}
	return true, failed
}

// printRunLogs prints the lines of st until it ends: stdout lines on
// stdout, stderr lines on stderr. Once a write fails (the reader went
// away), that output gets nothing more; the stream is still read to its
// end.
func (e *env) printRunLogs(st *client.Stream[tend.LogLine], o runOptions) {
	defer st.Close()
	enc := json.NewEncoder(e.out)
	broken := map[io.Writer]bool{}
	for {
		l, err := st.Next()
		if err != nil {
			return
		}
		w := e.out
		if l.Stream == "err" && !o.asJSON {
			w = e.errOut
		}
		if broken[w] {
			continue
		}
		switch {
		case o.asJSON:
			err = enc.Encode(l)
		case o.raw:
			_, err = fmt.Fprintln(w, l.Message)
		default:
			_, err = fmt.Fprintln(w, e.logLine(l, o.stamp))
		}
		broken[w] = err != nil
	}
}
