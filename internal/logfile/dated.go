package logfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tendhq/tend/internal/private"
)

// Files rotated while Options.RotateAt is set get dated names, as
// pm2-logrotate gives them: the extension of the live file moves after a
// stamp of the rotation's local time, so api-out-0.log becomes
//
//	api-out-0__2026-03-01_00-00-00.log      (.log.gz once compressed)
//	api-out-0__2026-03-01_00-00-00_001.log  (a second rotation in that second)
//
// The file holds the lines written up to that time. The stamp is
// pm2-logrotate's default dateFormat, fixed here (not an option) so that
// names sort in the order they were made, in code and in `ls` alike (the
// sequence is zero-padded for that); only the hour that repeats when
// daylight saving time ends can sort out of order.

// stampLayout is the Go layout of pm2-logrotate's YYYY-MM-DD_HH-mm-ss.
const stampLayout = "2006-01-02_15-04-05"

// datedSep separates the live file's stem from the stamp.
const datedSep = "__"

// datedName is the name of the rotated file of path made at t, the seq-th
// of that second (0 for the first).
func datedName(path string, t time.Time, seq int) string {
	ext := filepath.Ext(path)
	name := strings.TrimSuffix(path, ext) + datedSep + t.Format(stampLayout)
	if seq > 0 {
		name += fmt.Sprintf("_%03d", seq)
	}
	return name + ext
}

// rotatedFile is a file rotated from a live path, as found on disk.
type rotatedFile struct {
	name string // full path, ".gz" included when compressed
	gz   bool

	// Order, newest first: dated files by stamp then sequence; numbered
	// ones (path.k) by k, after the dated ones.
	stamp string
	seq   int
	k     int // numbered: k; dated: 0
}

// newer reports whether a was rotated after b.
func (a rotatedFile) newer(b rotatedFile) bool {
	switch {
	case (a.k == 0) != (b.k == 0):
		return a.k == 0 // dated files are only made when numbered ones no longer are
	case a.k != 0:
		return a.k < b.k
	case a.stamp != b.stamp:
		return a.stamp > b.stamp
	}
	return a.seq > b.seq
}

// parseRotated reports whether base (a name in path's directory) is a file
// rotated from path: a dated one of datedName or a numbered one of
// rotatedName, compressed or not.
func parseRotated(path, base string) (rotatedFile, bool) {
	rf := rotatedFile{name: filepath.Join(filepath.Dir(path), base)}
	base, rf.gz = strings.CutSuffix(base, ".gz")
	live := filepath.Base(path)
	if rest, ok := strings.CutPrefix(base, live+"."); ok {
		k, err := strconv.Atoi(rest)
		if err != nil || k < 1 || strconv.Itoa(k) != rest {
			return rf, false
		}
		rf.k = k
		return rf, true
	}
	ext := filepath.Ext(live)
	rest, ok := strings.CutPrefix(base, strings.TrimSuffix(live, ext)+datedSep)
	if !ok {
		return rf, false
	}
	if rest, ok = strings.CutSuffix(rest, ext); !ok || len(rest) < len(stampLayout) {
		return rf, false
	}
	rf.stamp, rest = rest[:len(stampLayout)], rest[len(stampLayout):]
	if _, err := time.Parse(stampLayout, rf.stamp); err != nil {
		return rf, false
	}
	if rest != "" {
		digits, ok := strings.CutPrefix(rest, "_")
		n, err := strconv.Atoi(digits)
		if !ok || err != nil || n < 1 {
			return rf, false
		}
		rf.seq = n
	}
	return rf, true
}

// listRotated returns the files rotated from path, newest first. A file
// and its .gz (the moment a compression ends) are both listed.
func listRotated(path string) ([]rotatedFile, error) {
	ents, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	var out []rotatedFile
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue // never a symlink or a directory planted there
		}
		if rf, ok := parseRotated(path, e.Name()); ok {
			out = append(out, rf)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].newer(out[j]) })
	return out, nil
}

// rotateDated renames path to a dated name for now that nothing holds yet,
// compressed or not, so that two rotations in one second never collide.
func rotateDated(path string, now time.Time) error {
	for seq := 0; ; seq++ {
		name := datedName(path, now, seq)
		if _, err := os.Lstat(name + ".gz"); err == nil {
			continue
		}
		err := renameNoReplace(path, name)
		if !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
}

// retainDated deletes the oldest files rotated from path beyond keep.
// Numbered files left by size rotation before RotateAt was set count as
// the oldest, so disk use stays bounded when a user switches.
func retainDated(path string, keep int) {
	files, err := listRotated(path)
	if err != nil {
		return
	}
	kept := 0
	for i, rf := range files {
		// A file and its .gz are one rotation: count the pair once.
		same := i > 0 && strings.TrimSuffix(files[i-1].name, ".gz") == strings.TrimSuffix(rf.name, ".gz")
		if !same {
			kept++
		}
		if kept > keep {
			private.Remove(rf.name)
		}
	}
}

// renameChecked renames from to to unless to exists. Between the check and
// the rename another process could create to; renameNoReplace closes that
// gap where the system allows.
func renameChecked(from, to string) error {
	if _, err := os.Lstat(to); err == nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: fs.ErrExist}
	}
	return private.Rename(from, to, 0)
}
