package cluster_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/tendhq/tend/cluster"
	"github.com/tendhq/tend/internal/activation"
)

// testTimeout bounds every wait in these tests.
const testTimeout = 20 * time.Second

// workerEnv names the helper worker the test binary runs when
// re-executed as a worker.
const workerEnv = "CLUSTER_TEST_WORKER"

// helpers are the worker programs, as funcs of the test binary.
var helpers = map[string]func(){
	// http serves this worker's pid on $ADDR; ?sleep=ms delays the answer.
	"http": func() {
		ln, err := cluster.Listen("tcp", os.Getenv("ADDR"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "listen:", err)
			os.Exit(3)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if ms, _ := strconv.Atoi(r.URL.Query().Get("sleep")); ms > 0 {
				time.Sleep(time.Duration(ms) * time.Millisecond)
			}
			role := "primary"
			if cluster.IsWorker() {
				role = "worker"
			}
			fmt.Fprintf(w, "%d %d %s", os.Getpid(), cluster.ID(), role)
		})}
		if err := cluster.Serve(srv, ln); err != nil {
			fmt.Fprintln(os.Stderr, "serve:", err)
			os.Exit(4)
		}
	},
	// echo says hello, then answers every message with {"echo": msg}.
	"echo": func() {
		if err := cluster.Send(map[string]int{"hello": cluster.ID()}); err != nil {
			os.Exit(3)
		}
		for m := range cluster.Messages() {
			cluster.Send(map[string]any{"echo": m, "id": cluster.ID()})
		}
	},
	// listenerr reports what Listen on $ADDR returned, then waits.
	"listenerr": func() {
		_, err := cluster.Listen("tcp", os.Getenv("ADDR"))
		msg := map[string]any{"inuse": errors.Is(err, syscall.EADDRINUSE)}
		if err != nil {
			msg["err"] = err.Error()
		}
		cluster.Send(msg)
		for range cluster.Messages() {
		}
	},
	// unix serves this worker's pid over HTTP on the unix socket $SOCK.
	"unix": func() {
		ln, err := cluster.Listen("unix", os.Getenv("SOCK"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "listen:", err)
			os.Exit(3)
		}
		cluster.Serve(&http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, os.Getpid())
		})}, ln)
	},
	// udp answers each datagram on 127.0.0.1:$PORT with its pid, after
	// telling the primary its port.
	"udp": func() {
		pc, err := cluster.ListenPacket("udp4", "127.0.0.1:"+os.Getenv("PORT"))
		if err != nil {
			cluster.Send(map[string]string{"err": err.Error()})
			os.Exit(3)
		}
		cluster.Send(map[string]int{"port": pc.LocalAddr().(*net.UDPAddr).Port})
		buf := make([]byte, 64)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo([]byte(strconv.Itoa(os.Getpid())), from)
		}
	},
	// families listens on "::" as tcp6 and as tcp, and says on which ports.
	"families": func() {
		v6, err1 := cluster.Listen("tcp6", "[::]:0")
		dual, err2 := cluster.Listen("tcp", "[::]:0")
		if err := errors.Join(err1, err2); err != nil {
			cluster.Send(map[string]string{"err": err.Error()})
			os.Exit(3)
		}
		cluster.Send(map[string]int{"v6only": v6.Addr().(*net.TCPAddr).Port, "dual": dual.Addr().(*net.TCPAddr).Port})
		go http.Serve(v6, http.NotFoundHandler())
		http.Serve(dual, http.NotFoundHandler())
	},
	// leave disconnects by itself once told to, and exits.
	"leave": func() {
		<-cluster.Messages()
		cluster.Disconnect()
	},
	// relisten listens on $ADDR, says on which port, and on any message
	// closes its listener and listens on that port again.
	"relisten": func() {
		ln, err := cluster.Listen("tcp", os.Getenv("ADDR"))
		if err != nil {
			os.Exit(3)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		cluster.Send(map[string]int{"port": port})
		<-cluster.Messages()
		ln.Close()
		_, err = cluster.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		cluster.Send(map[string]string{"again": fmt.Sprint(err)})
		for range cluster.Messages() {
		}
	},
	// nolisten never listens.
	"nolisten": func() {
		for range cluster.Messages() {
		}
	},
	// badsend reports the error of sending a value JSON cannot encode.
	"badsend": func() {
		err := cluster.Send(make(chan int))
		cluster.Send(map[string]string{"err": fmt.Sprint(err)})
		for range cluster.Messages() {
		}
	},
}

func TestMain(m *testing.M) {
	if os.Getenv("CLUSTER_TEST_SHIM") != "" {
		// Play tend's socket-mode shim: LISTEN_PID must be the app's own
		// pid, which only the process that execs the app knows.
		os.Unsetenv("CLUSTER_TEST_SHIM")
		err := activation.Exec([]string{os.Args[0], "-test.run=^$"})
		fmt.Fprintln(os.Stderr, err)
		os.Exit(127)
	}
	if name := os.Getenv(workerEnv); name != "" {
		if !cluster.IsWorker() {
			fmt.Fprintln(os.Stderr, "helper worker", name, "is not a worker")
			os.Exit(5)
		}
		helpers[name]()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// harness is a Primary forking this test binary as workers.
type harness struct {
	t      *testing.T
	p      *cluster.Primary
	events <-chan cluster.Event
}

func newHarness(t *testing.T, helper string, sched cluster.Sched, env ...string) *harness {
	t.Helper()
	p, err := cluster.NewPrimary(cluster.Settings{
		Exec:  os.Args[0],
		Args:  []string{"-test.run=^$"},
		Env:   append([]string{workerEnv + "=" + helper}, env...),
		Sched: sched,
		Logf:  t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return &harness{t: t, p: p, events: p.Events()}
}

func (h *harness) fork(env map[string]string) *cluster.Worker {
	h.t.Helper()
	w, err := h.p.Fork(env)
	if err != nil {
		h.t.Fatal(err)
	}
	return w
}

// next returns the next event that match accepts, failing on timeout.
// Events it skips are logged.
func (h *harness) next(what string, match func(cluster.Event) bool) cluster.Event {
	h.t.Helper()
	deadline := time.After(testTimeout)
	for {
		select {
		case ev := <-h.events:
			if match(ev) {
				return ev
			}
			if ev.Kind == cluster.Exit && ev.Code != 0 {
				h.t.Logf("event (skipped): %v", ev)
			}
		case <-deadline:
			h.t.Fatalf("no %s within %v", what, testTimeout)
		}
	}
}

func kind(k cluster.EventKind, w *cluster.Worker) func(cluster.Event) bool {
	return func(ev cluster.Event) bool { return ev.Kind == k && (w == nil || ev.Worker == w) }
}

// waitListening waits for n Listening events and returns the address.
func (h *harness) waitListening(n int) *net.TCPAddr {
	h.t.Helper()
	var addr *net.TCPAddr
	for range n {
		ev := h.next("listening", kind(cluster.Listening, nil))
		addr = ev.Addr.(*net.TCPAddr)
	}
	return addr
}

// client makes one connection per request: round robin balances
// connections, and the tests count them.
var client = &http.Client{Timeout: testTimeout, Transport: &http.Transport{DisableKeepAlives: true}}

// get returns the body of GET url.
func get(url string) (string, error) { return body(client.Get(url)) }

// post returns the body of an empty POST to url on c.
func post(c *http.Client, url string) (string, error) { return body(c.Post(url, "text/plain", nil)) }

func body(resp *http.Response, err error) (string, error) {
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("status %s", resp.Status)
	}
	return string(b), err
}

func decode(t *testing.T, ev cluster.Event) map[string]any {
	t.Helper()
	var m map[string]any
	if err := ev.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

var _ = json.Marshal
