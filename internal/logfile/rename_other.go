//go:build !linux

package logfile

// renameNoReplace renames from to to, failing with an error matching
// fs.ErrExist if to exists.
func renameNoReplace(from, to string) error { return renameChecked(from, to) }
