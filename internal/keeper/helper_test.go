package keeper

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tendhq/tend/internal/procexec"
)

// The tests run a real keeper: this test binary re-executed in the role
// named by roleEnv. The keeper's daemons are this binary too, a small
// scripted daemon that takes one command per connection on ctl.sock in
// the test's directory.
const (
	roleEnv  = "KEEPER_TEST_ROLE"
	dirEnv   = "KEEPER_TEST_DIR"
	readyEnv = "KEEPER_TEST_READY_FD"
)

func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "":
		os.Exit(m.Run())
	case "keeper":
		dir := os.Getenv(dirEnv)
		env := append(withoutEnv(os.Environ(), roleEnv), roleEnv+"=daemon")
		err := Run(Options{Argv: []string{"daemon"}, RestartArgv: []string{"daemon"}, Env: env,
			ReadyEnv: readyEnv, ReadyFD: 3, LogPath: filepath.Join(dir, "log"), LockPath: filepath.Join(dir, "lock")})
		if err != nil {
			fmt.Fprintln(os.Stderr, "keeper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	case "daemon":
		fakeDaemon()
	case "sleeper": // prints its pid on fd 1, then sleeps
		fmt.Println(os.Getpid())
		time.Sleep(time.Hour)
	case "exit3":
		os.Exit(3)
	}
	os.Exit(2)
}

// invReport is the fake daemon's answer to "inv".
type invReport struct {
	Daemon int            `json:"daemon"`
	Procs  []invProc      `json:"procs"`
	Store  map[string]int `json:"store"` // name -> number of descriptors
	Pipes  map[string]string
}

type invProc struct {
	PID    int      `json:"pid"`
	Label  string   `json:"label"`
	Exited bool     `json:"exited"`
	Code   int      `json:"code"`
	Signal int      `json:"signal"`
	Held   []string `json:"held"`
}

// fakeDaemon connects to its keeper and obeys ctl.sock.
func fakeDaemon() {
	dir := os.Getenv(dirEnv)
	fd, _ := strconv.Atoi(os.Getenv(FDEnv))
	c, inv, err := Connect(fd)
	if err != nil {
		fmt.Fprintln(os.Stderr, "daemon:", err)
		os.Exit(1)
	}
	procs := map[int]*Process{}
	report := invReport{Daemon: os.Getpid(), Store: map[string]int{}, Pipes: map[string]string{}}
	for _, p := range inv.Procs {
		procs[p.PID()] = p
		ip := invProc{PID: p.PID(), Label: p.Label()}
		select {
		case <-p.Done():
			ip.Exited, ip.Code, ip.Signal = true, p.Status().Code, int(p.Status().Signal)
		default:
		}
		for name, f := range p.Held {
			ip.Held = append(ip.Held, name)
			f.Close()
		}
		report.Procs = append(report.Procs, ip)
	}
	for _, name := range inv.Names {
		report.Store[name] = len(inv.Files[name])
		if f := inv.Files[name][0]; strings.HasPrefix(name, "pipe") {
			f.SetReadDeadline(time.Now().Add(time.Second))
			buf := make([]byte, 100)
			n, _ := f.Read(buf)
			report.Pipes[name] = string(buf[:n])
		}
	}
	sock := filepath.Join(dir, "ctl.sock")
	os.Remove(sock)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		os.Exit(1)
	}
	if n, err := strconv.Atoi(os.Getenv(readyEnv)); err == nil {
		unix.Write(n, []byte("ok\n"))
		unix.Close(n)
	}
	self, _ := os.Executable()
	for {
		conn, err := ln.Accept()
		if err != nil {
			os.Exit(1)
		}
		line, _ := bufio.NewReader(conn).ReadString('\n')
		f := strings.Fields(line)
		answer := func(v any) { json.NewEncoder(conn).Encode(v); conn.Close() }
		switch f[0] {
		case "inv":
			answer(report)
		case "spawn": // spawn <label> <role>: a child with a held pipe
			var p [2]int
			unix.Pipe2(p[:], unix.O_CLOEXEC)
			out := os.NewFile(uintptr(p[1]), "out")
			env := append(withoutEnv(os.Environ(), roleEnv), roleEnv+"="+f[2])
			pr, err := c.Spawn(procexec.Cmd{Path: self, Args: []string{self}, Env: env, Dir: "/", Stdout: out,
				Label: f[1], Hold: []procexec.Held{{Name: "out", FD: p[0]}}})
			out.Close()
			if err != nil {
				answer(err.Error())
				continue
			}
			procs[pr.PID()] = pr
			answer(pr.PID())
		case "put": // put <name>: a pipe holding "hello <name>", its read end stored
			var p [2]int
			unix.Pipe2(p[:], unix.O_CLOEXEC)
			unix.Write(p[1], []byte("hello "+f[1]))
			unix.Close(p[1])
			answer(fmt.Sprint(c.Put(f[1], p[0])))
			unix.Close(p[0])
		case "drop":
			answer(fmt.Sprint(c.Drop(f[1])))
		case "wait": // wait <pid>: its exit
			pid, _ := strconv.Atoi(f[1])
			st := procs[pid].Status()
			answer(invProc{PID: pid, Exited: true, Code: st.Code, Signal: int(st.Signal)})
		case "release":
			pid, _ := strconv.Atoi(f[1])
			procs[pid].Release()
			answer("ok")
		case "quit":
			c.Quit()
			answer("ok")
			os.Exit(0)
		case "upgrade":
			c.Upgrade(self)
			answer("ok")
			os.Exit(0)
		case "die":
			answer("ok")
			os.Exit(1)
		}
	}
}

// keeperProc is a keeper started for a test.
type keeperProc struct {
	t       *testing.T
	dir     string
	cmd     *exec.Cmd
	spawned []int // app pids, for the cleanup
}

func startKeeper(t *testing.T) *keeperProc {
	t.Helper()
	dir, err := os.MkdirTemp("", "keeper")
	if err != nil {
		t.Fatal(err)
	}
	r, w, _ := os.Pipe()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), roleEnv+"=keeper", dirEnv+"="+dir)
	cmd.ExtraFiles = []*os.File{w}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	line, _ := bufio.NewReader(r).ReadString('\n')
	r.Close()
	if strings.TrimSpace(line) != "ok" {
		t.Fatalf("keeper did not start: %q", line)
	}
	k := &keeperProc{t: t, dir: dir, cmd: cmd}
	t.Cleanup(func() {
		// The keeper and its daemons share its process group; the apps
		// have groups of their own.
		syscall.Kill(-k.cmd.Process.Pid, syscall.SIGKILL)
		for _, pid := range k.spawned {
			syscall.Kill(-pid, syscall.SIGKILL)
		}
		k.cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "log"))
			t.Logf("keeper log:\n%s", b)
		}
		os.RemoveAll(dir)
	})
	return k
}

// do sends one command to the current daemon, retrying while a new one
// is starting, and decodes its answer into out.
func (k *keeperProc) do(out any, cmd ...string) {
	k.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("unix", filepath.Join(k.dir, "ctl.sock"))
		if err == nil {
			fmt.Fprintln(c, strings.Join(cmd, " "))
			err = json.NewDecoder(c).Decode(out)
			c.Close()
			if err == nil {
				if pid, ok := out.(*int); ok && cmd[0] == "spawn" {
					k.spawned = append(k.spawned, *pid)
				}
				return
			}
		}
		if time.Now().After(deadline) {
			k.t.Fatalf("%v: %v", cmd, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// inv returns the inventory of a daemon other than not (0: any).
func (k *keeperProc) inv(not int) invReport {
	k.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var r invReport
		k.do(&r, "inv")
		if r.Daemon != not {
			return r
		}
		if time.Now().After(deadline) {
			k.t.Fatalf("daemon %d is still the one answering", not)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
