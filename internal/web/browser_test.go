package web

import (
	"context"
	"net/http"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"
)

// servePage serves the page of cfg (its API NotFound unless given) on a
// loopback port and returns the server and the URL that opens a session.
// Both end with tb.
func servePage(tb testing.TB, cfg Config) (*Server, string) {
	tb.Helper()
	ln, err := Listen("127.0.0.1:0", false)
	if err != nil {
		tb.Fatal(err)
	}
	if cfg.API == nil {
		cfg.API = http.NotFoundHandler()
	}
	srv := New(ln, false, cfg)
	go srv.Serve()
	tb.Cleanup(func() { srv.Close() })
	return srv, "http://" + ln.Addr().String() + "/#token=" + srv.Token(false)
}

// newBrowser starts a headless Chromium for tb, ended with it, and
// returns its context. Without Chromium the test fails: .ci/run installs
// it (apt-get install chromium).
func newBrowser(tb testing.TB) context.Context {
	tb.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		tb.Fatal("needs Chromium: apt-get install chromium, as .ci/run does")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(tb.TempDir()), chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	tb.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	return ctx
}
