package supervisor

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/procexec"
)

// RunCommand runs a command line for tend (a liveness probe, a
// notification hook): split as a shell splits it, with expand $VAR and
// ${VAR} of env expanded (others, "$?" or a shell's own variables, are
// left for the shell: `sh -c 'x=1; test $x = 1'` works), found on env's
// PATH, run in dir
// with env, in a process group of its own that is killed, children and
// all, when ctx ends or it exits: what it leaves running does not outlive
// it; as cred's user when it is set (the app's: what runs for an app runs
// as the app). The error says how it failed, with the first line of what
// it printed.
func RunCommand(ctx context.Context, line string, env []string, dir string, expand bool, cred *procexec.Cred) error {
	words, err := tend.SplitWords(line)
	if err != nil || len(words) == 0 {
		return fmt.Errorf("%q is not a command line: %v", line, err)
	}
	if expand {
		words = expandKnown(words, env)
	}
	prog, err := lookPath(words[0], envValue(env, "PATH"), dir)
	if err != nil {
		return fmt.Errorf("%s is not on the app's PATH nor a file in %s", words[0], dir)
	}
	cmd := exec.CommandContext(ctx, prog, words[1:]...)
	cmd.Args[0] = words[0]
	cmd.Dir, cmd.Env = dir, env
	cmd.SysProcAttr = procexec.SysProcAttr(cred, nil, -1)
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second // a child that kept the output open
	out, err := cmd.CombinedOutput()
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // what it left behind
	}
	if ctx.Err() != nil {
		return fmt.Errorf("killed: no answer in time (%v)", context.Cause(ctx))
	}
	if err != nil {
		return fmt.Errorf("%v: %s", err, firstLine(out))
	}
	return nil
}

// firstLine is the first line of out, bounded, for a message.
func firstLine(out []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
