package tend

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ParseInstances parses an instance count as PM2 takes it (-i, instances:):
// "max" or "0" is one per CPU, "-N" is N fewer than the CPUs but at least 1,
// and "N" is N. Anything else is an EINVALID error naming the value.
func ParseInstances(s string) (int, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "max") {
		return NumCPU(), nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, Errorf(EINVALID, "%q is not a number, \"max\" or \"-N\"", s)
	}
	switch {
	case n == 0:
		return NumCPU(), nil
	case n < 0:
		return max(NumCPU()+n, 1), nil
	}
	return n, nil
}

// ParseDuration parses a duration as PM2's time keys take it: a bare number
// is milliseconds ("1500", "2.5"), anything else is a Go duration ("1500ms",
// "2s", "1m", "1h", "1m30s"). Negative durations are an EINVALID error.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	var d time.Duration
	if isDecimal(s) {
		ms, _ := strconv.ParseFloat(s, 64)
		f := ms * float64(time.Millisecond)
		if math.Abs(f) >= math.MaxInt64 {
			return 0, Errorf(EINVALID, "%s is too long", s)
		}
		d = time.Duration(f)
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, Errorf(EINVALID, "%q is not a duration; use milliseconds or a unit: 1500, 1500ms, 2s, 1m, 1h", s)
		}
	}
	if d < 0 {
		return 0, Errorf(EINVALID, "%s must not be negative", s)
	}
	return Duration(d), nil
}

// isDecimal reports whether s is a plain decimal number (digits and at most
// one dot): strconv.ParseFloat also takes "Inf", "0x1p3" and "1e3", which are
// not what anyone means by milliseconds in a string.
func isDecimal(s string) bool {
	s = strings.TrimPrefix(s, "-")
	dot := false
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '.' && !dot:
			dot = true
		case s[i] < '0' || s[i] > '9':
			return false
		}
	}
	return s != "" && s != "."
}

// ParseBytes parses a size as PM2's max_memory_restart takes it: a number
// of bytes ("1024"), or a number with a binary unit K, M, G or T ("512K",
// "200M", "1.5G"; case and a trailing "B" or "iB" do not matter). Negative
// sizes are an EINVALID error.
func ParseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	num := strings.TrimRight(s, "BbIiKkMmGgTt ")
	unit := strings.ToUpper(strings.TrimSpace(s[len(num):]))
	unit = strings.TrimSuffix(strings.TrimSuffix(unit, "B"), "I")
	var mult float64
	switch unit {
	case "":
		mult = 1
	case "K":
		mult = 1 << 10
	case "M":
		mult = 1 << 20
	case "G":
		mult = 1 << 30
	case "T":
		mult = 1 << 40
	}
	f, err := strconv.ParseFloat(num, 64)
	if mult == 0 || err != nil || !isDecimal(num) {
		return 0, Errorf(EINVALID, "%q is not a size; use bytes or a unit: 1024, 512K, 200M, 1G", s)
	}
	if f < 0 {
		return 0, Errorf(EINVALID, "%s must not be negative", s)
	}
	b := f * mult
	if b >= math.MaxInt64 {
		return 0, Errorf(EINVALID, "%s is too large", s)
	}
	return int64(b), nil
}

// EnvMap turns an environment of KEY=VALUE entries (os.Environ(),
// AppSpec.BaseEnv) into a map; entries without = are skipped.
func EnvMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// ParseEnvArg parses one --env argument. "KEY=VALUE" gives KEY and VALUE;
// a bare "KEY" takes its value from this process's environment, as PM2
// does, so `--env HOME` passes the shell's HOME. An empty key, or a key with
// a NUL byte, is an EINVALID error.
func ParseEnvArg(s string) (key, value string, err error) {
	key, value, ok := strings.Cut(s, "=")
	if !ok {
		value = os.Getenv(key)
	}
	if err := CheckEnvName(key); err != nil {
		return "", "", Errorf(EINVALID, "%q: %v; use KEY=VALUE", s, err)
	}
	if strings.IndexByte(value, 0) >= 0 {
		return "", "", Errorf(EINVALID, "%q: the value contains a NUL byte", s)
	}
	return key, value, nil
}

// CheckGlobs checks ignore_watch patterns: each must be a valid glob
// (filepath.Match syntax). The error names the first bad one.
func CheckGlobs(patterns []string) error {
	for _, p := range patterns {
		if _, err := filepath.Match(p, ""); err != nil {
			return Errorf(EINVALID, "%q is not a glob pattern: %v", p, err)
		}
	}
	return nil
}

// CheckEnvName rejects names that cannot be environment variables.
func CheckEnvName(k string) error {
	switch {
	case k == "":
		return errors.New("the variable name is empty")
	case strings.ContainsAny(k, "=\x00"):
		return fmt.Errorf("%q is not a variable name", k)
	}
	return nil
}

// CheckURL accepts a readiness probe: an absolute http:// or https://
// URL, or tcp://host:port. $VAR and ${VAR} stand for the instance's
// variables ($PORT), which are known only when it starts.
func CheckURL(s string) error {
	u, err := url.Parse(os.Expand(s, func(string) string { return "1" }))
	switch {
	case err == nil && u.Scheme == "tcp" && u.Port() == "":
		return fmt.Errorf("%q has no port: tcp://host:port", s)
	case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "tcp"):
		return fmt.Errorf("%q is not an http:// or https:// URL", s)
	}
	return nil
}

// CheckHost accepts an IP address or "localhost": what tend binds a
// shared port on.
func CheckHost(s string) error {
	if net.ParseIP(s) == nil && s != "localhost" {
		return fmt.Errorf("%q is not an IP address (127.0.0.1, 0.0.0.0, ::1, ...)", s)
	}
	return nil
}

// oneOf accepts s when it is one of the choices.
func oneOf[T ~string](s T, choices ...T) error {
	if slices.Contains(choices, s) {
		return nil
	}
	names := make([]string, len(choices))
	for i, c := range choices {
		names[i] = string(c)
	}
	return fmt.Errorf("%q is not one of %s", s, strings.Join(names, ", "))
}

// ParsePercent reads a share of one CPU as a percentage: "150%", or
// "150", as the help of cpu_quota says.
func ParsePercent(s string) (int, error) {
	t := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "%"))
	n, err := strconv.Atoi(t)
	if err != nil || n < 0 || n > 1e6 {
		// "1.5" too: a count of CPUs read as percent would be 2%.
		return 0, fmt.Errorf("%q is not a CPU share: write a whole percentage of one CPU (150%% is one and a half CPUs)", s)
	}
	return n, nil
}
