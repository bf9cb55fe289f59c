package cli_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/testport"
)

// browser is a headless Chromium with one page open.
type browser struct {
	t   *testing.T
	ctx context.Context
}

// newBrowser starts Debian's Chromium, headless, with a profile of its
// own and none of the background connections this machine's closed
// network refuses.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("the dashboard's tests need Chromium (apt-get install chromium; .ci/run does): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()), chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return &browser{t: t, ctx: ctx}
}

// run runs actions, each bounded, and fails the test on an error.
func (b *browser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v\npage: %s", what, err, b.text())
	}
}

// wait polls the page until the JavaScript expression js is true.
func (b *browser) wait(what, js string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingInterval(20*time.Millisecond))); err != nil {
		b.t.Fatalf("waiting for %s: %v\npage: %s", what, err, b.text())
	}
}

// text is what the page shows, for failure messages.
func (b *browser) text() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	return s
}

// rowIs is JavaScript: whether the row of instance id shows pid and a
// status that has status in it.
func rowIs(id, pid int, status tend.Status) string {
	return fmt.Sprintf(`(() => { const r = document.querySelector('tr.inst[data-id="%d"]');
		return !!r && r.querySelector('td.pid').textContent === '%d' && r.querySelector('td.status').textContent.includes('%s'); })()`, id, pid, status)
}

// click clicks the button labelled label, then Confirm in the dialog.
func (b *browser) confirm(label string) {
	b.t.Helper()
	b.run("clicking "+label, chromedp.Click(chromedp.CSS(`button[aria-label="`+label+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#confirm-ok`)), chromedp.Click(chromedp.CSS(`#confirm-ok`)))
}

// screenshot saves the page as name.png in $TEND_WEB_SCREENSHOTS, or in
// the test's temporary directory.
func (b *browser) screenshot(name string, width, height int64) {
	b.t.Helper()
	dir := os.Getenv("TEND_WEB_SCREENSHOTS")
	if dir == "" {
		dir = b.t.TempDir()
	}
	b.run("a "+name+" viewport", chromedp.EmulateViewport(width, height))
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

func TestWebDashboardInABrowser(t *testing.T) {
	h := newHarness(t)
	h.ok("start", h.self, "--name", "alpha", "-i", "2", "--listen-timeout", "300ms", "--", "serve")
	h.ok("start", h.self, "--name", "beta", "--listen-timeout", "300ms", "--env", "TICK_MS=200", "--", "ticker")
	insts := h.await("three instances online", allStatus(3, tend.StatusOnline))
	b, base, _ := h.openDashboard()

	// Every instance, with its pid, as tend ls shows it.
	for _, in := range insts {
		b.wait(fmt.Sprintf("the row of %s[%d] with pid %d", in.Name, in.Instance, in.PID), rowIs(in.ID, in.PID, tend.StatusOnline))
	}
	b.wait("the token gone from the address bar", `!location.hash.includes('token')`)
	b.wait("CPU and memory charts drawn", `document.querySelector('#mem-chart polyline').getAttribute('points').length > 0`)

	// Reload: the page says it is under way, then done, with new pids.
	b.confirm("reload alpha")
	b.wait("the reload in progress", `document.querySelector('#msg').textContent.includes('reload alpha: in progress')`)
	b.wait("the reload done", `document.querySelector('#msg').textContent.startsWith('reload alpha: done')`)
	after := h.ls()
	for i, in := range after[:2] {
		if in.PID == insts[i].PID {
			t.Fatalf("alpha[%d] kept pid %d through the reload", i, in.PID)
		}
		b.wait(fmt.Sprintf("alpha[%d] with its new pid %d", i, in.PID), rowIs(in.ID, in.PID, tend.StatusOnline))
		// The report says what the reload did to each instance.
		b.wait(fmt.Sprintf("the report of alpha[%d]", i), fmt.Sprintf(`document.querySelector('#msg').textContent.includes('alpha[%d] %d → %d')`, i, insts[i].PID, in.PID))
	}
	b.wait("the reload in the page's Reloads", reloadShown("alpha", "from this dashboard",
		[2]int{insts[0].PID, after[0].PID}, [2]int{insts[1].PID, after[1].PID}))

	// kill -9 an instance: its row changes, and comes back online.
	beta := after[2]
	if err := syscall.Kill(beta.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	b.wait("beta's row to show a new pid, online, 1 restart", fmt.Sprintf(`(() => { const r = document.querySelector('tr.inst[data-id="%d"]');
		const pid = r.querySelector('td.pid').textContent;
		return pid !== '%d' && pid !== '—' && r.querySelector('td.status').textContent.includes('online') && r.querySelector('td.restarts').textContent === '1'; })()`, beta.ID, beta.PID))
	beta = h.ls()[2]

	// Logs: follow beta and see a line it printed after the page opened.
	b.run("following beta's logs", chromedp.Click(chromedp.CSS(`button[title="charts, logs and actions of beta[0]"]`)))
	pidTick := regexp.MustCompile(`tick (\d+) pid=` + strconv.Itoa(beta.PID))
	m := pidTick.FindAllStringSubmatch(h.awaitLog("beta", "pid="+strconv.Itoa(beta.PID)), -1)
	last, _ := strconv.Atoi(m[len(m)-1][1])
	want := fmt.Sprintf("tick %d pid=%d", last+2, beta.PID)
	b.wait("the line "+want, fmt.Sprintf(`document.querySelector('#log').textContent.includes(%q)`, want))
	// The filter hides what does not match.
	b.run("filtering", chromedp.SendKeys(chromedp.CSS(`#log-filter`), "no line has this"))
	b.wait("every line hidden", `(() => { const l = [...document.querySelectorAll('#log .line')]; return l.length > 0 && l.every(d => d.hidden); })()`)
	b.run("clearing the filter", chromedp.Evaluate[chromedp.Void](`(() => { const f = document.querySelector('#log-filter'); f.value = ''; f.dispatchEvent(new Event('input')); })()`))
	// stderr is told apart from stdout by a word, not colour alone.
	b.run("following alpha's logs", chromedp.Evaluate[chromedp.Void](`(() => { const s = document.querySelector('#log-target'); s.value = 'alpha'; s.dispatchEvent(new Event('change')); })()`))
	b.wait("alpha's stderr line marked err", `[...document.querySelectorAll('#log .line.err')].some(d => d.textContent.includes('ready on stderr') && d.querySelector('.tag').textContent === 'err')`)

	// The keyboard: Enter on a button opens the confirmation, Escape
	// cancels it and nothing happens.
	b.run("the keyboard", chromedp.Focus(chromedp.CSS(`button[aria-label="stop beta"]`)), chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(`#confirm-ok`)), chromedp.KeyEvent(kb.Escape), chromedp.WaitNotVisible(chromedp.CSS(`#confirm-ok`)))
	if in := h.ls()[2]; in.PID != beta.PID || in.Status != tend.StatusOnline {
		t.Fatalf("a cancelled stop acted: %+v", in)
	}

	b.screenshot("dashboard-desktop", 1280, 900)
	b.screenshot("dashboard-phone", 390, 844)
	b.wait("the phone layout (cards, no table head)", `getComputedStyle(document.querySelector('thead')).display === 'none'`)

	// A read-only session sees everything and can press nothing that acts.
	_, roToken := h.webURL("--read-only")
	// about:blank first: a URL that differs by its fragment alone would not load the page again.
	b.run("opening the page read-only", chromedp.Navigate("about:blank"), chromedp.Navigate(base+"/#token="+roToken),
		chromedp.WaitVisible(chromedp.CSS(`#ro-badge`)))
	b.wait("the read-only page", `document.querySelector('#ro-badge').hidden === false && document.querySelectorAll('tr.inst').length === 3 &&
		[...document.querySelectorAll('button[data-acts]')].every(x => x.disabled)`)
}

// reloadShown is JavaScript: whether the newest reload in the page is a
// reload of app that says by and old → new for each pair of pids.
func reloadShown(app, by string, pids ...[2]int) string {
	js := fmt.Sprintf(`(() => { const r = document.querySelector('#reloads li.reload'); if (!r || r.dataset.app !== %q) return false;
		const t = r.textContent; return t.includes('reload %s') && t.includes(%q)`, app, app, by)
	for _, p := range pids {
		js += fmt.Sprintf(` && t.includes('%d → %d')`, p[0], p[1])
	}
	return js + `; })()`
}

// A reload made by the CLI while the page is open shows in its Reloads,
// with what it did to each instance.
func TestWebDashboardShowsReloadsOfTheCLI(t *testing.T) {
	h := newHarness(t)
	h.ok("start", h.self, "--name", "alpha", "-i", "2", "--listen-timeout", "300ms", "--", "serve")
	before := h.await("two instances online", allStatus(2, tend.StatusOnline))
	b, _, _ := h.openDashboard()
	b.wait("the page live, with no reload yet", `document.querySelector('#conn').textContent === 'live' && !document.querySelector('#no-reloads').hidden`)

	h.ok("reload", "alpha")
	after := h.ls()
	b.wait("the CLI's reload in the page", reloadShown("alpha", "by a command",
		[2]int{before[0].PID, after[0].PID}, [2]int{before[1].PID, after[1].PID}))
	if n := b.count(`#reloads li.reload`); n != 1 {
		t.Fatalf("the page lists %d reloads, want 1", n)
	}
}

// count is how many elements of the page sel matches.
func (b *browser) count(sel string) int {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)))
	if err != nil {
		b.t.Fatalf("counting %s: %v", sel, err)
	}
	return n
}

// The connections chart charts what tend hands out (proxy mode here),
// and says so where tend does not see connections (fork mode).
func TestWebDashboardChartsConnections(t *testing.T) {
	h := newHarness(t)
	port := testport.Free(t)
	h.ok("start", h.self, "--name", "px", "--exec-mode", "proxy", "--port", strconv.Itoa(port), "--", "portserver")
	h.ok("start", h.self, "--name", "fk", "--listen-timeout", "200ms", "--", "serve")
	insts := h.await("both online", allStatus(2, tend.StatusOnline))
	b, _, _ := h.openDashboard()
	b.wait("px's row", rowIs(insts[0].ID, insts[0].PID, tend.StatusOnline))
	b.run("showing px", chromedp.Click(chromedp.CSS(`button[title="charts, logs and actions of px[0]"]`)))

	// A new connection per request, each handed out by tend's proxy, until
	// the page's chart has seen some.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	seen := `(() => { const n = document.querySelector('#conn-now').textContent;
		return getComputedStyle(document.querySelector('#conn-chart')).display !== 'none' && /peak [1-9]/.test(n) &&
			document.querySelector('#conn-chart polyline').getAttribute('points').length > 0; })()`
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if resp, err := client.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/"); err == nil {
				resp.Body.Close()
			}
		}
	}()
	b.wait("connections per second charted for px", seen)
	cancel()
	<-done
	if in := h.ls()[0]; in.Connections == 0 {
		t.Fatalf("tend counted no connection for px: %+v", in)
	}

	// Fork mode: a note, not a zero line.
	b.run("showing fk", chromedp.Click(chromedp.CSS(`button[title="charts, logs and actions of fk[0]"]`)))
	b.wait("the note that tend does not see fk's connections, and no chart", `getComputedStyle(document.querySelector('#conn-chart')).display === 'none' &&
		getComputedStyle(document.querySelector('#conn-unseen')).display !== 'none' && document.querySelector('#conn-unseen').textContent.includes('Not seen by tend in this mode')`)
}

// The page stays live through the daemon's restarts, tend update and a
// kill -9 (the keeper starts a new daemon): it says it is reconnecting,
// then shows the same instances, and its session still acts.
func TestWebDashboardThroughDaemonRestarts(t *testing.T) {
	h := newHarness(t)
	h.ok("start", h.self, "--name", "alpha", "-i", "2", "--listen-timeout", "300ms", "--", "serve")
	insts := h.await("two instances online", allStatus(2, tend.StatusOnline))
	b, _, token := h.openDashboard()
	b.wait("the page live", `document.querySelector('#conn').textContent === 'live'`)

	// What the next daemon needs is written down, private, without the token.
	state := filepath.Join(h.home, "web.json")
	fi, err := os.Lstat(state)
	if err != nil || fi.Mode() != 0o600 {
		t.Fatalf("%s: %v, mode %v; want a regular file, mode 0600", state, err, fi.Mode())
	}
	if b, _ := os.ReadFile(state); strings.Contains(string(b), token) || !regexp.MustCompile(`"sessions":\[\{"sha256":"[0-9a-f]{64}"`).Match(b) {
		t.Fatalf("the state file holds a token, or no session hash:\n%s", b)
	}

	for _, restart := range []struct {
		name string
		do   func()
	}{
		{"tend update", func() { h.ok("update") }},
		{"kill -9 of the daemon", func() { h.killDaemon() }},
	} {
		before := h.ping().PID
		restart.do()
		if h.ping().PID == before {
			t.Fatalf("%s: the daemon is still pid %d", restart.name, before)
		}
		b.wait("the page reconnecting after "+restart.name, `document.querySelector('#conn').textContent === 'reconnecting…'`)
		b.wait("the page live after "+restart.name, `document.querySelector('#conn').textContent === 'live'`)
		for _, in := range insts {
			b.wait(fmt.Sprintf("alpha[%d] with its pid %d after %s", in.Instance, in.PID, restart.name), rowIs(in.ID, in.PID, tend.StatusOnline))
		}
	}

	// The session of before the restarts still acts.
	b.confirm("restart alpha[0]")
	b.wait("the restart done", `document.querySelector('#msg').textContent.startsWith('restart alpha[0]: done')`)
	now := h.ls()[0]
	if now.PID == insts[0].PID {
		t.Fatalf("alpha[0] kept pid %d through a restart from the page", now.PID)
	}
	b.wait("alpha[0]'s new pid", rowIs(now.ID, now.PID, tend.StatusOnline))

	// tend web --stop: the dashboard does not come back.
	h.ok("web", "--stop")
	if _, err := os.Lstat(state); !os.IsNotExist(err) {
		t.Fatalf("%s is still there after tend web --stop: %v", state, err)
	}
}

// The page stays live with 1,000 real instances (10 apps × 100 of sleep,
// in fork mode): every row is there, and stats events keep coming. It
// logs each render's times, from internal/web's render timer, as a
// measurement (BENCHMARKS.md); it asserts only what the page shows.
//
//	go test ./internal/cli -run TestWebDashboard1000Real -v
func TestWebDashboard1000Real(t *testing.T) {
	timer, err := os.ReadFile(filepath.Join(repoRoot(t), "internal", "web", "testdata", "render-timer.js"))
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t)
	for a := range 10 {
		h.ok("start", "/bin/sleep", "--name", fmt.Sprintf("s%d", a), "-i", "100", "--", "3600")
	}
	insts := h.await("1,000 instances online", allStatus(1000, tend.StatusOnline))
	base, token := h.webURL("--addr", "127.0.0.1:"+strconv.Itoa(testport.Free(t)))
	b := newBrowser(t)
	b.run("adding the render timer", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: string(timer)})
		return err
	}))
	b.run("opening the page", chromedp.Navigate(base+"/#token="+token))
	b.wait("three stats events rendered", `window.tendRenders.filter(r => r.type === 'stats').length >= 3`)
	b.wait("the last instance's row", rowIs(insts[999].ID, insts[999].PID, tend.StatusOnline))
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	times, err := chromedp.Run(ctx, chromedp.Evaluate[[]struct {
		Type              string
		JS, Laid, Painted float64
		Bytes, Rows       int
	}](`window.tendRenders`))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range times {
		if r.Rows != 1000 {
			t.Errorf("%s: %d rows, want 1000", r.Type, r.Rows)
		}
		t.Logf("%-8s %7.1f ms handled, %7.1f ms laid out, %7.1f ms painted, %d bytes", r.Type, r.JS, r.Laid, r.Painted, r.Bytes)
	}
}

// openDashboard serves the dashboard of h's daemon on a free loopback
// port and opens it, signed in, in a new browser; it returns the browser
// and the dashboard's address and the token it spent.
func (h *harness) openDashboard() (b *browser, base, token string) {
	h.t.Helper()
	base, token = h.webURL("--addr", "127.0.0.1:"+strconv.Itoa(testport.Free(h.t)))
	b = newBrowser(h.t)
	b.run("opening the page", chromedp.Navigate(base+"/#token="+token))
	return b, base, token
}
