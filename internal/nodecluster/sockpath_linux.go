package nodecluster

import "golang.org/x/sys/unix"

// dirOnly opens a directory for the *at calls alone, without reading it.
const dirOnly = unix.O_PATH
