// TEMPORARY STUB, replaced by the real package at merge.
package config

import (
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/tendhq/tend"
	"golang.org/x/sys/unix"
)

type Options struct {
	EnvName string
	Cwd     string
	BaseEnv []string
}

func Load(path string, opt Options) ([]tend.AppSpec, error) { return nil, errors.New("stub") }
func IsConfigFile(p string) bool {
	return strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml") || strings.HasSuffix(p, ".json")
}
func ParseInstances(s string) (int, error) {
	if s == "max" {
		return runtime.NumCPU(), nil
	}
	return strconv.Atoi(s)
}
func ParseDuration(s string) (tend.Duration, error) {
	if n, err := strconv.Atoi(s); err == nil {
		return tend.Duration(time.Duration(n) * time.Millisecond), nil
	}
	d, err := time.ParseDuration(s)
	return tend.Duration(d), err
}
func ParseBytes(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }
func ParseSignal(s string) (string, error) {
	if unix.SignalNum(s) == 0 {
		return "", errors.New("bad signal")
	}
	return s, nil
}
func ParseEnvArg(s string) (string, string, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		v = os.Getenv(k)
	}
	return k, v, nil
}
