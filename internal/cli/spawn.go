package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/client"
	"github.com/tendhq/tend/internal/daemon"
	"github.com/tendhq/tend/internal/private"
)

// daemonStartTimeout bounds how long the CLI waits for a new daemon to
// report that it serves; it binds a socket and reads nothing, so seconds
// mean something is wrong.
const daemonStartTimeout = 10 * time.Second

// spawnDaemon starts a detached daemon for home and waits until it
// reports that it serves. Concurrent CLIs serialize on a spawn lock, so
// twenty commands racing on a fresh home start exactly one daemon.
func spawnDaemon(ctx context.Context, home string, c *client.Client) error {
	if err := daemon.EnsureHome(home); err != nil {
		return err
	}
	lock, err := private.Open(tend.Home(home).SpawnLock(), os.O_CREATE|os.O_RDWR)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return err
	}
	// Another CLI may have started it while we waited for the lock.
	if _, err := c.Ping(ctx); err == nil || !errors.Is(err, client.ErrNoDaemon) {
		return err
	}
	if keeperAlive(home) {
		// A keeper is starting a daemon (the last one died): wait for it
		// rather than start a second keeper.
		return awaitDaemon(ctx, home, c)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	logf, err := private.Open(tend.Home(home).Log(), os.O_CREATE|os.O_APPEND|os.O_WRONLY)
	if err != nil {
		return fmt.Errorf("opening the daemon log: %w", err)
	}
	defer logf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	// The keeper, which starts the daemon and keeps the apps through its
	// restarts.
	cmd := exec.Command(exe, keeperArg, "daemon")
	cmd.Env = append(os.Environ(), daemon.ReadyFDEnv+"=3", "TEND_HOME="+home)
	cmd.ExtraFiles = []*os.File{w}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("starting the tend daemon: %w", err)
	}
	w.Close()
	go cmd.Wait() // reaps it if it fails early; a healthy daemon outlives us
	res := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		res <- strings.TrimSpace(line)
	}()
	select {
	case msg := <-res:
		if msg == "ok" {
			return nil
		}
		if msg == "" {
			msg = "it exited without a word; see " + tend.Home(home).Log()
		}
		return tend.Errorf(tend.EFAILED, "the tend daemon did not start: %s", msg)
	case <-time.After(daemonStartTimeout):
		return tend.Errorf(tend.EFAILED, "the tend daemon did not start within %s; see %s", daemonStartTimeout, tend.Home(home).Log())
	case <-ctx.Done():
		return ctx.Err()
	}
}

// awaitDaemon waits until a daemon answers for home.
func awaitDaemon(ctx context.Context, home string, c *client.Client) error {
	deadline := time.Now().Add(daemonStartTimeout)
	for {
		_, err := c.Ping(ctx)
		if err == nil || !errors.Is(err, client.ErrNoDaemon) {
			return err
		}
		if time.Now().After(deadline) {
			return tend.Errorf(tend.EFAILED, "tend's keeper runs but no daemon answered within %s; see %s", daemonStartTimeout, tend.Home(home).Log())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// watchExit returns a channel closed when process pid exits, using a pidfd
// (the kernel says when, nothing polls).
func watchExit(pid int) (<-chan struct{}, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer unix.Close(fd)
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(fds, -1); err != unix.EINTR {
				return
			}
		}
	}()
	return done, nil
}
