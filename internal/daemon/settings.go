package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"go.yaml.in/yaml/v4"
	"golang.org/x/sys/unix"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/logfile"
	"github.com/tendhq/tend/internal/private"
)

// Settings are the daemon's own settings, from $TEND_HOME/config.yaml:
//
//	metrics_addr: 127.0.0.1:9615   # serve Prometheus /metrics (off when empty)
//	web_addr: 127.0.0.1:9617       # serve the web dashboard (off when empty; tend web prints a URL to open it)
//	web_public: false              # let web_addr be an address other machines reach
//	health_addr: 0.0.0.0:8080      # serve /livez, /readyz, /startupz (off when empty)
//	drain_delay: 5s                # readiness fails this long before a signaled stop
//	max_instances: 2000            # instances of all apps together (default: see maxInstances)
//	logs:                          # defaults for every app
//	  max_size: 10M
//	  rotate_interval: daily       # also rotate by time (see tend.ParseRotateInterval)
//	  retain: 10
//	  compress: true
//
// TEND_METRICS_ADDR in the daemon's environment overrides metrics_addr.
type Settings struct {
	MetricsAddr  string `yaml:"metrics_addr"`
	WebAddr      string `yaml:"web_addr"`
	WebPublic    bool   `yaml:"web_public"`
	HealthAddr   string `yaml:"health_addr"`
	DrainDelay   string `yaml:"drain_delay"`
	MaxInstances int    `yaml:"max_instances"`
	Logs         struct {
		MaxSize        string `yaml:"max_size"`
		RotateInterval string `yaml:"rotate_interval"`
		Retain         int    `yaml:"retain"`
		Compress       bool   `yaml:"compress"`
	} `yaml:"logs"`

	logMaxSize int64
	logRotate  logfile.Schedule // nil: by size only
	drainDelay time.Duration
}

// LoadSettings reads the settings of home; a missing file means defaults.
// Unknown keys and bad values are errors naming the file.
func LoadSettings(home string) (Settings, error) {
	var s Settings
	path := tend.Home(home).Settings()
	b, err := private.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s.finish(path)
	}
	if err != nil {
		return s, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil && !errors.Is(err, io.EOF) {
		return s, fmt.Errorf("%s: %v", path, err)
	}
	return s.finish(path)
}

func (s Settings) finish(path string) (Settings, error) {
	if v := os.Getenv("TEND_METRICS_ADDR"); v != "" {
		s.MetricsAddr = v
	}
	if s.Logs.MaxSize != "" {
		n, err := tend.ParseBytes(s.Logs.MaxSize)
		if err != nil {
			return s, fmt.Errorf("%s: logs.max_size: %v", path, err)
		}
		s.logMaxSize = n
	}
	if s.Logs.RotateInterval != "" {
		_, sch, err := tend.ParseRotateInterval(s.Logs.RotateInterval)
		if err != nil {
			return s, fmt.Errorf("%s: logs.rotate_interval: %v", path, err)
		}
		if sch != nil {
			s.logRotate = sch
		}
	}
	if s.DrainDelay != "" {
		d, err := tend.ParseDuration(s.DrainDelay)
		if err != nil {
			return s, fmt.Errorf("%s: drain_delay: %v", path, err)
		}
		s.drainDelay = d.D()
	}
	if s.Logs.Retain < 0 {
		return s, fmt.Errorf("%s: logs.retain must not be negative", path)
	}
	switch {
	case s.MaxInstances < 0:
		return s, fmt.Errorf("%s: max_instances must not be negative", path)
	case s.MaxInstances == 0:
		s.MaxInstances = defaultMaxInstances()
	}
	return s, nil
}

// fdsPerInstance is what an instance holds open in the daemon: the read
// ends of its two pipes, tend's end of its channel, its notify socket and
// its pidfd, and one more for a connection in hand (the keeper holds as
// many, under the same limit).
const fdsPerInstance = 6

// fdReserve is kept for the daemon itself whatever the instances hold:
// the control socket's clients, log files, the apps' ports.
const fdReserve = 512

// defaultMaxInstances bounds the instances of all apps together by what
// the open file limit (ulimit -n, which Go raises to the hard limit) leaves
// after fdReserve, and by 4096, far beyond what one machine runs but short
// of what would exhaust the daemon's memory (about 60 KB each).
func defaultMaxInstances() int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return 4096
	}
	return max(1, min(4096, (int(rl.Cur)-fdReserve)/fdsPerInstance))
}
