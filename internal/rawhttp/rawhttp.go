// Package rawhttp is an HTTP/1.1 client on one connection, for tests and
// the load generator: unlike net/http's client it never retries a request
// and never reconnects, so a connection the server closes under a request
// shows as an error, and it reports whether the server ends the connection
// after an answer ("Connection: close").
package rawhttp

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// A Conn is one client connection; requests go one at a time.
type Conn struct {
	net.Conn
	br *bufio.Reader
}

// Dial connects to addr (host:port) over TCP.
func Dial(addr string, timeout time.Duration) (*Conn, error) {
	return DialFrom(addr, nil, timeout)
}

// DialFrom is Dial from the local IP address src (nil: the system's
// choice), as a client on another address would connect: on Linux any
// 127.x.y.z reaches a loopback server.
func DialFrom(addr string, src net.IP, timeout time.Duration) (*Conn, error) {
	d := net.Dialer{Timeout: timeout}
	if src != nil {
		d.LocalAddr = &net.TCPAddr{IP: src}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &Conn{c, bufio.NewReader(c)}, nil
}

// A Response is what the server answered.
type Response struct {
	Status int
	Body   string
	// Last is set when the server ends the connection after this answer:
	// HTTP/1.1 asks the client to send no more requests on it.
	Last bool
}

// Do writes req, a complete request, and reads the whole response.
func (c *Conn) Do(req []byte) (Response, error) {
	if _, err := c.Write(req); err != nil {
		return Response{}, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return Response{}, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return Response{}, err
	}
	return Response{Status: resp.StatusCode, Body: string(b), Last: resp.Close}, nil
}

// Get sends GET path with a keep-alive request.
func (c *Conn) Get(path string) (Response, error) {
	return c.Do(Request("GET", path, "x", true))
}

// EOF reports whether the server has closed the connection: the next read
// returns io.EOF (it blocks until the server writes or closes).
func (c *Conn) EOF() bool {
	_, err := c.br.ReadByte()
	return err == io.EOF
}

// Request is the bytes of a request without a body, asking to keep the
// connection or to close it after the answer.
func Request(method, path, host string, keepAlive bool) []byte {
	conn := "keep-alive"
	if !keepAlive {
		conn = "close"
	}
	return fmt.Appendf(nil, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: %s\r\n\r\n", method, path, host, conn)
}
