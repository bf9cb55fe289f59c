package activation

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Listeners returns the listening sockets passed to this process by socket
// activation, in fd order (3, 4, ...). It returns nil, nil when the process
// was not activated: LISTEN_PID unset or naming another process (a parent's
// sockets are not for its children).
//
// Like sd_listen_fds(1), it unsets the protocol's variables whether or not
// it succeeds, so children this program starts do not see them, and a
// second call returns nil, nil. The passed fds get FD_CLOEXEC, and are
// closed once the returned listeners hold their own duplicates.
func Listeners() ([]net.Listener, error) {
	named, err := files()
	if err != nil || named == nil {
		return nil, err
	}
	lns := make([]net.Listener, 0, len(named))
	for _, f := range named {
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, fmt.Errorf("socket activation: fd %q: %w", f.Name(), err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// Named is Listeners grouped by the names from LISTEN_FDNAMES ("unknown"
// for every fd when the variable is unset, as libsystemd does). The same
// rules about the environment apply: call it, or Listeners, once.
func Named() (map[string][]net.Listener, error) {
	fs, err := files()
	if err != nil || fs == nil {
		return nil, err
	}
	out := map[string][]net.Listener{}
	for i, f := range fs {
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			for _, g := range fs[i+1:] {
				g.Close()
			}
			for _, ls := range out {
				for _, l := range ls {
					l.Close()
				}
			}
			return nil, fmt.Errorf("socket activation: fd %q: %w", f.Name(), err)
		}
		out[f.Name()] = append(out[f.Name()], ln)
	}
	return out, nil
}

// files implements the receiving side of the protocol: it checks and
// unsets the variables and returns one *os.File per passed fd, named after
// LISTEN_FDNAMES.
func files() ([]*os.File, error) {
	pidStr, hasPID := os.LookupEnv(envPID)
	fdsStr := os.Getenv(envFDs)
	namesStr, hasNames := os.LookupEnv(envNames)
	for _, k := range []string{envPID, envFDs, envNames, envPIDFDID} {
		os.Unsetenv(k)
	}
	if !hasPID {
		return nil, nil
	}
	pid, err := strconv.Atoi(pidStr)
	if err != nil {
		return nil, fmt.Errorf("socket activation: %s=%q is not a pid", envPID, pidStr)
	}
	if pid != os.Getpid() {
		return nil, nil
	}
	n, err := strconv.Atoi(fdsStr)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("socket activation: %s=%q is not a count of fds", envFDs, fdsStr)
	}
	if n == 0 {
		return nil, nil
	}
	names := make([]string, n)
	if hasNames {
		names = strings.Split(namesStr, ":")
		if len(names) != n {
			return nil, fmt.Errorf("socket activation: %s has %d names for %s=%d", envNames, len(names), envFDs, n)
		}
	} else {
		for i := range names {
			names[i] = "unknown"
		}
	}
	fs := make([]*os.File, n)
	for i := range n {
		fd := ListenFDsStart + i
		// Set FD_CLOEXEC first: this program's own children must not
		// inherit the sockets by accident.
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
			for _, f := range fs[:i] {
				f.Close()
			}
			return nil, fmt.Errorf("socket activation: fd %d: %w", fd, err)
		}
		fs[i] = os.NewFile(uintptr(fd), names[i])
	}
	return fs, nil
}
