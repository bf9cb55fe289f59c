//go:build !linux

package nodecluster

import "golang.org/x/sys/unix"

// dirOnly opens a directory for the *at calls (no O_PATH here: read).
const dirOnly = unix.O_RDONLY
