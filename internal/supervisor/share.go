package supervisor

import (
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/activation"
	"github.com/tendhq/tend/internal/procexec"
	"github.com/tendhq/tend/internal/proxy"
	"github.com/tendhq/tend/internal/sockets"
)

// share gives an app's instances their connections on the app's port. The
// listening socket is bound once, when the app is created, and kept for
// the app's whole life: instances come and go, the socket stays, so a
// crash or restart never refuses a connection (it waits in the backlog).
type share struct {
	mode string
	ln   *net.TCPListener
	px   *proxy.Proxy

	mu       sync.Mutex
	backends map[int]proxy.Backend // proxy mode: ready instances by id
}

// DefaultHost is where socket and proxy modes bind when the user names no
// address: nothing listens beyond this machine unless asked.
const DefaultHost = "127.0.0.1"

// newShare binds the app's port for socket and proxy modes; other modes
// need nothing here.
func newShare(spec *tend.AppSpec, logf func(string, ...any)) (*share, error) {
	sh := &share{mode: spec.ExecMode, backends: map[int]proxy.Backend{}}
	if spec.ExecMode != tend.ModeSocket && spec.ExecMode != tend.ModeProxy {
		return sh, nil
	}
	host := spec.Host
	if host == "" {
		host = DefaultHost
	}
	ln, err := sockets.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(spec.Port)))
	if err != nil {
		return nil, err
	}
	sh.ln = ln
	if spec.ExecMode == tend.ModeProxy {
		sh.px = proxy.New(ln, spec.Sched, logf)
		go sh.px.Serve()
	}
	return sh, nil
}

// launch adapts an instance's command: socket mode runs it through the
// LISTEN_PID shim with the socket as fd 3; proxy mode gives it a private
// port in PORT and returns that address as probe: the instance joins the
// rotation (ready) once the address accepts. cleanup closes what the
// parent no longer needs once the process started.
func (sh *share) launch(c *procexec.Cmd, spec *tend.AppSpec, shim string) (cleanup func(), probe string, err error) {
	switch sh.mode {
	case tend.ModeSocket:
		f, err := sockets.DupFD(sh.ln)
		if err != nil {
			return nil, "", err
		}
		c.ExtraFiles = append([]*os.File{f}, c.ExtraFiles...)
		c.Args = append([]string{shim, activation.ShimArg, "--", c.Path}, c.Args[1:]...)
		c.Path = shim
		c.Env = append(activation.StripEnv(c.Env), append(activation.Env([]string{spec.Name}), "PORT="+strconv.Itoa(spec.Port))...)
		return func() { f.Close() }, "", nil
	case tend.ModeProxy:
		port, err := proxy.FreePort()
		if err != nil {
			return nil, "", err
		}
		c.Env = append(c.Env, "PORT="+strconv.Itoa(port))
		return func() {}, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
	}
	return func() {}, "", nil
}

// ready puts instance id, listening at addr, into rotation.
func (sh *share) ready(id int, addr string) {
	if sh.px == nil {
		return
	}
	sh.mu.Lock()
	sh.backends[id] = proxy.Backend{ID: id, Addr: addr}
	sh.mu.Unlock()
	sh.sync()
}

// probeEvery is how often a launching instance's port is tried: quick
// enough that a fast app joins within a few ms, cheap for a slow one.
const probeEvery = 10 * time.Millisecond

// probeTCP calls ready once addr accepts a connection, unless done closes
// first (the process died).
func probeTCP(addr string, done <-chan struct{}, ready func()) {
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			ready()
			return
		}
		select {
		case <-done:
			return
		case <-t.C:
		}
	}
}

// exited takes instance id out of rotation.
func (sh *share) exited(id int) {
	if sh.px == nil {
		return
	}
	sh.mu.Lock()
	delete(sh.backends, id)
	sh.mu.Unlock()
	sh.sync()
}

func (sh *share) sync() {
	sh.mu.Lock()
	bs := make([]proxy.Backend, 0, len(sh.backends))
	for _, b := range sh.backends {
		bs = append(bs, b)
	}
	sh.mu.Unlock()
	sh.px.SetBackends(bs)
}

// connections returns how many connections tend handed to each instance.
func (sh *share) connections() map[int]uint64 {
	out := map[int]uint64{}
	if sh.px != nil {
		for id, st := range sh.px.Stats() {
			out[id] = st.Handed
		}
	}
	return out
}

func (sh *share) close() {
	if sh.px != nil {
		sh.px.Close()
	}
	if sh.ln != nil {
		sh.ln.Close()
	}
}
