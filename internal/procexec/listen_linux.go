package procexec

import (
	"bufio"
	"encoding/hex"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ListenPorts returns the TCP ports that processes pids listen on with
// sockets of their own and that a second copy of them could not bind
// while they run, sorted. Not counted: sockets with SO_REUSEPORT (the next
// copy binds beside them; tried with a bind of our own, which the kernel
// allows only if the holder set it and runs as the same user). A port
// from a listen on port 0 (a debugger, an admin page) counts: /proc
// cannot tell it from a fixed port in the ephemeral range (gRPC's 50051),
// and a copy that cannot bind its port would fail. The sockets are found
// through /proc/pid/fd, the ports in the network namespace of pids[0].
func ListenPorts(pids []int) []int {
	inodes := map[string]bool{}
	for _, pid := range pids {
		dir := "/proc/" + strconv.Itoa(pid) + "/fd/"
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			link, err := os.Readlink(dir + e.Name())
			if err == nil && strings.HasPrefix(link, "socket:[") {
				inodes[strings.TrimSuffix(link[len("socket:["):], "]")] = true
			}
		}
	}
	if len(pids) == 0 || len(inodes) == 0 {
		return nil
	}
	var ports []int
	for _, table := range []string{"tcp", "tcp6"} {
		for _, a := range listening("/proc/"+strconv.Itoa(pids[0])+"/net/"+table, inodes) {
			if !reusePort(a) {
				ports = append(ports, a.Port)
			}
		}
	}
	slices.Sort(ports)
	return slices.Compact(ports)
}

// reusePort reports whether a socket with SO_REUSEPORT can be bound to a
// beside its holder: then so can the holder's next copy.
func reusePort(a *net.TCPAddr) bool {
	family, sa := unix.AF_INET6, unix.Sockaddr(&unix.SockaddrInet6{Port: a.Port})
	if ip4 := a.IP.To4(); ip4 != nil {
		s4 := &unix.SockaddrInet4{Port: a.Port}
		copy(s4.Addr[:], ip4)
		family, sa = unix.AF_INET, s4
	} else {
		copy(sa.(*unix.SockaddrInet6).Addr[:], a.IP.To16())
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	if family == unix.AF_INET6 {
		// As the holder: an IPv4 holder's port on "::" would clash anyway.
		unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1) != nil {
		return false
	}
	return unix.Bind(fd, sa) == nil
}

// listening reads a /proc/net/tcp table: the addresses of the sockets in
// state LISTEN (0A) whose inode is in inodes.
func listening(path string, inodes map[string]bool) []*net.TCPAddr {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var addrs []*net.TCPAddr
	sc := bufio.NewScanner(f)
	sc.Scan() // the header
	for sc.Scan() {
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] {
			continue
		}
		ipHex, portHex, ok := strings.Cut(f[1], ":")
		port, err := strconv.ParseUint(portHex, 16, 16)
		raw, herr := hex.DecodeString(ipHex)
		if !ok || err != nil || herr != nil || len(raw)%4 != 0 {
			continue
		}
		// The address is in 32-bit words in the host's order (little
		// endian here).
		for i := 0; i < len(raw); i += 4 {
			raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
		}
		addrs = append(addrs, &net.TCPAddr{IP: net.IP(raw), Port: int(port)})
	}
	return addrs
}
