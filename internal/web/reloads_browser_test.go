package web

import (
	"context"
	"net/http"
	"os/exec"
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
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("needs Chromium (apt-get install chromium)")
	}
	ln, err := Listen("127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	srv := New(ln, false, Config{API: http.NotFoundHandler(), Source: withReloads(newManySource(10, 100), MaxReloads, 1000), History: &History{}})
	go srv.Serve()
	defer srv.Close()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()), chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelCtx := chromedp.NewContext(actx)
	defer cancelCtx()
	ctx, cancel := context.WithTimeout(bctx, time.Minute)
	defer cancel()
	poll := func(what, js string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingInterval(20*time.Millisecond))); err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
	}
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+ln.Addr().String()+"/#token="+srv.Token(false))); err != nil {
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
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("needs Chromium (apt-get install chromium)")
	}
	ln, err := Listen("127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	srv := New(ln, false, Config{API: http.NotFoundHandler(), Source: newManySource(10, 100), History: &History{}})
	go srv.Serve()
	defer srv.Close()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()), chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelCtx := chromedp.NewContext(actx)
	defer cancelCtx()
	ctx, cancel := context.WithTimeout(bctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+ln.Addr().String()+"/#token="+srv.Token(false))); err != nil {
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
