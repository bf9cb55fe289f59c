package logfile

import (
	"errors"

	"github.com/tendhq/tend/internal/private"
	"golang.org/x/sys/unix"
)

// renameNoReplace renames from to to, failing with an error matching
// fs.ErrExist if to exists: the check and the rename are one step, so a
// file (or a symlink) that appears at to is never replaced.
func renameNoReplace(from, to string) error {
	err := private.Rename(from, to, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// A filesystem without RENAME_NOREPLACE: check, then rename.
		return renameChecked(from, to)
	}
	return err
}
