package activation

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ShimArg is the first argument that makes tend's binary act as the shim:
// `tend __activate -- argv...`. cmd/tend dispatches on it before anything
// else and calls Main.
const ShimArg = "__activate"

// ListenFDsStart is the first passed descriptor (SD_LISTEN_FDS_START).
const ListenFDsStart = 3

// The variables of the protocol. LISTEN_PIDFDID is set by newer systemd
// and checked only when present; tend never sets it but strips it.
const (
	envPID     = "LISTEN_PID"
	envFDs     = "LISTEN_FDS"
	envNames   = "LISTEN_FDNAMES"
	envPIDFDID = "LISTEN_PIDFDID"
)

// ExitCannotExec is the shim's exit status when the app cannot be
// executed, the shell's "command not found" status.
const ExitCannotExec = 127

// Env returns LISTEN_FDS and LISTEN_FDNAMES for len(names) sockets passed
// at fds 3, 4, ... in that order; LISTEN_PID is left to the shim. A name
// must be printable ASCII without ':' (systemd's FileDescriptorName rule).
func Env(names []string) []string {
	return []string{
		envFDs + "=" + strconv.Itoa(len(names)),
		envNames + "=" + strings.Join(names, ":"),
	}
}

// StripEnv returns env without LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES and
// LISTEN_PIDFDID, so that variables tend itself inherited (say, from a
// systemd unit) never reach an app. It does not modify env.
func StripEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case envPID, envFDs, envNames, envPIDFDID:
			continue
		}
		out = append(out, kv)
	}
	return out
}

// Main runs the shim: args are what follows ShimArg on the command line,
// "--" then the app's argv. It returns only on failure, after printing why
// to stderr, with the status the process should exit with.
func Main(args []string, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintf(stderr, "tend %s: no command to run (usage: tend %s -- command [args...])\n", ShimArg, ShimArg)
		return 2
	}
	err := Exec(args)
	fmt.Fprintf(stderr, "tend %s: %v\n", ShimArg, err)
	return ExitCannotExec
}

// Exec sets LISTEN_PID to this process's pid and replaces the process with
// argv, resolving argv[0] through PATH as a shell would. The pid survives
// exec(2), so the app sees LISTEN_PID equal to its own pid. It returns only
// on failure.
func Exec(argv []string) error {
	if len(argv) == 0 {
		return fmt.Errorf("no command to run")
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return fmt.Errorf("cannot run %s: %w", argv[0], err)
	}
	// The passed fds must survive exec. os/exec cleared FD_CLOEXEC when it
	// placed them, and the Go runtime does not set it on inherited fds;
	// clearing it again costs nothing and guards against a future change.
	if n, err := strconv.Atoi(os.Getenv(envFDs)); err == nil {
		for fd := ListenFDsStart; fd < ListenFDsStart+n; fd++ {
			if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
				return fmt.Errorf("%s=%d but fd %d is not open: %w", envFDs, n, fd, err)
			}
		}
	}
	env := append(StripEnv(os.Environ()), envPID+"="+strconv.Itoa(os.Getpid()))
	if fds, ok := os.LookupEnv(envFDs); ok {
		env = append(env, envFDs+"="+fds)
	}
	if names, ok := os.LookupEnv(envNames); ok {
		env = append(env, envNames+"="+names)
	}
	err = syscall.Exec(path, argv, env)
	return fmt.Errorf("cannot run %s: %w", path, err)
}
