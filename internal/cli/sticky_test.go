package cli_test

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/testport"
)

// The Socket.IO version these tests pin: 4 is the major in use.
var socketIOPackages = []string{"socket.io@4.8.4", "socket.io-client@4.8.4"}

// clientAddrs are the loopback source addresses the Socket.IO clients
// connect from: Linux routes all of 127/8 to lo.
var clientAddrs = []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7"}

// sioResult is one line of testdata/socketio/client.js.
type sioResult struct {
	IP        string `json:"ip"`
	PID       int    `json:"pid"`
	Transport string `json:"transport"`
	Error     string `json:"error"`
	Status    int    `json:"status"`
	Body      string `json:"body"`
}

// startSocketIO starts testdata/socketio/server.js with 2 instances under
// sched (in cluster mode, unless args say otherwise) and returns its URL,
// once both are online.
func startSocketIO(t *testing.T, h *harness, sched string, args ...string) string {
	t.Helper()
	mods := npmModules(t, socketIOPackages...)
	h.env = append(h.env, "NODE_PATH="+mods)
	port := testport.Free(t)
	server := filepath.Join(repoRoot(t), "internal", "cli", "testdata", "socketio", "server.js")
	h.ok(append([]string{"start", server, "--name", "sio", "-i", "2", "--port", strconv.Itoa(port), "--sched", sched}, args...)...)
	h.await("2 instances ready", bothReady)
	return "http://127.0.0.1:" + strconv.Itoa(port)
}

// socketIOClients runs a Socket.IO client from each of addrs, one after
// another, and returns their results by address.
func socketIOClients(t *testing.T, h *harness, url string, addrs []string) map[string]sioResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	script := filepath.Join(repoRoot(t), "internal", "cli", "testdata", "socketio", "client.js")
	cmd := exec.CommandContext(ctx, "node", append([]string{script, url}, addrs...)...)
	cmd.Env = h.env
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node client.js: %v\n%s", err, out)
	}
	res := map[string]sioResult{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var r sioResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("client.js printed %q: %v", line, err)
		}
		res[r.IP] = r
	}
	if len(res) != len(addrs) {
		t.Fatalf("client.js answered for %d addresses of %d:\n%s", len(res), len(addrs), out)
	}
	return res
}

// bothReady holds once 2 instances are online and ready: in rotation.
func bothReady(in []tend.Instance) bool {
	return allStatus(2, tend.StatusOnline)(in) && in[0].Ready && in[1].Ready
}

// slotsByPID maps each instance's pid to its slot (instance number).
func slotsByPID(insts []tend.Instance) map[int]int {
	out := map[int]int{}
	for _, in := range insts {
		out[in.PID] = in.Instance
	}
	return out
}

// TestStickySocketIO runs a Socket.IO 4 server, unmodified and with its
// default transports, as 2 cluster workers, and as 2 instances behind
// tend's proxy (proxy mode). Under --sched sticky every
// client, from 6 source addresses, completes the long-polling handshake
// and the websocket upgrade, and the addresses spread over both workers;
// a reload keeps each address on its slot. Under rr, the same clients'
// polls reach the worker that does not hold their session: "Session ID
// unknown", the failure sticky sessions exist to prevent.
func TestStickySocketIO(t *testing.T) {
	for _, mode := range []string{"cluster", "proxy"} {
		t.Run("sticky "+mode, func(t *testing.T) { testStickySocketIO(t, mode) })
	}
	t.Run("rr", func(t *testing.T) {
		h := newHarness(t)
		url := startSocketIO(t, h, "rr")
		unknown := 0
		for _, r := range socketIOClients(t, h, url, clientAddrs) {
			if r.Status == 400 && strings.Contains(r.Body, "Session ID unknown") {
				unknown++
			}
		}
		// Round robin alternates connections between the workers, so a
		// session's second request reaches the other one: expect nearly
		// every client to fail, and require at least one.
		if unknown == 0 {
			t.Fatalf("under rr no client got \"Session ID unknown\"; the sticky test would prove nothing")
		}
		t.Logf("rr: %d of %d clients got 400 Session ID unknown", unknown, len(clientAddrs))
	})
}

// testStickySocketIO is TestStickySocketIO's sticky case in mode (cluster
// or proxy).
func testStickySocketIO(t *testing.T, mode string) {
	h := newHarness(t)
	url := startSocketIO(t, h, "sticky", "--exec-mode", mode)
	slots := slotsByPID(h.ls())
	before := map[string]int{}
	for _, r := range socketIOClients(t, h, url, clientAddrs) {
		if r.Error != "" || r.Transport != "websocket" {
			t.Fatalf("client %s: %+v; want a session upgraded to websocket", r.IP, r)
		}
		slot, ok := slots[r.PID]
		if !ok {
			t.Fatalf("client %s was answered by pid %d, not an instance of %v", r.IP, r.PID, slots)
		}
		before[r.IP] = slot
	}
	used := map[int]bool{}
	for _, s := range before {
		used[s] = true
	}
	if len(used) != 2 {
		t.Fatalf("all %d addresses went to slots %v; want both slots used", len(clientAddrs), before)
	}

	h.ok("reload", "sio")
	insts := h.await("2 new instances ready", bothReady)
	slots = slotsByPID(insts)
	for _, r := range socketIOClients(t, h, url, clientAddrs) {
		if r.Error != "" || r.Transport != "websocket" {
			t.Fatalf("after reload, client %s: %+v", r.IP, r)
		}
		if slot, ok := slots[r.PID]; !ok || slot != before[r.IP] {
			t.Errorf("after reload, client %s reached pid %d (slot %d, known %v); it was on slot %d", r.IP, r.PID, slot, ok, before[r.IP])
		}
	}
}
