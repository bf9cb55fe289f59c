package cli

import (
	"os"

	"github.com/tendhq/tend"
)

// writeNewFile writes data to path, a file the user names, refusing to
// replace one that exists unless force.
func writeNewFile(path string, data []byte, perm os.FileMode, force bool) error {
	if _, err := os.Lstat(path); err == nil && !force {
		return tend.Errorf(tend.ECONFLICT, "%s exists: name another file, or --force to overwrite it", path)
	}
	if err := replaceFile(path, data, perm); err != nil {
		return tend.Causef(err, tend.EFAILED, "%v", err)
	}
	return nil
}

// replaceFile makes path hold data, whole or not at all: data goes to a
// new file beside it (created exclusively, so never through a symlink),
// flushed to disk, then renamed over path. A symlink at path is replaced
// by the file, never written through: root writes where others may
// have left links.
func replaceFile(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tend-new"
	os.Remove(tmp) // a leftover of a crash; a link is removed, not followed
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm) // whatever the umask
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
