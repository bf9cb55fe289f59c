package supervisor

import (
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/tendhq/tend/internal/logfile"
)

// Names of the descriptors tend's keeper holds for each process.
const (
	heldOut    = "out"    // stdout's read end
	heldErr    = "err"    // stderr's read end
	heldChan   = "chan"   // tend's end of the message channel
	heldNotify = "notify" // the NOTIFY_SOCKET
)

// pipeSize is the capacity asked for each output pipe: the log poller
// reads a pipe at most every logfile.Gather (5 ms), and a flooding app
// fills the default 64 KB in about a millisecond. 1 MB is the kernel's
// default limit for unprivileged processes. It is also what an app may
// print per stream while no daemon runs (tend's keeper holds the read
// end): past it, its writes wait for the next daemon.
const pipeSize = 1 << 20

// outputPipes are an instance's stdout and stderr pipes: the write ends go
// to the process, the read ends to the log poller (or, without one, to a
// goroutine each).
type outputPipes struct {
	out, err *os.File // write ends, for the child
	readOut  int
	readErr  int
	sink     *logfile.Sink
	poller   *logfile.Poller
}

func (a *App) newPipes(s *slot) (*outputPipes, error) {
	var o, e [2]int
	if err := unix.Pipe2(o[:], unix.O_CLOEXEC); err != nil {
		return nil, err
	}
	if err := unix.Pipe2(e[:], unix.O_CLOEXEC); err != nil {
		unix.Close(o[0])
		unix.Close(o[1])
		return nil, err
	}
	for _, fd := range []int{o[0], e[0]} {
		unix.FcntlInt(uintptr(fd), unix.F_SETPIPE_SZ, pipeSize) // a smaller pipe still works
	}
	// The write ends stay blocking, as a process expects its stdout.
	return &outputPipes{
		out: os.NewFile(uintptr(o[1]), "stdout"), err: os.NewFile(uintptr(e[1]), "stderr"),
		readOut: o[0], readErr: e[0], sink: s.sink, poller: a.opt.Poller,
	}, nil
}

// started closes the parent's write ends, so EOF comes when the process
// (and its children) are done, and reads the read ends. The channel it
// returns is closed once both reached EOF.
func (p *outputPipes) started() chan struct{} {
	p.out.Close()
	p.err.Close()
	return readOutput(p.sink, p.poller, p.readOut, p.readErr)
}

// abort closes all four ends: the process did not start.
func (p *outputPipes) abort() {
	p.out.Close()
	p.err.Close()
	unix.Close(p.readOut)
	unix.Close(p.readErr)
}

// readOutput reads the read ends of a process's stdout and stderr pipes
// into sink, and takes them over. The channel it returns is closed once
// both reached EOF: all the process wrote is in the sink.
func readOutput(sink *logfile.Sink, poller *logfile.Poller, readOut, readErr int) chan struct{} {
	done := make(chan struct{})
	var open atomic.Int32
	open.Store(2)
	eof := func() {
		if open.Add(-1) == 0 {
			close(done)
		}
	}
	for _, x := range []struct {
		st logfile.Stream
		fd int
	}{{logfile.Stdout, readOut}, {logfile.Stderr, readErr}} {
		if poller != nil {
			if w, err := sink.Writer(x.st); err == nil && poller.Add(x.fd, w, eof) == nil {
				continue
			}
		}
		f := os.NewFile(uintptr(x.fd), "output")
		go func() {
			sink.ReadFrom(x.st, f)
			f.Close()
			eof()
		}()
	}
	return done
}
