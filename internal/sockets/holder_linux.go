package sockets

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// tcpListen is the st column of /proc/net/tcp for a listening socket
// (TCP_LISTEN in the kernel's tcp_states.h).
const tcpListen = "0A"

// findHolder finds a process holding a socket that listens on port: the
// socket's inode from /proc/net/tcp{,6}, then a /proc/<pid>/fd link to
// socket:[inode]. Without the right to read another user's fds (tend is
// not root) it finds nothing, and the caller words the error without a pid.
func findHolder(port int) (holder, bool) {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		listeningInodes(f, port, inodes)
	}
	if len(inodes) == 0 {
		return holder{}, false
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range procs {
		pid, err := strconv.Atoi(filepath.Base(dir))
		if err != nil || pid == os.Getpid() {
			continue
		}
		fds, err := os.ReadDir(filepath.Join(dir, "fd"))
		if err != nil {
			continue // gone, or not ours to read
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(dir, "fd", fd.Name()))
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			if inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] {
				comm, _ := os.ReadFile(filepath.Join(dir, "comm"))
				return holder{PID: pid, Comm: strings.TrimSpace(string(comm))}, true
			}
		}
	}
	return holder{}, false
}

// listeningInodes adds to inodes the inode of every listening socket on
// port found in a /proc/net/tcp-format file.
func listeningInodes(path string, port int, inodes map[string]bool) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Scan() // header
	for s.Scan() {
		// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
		fields := strings.Fields(s.Text())
		if len(fields) < 10 || fields[3] != tcpListen {
			continue
		}
		_, hexPort, ok := strings.Cut(fields[1], ":")
		if !ok {
			continue
		}
		p, err := strconv.ParseUint(hexPort, 16, 16)
		if err != nil || int(p) != port || fields[9] == "0" {
			continue
		}
		inodes[fields[9]] = true
	}
}
