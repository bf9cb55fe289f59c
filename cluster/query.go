package cluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// listenTimeout bounds the wait for the primary's answer. A primary
// answers at once; this only keeps a worker whose primary is wedged from
// hanging in Listen forever.
const listenTimeout = 30 * time.Second

// listenPrimary asks the primary for the socket (Node's queryServer).
func (c *Child) listenPrimary(network, address string) (net.Listener, error) {
	sock, err := c.queryServer(network, address)
	if err != nil {
		return nil, err
	}
	return sock.(net.Listener), nil
}

// queryServer asks the primary for the socket (Node's queryServer): a
// net.Listener, or for UDP a net.PacketConn.
func (c *Child) queryServer(network, address string) (any, error) {
	opErr := func(err error) error {
		return &net.OpError{Op: "listen", Net: network, Addr: addrString(address), Err: err}
	}
	addr, port, at, flags, err := queryAddress(network, address)
	if err != nil {
		return nil, opErr(err)
	}
	udp := strings.HasPrefix(network, "udp")
	idxKey := fmt.Sprint(addr, ":", port, ":", at)
	index := c.takeIndex(idxKey)

	type result struct {
		sock any
		err  error
	}
	res := make(chan result, 1)
	q := map[string]any{"act": "queryServer", "index": index, "data": nil, "address": addr,
		"port": port, "addressType": at, "flags": flags, "backlog": 511}
	err = c.send(q, func(r reply, f *os.File) {
		// Runs in the read loop, so the listener is registered before the
		// first newconn, which follows this reply on the channel.
		if r.Key != "" && (r.Errno == nil || *r.Errno == 0) {
			c.mu.Lock()
			c.keyIndex[r.Key] = keyIndex{idxKey, index}
			c.mu.Unlock()
		}
		switch {
		case r.Cmd == "": // channel lost
			res <- result{err: ErrDisconnected}
		case r.Errno != nil && *r.Errno != 0:
			if f != nil {
				f.Close()
			}
			res <- result{err: syscall.Errno(-*r.Errno)}
		case f != nil && udp:
			pc, err := c.sharedPacketFrom(r.Key, f)
			res <- result{pc, err}
		case f != nil:
			ln, err := c.sharedFrom(r.Key, f)
			res <- result{ln, err}
		case r.Sockname != nil || network == "unix":
			var a net.Addr = &net.UnixAddr{Name: address, Net: "unix"} // a path has no sockname
			if r.Sockname != nil {
				a = &net.TCPAddr{IP: net.ParseIP(r.Sockname.Address), Port: r.Sockname.Port}
			}
			l := newRRListener(c, r.Key, a)
			c.mu.Lock()
			c.rr[r.Key] = l
			c.mu.Unlock()
			res <- result{sock: l}
		default:
			res <- result{err: fmt.Errorf("the primary's answer has neither a socket nor an address")}
		}
	})
	if err != nil {
		return nil, opErr(err)
	}
	var r result
	select {
	case r = <-res:
	case <-time.After(listenTimeout):
		return nil, opErr(fmt.Errorf("no answer from the primary in %v", listenTimeout))
	}
	if r.err != nil {
		return nil, opErr(r.err) // the index stays taken, as in Node
	}
	lm := map[string]any{"act": "listening", "index": index, "address": address, "port": -1, "addressType": at}
	switch ln := r.sock.(type) {
	case net.PacketConn:
		if a, ok := ln.LocalAddr().(*net.UDPAddr); ok {
			lm["address"], lm["port"] = a.IP.String(), a.Port
		}
	case net.Listener:
		if a, ok := ln.Addr().(*net.TCPAddr); ok {
			lm["address"], lm["port"] = a.IP.String(), a.Port
		}
	}
	c.send(lm, nil)
	return r.sock, nil
}

// indexSet is Node's per-address count of a worker's servers: the key of
// the next server on an address ends in the next index, and the count
// starts again once every server on it has closed.
type indexSet struct {
	next int
	live map[int]bool
}

// keyIndex is where a server's index was taken.
type keyIndex struct {
	idxKey string
	index  int
}

// takeIndex returns the next server index for address key idxKey.
func (c *Child) takeIndex(idxKey string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	set := c.indexes[idxKey]
	if set == nil {
		set = &indexSet{live: map[int]bool{}}
		c.indexes[idxKey] = set
	}
	index := set.next
	set.next++
	set.live[index] = true
	return index
}

// closeServer tells the primary that this worker closed its server key,
// and frees the server's index.
func (c *Child) closeServer(key string) {
	// The close goes first: a Listen on the same address after the index
	// is free sends its queryServer behind it.
	c.send(map[string]any{"act": "close", "key": key}, nil)
	c.mu.Lock()
	if ki, ok := c.keyIndex[key]; ok {
		delete(c.keyIndex, key)
		if set := c.indexes[ki.idxKey]; set != nil {
			delete(set.live, ki.index)
			if len(set.live) == 0 {
				delete(c.indexes, ki.idxKey)
			}
		}
	}
	c.mu.Unlock()
}

// queryAddress turns a Go network and address into the fields of Node's
// queryServer: the address (nil for every address of both families),
// port, addressType (4, 6, -1 for a unix path, "udp4", "udp6") and flags
// (1, IPv6 only, for tcp6 and udp6 on "::": Go's are IPv6 only, Node's
// "::" both families unless told), so that addresses mean what they mean
// in Go's net. udp without a host is udp4.
func queryAddress(network, address string) (addr any, port int, at any, flags int, err error) {
	if network == "unix" {
		if address == "" {
			return nil, 0, nil, 0, fmt.Errorf("a unix socket needs a path: %w", syscall.EINVAL)
		}
		return address, -1, -1, 0, nil
	}
	switch network {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
	default:
		return nil, 0, nil, 0, fmt.Errorf("cluster workers listen on tcp, tcp4, tcp6, unix, udp, udp4 or udp6, not %q: %w", network, syscall.EAFNOSUPPORT)
	}
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, 0, nil, 0, err
	}
	if port, err = net.LookupPort(network, portStr); err != nil {
		return nil, 0, nil, 0, err
	}
	if host == "" {
		switch network {
		case "tcp":
			return nil, port, 4, 0, nil
		case "tcp4":
			return "0.0.0.0", port, 4, 0, nil
		case "tcp6":
			return "::", port, 6, 1, nil
		case "udp6":
			return "::", port, "udp6", 1, nil
		}
		return "0.0.0.0", port, "udp4", 0, nil
	}
	ip := net.ParseIP(host)
	if ip == nil {
		ips, err := net.DefaultResolver.LookupIP(context.Background(), "ip", host)
		if err != nil {
			return nil, 0, nil, 0, err
		}
		ip = ips[0] // LookupIP returns an error rather than nothing
	}
	v4 := ip.To4() != nil
	if network == "tcp6" || network == "udp6" {
		if ip.IsUnspecified() {
			flags = 1 // Go's tcp6 and udp6 on "::" are IPv6 only
		}
	}
	if strings.HasPrefix(network, "udp") {
		return ip.String(), port, map[bool]string{true: "udp4", false: "udp6"}[v4], flags, nil
	}
	if network == "tcp" && ip.IsUnspecified() {
		return nil, port, 4, 0, nil // Go's tcp on 0.0.0.0 or :: is every address of both families
	}
	return ip.String(), port, map[bool]int{true: 4, false: 6}[v4], flags, nil
}

// sharedPacketFrom wraps a UDP socket sent by the primary.
func (c *Child) sharedPacketFrom(key string, f *os.File) (net.PacketConn, error) {
	pc, err := net.FilePacketConn(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	u, ok := pc.(*net.UDPConn)
	if !ok {
		pc.Close()
		return nil, fmt.Errorf("the primary sent a %T, not a UDP socket", pc)
	}
	s := &sharedPacket{UDPConn: u, c: c, key: key}
	c.mu.Lock()
	c.packets = append(c.packets, s)
	c.mu.Unlock()
	return s, nil
}

// ListenPacket is Listen for UDP: network is "udp", "udp4" or "udp6". In
// a worker of a primary (Node's, this package's or tend), the socket is
// the primary's, shared by every worker that binds the same address, as
// Node shares a dgram socket; elsewhere it is net.ListenPacket's.
func (c *Child) ListenPacket(network, address string) (net.PacketConn, error) {
	if c.kind != kindNode {
		return net.ListenPacket(network, address)
	}
	if !strings.HasPrefix(network, "udp") {
		return nil, &net.OpError{Op: "listen", Net: network, Addr: addrString(address),
			Err: fmt.Errorf("ListenPacket takes udp, udp4 or udp6, not %q: %w", network, syscall.EAFNOSUPPORT)}
	}
	sock, err := c.queryServer(network, address)
	if err != nil {
		return nil, err
	}
	return sock.(net.PacketConn), nil
}
