// Package client is the typed Go client of tend's control API: HTTP+JSON
// on the unix socket $TEND_HOME/tend.sock. The tend CLI and TUI use it, and
// so can any Go program that wants to drive tend.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"syscall"

	"github.com/tendhq/tend"
)

// ErrNoDaemon is returned when no daemon serves the home's socket.
var ErrNoDaemon = errors.New("tend: no daemon is running")

// Client talks to the daemon of one tend home. It is safe for concurrent use.
type Client struct {
	home string
	hc   *http.Client
	// AllowVersionMismatch lets calls through to a daemon of another
	// version (for ping and kill, which are how one gets rid of it).
	AllowVersionMismatch bool
}

// Default returns a client for the daemon of the default home
// ($TEND_HOME, or ~/.tend).
func Default() (*Client, error) {
	h, err := tend.DefaultHome()
	if err != nil {
		return nil, err
	}
	return New(string(h)), nil
}

// New returns a client for the daemon of home. It talks only to a daemon
// of the same user, or root (SO_PEERCRED).
func New(home string) *Client {
	sock := tend.Home(home).Socket()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, "unix", sock)
			if err != nil && (errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)) {
				return nil, ErrNoDaemon
			}
			if err == nil {
				if err = checkPeer(c); err != nil {
					c.Close()
					return nil, tend.Errorf(tend.EFAILED, "%v", err)
				}
			}
			return c, err
		},
		DisableCompression: true,
	}
	return &Client{home: home, hc: &http.Client{Transport: tr}}
}

// Home returns the tend home this client talks to.
func (c *Client) Home() string { return c.home }

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.send(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("reading the daemon's answer to %s: %w", path, err)
	}
	return nil
}

// send performs a request and turns error statuses into *tend.Error.
func (c *Client) send(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://tend"+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set(tend.VersionHeader, tend.Version)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if errors.Is(err, ErrNoDaemon) {
			return nil, ErrNoDaemon
		}
		return nil, fmt.Errorf("talking to the tend daemon: %w", err)
	}
	if v := resp.Header.Get(tend.VersionHeader); v != tend.Version && !c.AllowVersionMismatch {
		resp.Body.Close()
		return nil, tend.Errorf(tend.EFAILED, "the tend daemon runs version %s but this tend is %s: run `tend update` to hand it over to this tend (your apps keep running)", v, tend.Version)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		var body struct {
			tend.Error
			tend.ReloadResult
		}
		if json.NewDecoder(resp.Body).Decode(&body) != nil || body.Message == "" {
			return nil, tend.Errorf(tend.EINTERNAL, "the daemon answered %s", resp.Status)
		}
		if len(body.Reports) == 0 {
			return nil, &body.Error
		}
		return nil, &ResultError{Err: &body.Error, Result: body.ReloadResult}
	}
	return resp, nil
}

// Ping returns who the daemon is.
func (c *Client) Ping(ctx context.Context) (tend.PingInfo, error) {
	var p tend.PingInfo
	err := c.do(ctx, "GET", "/v1/ping", nil, &p)
	return p, err
}

// Instances lists every instance (tend ls).
func (c *Client) Instances(ctx context.Context) ([]tend.Instance, error) {
	return c.InstancesOf(ctx)
}

// InstancesOf lists the instances targets select (ids, app names,
// namespaces, "all"), every instance for none.
func (c *Client) InstancesOf(ctx context.Context, targets ...string) ([]tend.Instance, error) {
	var out []tend.Instance
	path := "/v1/instances"
	if len(targets) > 0 {
		path += "?" + url.Values{"target": targets}.Encode()
	}
	err := c.do(ctx, "GET", path, nil, &out)
	return out, err
}

// Start starts apps. The result lists every instance afterwards.
func (c *Client) Start(ctx context.Context, req tend.StartRequest) (tend.ActionResult, error) {
	var out tend.ActionResult
	err := c.do(ctx, "POST", "/v1/start", req, &out)
	return out, err
}

// Act runs action ("stop", "restart", "delete", "flush") on targets: ids,
// app names or "all".
func (c *Client) Act(ctx context.Context, action string, targets []string) (tend.ActionResult, error) {
	var out tend.ActionResult
	err := c.do(ctx, "POST", "/v1/"+action, tend.ActionRequest{Targets: targets}, &out)
	return out, err
}

// Describe returns the full picture of the apps target selects; env
// values are included only when withEnv is set.
func (c *Client) Describe(ctx context.Context, target string, withEnv bool) ([]tend.App, error) {
	q := url.Values{"target": {target}}
	if withEnv {
		q.Set("env", "1")
	}
	var out []tend.App
	err := c.do(ctx, "GET", "/v1/describe?"+q.Encode(), nil, &out)
	return out, err
}

// LogQuery selects log lines.
type LogQuery struct {
	Target string // "" for all
	Lines  int    // last lines per instance
	Stream string // "", "out" or "err"
	Follow bool   // keep streaming new lines until ctx ends
}

// Logs calls fn for each log line, in order, until the stream ends, fn
// returns an error, or ctx is done.
func (c *Client) Logs(ctx context.Context, q LogQuery, fn func(tend.LogLine) error) error {
	st, err := c.LogStream(ctx, q)
	if err != nil {
		return err
	}
	return each(ctx, st, fn)
}

// LogStream is Logs as a reader. It returns once the daemon has
// subscribed it: with Follow, every line written after that reaches it,
// also from instances that appear later in what it follows.
func (c *Client) LogStream(ctx context.Context, q LogQuery) (*Stream[tend.LogLine], error) {
	v := url.Values{"lines": {strconv.Itoa(q.Lines)}}
	if q.Target != "" {
		v.Set("target", q.Target)
	}
	if q.Stream != "" {
		v.Set("stream", q.Stream)
	}
	if q.Follow {
		v.Set("follow", "1")
	}
	return openStream[tend.LogLine](c, ctx, "/v1/logs?"+v.Encode(), "logs")
}

// Events calls fn with the current state of every instance target selects
// (an app name, an instance id; "" for all, apps started later included),
// then with each change until ctx ends or fn returns an error.
func (c *Client) Events(ctx context.Context, target string, fn func(tend.Event) error) error {
	st, err := c.EventStream(ctx, target)
	if err != nil {
		return err
	}
	return each(ctx, st, fn)
}

// EventStream is Events as a reader. It returns once the daemon has
// subscribed it: every change after that reaches it.
func (c *Client) EventStream(ctx context.Context, target string) (*Stream[tend.Event], error) {
	v := url.Values{}
	if target != "" {
		v.Set("target", target)
	}
	return openStream[tend.Event](c, ctx, "/v1/events?"+v.Encode(), "events")
}

// A Stream reads the JSON lines of a logs or events stream.
type Stream[T any] struct {
	body io.ReadCloser
	dec  *json.Decoder
	what string // "logs" or "events", for errors
}

func openStream[T any](c *Client, ctx context.Context, path, what string) (*Stream[T], error) {
	resp, err := c.send(ctx, "GET", path, nil)
	if err != nil {
		return nil, err
	}
	return &Stream[T]{body: resp.Body, dec: json.NewDecoder(bufio.NewReaderSize(resp.Body, 64<<10)), what: what}, nil
}

// Next returns the next item; io.EOF when the daemon ended the stream.
func (s *Stream[T]) Next() (T, error) {
	var v T
	if err := s.dec.Decode(&v); err != nil {
		if err == io.EOF {
			return v, err
		}
		return v, fmt.Errorf("reading %s: %w", s.what, err)
	}
	return v, nil
}

// Close ends the stream.
func (s *Stream[T]) Close() error { return s.body.Close() }

// each calls fn for every item of st, then closes it. It returns nil
// when the stream ends or ctx is done, and fn's error if it fails.
func each[T any](ctx context.Context, st *Stream[T], fn func(T) error) error {
	defer st.Close()
	for {
		v, err := st.Next()
		if err != nil {
			if err == io.EOF || ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := fn(v); err != nil {
			return err
		}
	}
}

// Signal sends signal ("SIGUSR2", "USR2", a number) to the processes of
// the instances targets select.
func (c *Client) Signal(ctx context.Context, targets []string, signal string) (tend.ActionResult, error) {
	var out tend.ActionResult
	err := c.do(ctx, "POST", "/v1/signal", tend.SignalRequest{Targets: targets, Signal: signal}, &out)
	return out, err
}

// Save writes the app list to $TEND_HOME/dump.json for Resurrect.
func (c *Client) Save(ctx context.Context, force bool) (tend.SaveResult, error) {
	var out tend.SaveResult
	err := c.do(ctx, "POST", "/v1/save", tend.SaveRequest{Force: force}, &out)
	return out, err
}

// Resurrect starts the saved apps that are not running.
func (c *Client) Resurrect(ctx context.Context) (tend.ResurrectResult, error) {
	var out tend.ResurrectResult
	err := c.do(ctx, "POST", "/v1/resurrect", struct{}{}, &out)
	return out, err
}

// Kill stops every app and then the daemon.
func (c *Client) Kill(ctx context.Context) (tend.ActionResult, error) {
	var out tend.ActionResult
	err := c.do(ctx, "POST", "/v1/kill", nil, &out)
	return out, err
}

// Update hands the daemon over to the tend binary exe, in place: the apps
// keep running. It returns once the handover has begun; the new daemon
// answers Ping once it has taken over.
func (c *Client) Update(ctx context.Context, exe string) (tend.UpdateResult, error) {
	var out tend.UpdateResult
	err := c.do(ctx, "POST", "/v1/update", tend.UpdateRequest{Exe: exe}, &out)
	return out, err
}

// Send delivers a JSON message to the instances targets select: an app
// name reaches every instance of the app.
func (c *Client) Send(ctx context.Context, targets []string, msg json.RawMessage) (tend.ActionResult, error) {
	var out tend.ActionResult
	err := c.do(ctx, "POST", "/v1/send", tend.SendRequest{Targets: targets, Message: msg}, &out)
	return out, err
}

// ResultError is a failed reload or scale: the error, and the reports of
// what happened to each instance until it stopped.
type ResultError struct {
	Err    *tend.Error
	Result tend.ReloadResult
}

func (e *ResultError) Error() string { return e.Err.Message }

// Unwrap gives the *tend.Error, so tend.ErrorCode and errors.As see it.
func (e *ResultError) Unwrap() error { return e.Err }

// Reload replaces the instances targets select, one at a time unless
// parallel is larger. apps, if any, are the apps' new settings. A failed
// reload returns a *ResultError carrying the reports.
func (c *Client) Reload(ctx context.Context, req tend.ReloadRequest) (tend.ReloadResult, error) {
	var out tend.ReloadResult
	err := c.do(ctx, "POST", "/v1/reload", req, &out)
	return out, err
}

// Scale sets the instance count of app: n, or the current count plus n
// when relative.
func (c *Client) Scale(ctx context.Context, app string, n int, relative bool) (tend.ReloadResult, error) {
	var out tend.ReloadResult
	err := c.do(ctx, "POST", "/v1/scale", tend.ScaleRequest{App: app, Count: n, Relative: relative}, &out)
	return out, err
}

// Reloads lists the daemon's most recent reloads, scales and
// replacements, oldest first: the last 20 at most.
func (c *Client) Reloads(ctx context.Context) ([]tend.ReloadRecord, error) {
	var out []tend.ReloadRecord
	err := c.do(ctx, "GET", "/v1/reloads", nil, &out)
	return out, err
}

// Web serves the dashboard (or keeps serving it) and returns a URL with
// a one-time token to open it, or stops it (req.Stop).
func (c *Client) Web(ctx context.Context, req tend.WebRequest) (tend.WebResult, error) {
	var res tend.WebResult
	err := c.do(ctx, "POST", "/v1/web", req, &res)
	return res, err
}
