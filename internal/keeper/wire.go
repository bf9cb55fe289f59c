package keeper

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/tendhq/tend/internal/procexec"
)

// Operations. Daemon to keeper: opSpawn, opPut, opDrop, opRelease, opQuit,
// opUpgrade, opNotify. Keeper to daemon: opReply (to a request with an id), opExit,
// and at connection time the inventory: opChild, opFD, then opEnd.
const (
	opSpawn   = "spawn"
	opPut     = "put"
	opDrop    = "drop"
	opRelease = "release"
	opQuit    = "quit"
	opUpgrade = "upgrade"
	opNotify  = "notify"
	opReply   = "reply"
	opExit    = "exit"
	opChild   = "child"
	opFD      = "fd"
	opEnd     = "end"
)

// packet is one message; the descriptors it carries travel beside it.
type packet struct {
	Op    string   `json:"op"`
	ID    uint64   `json:"id,omitempty"` // a request's id, echoed by its reply
	Err   string   `json:"err,omitempty"`
	Name  string   `json:"name,omitempty"`  // put, drop, fd: a store entry
	Names []string `json:"names,omitempty"` // spawn, child: names of the held descriptors
	PID   int      `json:"pid,omitempty"`
	Start uint64   `json:"start,omitempty"` // the process's start time, clock ticks after boot
	Label string   `json:"label,omitempty"`
	Exe   string   `json:"exe,omitempty"` // upgrade: the binary to become
	Spawn *spawn   `json:"spawn,omitempty"`
	Exit  *Exit    `json:"exit,omitempty"`
}

// spawn asks for a process. The packet carries Files descriptors for the
// child (fd i of the child is the i-th of them, or /dev/null where Stdio
// says -1), then the held descriptors named in packet.Names.
type spawn struct {
	Path  string   `json:"path"`
	Argv  []string `json:"argv"`
	Env   []string `json:"env"`
	Dir   string   `json:"dir"`
	Files []int    `json:"files"` // per child fd: index among the attached descriptors, -1 for /dev/null
	// Cred and Cgroups are procexec.Cmd's. A keeper that predates them
	// would ignore them: the daemon sends them only to a keeper whose
	// opEnd listed capIdentity.
	Cred    *procexec.Cred `json:"cred,omitempty"`
	Cgroups []string       `json:"cgroups,omitempty"`
}

// capIdentity, in opEnd's Names, says the keeper starts processes as
// spawn.Cred and in spawn.Cgroups.
const capIdentity = "identity"

// Exit is how a process ended, as the keeper reaped it.
type Exit struct {
	Code   int `json:"code"`             // exit code, -1 when killed by a signal or unknown
	Signal int `json:"signal,omitempty"` // the signal that killed it
	// Unknown is set when no one could reap it: its parent was a keeper
	// that died, and only its end was seen.
	Unknown bool `json:"unknown,omitempty"`
}

// maxPacket bounds one packet's JSON. A spawn carries the app's argv and
// environment; exec(2) itself refuses more than ARG_MAX (2 MB by default),
// but a real environment is a few KB. The socket buffers are raised to
// hold it (setBuffers).
const maxPacket = 1 << 20

// maxFDs is SCM_MAX_FD, the most descriptors one message may carry.
const maxFDs = 253

var errTooBig = errors.New("keeper: message too large (the environment or arguments are over 1 MB)")

// send writes p with fds attached. It never takes ownership of fds.
func send(c *net.UnixConn, p *packet, fds []int) error {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("keeper: encoding %s: %w", p.Op, err)
	}
	if len(b) > maxPacket {
		return errTooBig
	}
	if len(fds) > maxFDs {
		return fmt.Errorf("keeper: %d descriptors in one message, at most %d", len(fds), maxFDs)
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	_, _, err = c.WriteMsgUnix(b, oob, nil)
	return err
}

// reader receives packets. It reads each packet's size first, so that
// its buffer fits what it receives: most packets are a few hundred bytes,
// and the keeper and the daemon each hold a reader for as long as they
// run.
type reader struct {
	c   *net.UnixConn
	rc  syscall.RawConn
	buf []byte
	oob []byte
}

func newReader(c *net.UnixConn) *reader {
	rc, _ := c.SyscallConn()
	return &reader{c: c, rc: rc, buf: make([]byte, 512), oob: make([]byte, unix.CmsgSpace(maxFDs*4))}
}

// recv reads one packet and the descriptors it carries, which the caller
// owns (close-on-exec). They stay raw numbers: wrapped in an os.File, a
// non-blocking socket would join this process's poller for nothing.
func (r *reader) recv() (*packet, []int, error) {
	var n, oobn, flags int
	var rerr error
	err := r.rc.Read(func(fd uintptr) bool {
		for {
			// The size of the next packet, without taking it.
			size, _, _, _, err := unix.Recvmsg(int(fd), r.buf[:1], nil, unix.MSG_PEEK|unix.MSG_TRUNC|unix.MSG_DONTWAIT)
			if err == unix.EINTR {
				continue
			}
			if err == unix.EAGAIN {
				return false
			}
			if err == nil && size > len(r.buf) {
				r.buf = make([]byte, min(size, maxPacket+1))
			}
			if err == nil {
				n, oobn, flags, _, err = unix.Recvmsg(int(fd), r.buf, r.oob, unix.MSG_CMSG_CLOEXEC|unix.MSG_DONTWAIT)
			}
			if err == unix.EINTR {
				continue
			}
			rerr = err
			return err != unix.EAGAIN
		}
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return nil, nil, err
	}
	fds, ferr := parseRights(r.oob[:oobn])
	if n == 0 && oobn == 0 {
		return nil, nil, errEOF // a SEQPACKET peer that closed
	}
	if flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
		closeFiles(fds)
		return nil, nil, fmt.Errorf("keeper: truncated message (flags %#x)", flags)
	}
	if ferr != nil {
		closeFiles(fds)
		return nil, nil, ferr
	}
	var p packet
	err = json.Unmarshal(r.buf[:n], &p)
	if len(r.buf) > 64<<10 {
		r.buf = make([]byte, 512) // a big spawn is rare: do not keep its buffer
	}
	if err != nil {
		closeFiles(fds)
		return nil, nil, fmt.Errorf("keeper: bad message: %w", err)
	}
	return &p, fds, nil
}

var errEOF = errors.New("keeper: connection closed")

func parseRights(oob []byte) ([]int, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("keeper: control message: %w", err)
	}
	var out []int
	var perr error
	for i := range msgs {
		fds, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			perr = err
			continue
		}
		out = append(out, fds...)
	}
	return out, perr
}

func closeFiles(fds []int) {
	for _, fd := range fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// seqpacketPair returns a connected SOCK_SEQPACKET pair, close-on-exec.
// ours is wrapped for this process; theirs is the raw end for a child.
func seqpacketPair() (ours *net.UnixConn, theirs *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("keeper: socketpair: %w", err)
	}
	for _, fd := range fds {
		setBuffers(fd)
	}
	ours, err = connOf(os.NewFile(uintptr(fds[0]), "keeper"))
	if err != nil {
		unix.Close(fds[1])
		return nil, nil, err
	}
	return ours, os.NewFile(uintptr(fds[1]), "keeper-peer"), nil
}

// setBuffers raises a socket's buffers toward maxPacket, as far as the
// kernel lets an unprivileged process (net.core.wmem_max): a packet must
// fit in the sender's buffer whole. Larger packets then fail with EMSGSIZE.
func setBuffers(fd int) {
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, maxPacket+64<<10)
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, maxPacket+64<<10)
}

// connOf turns f (a SEQPACKET socket) into a conn on Go's poller and
// closes f.
func connOf(f *os.File) (*net.UnixConn, error) {
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("keeper: %w", err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, errors.New("keeper: not a unix socket")
	}
	return uc, nil
}
