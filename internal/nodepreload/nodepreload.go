// Package nodepreload holds what tend loads into Node apps with --require.
// Its fallback for running Node apps on a shared port when Node's internal
// cluster protocol cannot be used: Check probes the protocol once per node
// binary, and the listen preload redirects an unmodified app's listen(port)
// to the socket tend hands over as fd 3. And the drain preload, which lets
// a cluster worker's keep-alive connections end cleanly when it leaves.
package nodepreload

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tendhq/tend/internal/nodecluster"
	"github.com/tendhq/tend/internal/nodeipc"
	"github.com/tendhq/tend/internal/private"
)

var (
	//go:embed listen.cjs
	listenJS []byte
	//go:embed drain.cjs
	drainJS []byte
)

// Paths are the preloads, written where the daemon's Node apps can read them.
type Paths struct {
	// Listen hands an unmodified listen(port) the socket on fd 3: for Node
	// apps in socket mode, tend's fallback.
	Listen string
	// Drain lets the keep-alive connections of a Node cluster worker that
	// tend disconnects end after an answer instead of under a request.
	Drain string
}

// Write writes the preloads into dir, each only if it changed.
func Write(dir string) (Paths, error) {
	var p Paths
	var err error
	if p.Listen, err = write(dir, "tend-listen-preload.cjs", listenJS); err != nil {
		return Paths{}, err
	}
	if p.Drain, err = write(dir, "tend-drain-preload.cjs", drainJS); err != nil {
		return Paths{}, err
	}
	return p, nil
}

func write(dir, name string, src []byte) (string, error) {
	p := filepath.Join(dir, name)
	if b, err := private.ReadFile(p); err == nil && bytes.Equal(b, src) {
		return p, nil
	}
	// Whole or not at all: a Node process may be loading it meanwhile.
	if err := private.WriteFile(p, src, private.WriteOptions{}); err != nil {
		return "", fmt.Errorf("writing the Node preload %s: %w", name, err)
	}
	return p, nil
}

// Options adds a preload to a NODE_OPTIONS value (quoted when its path
// has a space, which Node's parser of NODE_OPTIONS understands).
func Options(current, path string) string {
	if strings.ContainsAny(path, " \t") {
		path = `"` + path + `"`
	}
	return strings.TrimSpace(current + " --require " + path)
}

// DisableEnv, set to "off" in the daemon's environment, makes Check fail:
// it forces the fallback, for tests and for a Node whose protocol tend
// mishandles in a way the probe does not catch.
const DisableEnv = "TEND_NODE_CLUSTER"

// checkTimeout bounds the probe: a worker starts and listens in well under
// a second even on a busy machine.
const checkTimeout = 10 * time.Second

var (
	mu      sync.Mutex
	results = map[string]error{} // by node path and mtime
)

// Check verifies that the node at path speaks the cluster protocol tend
// implements: a worker started with NODE_UNIQUE_ID comes online and routes
// its listen() to tend. The result is cached per binary.
func Check(node, dir string) error {
	if os.Getenv(DisableEnv) == "off" {
		return errors.New("disabled by " + DisableEnv + "=off")
	}
	fi, err := os.Stat(node)
	if err != nil {
		return err
	}
	key := fmt.Sprintf("%s@%d", node, fi.ModTime().UnixNano())
	mu.Lock()
	defer mu.Unlock()
	if err, ok := results[key]; ok {
		return err
	}
	err = probe(node, dir)
	results[key] = err
	return err
}

func probe(node, dir string) error {
	script := filepath.Join(dir, "tend-cluster-probe.js")
	const src = "require('node:http').createServer().listen(0, '127.0.0.1', () => setTimeout(() => process.exit(0), 50));\n"
	if err := os.WriteFile(script, []byte(src), 0o600); err != nil {
		return err
	}
	defer os.Remove(script)
	p := nodecluster.New(nodecluster.Options{})
	defer p.Close()
	events, stop, err := startWorker(p, node, script)
	if err != nil {
		return err
	}
	defer stop()
	online := false
	deadline := time.After(checkTimeout)
	for {
		select {
		case ev := <-events:
			switch ev.Kind {
			case nodecluster.Online:
				online = true
			case nodecluster.Listening:
				if online {
					return nil
				}
			case nodecluster.Error:
				return fmt.Errorf("the probe worker could not listen: %v", ev.Err)
			case nodecluster.Disconnected:
				return fmt.Errorf("the probe worker left before listening (online: %v)", online)
			}
		case <-deadline:
			return fmt.Errorf("no online and listening from a probe worker within %s (online: %v)", checkTimeout, online)
		}
	}
}

// startWorker runs node script as worker 1 of p, the way tend starts a
// cluster worker (a channel on fd 3, NODE_UNIQUE_ID, its own process
// group), with env added. stop kills it and takes it out of p.
func startWorker(p *nodecluster.Primary, node, script string, env ...string) (events <-chan nodecluster.Event, stop func(), err error) {
	parent, child, err := nodeipc.NewPair()
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(node, script)
	cmd.Env = append(append(nodeipc.StripEnv(os.Environ()), append(nodeipc.Env(3), "NODE_UNIQUE_ID=1")...), env...)
	cmd.ExtraFiles = []*os.File{child}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	child.Close()
	if err != nil {
		parent.Close()
		return nil, nil, err
	}
	ch := make(chan nodecluster.Event, 16)
	p.AddWorker(1, parent, ch)
	return ch, func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		p.RemoveWorker(1)
	}, nil
}
