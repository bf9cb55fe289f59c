package docker

import (
	"archive/tar"
	"bufio"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// nodeUID is the uid of the image's user node, as in node:20-slim.
const nodeUID = 1000

// rootfs is a root filesystem to be written as a tar: files from this
// machine or from memory, under the paths the image holds them at.
type rootfs struct {
	files map[string]rootfsFile // by path in the image, without a leading /
}

type rootfsFile struct {
	src  string // a file of this machine, followed if a link; or
	data []byte // the content itself
	mode int64
	uid  int
}

func (r *rootfs) copy(dst, src string, mode int64) {
	r.files[dst] = rootfsFile{src: src, mode: mode}
}

func (r *rootfs) write(dst, data string) {
	r.files[dst] = rootfsFile{data: []byte(data), mode: 0o644}
}

// exampleRootfs is what Dockerfile's last stage holds, made from this
// machine: tend built static (CGO_ENABLED=0) into dir, this machine's node
// with the libraries ldd names, the Node example and tend.yaml in /app,
// the user node, and slow.js, the test's own app.
func exampleRootfs(t *testing.T, dir string) *rootfs {
	t.Helper()
	r := &rootfs{files: map[string]rootfsFile{}}
	tendBin := filepath.Join(dir, "tend")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", tendBin, "github.com/tendhq/tend/cmd/tend")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	began := time.Now()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building tend: %v\n%s", err, out)
	}
	t.Logf("built tend in %s", time.Since(began).Round(time.Millisecond))
	r.copy("usr/local/bin/tend", tendBin, 0o755)

	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed: %v", err)
	}
	r.copy("usr/local/bin/node", node, 0o755)
	out, err := exec.Command("ldd", node).Output()
	if err != nil {
		t.Fatalf("ldd %s: %v", node, err)
	}
	for line := range strings.Lines(string(out)) {
		for _, f := range strings.Fields(line) {
			if strings.HasPrefix(f, "/") {
				r.copy(strings.TrimPrefix(f, "/"), f, 0o755)
			}
		}
	}

	for _, f := range []string{"index.js", "content.txt"} {
		r.copy("app/"+f, filepath.Join("..", "node", f), 0o644)
	}
	r.copy("app/tend.yaml", "tend.yaml", 0o644)
	r.copy("app/slow.js", filepath.Join("testdata", "slow.js"), 0o644)
	r.write("etc/passwd", fmt.Sprintf("root:x:0:0::/root:/bin/sh\nnode:x:%d:%d::/home/node:/bin/sh\n", nodeUID, nodeUID))
	r.write("etc/group", fmt.Sprintf("root:x:0:\nnode:x:%d:\n", nodeUID))
	return r
}

// writeTar writes r as a tar, with every parent directory: /tmp open to
// all as usual, /home/node the user's own, the others root's.
func (r *rootfs) writeTar(w io.Writer) error {
	tw := tar.NewWriter(w)
	dirs := map[string]bool{"tmp": true, "home/node": true, "root": true}
	for name := range r.files {
		for d := path.Dir(name); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	for _, d := range slices.Sorted(maps.Keys(dirs)) {
		h := &tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: time.Unix(0, 0)}
		switch d {
		case "tmp":
			h.Mode = 0o1777
		case "home/node":
			h.Uid, h.Gid = nodeUID, nodeUID
		case "root":
			h.Mode = 0o700
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
	}
	for name, f := range r.files {
		if err := writeFile(tw, name, f); err != nil {
			return err
		}
	}
	return tw.Close()
}

func writeFile(tw *tar.Writer, name string, f rootfsFile) error {
	h := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: f.mode, Uid: f.uid, Gid: f.uid, ModTime: time.Unix(0, 0)}
	if f.src == "" {
		h.Size = int64(len(f.data))
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(f.data)
		return err
	}
	src, err := os.Open(f.src)
	if err != nil {
		return err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return err
	}
	h.Size = st.Size()
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	_, err = io.Copy(tw, bufio.NewReader(src))
	return err
}

// dockerfileChanges are the instructions of Dockerfile's last stage that
// set how the image runs (WORKDIR, USER, ENV, EXPOSE, STOPSIGNAL, CMD), as
// podman import --change takes them, so that the test runs the image as
// the Dockerfile describes it.
func dockerfileChanges(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var changes []string
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		word, _, _ := strings.Cut(line, " ")
		switch strings.ToUpper(word) {
		case "FROM":
			changes = nil
		case "WORKDIR", "USER", "ENV", "EXPOSE", "STOPSIGNAL", "CMD":
			changes = append(changes, line)
		}
	}
	for _, want := range []string{"WORKDIR", "USER", "CMD"} {
		if !slices.ContainsFunc(changes, func(c string) bool { return strings.HasPrefix(c, want+" ") }) {
			t.Fatalf("no %s in the Dockerfile's last stage: %q", want, changes)
		}
	}
	return changes
}
