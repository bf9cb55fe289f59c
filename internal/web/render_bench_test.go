package web

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/tendhq/tend"
)

// manySource is a daemon of apps × per instances whose figures move at
// every call, as a busy daemon's do.
type manySource struct {
	insts []tend.Instance
	calls atomic.Int64
}

func newManySource(apps, per int) *manySource {
	s := &manySource{}
	for a := range apps {
		for i := range per {
			id := a*per + i
			s.insts = append(s.insts, tend.Instance{ID: id, Name: fmt.Sprintf("app%02d", a), Instance: i, PID: 100000 + id,
				Status: tend.StatusOnline, Ready: true, Mode: tend.ModeCluster, Sched: tend.SchedRoundRobin, Port: 3000 + a,
				UptimeMS: 3600e3, CPU: 1, Memory: 50 << 20, Connections: 1000})
		}
	}
	return s
}

func (s *manySource) Subscribe() (<-chan tend.Event, func()) { return make(chan tend.Event), func() {} }

func (s *manySource) Reloads() ([]tend.ReloadRecord, uint64) { return []tend.ReloadRecord{}, 0 }

func (s *manySource) Instances() []tend.Instance {
	n := s.calls.Add(1)
	out := slices.Clone(s.insts)
	for i := range out {
		out[i].CPU = float64((int64(i)+n)%400) / 4
		out[i].Memory += uint64(n%7) << 20
		out[i].Connections += uint64(n * int64(i%13))
		out[i].UptimeMS += n * 1000
	}
	return out
}

type renderTime struct {
	Type    string  `json:"type"`
	JS      float64 `json:"js"`      // ms in the page's handler: parse, update the DOM
	Laid    float64 `json:"laid"`    // ms until style and layout were done too
	Painted float64 `json:"painted"` // ms until the frame after it was out
	Bytes   int     `json:"bytes"`
	Rows    int     `json:"rows"`
}

// BenchmarkDashboard1000Instances opens the real page in headless
// Chromium against a server whose daemon has 1,000 instances (10 apps ×
// 100, an hour of history each) and reports how long the table takes to
// show them, timed in the page with performance.now() by
// testdata/render-timer.js:
// the first time (the stream's snapshot: every row built) and at each
// stats event after (every row's figures changed), to the end of style
// and layout (ms-first-layout) and to the frame painted after it
// (ms-first-paint, ms-update-paint): medians over b.N page loads, and the
// fastest first paint. The target is under a second for the first paint.
//
//	go test ./internal/web -run '^$' -bench Dashboard -benchtime 5x
func BenchmarkDashboard1000Instances(b *testing.B) {
	src := newManySource(10, 100)
	var hist History
	t0 := time.Now().Add(-time.Hour)
	for s := time.Duration(0); s < time.Hour; s += historyStep {
		hist.Record(t0.Add(s), src.Instances())
	}
	timer, err := os.ReadFile("testdata/render-timer.js")
	if err != nil {
		b.Fatal(err)
	}
	srv, _ := servePage(b, Config{Source: src, History: &hist})
	ctx := newBrowser(b)
	if err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: string(timer)})
		return err
	})); err != nil {
		b.Fatalf("starting Chromium: %v", err)
	}

	var first, firstLaid, update []float64
	var bytes int
	b.ResetTimer()
	for range b.N {
		url := "http://" + srv.Addr().String() + "/#token=" + srv.Token(false)
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := chromedp.Do(rctx, chromedp.Navigate("about:blank"), chromedp.Navigate(url))
		var times []renderTime
		for err == nil && times == nil {
			times, err = chromedp.Run(rctx, chromedp.Poll[[]renderTime](`window.tendRenders.filter(r => r.type === 'stats').length >= 3 && window.tendRenders`,
				chromedp.WithPollingInterval(50*time.Millisecond)))
			if err != nil && strings.Contains(err.Error(), "Cannot find context") && rctx.Err() == nil {
				err = nil // the poll began in the document the navigation replaced: again
			}
		}
		cancel()
		if err != nil {
			b.Fatalf("the page: %v", err)
		}
		for _, t := range times {
			if t.Rows != len(src.insts) {
				b.Fatalf("%s: the table has %d rows, want %d", t.Type, t.Rows, len(src.insts))
			}
			if t.Type == "snapshot" {
				first, firstLaid, bytes = append(first, t.Painted), append(firstLaid, t.Laid), t.Bytes
			} else {
				update = append(update, t.Painted)
			}
		}
	}
	b.StopTimer()
	// Medians: on a shared machine a run that lost the CPU to another
	// process says more about the machine than about the page.
	b.ReportMetric(median(firstLaid), "ms-first-layout")
	b.ReportMetric(median(first), "ms-first-paint")
	b.ReportMetric(slices.Min(first), "ms-first-paint-min")
	b.ReportMetric(median(update), "ms-update-paint")
	b.ReportMetric(float64(bytes)/1e6, "MB-snapshot")
}

func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	return s[len(s)/2]
}
