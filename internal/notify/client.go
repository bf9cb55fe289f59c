package notify

import (
	"fmt"
	"net"
	"os"
	"strings"
)

// Notify sends state ("READY=1", "STATUS=warming up", several lines joined
// by '\n') to the socket named by $NOTIFY_SOCKET: a path, or an abstract
// socket when it starts with '@'. It does nothing and returns nil when the
// variable is unset, so apps can call it whether or not a manager listens.
func Notify(state string) error {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return nil
	}
	if !strings.HasPrefix(addr, "/") && !strings.HasPrefix(addr, "@") {
		return fmt.Errorf("sd_notify: NOTIFY_SOCKET=%q: only paths and abstract (@) sockets are supported", addr)
	}
	// The net package maps a leading '@' to the abstract namespace.
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}
