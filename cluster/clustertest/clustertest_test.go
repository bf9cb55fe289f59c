package clustertest_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/tendhq/tend/cluster"
	"github.com/tendhq/tend/cluster/clustertest"
)

// worker is worker logic as a program would write it, against a Child.
func worker(c *cluster.Child) {
	ln, err := c.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.Send(map[string]string{"err": err.Error()})
		return
	}
	go func() {
		for m := range c.Messages() {
			c.Send(map[string]any{"echo": m})
		}
	}()
	c.Serve(&http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, c.ID())
	})}, ln)
}

func next(t *testing.T, p *cluster.Primary, k cluster.EventKind) cluster.Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-p.Events():
			if ev.Kind == k {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %v event", k)
		}
	}
}

func TestInProcess(t *testing.T) {
	p := clustertest.NewPrimary(t, cluster.Settings{}, worker)
	w1, _ := p.Fork(nil)
	w2, _ := p.Fork(nil)
	addr := next(t, p, cluster.Listening).Addr.(*net.TCPAddr)
	next(t, p, cluster.Listening)

	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	got := map[string]int{}
	for range 10 {
		resp, err := client.Get("http://" + addr.String())
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got[string(b)]++
	}
	// Both serve; exact alternation is nodecluster's (balance_test.go):
	// a worker whose answer is not back within 1 ms forfeits its turn,
	// which a busy machine can make happen to goroutines in one process.
	if got["1"] < 2 || got["2"] < 2 || got["1"]+got["2"] != 10 {
		t.Errorf("round robin over two in-process workers: %v", got)
	}

	w2.Send("hi")
	if ev := next(t, p, cluster.Message); ev.Worker != w2 || string(ev.Msg) != `{"echo":"hi"}` {
		t.Errorf("message %v", ev)
	}

	w1.Kill(nil)
	if code, sig := w1.Wait(); code != -1 || sig == nil {
		t.Errorf("killed worker: code %d signal %v", code, sig)
	}
	w2.Disconnect()
	if code, sig := w2.Wait(); code != 0 || sig != nil {
		t.Errorf("disconnected worker: code %d signal %v", code, sig)
	}
	if ws := p.Workers(); len(ws) != 0 {
		t.Errorf("workers left: %v", ws)
	}
}
