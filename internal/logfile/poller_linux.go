package logfile

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Gather is how long a Poller lets output accumulate after it read a pipe
// before it looks at that pipe again. An app that writes a line at a time
// (console.log does) then costs one wake-up per Gather instead of one per
// write: under a flood that is most of the daemon's CPU (measured: 91 % of
// it went to the Go scheduler answering epoll events on the pipes). Lines
// reach the files and `tend logs` at most this late.
const Gather = 5 * time.Millisecond

// A Poller reads the output pipes of many processes from one goroutine.
// Each pipe is in epoll in one-shot mode: it wakes the poller once, is
// read until empty, and is armed again only after Gather, so the app's
// writes in between wake nothing. Pipe fds given to a Poller must not be
// used through Go's own poller (os.Pipe files are): make them with
// unix.Pipe2 and let the Poller own the read end.
type Poller struct {
	epfd int
	buf  []byte

	mu      sync.Mutex
	sources map[int32]*source
	wake    [2]int // a pipe that interrupts epoll_wait for Add and Close
	closed  bool
}

type source struct {
	fd   int
	w    *StreamWriter
	done func() // called once after EOF, on the poller's goroutine
}

// NewPoller starts a Poller.
func NewPoller() (*Poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	p := &Poller{epfd: epfd, buf: make([]byte, readBufSize), sources: map[int32]*source{}}
	if err := unix.Pipe2(p.wake[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(p.wake[0])}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, p.wake[0], &ev); err != nil {
		return nil, err
	}
	go p.loop()
	return p, nil
}

// Add makes the Poller read fd (the read end of a pipe; the Poller closes
// it at EOF) into w. done is called after the last byte was delivered.
func (p *Poller) Add(fd int, w *StreamWriter, done func()) error {
	if err := unix.SetNonblock(fd, true); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("logfile: poller closed")
	}
	p.sources[int32(fd)] = &source{fd: fd, w: w, done: done}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(fd)}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		delete(p.sources, int32(fd))
		return fmt.Errorf("logfile: watching pipe: %w", err)
	}
	return nil
}

func (p *Poller) loop() {
	events := make([]unix.EpollEvent, 128)
	var again []*source
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err != nil && err != unix.EINTR {
			return
		}
		again = again[:0]
		for _, ev := range events[:max(n, 0)] {
			if int(ev.Fd) == p.wake[0] {
				unix.Read(p.wake[0], p.buf)
				if p.isClosed() {
					return
				}
				continue
			}
			p.mu.Lock()
			src := p.sources[ev.Fd]
			p.mu.Unlock()
			if src == nil {
				continue
			}
			if p.drain(src) {
				again = append(again, src)
			}
		}
		if len(again) > 0 {
			time.Sleep(Gather)
			for _, src := range again {
				ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(src.fd)}
				unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, src.fd, &ev)
			}
		}
	}
}

// drain reads src until the pipe is empty; false when it ended (EOF or an
// error), after which src is closed and forgotten.
func (p *Poller) drain(src *source) bool {
	for {
		n, err := unix.Read(src.fd, p.buf)
		if n > 0 {
			src.w.Write(p.buf[:n])
		}
		switch {
		case err == unix.EAGAIN:
			return true
		case err == unix.EINTR:
			continue
		case err != nil || n == 0:
			unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, src.fd, nil)
			unix.Close(src.fd)
			p.mu.Lock()
			delete(p.sources, int32(src.fd))
			p.mu.Unlock()
			src.w.Close()
			if src.done != nil {
				src.done()
			}
			return false
		}
	}
}

func (p *Poller) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// Close stops the Poller. Pipes still open are closed without reading
// their rest.
func (p *Poller) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	for fd := range p.sources {
		unix.Close(int(fd))
	}
	p.sources = nil
	p.mu.Unlock()
	unix.Write(p.wake[1], []byte{1})
	return nil
}
