package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/client"
	"github.com/tendhq/tend/internal/daemon"
	"github.com/tendhq/tend/internal/keeper"
	"github.com/tendhq/tend/internal/private"
)

// keeperArg makes tend run as the keeper of its home: `tend keeper
// [daemon args...]`, started by the first command that needs a daemon, or
// by `tend daemon` (systemd), which becomes it. The args are the first
// daemon's.
const keeperArg = "keeper"

// runKeeper is the keeper process.
func runKeeper(args []string) int {
	// The keeper does little and holds little: one P, and a heap kept
	// small (its memory counts against the daemon's).
	runtime.GOMAXPROCS(1)
	debug.SetGCPercent(20)
	h, err := tend.DefaultHome()
	home := string(h)
	if err == nil {
		err = daemon.EnsureHome(home)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tend keeper: "+err.Error())
		return 1
	}
	if len(args) == 0 {
		args = []string{"daemon"}
	}
	readyFD := -1
	if n, err := strconv.Atoi(os.Getenv(daemon.ReadyFDEnv)); err == nil {
		readyFD = n
	}
	err = keeper.Run(keeper.Options{
		Argv: args, RestartArgv: []string{"daemon"}, Env: os.Environ(),
		ReadyEnv: daemon.ReadyFDEnv, ReadyFD: readyFD,
		LogPath: tend.Home(home).Log(), LockPath: tend.Home(home).KeeperLock(),
	})
	if err != nil {
		if readyFD >= 0 {
			unix.Write(readyFD, []byte(err.Error()+"\n"))
		}
		fmt.Fprintln(os.Stderr, "tend keeper: "+err.Error())
		return 1
	}
	return 0
}

// becomeKeeper is `tend daemon` outside a keeper: it execs the keeper,
// which keeps this pid (systemd's main process) and starts the daemon.
func becomeKeeper(args []string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	return syscall.Exec(exe, append([]string{"tend", keeperArg, "daemon"}, args...), os.Environ())
}

// keeperAlive reports whether a keeper holds home's lock.
func keeperAlive(home string) bool {
	fd, err := private.OpenFD(tend.Home(home).KeeperLock(), os.O_RDONLY)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	if err := unix.Flock(fd, unix.LOCK_SH|unix.LOCK_NB); err != nil {
		return errors.Is(err, unix.EWOULDBLOCK)
	}
	unix.Flock(fd, unix.LOCK_UN)
	return false
}

// updateTimeout bounds a handover: the old daemon's drain (5 s at most),
// the keeper's exec, and the new daemon taking the apps back.
const updateTimeout = 30 * time.Second

func updateCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "update",
		GroupID: "daemon",
		Short:   "Hand the running daemon over to this tend binary; the apps keep running",
		Long: `Hand the running daemon over to this tend binary, in place: the keeper
(the process that holds the apps) becomes the new binary, keeping its pid,
and starts a new daemon from it, which takes every app back. No app is
restarted; their pids, ports, pipes and channels stay as they are, and
connections that arrive meanwhile wait in the ports' backlog.

Install the new tend first (over the old one, or anywhere), then run
tend update with it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c := client.New(e.home)
			c.AllowVersionMismatch = true
			ctx, cancel := context.WithTimeout(context.WithoutCancel(cmd.Context()), updateTimeout)
			defer cancel()
			before, err := c.Ping(ctx)
			if errors.Is(err, client.ErrNoDaemon) {
				return tend.Errorf(tend.EFAILED, "no tend daemon is running: there is nothing to update")
			}
			if err != nil {
				return err
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			if _, err := c.Update(ctx, exe); err != nil {
				return err
			}
			for {
				p, err := c.Ping(ctx)
				if err == nil && p.PID != before.PID {
					fmt.Fprintf(e.errOut, "tend: daemon %s (pid %d) handed over to %s (pid %d); keeper pid %d, apps untouched\n",
						before.Version, before.PID, p.Version, p.PID, p.KeeperPID)
					return nil
				}
				select {
				case <-ctx.Done():
					return tend.Errorf(tend.EFAILED, "the new daemon did not answer within %s; see %s", updateTimeout, tend.Home(e.home).Log())
				case <-time.After(20 * time.Millisecond):
				}
			}
		},
	}
}
