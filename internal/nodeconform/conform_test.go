package nodeconform

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tendhq/tend/cluster"
	"github.com/tendhq/tend/internal/testport"
)

// tendBin is tend, built for this test run.
var tendBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tend-conform")
	if err != nil {
		panic(err)
	}
	tendBin = filepath.Join(dir, "tend")
	build := exec.Command("go", "build", "-o", tendBin, "github.com/tendhq/tend/cmd/tend")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building tend: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// resultWait bounds the wait for every worker's results: the cases take
// a few seconds at most (a hang counts as one after 15 s, and no case
// hangs under both primaries). Two hangs, or one case that waits twice
// (listen, then get, then close), outlast it: the failure then names the
// case each worker was running (progress).
const resultWait = 60 * time.Second

// TestConformance runs every case under Node's primary and under tend, in
// each scheduling policy, and fails on each case where they differ.
func TestConformance(t *testing.T) {
	held := listen(t) // a port another process holds
	cert, key := selfSigned(t)
	for _, pair := range []struct{ node, tend string }{{"rr", "rr"}, {"none", "shared"}} {
		for _, g := range []struct {
			name    string
			workers int
		}{{"each", 2}, {"alone", 1}} {
			t.Run(pair.tend+"/"+g.name, func(t *testing.T) {
				t.Parallel()
				env := []string{"GROUP=" + g.name, "HELD_PORT=" + strconv.Itoa(held), "CERT_FILE=" + cert, "KEY_FILE=" + key}
				want := runNode(t, pair.node, g.workers, env)
				for _, under := range []struct {
					name string
					run  func(*testing.T, string, int, []string) map[string]json.RawMessage
				}{{"tend (--sched " + pair.tend + ")", runTend}, {"the cluster package's primary (" + pair.tend + ")", runGo}} {
					got := under.run(t, pair.tend, g.workers, env)
					for _, name := range slices.Sorted(maps.Keys(want)) {
						if !bytes.Equal(got[name], want[name]) {
							t.Errorf("%s: under Node's primary (%s) %s, under %s %s", name, pair.node, want[name], under.name, got[name])
						}
					}
				}
			})
		}
	}
}

// runNode runs the cases under Node's own primary.
func runNode(t *testing.T, sched string, workers int, env []string) map[string]json.RawMessage {
	dir := t.TempDir()
	cmd := exec.Command("node", "testdata/primary.cjs")
	cmd.Env = append(os.Environ(), append(env, "SCHED="+sched, "WORKERS="+strconv.Itoa(workers), "RESULT_DIR="+dir,
		"FREE_PORT="+strconv.Itoa(testport.Free(t)), "PORT="+strconv.Itoa(testport.Free(t)))...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	}()
	return results(t, dir, workers, "Node's primary")
}

// runGo runs the cases under a primary of the Go cluster package, in this
// process: Node workers cannot tell it from Node's primary either.
func runGo(t *testing.T, sched string, workers int, env []string) map[string]json.RawMessage {
	dir := t.TempDir()
	p, err := cluster.NewPrimary(cluster.Settings{Exec: "node", Args: []string{"testdata/cases.cjs"},
		Sched:  map[string]cluster.Sched{"rr": cluster.RoundRobin, "shared": cluster.Shared}[sched],
		Env:    append(env, "RESULT_DIR="+dir, "FREE_PORT="+strconv.Itoa(testport.Free(t)), "PORT="+strconv.Itoa(testport.Free(t))),
		Stdout: os.Stderr, Stderr: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for range workers {
		if _, err := p.Fork(nil); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.After(resultWait)
	for online := 0; online < workers; {
		select {
		case ev := <-p.Events():
			if ev.Kind == cluster.Online {
				online++
				ev.Worker.Send(map[string]string{"hello": "worker"})
			}
		case <-deadline:
			t.Fatalf("%d of %d workers online within %v", online, workers, resultWait)
		}
	}
	return results(t, dir, workers, "the cluster package's primary")
}

// runTend runs the cases under tend, with the port bound up front as
// `tend start app.js -i N --port P` does.
func runTend(t *testing.T, sched string, workers int, env []string) map[string]json.RawMessage {
	dir := t.TempDir()
	run, home := tendIn(t, append(env, "RESULT_DIR="+dir, "FREE_PORT="+strconv.Itoa(testport.Free(t))))
	defer run("kill")
	run("start", casesScript(t), "--name", "conform", "-i", strconv.Itoa(workers), "--sched", sched, "--port", strconv.Itoa(testport.Free(t)))
	run("send", "conform", `{"hello":"worker"}`)
	r := results(t, dir, workers, "tend")
	if t.Failed() {
		log, _ := os.ReadFile(filepath.Join(home, "tend.log"))
		t.Logf("tend.log:\n%s", log)
	}
	return r
}

// tendIn returns a runner of tend commands with env, in a home of their
// own, and that home: a command that fails fails the test.
func tendIn(t *testing.T, env []string) (run func(args ...string) []byte, home string) {
	home = t.TempDir()
	tendEnv := append(os.Environ(), append(env, "TEND_HOME="+home)...)
	return func(args ...string) []byte {
		cmd := exec.Command(tendBin, args...)
		cmd.Env = tendEnv
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tend %v: %v\n%s%s", args, err, out, stderr.Bytes())
		}
		return out
	}, home
}

// casesScript is the absolute path of the worker script.
func casesScript(t *testing.T) string {
	script, err := filepath.Abs("testdata/cases.cjs")
	if err != nil {
		t.Fatal(err)
	}
	return script
}

// results waits for the result file of each of n workers; they must agree.
func results(t *testing.T, dir string, n int, under string) map[string]json.RawMessage {
	t.Helper()
	deadline := time.Now().Add(resultWait)
	var files []string
	for {
		files, _ = filepath.Glob(filepath.Join(dir, "*.json"))
		if len(files) >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("under %s, %d of %d workers wrote their results within %v%s", under, len(files), n, resultWait, progress(dir))
		}
		time.Sleep(50 * time.Millisecond) // a poll for files, bounded by the deadline
	}
	var first map[string]json.RawMessage
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("under %s, %s: %v", under, f, err)
		}
		for k, v := range m {
			m[k] = canonical(t, v)
		}
		if first == nil {
			first = m
			continue
		}
		for k, v := range m {
			if !bytes.Equal(v, first[k]) {
				t.Errorf("under %s, workers disagree on %s: %s and %s", under, k, first[k], v)
			}
		}
	}
	return first
}

// progress says, for each worker in dir that has not written its
// results, which case it runs and what the cases before it gave: with
// the cases' 15 s for a hang, a few hangs outlast resultWait, and this is
// what tells them apart.
func progress(dir string) string {
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(dir, "*.progress"))
	for _, f := range files {
		pid := strings.TrimSuffix(filepath.Base(f), ".progress")
		if _, err := os.Stat(filepath.Join(dir, pid+".json")); err == nil {
			continue
		}
		p, _ := os.ReadFile(f)
		fmt.Fprintf(&b, "\nworker %s: %s", pid, p)
	}
	return b.String()
}

// canonical re-encodes v with sorted keys.
func canonical(t *testing.T, v json.RawMessage) json.RawMessage {
	var x any
	if err := json.Unmarshal(v, &x); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(x)
	return b
}

// listen holds a loopback port for the test's life and returns it.
func listen(t *testing.T) int {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// selfSigned writes a certificate for 127.0.0.1 and its key, as PEM files.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
