// Package docker holds the container example's test: docker_test.go
// makes the image that Dockerfile describes from a root filesystem built
// here (tend, this machine's node and its libraries, the Node example and
// tend.yaml), imports it into podman, runs it and stops it while a
// request is in flight. The package has no code of its own.
package docker
