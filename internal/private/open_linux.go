package private

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrSymlink is wrapped by the errors of OpenFile and MkdirAll for a path
// with a symlink in it.
var ErrSymlink = errors.New("a symlink is on the path")

// ErrNotRegular is wrapped by the errors of OpenFile for a path that is a
// FIFO, a device, a socket or a directory.
var ErrNotRegular = errors.New("not a regular file")

var errNotRegularFile = fmt.Errorf("%w (a FIFO, device, socket or directory): give a path to a file", ErrNotRegular)

// User is who opens a file in OpenFile: the kernel checks the permissions
// of that uid, gid and supplementary groups instead of the daemon's.
type User struct {
	UID, GID uint32
	Groups   []uint32
}

// OpenFile opens path with flag (os.O_CREATE makes it 0600) where the
// daemon, often root, reads or writes in directories other users can
// write (an app's ./logs, its .env): it follows no symlink in any
// component of path, so nobody can redirect it to a file of their choice,
// and it opens only a regular file, so a FIFO planted there cannot block
// it (the open does not wait: O_NONBLOCK). With as set, the open is done
// with as's permissions, as the kernel checks them (see openAs).
//
// It resolves path with openat2 and RESOLVE_NO_SYMLINKS; on kernels before
// 5.6 it walks the directories one at a time with O_NOFOLLOW instead.
func OpenFile(path string, flag int, as *User) (*os.File, error) {
	open := func() (int, error) { return openNoSymlinks(path, flag, trusting(as)) }
	fd, err := openAs(as, open)
	if errors.Is(err, unix.ENXIO) {
		// What O_NONBLOCK gives for a FIFO opened to write with no
		// reader, and for a unix socket.
		err = errNotRegularFile
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, &os.PathError{Op: "open", Path: path, Err: errNotRegularFile}
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// trusting returns which owners' symlinks may be followed: root's and
// the daemon's user's, which nobody else can have planted, and as's when
// the open is done with its permissions (then a link of its own can only
// lead where it may go anyway).
func trusting(as *User) func(uid uint32) bool {
	euid := uint32(os.Geteuid())
	return func(uid uint32) bool { return uid == 0 || uid == euid || as != nil && uid == as.UID }
}

func openNoSymlinks(path string, flag int, trust func(uint32) bool) (int, error) {
	how := unix.OpenHow{
		Flags:   uint64(flag | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC),
		Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	if flag&os.O_CREATE != 0 {
		how.Mode = 0o600
	}
	fd, err := unix.Openat2(unix.AT_FDCWD, path, &how)
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) && openat2Works() != nil {
		// A symlink on the way, which may be one to follow; or no openat2
		// (Linux < 5.6, or a seccomp filter that does not know it): the
		// walk, one component at a time.
		fd, err = openWalk(unix.AT_FDCWD, path, flag, trust, 0)
	}
	return fd, symlinkErr(err)
}

// openat2Works reports how openat2 fails on a path that must open: nil
// where it works, ENOSYS or EPERM where a seccomp filter refuses it.
func openat2Works() error {
	fd, err := unix.Openat2(unix.AT_FDCWD, "/", &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC})
	if err == nil {
		unix.Close(fd)
	}
	return err
}

// openWalk opens path one directory at a time (see walk), each opened
// relative to the one above it, so that a symlink swapped in between two
// steps is seen as well; hops counts the symlinks followed so far.
func openWalk(at int, path string, flag int, trust func(uint32) bool, hops int) (int, error) {
	dir, err := walkAt(at, filepath.Dir(path), false, trust)
	if err != nil {
		return -1, err
	}
	defer unix.Close(dir)
	base := filepath.Base(path)
	fd, err := unix.Openat(dir, base, flag|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o600)
	if !errors.Is(err, unix.ELOOP) {
		return fd, err
	}
	target, err := trustedLink(dir, base, trust, hops)
	if err != nil {
		return -1, err
	}
	// A relative target is relative to the directory the link is in,
	// as reached, not to its name in path.
	return openWalk(dir, target, flag, trust, hops+1)
}

// maxHops bounds the symlinks followed on one path, as the kernel's 40.
const maxHops = 40

// trustedLink returns the target of the symlink name in dir when trust
// takes its owner; ELOOP otherwise.
func trustedLink(dir int, name string, trust func(uint32) bool, hops int) (string, error) {
	// The link itself, opened once: its owner and its target are then
	// read from the same inode, which a rename in dir cannot swap.
	lfd, err := unix.Openat(dir, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(lfd)
	var st unix.Stat_t
	if err := unix.Fstat(lfd, &st); err != nil {
		return "", err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		return "", unix.ENOTDIR // a file on the way, not a link
	}
	if !trust(st.Uid) || hops >= maxHops {
		return "", unix.ELOOP
	}
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(lfd, "", buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// MkdirAll makes dir and missing parents with mode 0700, as os.MkdirAll
// does, but follows no symlink on the way: a directory another user can
// write cannot send it elsewhere by a symlink planted in it.
func MkdirAll(dir string) error {
	fd, err := walk(dir, true, trusting(nil))
	if err != nil {
		return &os.PathError{Op: "mkdir", Path: dir, Err: symlinkErr(err)}
	}
	unix.Close(fd)
	return nil
}

// walk opens dir (O_PATH: search permission is enough) one component at a
// time, each with O_NOFOLLOW relative to the one above, making the missing
// ones (mode 0700) if create is set. A symlink on the way is followed only
// when trust takes its owner (root, tend's user): one that another user
// could have planted is refused (ELOOP).
func walk(dir string, create bool, trust func(uint32) bool) (int, error) {
	return walkAt(unix.AT_FDCWD, dir, create, trust)
}

func walkAt(at int, dir string, create bool, trust func(uint32) bool) (int, error) {
	const flags = unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	dir = filepath.Clean(dir)
	start := "."
	if filepath.IsAbs(dir) {
		start = "/"
	}
	fd, err := unix.Openat(at, start, flags, 0)
	if err != nil {
		return -1, err
	}
	names, hops := strings.Split(dir, "/"), 0
	for len(names) > 0 {
		name := names[0]
		names = names[1:]
		if name == "" || name == "." {
			continue
		}
		next, err := unix.Openat(fd, name, flags, 0)
		if errors.Is(err, unix.ENOENT) && create {
			if err = unix.Mkdirat(fd, name, 0o700); err == nil || errors.Is(err, unix.EEXIST) {
				next, err = unix.Openat(fd, name, flags, 0)
			}
		}
		if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
			// O_NOFOLLOW|O_DIRECTORY on a symlink: follow it if trusted.
			target, lerr := trustedLink(fd, name, trust, hops)
			if lerr == nil {
				hops++
				names = append(strings.Split(target, "/"), names...)
				if filepath.IsAbs(target) {
					unix.Close(fd)
					if fd, err = unix.Open("/", flags, 0); err != nil {
						return -1, err
					}
				}
				continue
			}
			if errors.Is(lerr, unix.ELOOP) {
				err = unix.ELOOP
			}
		}
		unix.Close(fd)
		if err != nil {
			return -1, err
		}
		fd = next
	}
	return fd, nil
}

// symlinkErr turns the ELOOP of O_NOFOLLOW and RESOLVE_NO_SYMLINKS into
// an error that says what to do.
func symlinkErr(err error) error {
	if errors.Is(err, unix.ELOOP) {
		return fmt.Errorf("%w that another user owns, and tend follows only root's and its own: give the real path (realpath shows it)", ErrSymlink)
	}
	return err
}

// openAs runs open with as's file-system permissions (nil: the daemon's
// own). The kernel then decides, exactly as for as's processes (mode
// bits, ACLs, every directory on the way), and at the moment of the open,
// so there is no window between a check and the open. setfsuid, setfsgid
// and setgroups change only the calling thread, so open runs on a thread
// of its own that ends with it (OnOwnThread).
func openAs(as *User, open func() (int, error)) (int, error) {
	if as == nil {
		return open()
	}
	return OnOwnThread(func() (int, error) {
		groups := make([]int, len(as.Groups))
		for i, g := range as.Groups {
			groups[i] = int(g)
		}
		// Groups, then gid, then uid: setting a non-zero fsuid drops the
		// capabilities that would let the thread change the others.
		if err := unix.Setgroups(groups); err != nil {
			return -1, fmt.Errorf("taking the groups of uid %d: %w", as.UID, err)
		}
		unix.Setfsgid(int(as.GID))
		unix.Setfsuid(int(as.UID))
		uid, _ := unix.SetfsuidRetUid(-1)
		gid, _ := unix.SetfsgidRetGid(-1)
		if uid != int(as.UID) || gid != int(as.GID) {
			return -1, fmt.Errorf("opening as uid %d: setfsuid failed (is the daemon root?)", as.UID)
		}
		return open()
	})
}

// Remove removes the file path as os.Remove does, following no symlink on
// the way to it (a symlink at path itself is removed, not followed).
func Remove(path string) error {
	dir, err := walk(filepath.Dir(path), false, trusting(nil))
	if err != nil {
		return &os.PathError{Op: "remove", Path: path, Err: symlinkErr(err)}
	}
	defer unix.Close(dir)
	if err := unix.Unlinkat(dir, filepath.Base(path), 0); err != nil {
		return &os.PathError{Op: "remove", Path: path, Err: err}
	}
	return nil
}

// Rename renames from to to with renameat2's flags (0, or
// unix.RENAME_NOREPLACE), following no symlink on the way to either.
func Rename(from, to string, flags uint) error {
	fail := func(err error) error { return &os.LinkError{Op: "rename", Old: from, New: to, Err: symlinkErr(err)} }
	fd, err := walk(filepath.Dir(from), false, trusting(nil))
	if err != nil {
		return fail(err)
	}
	defer unix.Close(fd)
	td, err := walk(filepath.Dir(to), false, trusting(nil))
	if err != nil {
		return fail(err)
	}
	defer unix.Close(td)
	if flags == 0 {
		err = unix.Renameat(fd, filepath.Base(from), td, filepath.Base(to))
	} else {
		err = unix.Renameat2(fd, filepath.Base(from), td, filepath.Base(to), flags)
	}
	if err != nil {
		return fail(err)
	}
	return nil
}
