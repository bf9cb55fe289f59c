// Package private keeps files that must be private to tend's user: the
// tend home, its directories, and the files tend writes and reads there.
//
// A tend home is often a shared path (/tmp/app, /srv/...) and root runs
// tend, so everything here assumes another user may have been there
// first. Like ssh with ~/.ssh, tend uses a directory only if it is the
// user's own and nobody else can write in it: then nobody else can have
// planted a symlink or a file in it. And every file is opened without
// following a symlink at its last component all the same, and read only
// if it is the user's own.
//
// Where tend must use paths in directories others can write (an app's
// log files, its env_file), OpenFile and MkdirAll follow no symlink in any
// component and open only regular files, optionally with the
// permissions of the app's user.
package private

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrNotPrivate is wrapped by the errors of a path tend refuses to use.
var ErrNotPrivate = errors.New("not private to this user")

// Dir makes dir (and missing parents) with mode 0700, or checks the one
// that is there: a real directory, not a symlink, owned by this user and
// writable by nobody else, under directories nobody else can rename it
// in (see ancestors). A directory that is ours but readable by others is
// made 0700.
func Dir(dir string) error {
	if err := ancestors(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if err := check(dir, fi); err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory: %w", dir, ErrNotPrivate)
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("making %s private: %w", dir, err)
		}
	}
	return nil
}

// ancestors checks the directories above dir, as written and as they
// resolve: each must belong to this user or root, and if others can write
// in it, it must be sticky (/tmp: there only an entry's owner may rename
// it). Otherwise another user could move dir aside and put a symlink in
// its place while tend runs, and tend, as root, would write through it.
// ssh checks the directories above ~/.ssh the same way.
func ancestors(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := walkUp(filepath.Dir(abs)); err != nil {
		return err
	}
	// A symlink above dir is safe where it lies; what it points to is
	// checked as it resolves.
	existing := filepath.Dir(abs)
	for {
		if _, err := os.Lstat(existing); err == nil || existing == "/" {
			break
		}
		existing = filepath.Dir(existing)
	}
	real, err := filepath.EvalSymlinks(existing)
	if err != nil || real == existing {
		return nil
	}
	return walkUp(real)
}

// walkUp checks dir and every directory above it, as ancestors says.
func walkUp(dir string) error {
	for {
		fi, err := os.Lstat(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// made later, by this user
		case err != nil:
			return err
		default:
			if err := trusted(dir, fi); err != nil {
				return err
			}
		}
		if dir == "/" || dir == "." {
			return nil
		}
		dir = filepath.Dir(dir)
	}
}

func trusted(dir string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if st.Uid != 0 && int(st.Uid) != os.Getuid() {
		return fmt.Errorf("%s belongs to uid %d: another user could swap what is in it for a symlink; choose a TEND_HOME under directories of yours or root's (%w)",
			dir, st.Uid, ErrNotPrivate)
	}
	if fi.IsDir() && fi.Mode().Perm()&0o022 != 0 && fi.Mode()&fs.ModeSticky == 0 {
		return fmt.Errorf("%s is writable by other users (mode %04o): they could swap what is in it for a symlink; chmod go-w it, or choose another TEND_HOME (%w)",
			dir, fi.Mode().Perm(), ErrNotPrivate)
	}
	return nil
}

// check refuses what another user owns, what others can write, and
// symlinks.
func check(path string, fi fs.FileInfo) error {
	if fi.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("%s is a symlink: give tend the real path (%w)", path, ErrNotPrivate)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if ok && int(st.Uid) != os.Getuid() {
		return fmt.Errorf("%s belongs to uid %d, not to you (uid %d): tend uses only what is yours; remove it or choose another TEND_HOME (%w)",
			path, st.Uid, os.Getuid(), ErrNotPrivate)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s is writable by other users (mode %04o): someone else may have put things there; check it and chmod go-w it, or choose another TEND_HOME (%w)",
			path, fi.Mode().Perm(), ErrNotPrivate)
	}
	return nil
}

// Open opens path with flag (os.O_CREATE makes it 0600), never through a
// symlink, close-on-exec.
func Open(path string, flag int) (*os.File, error) {
	fd, err := OpenFD(path, flag)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}

// OpenFD is Open for a caller that keeps the raw descriptor.
func OpenFD(path string, flag int) (int, error) {
	fd, err := unix.Open(path, flag|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: path, Err: notPrivate(err)}
	}
	return fd, nil
}

// ELOOP is what O_NOFOLLOW gives for a symlink.
func notPrivate(err error) error {
	if errors.Is(err, unix.ELOOP) {
		return fmt.Errorf("a symlink is there: %w", ErrNotPrivate)
	}
	return err
}

// ReadFile reads a regular file of this user's that others cannot write,
// never through a symlink.
func ReadFile(path string) ([]byte, error) {
	f, err := Open(path, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := check(path, fi); err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file: %w", path, ErrNotPrivate)
	}
	return io.ReadAll(f)
}

// WriteOptions say how WriteFile makes a file durable.
type WriteOptions struct {
	// Sync flushes the file and its directory to disk: it survives a
	// power loss, not only a crash of the writer.
	Sync bool
	// Backup keeps the file being replaced as path.bak.
	Backup bool
}

// WriteFile replaces path with b, whole or not at all: b is written to a
// new temporary file beside it (mode 0600, created exclusively, never
// through a symlink) and renamed over path, so a reader, or a daemon that
// starts after a crash, finds the old content or the new.
func WriteFile(path string, b []byte, opt WriteOptions) error {
	tmp := path + ".tmp"
	os.Remove(tmp)
	f, err := Open(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil && opt.Sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && opt.Backup {
		// Linked, not copied: path never goes missing.
		if err = os.Remove(path + ".bak"); errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
		if err == nil {
			if err = os.Link(path, path+".bak"); errors.Is(err, fs.ErrNotExist) {
				err = nil // the first write
			}
		}
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if opt.Sync {
		if d, err := os.Open(filepath.Dir(path)); err == nil {
			d.Sync()
			d.Close()
		}
	}
	return nil
}
