package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"go.yaml.in/yaml/v4"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/config"
	"github.com/tendhq/tend/internal/private"
)

// Settings are the daemon's own settings, from $TEND_HOME/config.yaml:
//
//	metrics_addr: 127.0.0.1:9615   # serve Prometheus /metrics (off when empty)
//	logs:                          # defaults for every app
//	  max_size: 10M
//	  retain: 10
//	  compress: true
//
// TEND_METRICS_ADDR in the daemon's environment overrides metrics_addr.
type Settings struct {
	MetricsAddr string `yaml:"metrics_addr"`
	Logs        struct {
		MaxSize  string `yaml:"max_size"`
		Retain   int    `yaml:"retain"`
		Compress bool   `yaml:"compress"`
	} `yaml:"logs"`

	logMaxSize int64
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
		n, err := config.ParseBytes(s.Logs.MaxSize)
		if err != nil {
			return s, fmt.Errorf("%s: logs.max_size: %v", path, err)
		}
		s.logMaxSize = n
	}
	if s.Logs.Retain < 0 {
		return s, fmt.Errorf("%s: logs.retain must not be negative", path)
	}
	return s, nil
}
