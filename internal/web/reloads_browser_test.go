package web

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/tendhq/tend"
)

// reloadsSource is manySource with reloads: n of steps instances each.
type reloadsSource struct {
	*manySource
	recs []tend.ReloadRecord
}

func (s reloadsSource) Reloads() ([]tend.ReloadRecord, uint64) { return s.recs, 1 }

func withReloads(src *manySource, n, steps int) reloadsSource {
	rs := reloadsSource{manySource: src}
	for r := range n {
		rec := tend.ReloadRecord{By: "command", ReloadReport: tend.ReloadReport{App: "app00", Action: "reload",
			Time: time.Now().Add(time.Duration(r-n) * time.Minute), OK: true, DurationMS: 1234}}
		for i := range steps {
			rec.Steps = append(rec.Steps, tend.ReloadStep{ID: i, Instance: i, OldPID: 100000 + i, NewPID: 200000 + i, ReadyMS: 300, StoppedMS: 40})
		}
		rs.recs = append(rs.recs, rec)
	}
	return rs
}

// The last reloads of a daemon of a thousand instances are twenty
// thousand steps: the page builds the steps of a big reload when asked
// (its summary opened), not all of them with every snapshot, which made
// the first paint of BenchmarkDashboard1000Instances 3.5 s instead of
// 0.2 s and each stats update 0.3 s.
func TestPageBuildsBigReloadsStepsWhenAsked(t *testing.T) {
	_, url := servePage(t, Config{Source: withReloads(newManySource(10, 100), MaxReloads, 1000), History: &History{}})
	ctx, cancel := context.WithTimeout(newBrowser(t), time.Minute)
	defer cancel()
	poll := func(what, js string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingInterval(20*time.Millisecond))); err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	poll("the twenty reloads listed", `document.querySelectorAll('#reloads li.reload').length === 20`)
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#reloads tr').length`))
	if err != nil || rows > 100 {
		t.Fatalf("the page built %d rows of steps (%v) for 20 reloads of 1,000 instances before any was asked for", rows, err)
	}
	// Opened as a click opens it; a click at coordinates can miss while
	// the table of a thousand rows is still being laid out.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('#reloads li.reload summary').click(), true`)); err != nil {
		t.Fatal(err)
	}
	poll("the newest reload's steps, once asked for", `(() => { const t = document.querySelector('#reloads li.reload').textContent;
		return t.includes('app00[999]') && t.includes('100999 → 200999'); })()`)
}

// Show takes the keyboard to the instance's charts and actions, after a
// thousand rows: the next Tab is its Restart, not the next row's Show.
func TestShowTakesTheFocusToTheCharts(t *testing.T) {
	_, url := servePage(t, Config{Source: newManySource(10, 100), History: &History{}})
	ctx, cancel := context.WithTimeout(newBrowser(t), time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](`document.querySelectorAll('tr.inst').length === 1000`)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Focus(chromedp.CSS(`tr.inst[data-id="2"] button`)), chromedp.KeyEvent(kb.Enter), chromedp.KeyEvent(kb.Tab)); err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.activeElement.id || document.activeElement.title) + ' / ' + document.querySelector('#chart-target').textContent`))
	if err != nil || got != "inst-restart / app00[2] (id 2)" {
		t.Fatalf("after Show of app00[2] and a Tab, the focus is on %q (%v); want its Restart, by its charts", got, err)
	}
}

// dipSource is one instance whose count of connections grows by one a
// call, except once, at call dipAt (when set), where it dips to 40.
type dipSource struct {
	calls, dipAt atomic.Int64
}

func (s *dipSource) Subscribe() (<-chan tend.Event, func()) { return make(chan tend.Event), func() {} }
func (s *dipSource) Reloads() ([]tend.ReloadRecord, uint64) { return []tend.ReloadRecord{}, 0 }
func (s *dipSource) Instances() []tend.Instance {
	n := s.calls.Add(1)
	count := uint64(100_000 + n)
	if n == s.dipAt.Load() {
		count = 40
	}
	return []tend.Instance{{ID: 1, Name: "px", PID: 100, Status: tend.StatusOnline, Ready: true, Mode: tend.ModeCluster,
		Sched: tend.SchedRoundRobin, Connections: count}}
}

// The page's live connections chart, like History, counts no connection
// for a count coming back from a dip (a process exiting).
func TestPageChartsNoConnectionsForADip(t *testing.T) {
	src := &dipSource{}
	_, url := servePage(t, Config{Source: src, History: &History{}, StatsEvery: 50 * time.Millisecond})
	ctx, cancel := context.WithTimeout(newBrowser(t), time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	// The page charts once it has its history (pointsOf); then the count
	// dips, and comes back.
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](`pointsOf === 1 && points.length > 0`)); err != nil {
		t.Fatal(err)
	}
	dip := src.calls.Load() + 2
	src.dipAt.Store(dip)
	for src.calls.Load() < dip+5 {
		time.Sleep(50 * time.Millisecond) // a sample every 50 ms: await five more
	}
	// One connection a sample was handed out; the count's return from the
	// dip would chart 100,000 more.
	total, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`points.reduce((s, p, i) => i ? s + (p[3] || 0) * (p[0] - points[i-1][0]) / 1000 : s, 0)`))
	if err != nil || total > 50_000 {
		t.Fatalf("the page charted %.0f connections (%v) where one a sample was handed out and the count dipped once", total, err)
	}
}
