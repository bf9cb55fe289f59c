package private

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// plant makes link, a symlink to target, as another user would: owned by
// nobody.
func plant(t *testing.T, target, link string) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root: the test plants symlinks as another user")
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, 65534, 65534); err != nil {
		t.Fatal(err)
	}
}

// Symlinks that nobody but root or tend's user could have made are
// followed, as are, when opening as a user, that user's own: /var/run,
// a deploy's "current" link.
func TestOpenFileFollowsTrustedLinks(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755)
	release := filepath.Join(dir, "releases", "7")
	os.MkdirAll(filepath.Join(release, "logs"), 0o755)
	os.Chmod(filepath.Join(dir, "releases"), 0o755)
	os.WriteFile(filepath.Join(release, ".env"), []byte("A=1\n"), 0o644)
	os.Symlink("releases/7", filepath.Join(dir, "current")) // root's
	f, err := OpenFile(filepath.Join(dir, "current", "logs", "out.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, nil)
	if err != nil {
		t.Fatalf("through root's link: %v", err)
	}
	f.Close()
	if _, err := os.Stat(filepath.Join(release, "logs", "out.log")); err != nil {
		t.Fatal(err)
	}
	if err := MkdirAll(filepath.Join(dir, "current", "logs", "a")); err != nil {
		t.Fatalf("MkdirAll through root's link: %v", err)
	}
	// nobody's own link, opened as nobody: followed; as root: refused.
	plant(t, filepath.Join(release, ".env"), filepath.Join(dir, "nobody.env"))
	nobody := &User{UID: 65534, GID: 65534}
	if f, err := OpenFile(filepath.Join(dir, "nobody.env"), os.O_RDONLY, nobody); err != nil {
		t.Errorf("nobody's own link, as nobody: %v", err)
	} else {
		f.Close()
	}
	if _, err := OpenFile(filepath.Join(dir, "nobody.env"), os.O_RDONLY, nil); !errors.Is(err, ErrSymlink) {
		t.Errorf("nobody's link, as root: %v, want ErrSymlink", err)
	}
	// A loop of trusted links ends.
	os.Symlink("loop2", filepath.Join(dir, "loop1"))
	os.Symlink("loop1", filepath.Join(dir, "loop2"))
	if _, err := OpenFile(filepath.Join(dir, "loop1", "x"), os.O_RDONLY, nil); err == nil {
		t.Error("opened through a loop")
	}
}

// TestOpenFileRefuses: no symlink in any component, nothing but a regular
// file, and a FIFO refused at once instead of blocking the caller; the
// walk used on kernels without openat2 refuses the same.
func TestOpenFileRefuses(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	os.Mkdir(real, 0o700)
	target := filepath.Join(dir, "target")
	os.WriteFile(target, []byte("secret"), 0o600)
	plant(t, target, filepath.Join(real, "link.log"))
	plant(t, real, filepath.Join(dir, "dirlink"))
	if err := unix.Mkfifo(filepath.Join(real, "fifo.log"), 0o600); err != nil {
		t.Fatal(err)
	}
	const write = os.O_WRONLY | os.O_CREATE | os.O_APPEND
	symlinks := []string{filepath.Join(real, "link.log"), filepath.Join(dir, "dirlink", "new.log")}
	for _, p := range symlinks {
		for how, open := range map[string]func(string, int) (int, error){
			"openat2": func(p string, f int) (int, error) { return openNoSymlinks(p, f, trusting(nil)) },
			"walk":    func(p string, f int) (int, error) { return openWalk(unix.AT_FDCWD, p, f, trusting(nil), 0) },
		} {
			t.Run(filepath.Base(p)+"/"+how, func(t *testing.T) {
				fd, err := open(p, write)
				if err == nil {
					unix.Close(fd)
				}
				if err = symlinkErr(err); !errors.Is(err, ErrSymlink) {
					t.Fatalf("opening %s: %v, want ErrSymlink", p, err)
				}
			})
		}
	}
	for _, c := range []struct {
		name, path string
		flag       int
	}{
		{"fifo to read", filepath.Join(real, "fifo.log"), os.O_RDWR},
		{"fifo to write, no reader", filepath.Join(real, "fifo.log"), os.O_WRONLY},
		{"directory", real, os.O_RDONLY},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := OpenFile(c.path, c.flag, nil); !errors.Is(err, ErrNotRegular) {
				t.Fatalf("opening %s: %v, want ErrNotRegular", c.path, err)
			}
		})
	}
	if b, _ := os.ReadFile(target); string(b) != "secret" {
		t.Errorf("target changed: %q", b)
	}
	if _, err := os.Lstat(filepath.Join(real, "new.log")); err == nil {
		t.Errorf("created a file through the symlinked directory")
	}
}

func TestOpenFileCreates(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a.log")
	f, err := OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("x\n")
	f.Close()
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != 2 {
		t.Fatalf("made %v, %v; want a 0600 file of 2 bytes", fi, err)
	}
}

func TestMkdirAllNoSymlinks(t *testing.T) {
	dir := t.TempDir()
	elsewhere := t.TempDir()
	plant(t, elsewhere, filepath.Join(dir, "logs"))
	if err := MkdirAll(filepath.Join(dir, "logs", "a", "b")); !errors.Is(err, ErrSymlink) {
		t.Fatalf("MkdirAll through a symlink: %v, want ErrSymlink", err)
	}
	if _, err := os.Lstat(filepath.Join(elsewhere, "a")); err == nil {
		t.Errorf("made a directory through the symlink")
	}
	made := filepath.Join(dir, "x", "y")
	if err := MkdirAll(made); err != nil {
		t.Fatal(err)
	}
	if err := MkdirAll(made); err != nil {
		t.Fatalf("again: %v", err)
	}
	if fi, err := os.Lstat(made); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Fatalf("made %v, %v; want a 0700 directory", fi, err)
	}
}

// TestOpenFileAs: with a User the kernel checks that user's permissions,
// not root's.
func TestOpenFileAs(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755) // t.TempDir's parent is 0700
	os.Chmod(dir, 0o755)
	secret := filepath.Join(dir, "secret.env")
	os.WriteFile(secret, []byte("A=1\n"), 0o600)
	public := filepath.Join(dir, "public.env")
	os.WriteFile(public, []byte("A=1\n"), 0o644)
	nobody := &User{UID: 65534, GID: 65534}
	if _, err := OpenFile(secret, os.O_RDONLY, nobody); !errors.Is(err, unix.EACCES) {
		t.Errorf("nobody opened root's 0600 file: %v", err)
	}
	f, err := OpenFile(public, os.O_RDONLY, nobody)
	if err != nil {
		t.Fatalf("nobody could not open a 0644 file: %v", err)
	}
	f.Close()
	// The daemon's own threads keep root's permissions.
	f, err = OpenFile(secret, os.O_RDONLY, nil)
	if err != nil {
		t.Fatalf("root could not open its file after: %v", err)
	}
	f.Close()
}

// TestRemoveRenameNoSymlinks: rotation's renames and removals go through
// no symlinked directory.
func TestRemoveRenameNoSymlinks(t *testing.T) {
	dir := t.TempDir()
	victims := t.TempDir()
	victim := filepath.Join(victims, "out.log")
	os.WriteFile(victim, []byte("root's"), 0o600)
	plant(t, victims, filepath.Join(dir, "logs"))
	via := filepath.Join(dir, "logs", "out.log")
	if err := Remove(via); !errors.Is(err, ErrSymlink) {
		t.Errorf("Remove through a symlinked directory: %v", err)
	}
	if err := Rename(via, via+".1", 0); !errors.Is(err, ErrSymlink) {
		t.Errorf("Rename through a symlinked directory: %v", err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "root's" {
		t.Errorf("%s changed: %q", victim, b)
	}
	real := filepath.Join(dir, "out.log")
	os.WriteFile(real, []byte("x"), 0o600)
	if err := Rename(real, real+".1", unix.RENAME_NOREPLACE); err != nil {
		t.Fatal(err)
	}
	if err := Remove(real + ".1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(real + ".1"); err == nil {
		t.Errorf("not removed")
	}
}
