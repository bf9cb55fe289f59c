package private

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A relative link's target is relative to the directory the link is in,
// after the trusted links before it: /t/cur -> real/sub, /t/real/sub/f ->
// ../target is /t/real/target, not /t/target.
func TestRelativeTargetAfterDirLink(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "real", "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "real", "target"), []byte("right"), 0o644)
	os.WriteFile(filepath.Join(dir, "target"), []byte("wrong"), 0o644)
	os.Symlink("real/sub", filepath.Join(dir, "cur"))
	os.Symlink("../target", filepath.Join(dir, "real", "sub", "f"))
	p := filepath.Join(dir, "cur", "f")
	want, _ := os.ReadFile(p)
	f, err := OpenFile(p, os.O_RDONLY, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 10)
	n, _ := f.Read(buf)
	if string(buf[:n]) != string(want) {
		t.Fatalf("OpenFile(%s) read %q; the kernel reads %q", p, buf[:n], want)
	}
}

// A user who can write the directory swaps its own link in for a trusted
// one, again and again: tend never follows it.
func TestSwapBetweenStatAndReadlink(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o777)
	os.WriteFile(filepath.Join(dir, "good"), []byte("good"), 0o644)
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("secret"), 0o600)
	link := filepath.Join(dir, "log")
	os.Symlink("good", link) // root's: trusted
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // the attacker, uid 65534
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			evil, aside := filepath.Join(dir, "e"), filepath.Join(dir, "g")
			os.Remove(evil)
			os.Symlink(secret, evil)
			os.Lchown(evil, 65534, 65534)
			// Root's own link, moved aside and back: all the attacker
			// needs is write permission on dir.
			os.Rename(link, aside)
			os.Rename(evil, link)
			os.Rename(aside, link)
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		f, err := OpenFile(link, os.O_RDONLY, nil)
		if err != nil {
			continue
		}
		b := make([]byte, 10)
		n, _ := f.Read(b)
		f.Close()
		if string(b[:n]) == "secret" {
			close(stop)
			<-done
			t.Fatalf("followed a link owned by uid 65534 to %s", secret)
		}
	}
	close(stop)
	<-done
}

// A regular file in the middle of a path is not a symlink.
func TestFileOnTheWay(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "file"), nil, 0o644)
	err := MkdirAll(filepath.Join(dir, "file", "sub"))
	if errors.Is(err, ErrSymlink) {
		t.Fatalf("MkdirAll through a regular file: %v (want ENOTDIR)", err)
	}
	_ = unix.ENOTDIR
}

func TestLoopAndUntrustedBehindTrusted(t *testing.T) {
	dir := t.TempDir()
	os.Symlink("b", filepath.Join(dir, "a"))
	os.Symlink("a", filepath.Join(dir, "b"))
	_, err := OpenFile(filepath.Join(dir, "a"), os.O_RDONLY, nil)
	t.Logf("loop (final): %v", err)
	err = MkdirAll(filepath.Join(dir, "a", "x"))
	t.Logf("loop (dir): %v", err)
	if os.Getuid() == 0 {
		u := filepath.Join(dir, "u")
		os.Mkdir(u, 0o777)
		os.WriteFile(filepath.Join(dir, "secret"), []byte("s"), 0o600)
		plant(t, "../secret", filepath.Join(u, "evil"))
		os.Symlink("u/evil", filepath.Join(dir, "t"))
		if f, err := OpenFile(filepath.Join(dir, "t"), os.O_RDONLY, nil); err == nil {
			f.Close()
			t.Fatal("followed an untrusted link behind a trusted one")
		}
		os.Symlink("u", filepath.Join(dir, "td"))
		if f, err := OpenFile(filepath.Join(dir, "td", "evil"), os.O_RDONLY, nil); err == nil {
			f.Close()
			t.Fatal("followed an untrusted link behind a trusted dir link")
		}
		// remove a trusted link as the last component: the link goes, not its target
		os.WriteFile(filepath.Join(dir, "tgt"), nil, 0o644)
		os.Symlink("tgt", filepath.Join(dir, "rm"))
		if err := Remove(filepath.Join(dir, "rm")); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, "tgt")); err != nil {
			t.Fatal("Remove removed the target")
		}
	}
}

func TestTrustedLinkToFIFO(t *testing.T) {
	dir := t.TempDir()
	unix.Mkfifo(filepath.Join(dir, "fifo"), 0o666)
	os.Symlink("fifo", filepath.Join(dir, "l"))
	for _, fl := range []int{os.O_RDONLY, os.O_WRONLY | os.O_APPEND | os.O_CREATE} {
		done := make(chan error, 1)
		go func() { _, err := OpenFile(filepath.Join(dir, "l"), fl, nil); done <- err }()
		select {
		case err := <-done:
			if !errors.Is(err, ErrNotRegular) {
				t.Fatalf("flag %x: %v", fl, err)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("flag %x: blocked on a FIFO", fl)
		}
	}
}
