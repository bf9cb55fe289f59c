package supervisor

import (
	"cmp"
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/activation"
	"github.com/tendhq/tend/internal/logger"
	"github.com/tendhq/tend/internal/nodecluster"
	"github.com/tendhq/tend/internal/nodeipc"
	"github.com/tendhq/tend/internal/procexec"
	"github.com/tendhq/tend/internal/proxy"
	"github.com/tendhq/tend/internal/sockets"
)

// share gives an app's instances their connections on the app's port. The
// listening socket is bound once, when the app is created, and kept for
// the app's whole life: instances come and go, the socket stays, so a
// crash or restart never refuses a connection (it waits in the backlog).
type share struct {
	mode  tend.Mode
	sched tend.Sched
	ln    *net.TCPListener // socket and proxy modes; with reuseport it only holds the port
	px    *proxy.Proxy

	// Node apps: tend speaks the IPC channel, and in cluster mode is the
	// cluster primary. Worker ids are run ids (App.nextWID).
	node    bool
	primary *nodecluster.Primary
	events  chan nodecluster.Event
	pre     *net.TCPListener // --port bound up front, handed to the first matching listen()
	preHost string           // the --host pre is bound on
	port    int              // cluster mode: --port, which stays bound for the app's life
	dir     string           // the app's cwd, where a worker's relative unix socket path is

	store Store // keeps copies of the sockets (tend's keeper), or nil

	mu       sync.Mutex
	backends map[int]proxy.Backend // proxy mode: ready instances by id
}

// DefaultHost is where socket and proxy modes bind when the user names no
// address: nothing listens beyond this machine unless asked.
const DefaultHost = "127.0.0.1"

// newShare binds the app's port for socket and proxy modes; other modes
// need nothing here.
func newShare(spec *tend.AppSpec, res Resolved, opt Options) (*share, error) {
	sh := &share{mode: res.Mode, sched: res.Sched, backends: map[int]proxy.Backend{}, node: res.Node, store: opt.Store, dir: spec.Cwd}
	switch res.Mode {
	case tend.ModeCluster:
		if spec.Port > 0 {
			// Bind now, so a port in use fails the start with a clear
			// error instead of crash-looping every worker.
			listen := sockets.Listen
			if res.Sched == tend.SchedReusePort {
				listen = groupListen // the first worker's socket joins it
			}
			ln, err := listen(sockets.HostNetwork(spec.Host), net.JoinHostPort(spec.Host, strconv.Itoa(spec.Port)))
			if err != nil {
				return nil, err
			}
			sh.pre, sh.preHost, sh.port = ln, spec.Host, spec.Port
		}
	case tend.ModeSocket, tend.ModeProxy:
		ln, err := bindPort(spec, res.Sched)
		if err != nil {
			return nil, err
		}
		sh.ln = ln
	}
	sh.start(res, spec.EjectSlowAfter.D(), opt.Logf)
	return sh, nil
}

// bindPort binds the port of a socket or proxy mode app, on loopback
// unless the app names another host. With reuseport the socket only holds
// the port (sockets.Unlisten): each instance gets a socket of its own in
// its SO_REUSEPORT group (groupSocket).
func bindPort(spec *tend.AppSpec, sched tend.Sched) (*net.TCPListener, error) {
	host := cmp.Or(spec.Host, DefaultHost)
	addr := net.JoinHostPort(host, strconv.Itoa(spec.Port))
	if sched != tend.SchedReusePort {
		return sockets.Listen(sockets.HostNetwork(host), addr)
	}
	ln, err := groupListen(sockets.HostNetwork(host), addr)
	if err != nil {
		return nil, err
	}
	if err := sockets.Unlisten(ln); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// groupListen binds a socket of the SO_REUSEPORT group of --port.
func groupListen(network, addr string) (*net.TCPListener, error) {
	return sockets.ListenGroup(network, addr, "choose another --port")
}

// groupSocket binds a socket of its own for a socket mode instance, in the
// SO_REUSEPORT group of sh.ln, and returns a copy to pass to it.
func (sh *share) groupSocket() (*os.File, error) {
	a := sh.ln.Addr().(*net.TCPAddr)
	network := "tcp6"
	if a.IP.To4() != nil {
		network = "tcp4"
	}
	ln, err := groupListen(network, a.String())
	if err != nil {
		return nil, err
	}
	defer ln.Close() // the instance's copy keeps it open, and it closes with the instance
	return sockets.DupFD(ln)
}

// start starts what serves the app's connections: the proxy, and the
// primary that speaks every instance's message channel.
func (sh *share) start(res Resolved, slowAfter time.Duration, logf logger.Logf) {
	if res.Mode == tend.ModeProxy {
		sh.px = proxy.New(sh.ln, res.Sched, logf)
		sh.px.SlowAfter = slowAfter
		go sh.px.Serve()
	}
	sched := tend.SchedRoundRobin
	if res.Mode == tend.ModeCluster && res.Sched != "" {
		sched = res.Sched
	}
	// Every app gets a message channel; for Node cluster workers it also
	// carries the cluster protocol. Events are forwarded to the app's
	// actor; the buffer absorbs bursts (a message flood) while it is busy.
	sh.events = make(chan nodecluster.Event, 256)
	// Workers of another user (res.Cred) get no socket from the
	// primary, often root, that their user could not bind.
	sh.primary = nodecluster.New(nodecluster.Options{Sched: string(sched), Listen: sh.listen, Logf: logf, Bound: sh.bound, KeepPort: sh.port,
		Unprivileged: res.Cred != nil})
}

// Names of the app's sockets in the Store.
const (
	storePort   = "port"    // socket and proxy modes: the shared port
	storePre    = "pre"     // cluster mode: --port, bound before any worker asked
	storeListen = "listen/" // cluster mode: + Node's key of a worker's server
)

// keep puts copies of the app's sockets in the store.
func (sh *share) keep() {
	if sh.store == nil {
		return
	}
	sh.put(storePort, sh.ln)
	sh.mu.Lock()
	pre := sh.pre
	sh.mu.Unlock()
	sh.put(storePre, pre)
}

func (sh *share) put(name string, ln syscall.Conn) {
	if sh.store == nil || ln == nil {
		return
	}
	if f, err := sockets.DupFD(ln); err == nil {
		sh.store.Put(name, int(f.Fd()))
		f.Close()
	}
}

// bound keeps a worker's new server socket, or lets go of a closed one.
func (sh *share) bound(key string, ln nodecluster.Socket) {
	if ln == nil {
		if sh.store != nil {
			sh.store.Drop(storeListen + key)
		}
		return
	}
	sh.put(storeListen+key, ln)
}

// ChannelFDEnv names the fd of the JSON-lines message channel given to
// apps that are not Node (Node apps find theirs in NODE_CHANNEL_FD).
const ChannelFDEnv = "TEND_CHANNEL_FD"

// launch adapts an instance's command: socket mode runs it through the
// LISTEN_PID shim with the socket as fd 3; proxy mode gives it a private
// port in PORT and returns that address as probe: the instance joins the
// rotation (ready) once the address accepts. Every instance gets a message
// channel after those fds. after is called once Start returned, with
// whether the process runs. id is the process's run id, slot its
// instance number (sticky scheduling keeps a client on a slot).
// With keep, tend's end of the channel is also held by the keeper
// (c.Hold, heldChan).
func (sh *share) launch(c *procexec.Cmd, spec *tend.AppSpec, shim string, id, slot int, keep bool) (after func(started bool), probe string, err error) {
	var fds []*os.File
	if sh.node {
		c.Env = nodeipc.StripEnv(c.Env)
	}
	switch sh.mode {
	case tend.ModeSocket:
		dup := func() (*os.File, error) { return sockets.DupFD(sh.ln) }
		if sh.sched == tend.SchedReusePort {
			dup = sh.groupSocket
		}
		f, err := dup()
		if err != nil {
			return nil, "", err
		}
		fds = append(fds, f)
		c.Args = append([]string{shim, activation.ShimArg, "--", c.Path}, c.Args[1:]...)
		c.Path = shim
		c.Env = append(activation.StripEnv(c.Env), append(activation.Env([]string{spec.Name}), "PORT="+strconv.Itoa(spec.Port))...)
	case tend.ModeCluster:
		c.Env = append(c.Env, "NODE_UNIQUE_ID="+strconv.Itoa(id))
		if spec.Port > 0 {
			c.Env = append(c.Env, "PORT="+strconv.Itoa(spec.Port))
		}
	case tend.ModeProxy:
		port, err := sockets.FreePort()
		if err != nil {
			return nil, "", err
		}
		c.Env = append(c.Env, "PORT="+strconv.Itoa(port))
		probe = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	}
	closeAll := func() {
		for _, f := range fds {
			f.Close()
		}
	}
	parent, child, err := nodeipc.NewPair()
	if err != nil {
		closeAll()
		return nil, "", err
	}
	fd := 3 + len(fds)
	fds = append(fds, child)
	c.ExtraFiles = append(slices.Clone(fds), c.ExtraFiles...)
	if keep {
		if dup, err := sockets.DupFD(parent); err == nil {
			c.Hold = append(c.Hold, procexec.Held{Name: heldChan, FD: int(dup.Fd())})
			fds = append(fds, dup) // closed with the child's, once started
		}
	}
	if sh.node {
		c.Env = append(c.Env, nodeipc.Env(fd)...)
	} else {
		c.Env = append(c.Env, ChannelFDEnv+"="+strconv.Itoa(fd))
	}
	return func(started bool) {
		closeAll()
		if started {
			sh.primary.SetSlot(id, slot)
			sh.primary.AddWorker(id, parent, sh.events)
		} else {
			parent.Close()
		}
	}, probe, nil
}

// listen binds a socket for a Node worker's listen(). The first request for
// the pre-bound --port on all addresses gets that socket. A unix socket's
// relative path is the app's cwd's, as it is the primary's under Node.
func (sh *share) listen(network, address string, port int, reuseAddr bool) (nodecluster.Socket, error) {
	switch network {
	case nodecluster.NetUnix:
		if !filepath.IsAbs(address) && !strings.HasPrefix(address, "\x00") {
			address = filepath.Join(sh.dir, address)
		}
		return nodecluster.DefaultListen(network, address, port, false)
	case nodecluster.NetUDP, nodecluster.NetUDP4, nodecluster.NetUDP6:
		return nodecluster.DefaultListen(network, address, port, reuseAddr)
	}
	if port > 0 && port == sh.port && address == "" {
		// A listen() without an address on --port listens where --host
		// says, also after the socket bound up front was given away.
		address = sh.preHost
	}
	sh.mu.Lock()
	pre := sh.pre
	if pre != nil && port == pre.Addr().(*net.TCPAddr).Port {
		sh.pre = nil
	}
	sh.mu.Unlock()
	if pre != nil && port == pre.Addr().(*net.TCPAddr).Port {
		if sh.store != nil {
			sh.store.Drop(storePre) // kept from now on under its key, or closed
		}
		if fitsPre(sh.preHost, network, address) {
			return pre, nil
		}
		pre.Close() // the app asked for another address: bind that instead
	}
	// The app chose this port itself (its listen(), from its PORT or its
	// code): --port is no fix.
	listen := sockets.ListenFor
	if sh.sched == tend.SchedReusePort {
		listen = sockets.ListenGroup
	}
	return listen(network, net.JoinHostPort(address, strconv.Itoa(port)),
		"have the app listen on another port, or give it --port to share one")
}

// fitsPre reports whether a worker's listen() on network and address is
// what the socket bound up front on host serves: a listen() without an
// address always is (--host is where the app listens then); on every
// address of both families, so is "::" unless ipv6Only ("tcp6"). An
// app that asks for 0.0.0.0 gets an IPv4 socket, as under Node.
func fitsPre(host, network, address string) bool {
	switch {
	case address == "":
		return true
	case host == "" || host == "::": // pre takes both families
		return address == "::" && network == "tcp"
	}
	return address == host
}

// ready puts process id of slot, listening at addr, into rotation.
func (sh *share) ready(id, slot int, addr string) {
	if sh.px == nil {
		return
	}
	sh.mu.Lock()
	sh.backends[id] = proxy.Backend{ID: id, Slot: slot, Addr: addr}
	sh.mu.Unlock()
	sh.sync()
}

// drain takes process wid out of rotation: it gets no new connection.
func (sh *share) drain(wid int) {
	sh.primary.Drain(wid)
	if sh.px != nil {
		sh.px.Drain(wid)
	}
}

// undrain puts process wid back in rotation after drain.
func (sh *share) undrain(wid int) {
	sh.primary.Undrain(wid)
	if sh.px != nil {
		sh.px.Undrain(wid)
	}
}

// left reports whether Node worker id disconnected by itself.
func (sh *share) left(id int) bool { return sh.primary != nil && sh.primary.Left(id) }

// exited takes instance id out of rotation.
func (sh *share) exited(id int) {
	if sh.primary != nil {
		sh.primary.RemoveWorker(id)
	}
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
	if sh.primary != nil {
		for _, l := range sh.primary.Listeners() {
			for id, n := range l.Handed {
				out[id] += n
			}
		}
	}
	if sh.px != nil {
		for id, st := range sh.px.Stats() {
			out[id] = st.Handed
		}
	}
	return out
}

func (sh *share) close() {
	if sh.store != nil {
		for _, l := range sh.primary.Listeners() {
			sh.store.Drop(storeListen + l.Key)
		}
		sh.store.Drop(storePort)
		sh.store.Drop(storePre)
	}
	if sh.primary != nil {
		sh.primary.Close()
	}
	sh.mu.Lock()
	if sh.pre != nil {
		sh.pre.Close()
	}
	sh.mu.Unlock()
	if sh.px != nil {
		sh.px.Close()
	}
	if sh.ln != nil {
		sh.ln.Close()
	}
}

// quiesce stops accepting for the app and waits, until ctx ends, for the
// connections tend holds to reach their instances.
func (sh *share) quiesce(ctx context.Context) {
	sh.primary.Quiesce(ctx)
	if sh.px != nil {
		sh.px.Shutdown(ctx)
	}
}
