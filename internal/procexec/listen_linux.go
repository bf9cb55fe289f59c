package procexec

import (
	"bufio"
	"os"
	"slices"
	"strconv"
	"strings"
)

// ListenPorts returns the TCP ports that processes pids listen on with
// sockets of their own, sorted: what a second copy of them could not bind
// while they run. The sockets are found through /proc/pid/fd, the ports
// in the network namespace of pids[0].
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
		ports = append(ports, listening("/proc/"+strconv.Itoa(pids[0])+"/net/"+table, inodes)...)
	}
	slices.Sort(ports)
	return slices.Compact(ports)
}

// listening reads a /proc/net/tcp table: the ports of the sockets in
// state LISTEN (0A) whose inode is in inodes.
func listening(path string, inodes map[string]bool) []int {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var ports []int
	sc := bufio.NewScanner(f)
	sc.Scan() // the header
	for sc.Scan() {
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] {
			continue
		}
		_, hex, ok := strings.Cut(f[1], ":")
		if port, err := strconv.ParseUint(hex, 16, 16); ok && err == nil {
			ports = append(ports, int(port))
		}
	}
	return ports
}
