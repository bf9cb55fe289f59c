// Command loadgen is bench/run's load client for the reload suite: C loops
// send GET requests to one URL until -d elapses or SIGINT/SIGTERM arrives,
// and count every outcome by kind, without retrying anything (Go's
// net/http client retries idempotent requests on a reused connection, which
// would hide exactly the failures a reload benchmark is after).
//
//	loadgen -url http://127.0.0.1:3000/ -c 4 -d 60s [-keepalive] [-timeout 5s] [-n N] [-rate R] [-sources K] -o out.json
//
// -n ends the run after N requests (successful or not) in all. -rate paces
// the requests of all loops together to R a second (a loop takes the next
// tick before each request; ticks that find every loop busy are dropped),
// for a light background stream beside another loadgen's load. -sources
// dials each new connection from the next of K loopback addresses,
// 127.0.1.1 on, as K client machines would (tend's --sched sticky picks
// the instance by the client's address).
//
// Without -keepalive every request opens a new TCP connection and sends
// "Connection: close" (as PM2's measurements did with agent:false). With it
// each loop keeps its connection until an error, then dials again.
//
// Failure kinds: refused (ECONNREFUSED on dial), reset (ECONNRESET or
// EPIPE), eof (the server closed the connection before a full response),
// timeout (no full response within -timeout), non200, other. Successful
// answers are also tallied by their body ("pid N build X"), so the report
// says which instances and builds served, and when each was last seen.
// The latency of every successful request (dial included without
// -keepalive) is kept: the report has req/s and p50/p90/p99/max in ms.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tendhq/tend/internal/rawhttp"
)

type tally struct {
	mu       sync.Mutex
	ok       int
	fail     map[string]int
	failAt   map[string][]float64 // seconds since start of each failure (first 50 per kind)
	bodies   map[string]int
	lastSeen map[string]float64
	examples map[string]string
	first    float64 // seconds since start of the first and the last failure
	last     float64
	lat      []float64 // ms of each successful request, dial included without -keepalive
}

func (t *tally) add(start time.Time, kind, body string, err error) {
	at := time.Since(start).Seconds()
	t.mu.Lock()
	defer t.mu.Unlock()
	if kind == "" {
		t.ok++
		t.bodies[body]++
		t.lastSeen[body] = at
		return
	}
	t.fail[kind]++
	if len(t.fail) == 1 && t.fail[kind] == 1 {
		t.first = at
	}
	t.last = at
	if len(t.failAt[kind]) < 50 {
		t.failAt[kind] = append(t.failAt[kind], float64(int(at*1000))/1000)
	}
	if _, ok := t.examples[kind]; !ok && err != nil {
		t.examples[kind] = err.Error()
	}
}

func classify(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	}
	return "other"
}

func main() {
	rawURL := flag.String("url", "", "URL to GET")
	conns := flag.Int("c", 4, "concurrent loops")
	dur := flag.Duration("d", 60*time.Second, "upper bound of the run (SIGINT/SIGTERM end it earlier)")
	keepAlive := flag.Bool("keepalive", false, "reuse each loop's connection")
	timeout := flag.Duration("timeout", 5*time.Second, "deadline of one request, dial included")
	out := flag.String("o", "", "write the JSON report here (default stdout)")
	total := flag.Int64("n", 0, "end after this many requests in all (0: no bound but -d)")
	rate := flag.Float64("rate", 0, "requests a second in all, paced (0: as fast as the loops go)")
	sources := flag.Int("sources", 0, "dial from this many loopback addresses in turn, 127.0.1.1 on (0: the system's choice)")
	flag.Parse()
	if *sources < 0 || *sources > 250*254 {
		fmt.Fprintln(os.Stderr, "loadgen: -sources is from 0 to 63500")
		os.Exit(2)
	}
	if *rate < 0 {
		fmt.Fprintln(os.Stderr, "loadgen: -rate is 0 (unpaced) or more requests a second")
		os.Exit(2)
	}
	var sent, dialed atomic.Int64
	source := func() net.IP {
		if *sources == 0 {
			return nil
		}
		i := int(dialed.Add(1)-1) % *sources
		return net.IPv4(127, 0, byte(1+i/250), byte(1+i%250)) // 127.0.1.1 ... 127.0.1.250, 127.0.2.1 ...
	}
	u, err := url.Parse(*rawURL)
	if err != nil || u.Host == "" {
		fmt.Fprintln(os.Stderr, "loadgen: -url http://host:port/path is needed")
		os.Exit(2)
	}
	req := rawhttp.Request("GET", u.RequestURI(), u.Host, *keepAlive)

	t := &tally{fail: map[string]int{}, failAt: map[string][]float64{}, bodies: map[string]int{},
		lastSeen: map[string]float64{}, examples: map[string]string{}}
	stop := make(chan struct{})
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case <-sigs:
		case <-time.After(*dur):
		}
		close(stop)
	}()

	ticks := pace(*rate, stop)
	start := time.Now()
	var wg sync.WaitGroup
	for range *conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c *rawhttp.Conn
			var lat []float64 // this loop's successful latencies, merged at the end
			defer func() { t.mu.Lock(); t.lat = append(t.lat, lat...); t.mu.Unlock() }()
			for {
				select {
				case <-stop:
					if c != nil {
						c.Close()
					}
					return
				default:
				}
				if ticks != nil {
					select {
					case <-ticks:
					case <-stop:
						if c != nil {
							c.Close()
						}
						return
					}
				}
				if *total > 0 && sent.Add(1) > *total {
					if c != nil {
						c.Close()
					}
					return
				}
				t0 := time.Now()
				if c == nil {
					var err error
					c, err = rawhttp.DialFrom(u.Host, source(), *timeout)
					if err != nil {
						t.add(start, classify(err), "", err)
						c = nil
						time.Sleep(time.Millisecond) // no busy loop while nobody listens
						continue
					}
				}
				c.SetDeadline(time.Now().Add(*timeout))
				resp, err := c.Do(req)
				body := fmt.Sprintf("%d %s", resp.Status, strings.TrimSpace(resp.Body))
				kind := ""
				if err != nil {
					kind, body = classify(err), ""
				} else if resp.Status != 200 {
					kind = "non200"
				}
				if kind == "" {
					lat = append(lat, float64(time.Since(t0).Microseconds())/1000)
				}
				t.add(start, kind, strings.TrimPrefix(body, "200 "), err)
				if err != nil || !*keepAlive || resp.Last {
					c.Close()
					c = nil
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()

	type seen struct {
		Body     string  `json:"body"`
		Count    int     `json:"count"`
		LastSeen float64 `json:"last_seen_s"`
	}
	var served []seen
	for b, n := range t.bodies {
		served = append(served, seen{b, n, float64(int(t.lastSeen[b]*1000)) / 1000})
	}
	sort.Slice(served, func(i, j int) bool { return served[i].LastSeen < served[j].LastSeen })
	failed := 0
	for _, n := range t.fail {
		failed += n
	}
	rep := map[string]any{
		"url": *rawURL, "conns": *conns, "keepalive": *keepAlive, "timeout_s": timeout.Seconds(),
		"elapsed_s": elapsed, "ok": t.ok, "failed": failed, "fail": t.fail, "fail_at_s": t.failAt,
		"fail_examples": t.examples, "served": served,
		"first_fail_s": t.first, "last_fail_s": t.last,
		"rps": float64(t.ok) / elapsed, "latency_ms": percentiles(t.lat),
	}
	b, _ := json.MarshalIndent(rep, "", "  ")
	if *out == "" {
		os.Stdout.Write(append(b, '\n'))
	} else if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// pace returns a channel that yields rate ticks a second until stop is
// closed, or nil for rate 0. It holds no tick back: one that no loop is
// waiting for is dropped, so a stalled server is not sent a burst later.
func pace(rate float64, stop <-chan struct{}) <-chan struct{} {
	if rate == 0 {
		return nil
	}
	ticks := make(chan struct{})
	go func() {
		t := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer t.Stop()
		for {
			select {
			case <-t.C:
				select {
				case ticks <- struct{}{}:
				default:
				}
			case <-stop:
				return
			}
		}
	}()
	return ticks
}

// percentiles of the successful requests' latencies in ms (nearest rank).
func percentiles(ms []float64) map[string]float64 {
	sort.Float64s(ms)
	at := func(q float64) float64 {
		if len(ms) == 0 {
			return 0
		}
		i := int(q*float64(len(ms))+0.999999) - 1
		i = max(0, min(i, len(ms)-1))
		return ms[i]
	}
	return map[string]float64{"p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "max": at(1)}
}
