package nodecluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
)

// ErrNotListening is Dial's error for a port the worker does not listen
// on through the primary.
var ErrNotListening = errors.New("not listening there through the cluster")

// Dial connects to worker id as a client of the server it listens on at
// port would, but reaches that worker whatever the scheduling: tend makes
// a loopback connection, hands its server end to the worker as it hands
// out a client's (a newconn for that server), and returns the client end.
// A liveness probe so judges the worker it means, not whichever the shared
// port picks. Node's worker takes a newconn for any server it holds, in
// both policies.
func (p *Primary) Dial(ctx context.Context, id, port int) (net.Conn, error) {
	p.mu.Lock()
	w := p.workers[id]
	var l *listener
	held := false // some worker listens there through the primary
	for _, c := range p.listeners {
		if c.port == port && !c.udp {
			held = true
			if c.members[id] {
				l = c
				break
			}
		}
	}
	p.mu.Unlock()
	switch {
	case w == nil:
		return nil, fmt.Errorf("worker %d is gone", id)
	case l == nil && held:
		return nil, fmt.Errorf("worker %d does not listen on port %d (others do)", id, port)
	case l == nil:
		return nil, fmt.Errorf("worker %d on port %d: %w", id, port, ErrNotListening)
	}
	client, server, err := loopbackPair(ctx)
	if err != nil {
		return nil, err
	}
	defer server.Close() // the worker has its own copy once it answers
	answer := make(chan bool, 1)
	seq := p.seq.Add(1)
	p.mu.Lock()
	p.probes[seq] = probe{w: id, answer: answer}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.probes, seq)
		p.mu.Unlock()
	}()
	err = w.ch.SendFD(l.newconn(seq), int(server.Fd()), "net.Native", func(err error) {
		if err != nil {
			select {
			case answer <- false:
			default:
			}
		}
	})
	if err != nil {
		client.Close()
		return nil, err
	}
	select {
	case ok := <-answer:
		if !ok {
			client.Close()
			return nil, fmt.Errorf("worker %d refused the connection", id)
		}
		return client, nil
	case <-ctx.Done():
		client.Close()
		return nil, fmt.Errorf("worker %d did not take the connection: %w", id, ctx.Err())
	}
}

// probe is a Dial waiting for worker w's answer.
type probe struct {
	w      int
	answer chan bool
}

// probeAnswered delivers a worker's answer to a Dial. Caller holds p.mu.
func (p *Primary) probeAnswered(seq int64, accepted bool) bool {
	pr, ok := p.probes[seq]
	if ok {
		select {
		case pr.answer <- accepted:
		default:
		}
	}
	return ok
}

// loopbackPair returns the two ends of a new TCP connection on loopback:
// the client's, and the server's as a file to hand over.
func loopbackPair(ctx context.Context) (net.Conn, *os.File, error) {
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	var d net.Dialer
	client, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		return nil, nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		ln.SetDeadline(dl)
	}
	var server *net.TCPConn
	for server == nil {
		c, err := ln.AcceptTCP()
		if err != nil {
			client.Close()
			return nil, nil, err
		}
		if c.RemoteAddr().String() != client.LocalAddr().String() {
			c.Close() // another local process raced in: not ours to hand over
			continue
		}
		server = c
	}
	f, err := server.File() // a blocking duplicate, as a worker expects
	server.Close()
	if err != nil {
		client.Close()
		return nil, nil, err
	}
	return client, f, nil
}
