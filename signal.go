package tend

import (
	"strconv"
	"strings"
	"syscall"
)

// signals are the signals a user may name, by their canonical names. The
// numbers come from syscall, so "10" means SIGUSR1 on Linux and SIGBUS on
// macOS, as kill(1) would read it on that machine.
var signals = map[string]syscall.Signal{
	"SIGABRT":   syscall.SIGABRT,
	"SIGALRM":   syscall.SIGALRM,
	"SIGBUS":    syscall.SIGBUS,
	"SIGCHLD":   syscall.SIGCHLD,
	"SIGCONT":   syscall.SIGCONT,
	"SIGFPE":    syscall.SIGFPE,
	"SIGHUP":    syscall.SIGHUP,
	"SIGILL":    syscall.SIGILL,
	"SIGINT":    syscall.SIGINT,
	"SIGIO":     syscall.SIGIO,
	"SIGKILL":   syscall.SIGKILL,
	"SIGPIPE":   syscall.SIGPIPE,
	"SIGPROF":   syscall.SIGPROF,
	"SIGQUIT":   syscall.SIGQUIT,
	"SIGSEGV":   syscall.SIGSEGV,
	"SIGSTOP":   syscall.SIGSTOP,
	"SIGSYS":    syscall.SIGSYS,
	"SIGTERM":   syscall.SIGTERM,
	"SIGTRAP":   syscall.SIGTRAP,
	"SIGTSTP":   syscall.SIGTSTP,
	"SIGTTIN":   syscall.SIGTTIN,
	"SIGTTOU":   syscall.SIGTTOU,
	"SIGURG":    syscall.SIGURG,
	"SIGUSR1":   syscall.SIGUSR1,
	"SIGUSR2":   syscall.SIGUSR2,
	"SIGVTALRM": syscall.SIGVTALRM,
	"SIGWINCH":  syscall.SIGWINCH,
	"SIGXCPU":   syscall.SIGXCPU,
	"SIGXFSZ":   syscall.SIGXFSZ,
}

// ParseSignal returns the canonical name ("SIGTERM") of a signal given by
// name with or without the SIG prefix, in any case ("TERM", "sigterm"), or by
// number ("15"). An unknown signal is an EINVALID error.
func ParseSignal(s string) (string, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	if n, err := strconv.Atoi(t); err == nil {
		for name, sig := range signals {
			if int(sig) == n {
				return name, nil
			}
		}
		return "", Errorf(EINVALID, "unknown signal %q", s)
	}
	if !strings.HasPrefix(t, "SIG") {
		t = "SIG" + t
	}
	if _, ok := signals[t]; !ok {
		return "", Errorf(EINVALID, "unknown signal %q", s)
	}
	return t, nil
}
