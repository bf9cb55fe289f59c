package supervisor

import (
	"bufio"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/procexec"
)

// lookupUser resolves spec's user and group: the credentials its
// processes take and the variables a login as that user would set. Both
// are nil when the app runs as the daemon's own user. The daemon must be
// root to run it as another.
func lookupUser(spec *tend.AppSpec) (*procexec.Cred, map[string]string, error) {
	if spec.User == "" && spec.Group == "" {
		return nil, nil, nil
	}
	fail := func(format string, args ...any) (*procexec.Cred, map[string]string, error) {
		return nil, nil, tend.Errorf(tend.EINVALID, "app %s: "+format, append([]any{spec.Name}, args...)...)
	}
	u, err := user.Current()
	if spec.User != "" {
		u, err = lookup(spec.User, user.Lookup, user.LookupId)
	}
	if err != nil {
		return fail("user %s: %v; create it (useradd) or fix --user", spec.User, lookupErr(err))
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	cred := &procexec.Cred{UID: uint32(uid), GID: uint32(gid)}
	if spec.Group != "" {
		g, err := lookup(spec.Group, user.LookupGroup, user.LookupGroupId)
		if err != nil {
			return fail("group %s: %v; create it (groupadd) or fix --group", spec.Group, lookupErr(err))
		}
		n, _ := strconv.ParseUint(g.Gid, 10, 32)
		cred.GID = uint32(n)
	}
	// Its supplementary groups as initgroups(user, group) sets them: the
	// group it runs with and those that list the user (its own primary
	// group only when that is the one it runs with); never the daemon's.
	cred.Groups = []uint32{cred.GID}
	if spec.User != "" {
		ids, _ := u.GroupIds()
		for _, id := range ids {
			n, err := strconv.ParseUint(id, 10, 32)
			if err == nil && !slices.Contains(cred.Groups, uint32(n)) && (spec.Group == "" || id != u.Gid) {
				cred.Groups = append(cred.Groups, uint32(n))
			}
		}
	}
	euid := os.Geteuid()
	if euid != 0 {
		if uint32(euid) == cred.UID && uint32(os.Getegid()) == cred.GID && spec.Group == "" {
			return nil, nil, nil // itself: nothing to change
		}
		return fail("tend's daemon runs as uid %d, and only root can run an app as another user or group; run the daemon as root (sudo tend ...) or remove user/group from the app", euid)
	}
	env := map[string]string{}
	if spec.User != "" {
		env["USER"], env["LOGNAME"], env["HOME"] = u.Username, u.Username, u.HomeDir
		env["SHELL"] = loginShell(u.Username)
	}
	return cred, env, nil
}

// lookup finds a user or group by name, or by number when it is one and
// no name matches.
func lookup[T any](v string, byName, byID func(string) (T, error)) (T, error) {
	r, err := byName(v)
	if err != nil {
		if _, nerr := strconv.ParseUint(v, 10, 32); nerr == nil {
			return byID(v)
		}
	}
	return r, err
}

// lookupErr words os/user's errors for a message that names the user.
func lookupErr(err error) string {
	var uu user.UnknownUserError
	var uid user.UnknownUserIdError
	var ug user.UnknownGroupError
	var gid user.UnknownGroupIdError
	if errors.As(err, &uu) || errors.As(err, &uid) || errors.As(err, &ug) || errors.As(err, &gid) {
		return "no such name on this machine"
	}
	return err.Error()
}

// loginShell is name's shell in /etc/passwd (os/user does not give it),
// /bin/sh when it has none there.
func loginShell(name string) string {
	f, err := os.Open("/etc/passwd")
	if err != nil {
		return "/bin/sh"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) == 7 && fields[0] == name && fields[6] != "" {
			return fields[6]
		}
	}
	return "/bin/sh"
}

// userName is who the app's instances run as, for tend ls: "" for the
// daemon's user.
func (a *App) userName() string {
	if a.res.Cred == nil {
		return ""
	}
	if u := a.res.UserEnv["USER"]; u != "" {
		return u
	}
	if u, err := user.LookupId(strconv.FormatUint(uint64(a.res.Cred.UID), 10)); err == nil {
		return u.Username
	}
	return strconv.FormatUint(uint64(a.res.Cred.UID), 10)
}

// canReach reports whether cred's user can reach path: enter every
// directory above it, and read it (want 4) or execute it (want 1), by
// the permission bits (ACLs aside: the kernel has the last word).
func canReach(cred *procexec.Cred, path string, want uint32) bool {
	abs, err := filepath.Abs(path)
	if err != nil {
		return false
	}
	for dir := filepath.Dir(abs); ; dir = filepath.Dir(dir) {
		if !permits(cred, dir, 1) {
			return false
		}
		if dir == "/" {
			break
		}
	}
	return permits(cred, abs, want)
}

// permits reports whether the mode bits of path grant cred want (4 read,
// 2 write, 1 execute or search).
func permits(cred *procexec.Cred, path string, want uint32) bool {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return false
	}
	switch {
	case cred.UID == 0:
		return want != 1 || st.Mode&0o111 != 0 || st.Mode&syscall.S_IFMT == syscall.S_IFDIR
	case st.Uid == cred.UID:
		return st.Mode>>6&want == want
	case st.Gid == cred.GID || slices.Contains(cred.Groups, st.Gid):
		return st.Mode>>3&want == want
	}
	return st.Mode&want == want
}
