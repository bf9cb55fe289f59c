package proxy

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tendhq/tend"
)

// An instance that answers in 2 s while another answers at once is taken
// out of rotation: the answers' p99 is fast again. Once it answers in time
// again, it is back.
func TestOutlierEjection(t *testing.T) {
	var delay atomic.Int64
	delay.Store(int64(2 * time.Second))
	backend := func(id int, delay *atomic.Int64) Backend {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if delay != nil {
				select {
				case <-time.After(time.Duration(delay.Load())):
				case <-r.Context().Done():
				}
			}
			fmt.Fprint(w, id)
		}))
		t.Cleanup(s.Close)
		return Backend{ID: id, Addr: s.Listener.Addr().String()}
	}
	p, url := start(t, tend.SchedRoundRobin, []Backend{backend(1, nil), backend(2, &delay)}, func(p *Proxy) {
		p.SlowAfter, p.EjectFor = 200*time.Millisecond, 3*time.Second
	})
	get := func() (string, time.Duration, error) {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
		start := time.Now()
		resp, err := c.Get(url)
		if err != nil {
			return "", 0, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), time.Since(start), err
	}
	// Load from four clients until the slow one is ejected.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				select {
				case <-stop:
					return
				default:
				}
				get()
			}
		})
	}
	deadline := time.Now().Add(20 * time.Second)
	for !p.Stats()[2].Ejected {
		if time.Now().After(deadline) {
			t.Fatal("the slow backend was not ejected")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	// While it is out, every answer is fast.
	var took []time.Duration
	for range 50 {
		body, d, err := get()
		if err != nil || body != "1" {
			t.Fatalf("while ejected: %q, %v", body, err)
		}
		took = append(took, d)
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	if p99 := took[len(took)*99/100]; p99 > 200*time.Millisecond {
		t.Errorf("p99 %s with the slow backend ejected", p99)
	}
	// It recovers: after the ejection it is tried, and kept.
	delay.Store(0)
	deadline = time.Now().Add(20 * time.Second)
	seen := ""
	for !strings.Contains(seen, "2") {
		if time.Now().After(deadline) {
			t.Fatalf("the recovered backend never came back: %v", p.Stats())
		}
		body, _, _ := get()
		seen += body
		time.Sleep(20 * time.Millisecond)
	}
	if p.Stats()[2].Ejected {
		t.Errorf("back in rotation but still ejected: %+v", p.Stats()[2])
	}
}

// When every backend is slow, the app is: none is ejected.
func TestNoEjectionWhenAllSlow(t *testing.T) {
	var bs []Backend
	for id := 1; id <= 2; id++ {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(100 * time.Millisecond)
			fmt.Fprint(w, id)
		}))
		t.Cleanup(s.Close)
		bs = append(bs, Backend{ID: id, Addr: s.Listener.Addr().String()})
	}
	p, url := start(t, tend.SchedRoundRobin, bs, func(p *Proxy) { p.SlowAfter = 30 * time.Millisecond })
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for range 14 {
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	for id, s := range p.Stats() {
		if s.Ejected {
			t.Errorf("backend %d ejected though every backend is as slow", id)
		}
	}
}
