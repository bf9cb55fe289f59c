package config

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tendhq/tend"
)

// pinCPUs makes "max" and "-N" deterministic.
func pinCPUs(t *testing.T, n int) {
	t.Helper()
	old := tend.NumCPU
	tend.NumCPU = func() int { return n }
	t.Cleanup(func() { tend.NumCPU = old })
}

func ptr[T any](v T) *T { return &v }

func ms(n int) tend.Duration { return tend.Duration(time.Duration(n) * time.Millisecond) }

func abs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestLoadFull(t *testing.T) {
	pinCPUs(t, 8)
	base := []string{"HOME=/home/u", "PATH=/usr/bin"}
	td := abs(t, "testdata")

	apiYAML := func(env map[string]string) tend.AppSpec {
		return tend.AppSpec{
			Name:            "api",
			Script:          "./server.js",
			Args:            []string{"--port", "3000", "--name", "my app"},
			Cwd:             filepath.Join(td, "srv"),
			Interpreter:     "node",
			InterpreterArgs: []string{"--max-old-space-size=512"},
			Instances:       8, InstancesGiven: true,
			Env:                    env,
			BaseEnv:                base,
			Autorestart:            ptr(false),
			MaxRestarts:            10,
			MinUptime:              ms(2000),
			RestartDelay:           ms(250),
			ExpBackoffRestartDelay: ms(100),
			StopExitCodes:          []int{0, 3},
			MaxMemoryRestart:       200 << 20,
			KillTimeout:            ms(1600),
			KillSignal:             "SIGTERM",
			ShutdownWithMessage:    true,
			WaitReady:              true,
			ListenTimeout:          ms(60000),
			ReadyURL:               "http://127.0.0.1:3000/healthz",
			InstanceVar:            "INSTANCE_ID",
			IncrementVar:           "PORT",
			ExecMode:               tend.ModeCluster,
			Port:                   3000,
			Sched:                  tend.SchedLeastConn,
			OutFile:                "logs/out.log",
			ErrorFile:              "logs/err.log",
			MergeLogs:              true,
			LogDateFormat:          "2006-01-02 15:04:05.000 -07:00",
			LogType:                "json",
		}
	}
	devEnv := map[string]string{"NODE_ENV": "development", "PORT": "3000", "DEBUG": "false", "RATIO": "0.5", "EMPTY": ""}
	prodEnv := map[string]string{"NODE_ENV": "production", "PORT": "3000", "DEBUG": "false", "RATIO": "0.5", "EMPTY": ""}
	restYAML := []tend.AppSpec{
		{
			Name:            "worker",
			Script:          "python3 worker.py --queue jobs",
			Cwd:             td,
			Interpreter:     "none",
			InterpreterArgs: []string{"--inspect", "--trace-warnings"},
			Instances:       7, InstancesGiven: true,
			BaseEnv:          base,
			MaxRestarts:      5,
			StopExitCodes:    []int{2},
			MaxMemoryRestart: 1 << 30,
			KillTimeout:      ms(3000),
			ExecMode:         tend.ModeFork,
			OutFile:          "/var/log/worker.out",
			ErrorFile:        "/var/log/worker.err",
			LogDateFormat:    "2006-01-02T15:04:05",
		},
		{
			Name: "cmd-app", Script: "./bin/server", Cwd: "/opt/app", InterpreterArgs: []string{"-x"},
			Instances: 3, InstancesGiven: true, BaseEnv: base, ExecMode: tend.ModeSocket, OutFile: "o.log", ErrorFile: "e.log",
		},
		{
			Name: "command-app", Script: "./bin/server", Cwd: td, Instances: 1, BaseEnv: base,
			ExecMode: tend.ModeProxy, Sched: tend.SchedRoundRobin, OutFile: "o.log", ErrorFile: "e.log",
		},
		{
			Name: "errlog-app", Script: "app.rb", Cwd: td, Instances: 1, BaseEnv: base,
			Sched: tend.SchedShared, ErrorFile: "e.log",
		},
	}

	apiJSON := func(env map[string]string) tend.AppSpec {
		return tend.AppSpec{
			Name:      "api",
			Script:    "server.js",
			Args:      []string{"--port", "3000"},
			Cwd:       td,
			Instances: 4, InstancesGiven: true,
			Env:              env,
			BaseEnv:          base,
			Autorestart:      ptr(true),
			MinUptime:        ms(10000),
			StopExitCodes:    []int{0},
			MaxMemoryRestart: 512 << 10,
			KillTimeout:      ms(5000),
			KillSignal:       "SIGTERM",
			WaitReady:        true,
			ListenTimeout:    ms(8000),
			ReadyURL:         "https://localhost:8443/ready",
			ExecMode:         tend.ModeCluster,
			LogDateFormat:    "15:04", // log_date_format wins over time: true
		}
	}
	workerJSON := tend.AppSpec{Name: "worker", Script: "worker.js", Cwd: "/srv/worker", Instances: 8, InstancesGiven: true, BaseEnv: base}

	tests := []struct {
		name string
		file string
		env  string
		want []tend.AppSpec
	}{
		{"yaml", "testdata/full.yaml", "", append([]tend.AppSpec{apiYAML(devEnv)}, restYAML...)},
		{"yaml env_production", "testdata/full.yaml", "production", append([]tend.AppSpec{apiYAML(prodEnv)}, restYAML...)},
		{"yaml env absent from file", "testdata/full.yaml", "nosuch", append([]tend.AppSpec{apiYAML(devEnv)}, restYAML...)},
		{"json", "testdata/full.json", "", []tend.AppSpec{apiJSON(map[string]string{"PORT": "3000", "ON": "true"}), workerJSON}},
		{"json env_production", "testdata/full.json", "production", []tend.AppSpec{apiJSON(map[string]string{"PORT": "80", "ON": "true"}), workerJSON}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Load(tt.file, Options{EnvName: tt.env, BaseEnv: base})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d apps, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if !reflect.DeepEqual(got[i], tt.want[i]) {
					t.Errorf("app %d:\n got %+v\nwant %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestParseShapes(t *testing.T) {
	pinCPUs(t, 4)
	tests := []struct {
		name      string
		file, src string
		opt       Options
		want      []string // names
		cwd       string   // of the first app
	}{
		{"apps list", "tend.yaml", "apps:\n  - script: a.js\n  - script: b.js\n", Options{}, []string{"a", "b"}, abs(t, ".")},
		{"top-level list", "tend.yaml", "- script: a.js\n- script: b.js\n", Options{}, []string{"a", "b"}, ""},
		{"single app", "tend.yaml", "script: app.js\ninstances: 2\n", Options{}, []string{"app"}, ""},
		{"single app under apps", "tend.yaml", "apps:\n  script: app.js\n", Options{}, []string{"app"}, ""},
		{"json list", "x.json", `[{"script": "a.js"}]`, Options{}, []string{"a"}, ""},
		{"json in a .yaml file", "x.yaml", `{"apps": [{"script": "a.js",}]}`, Options{}, []string{"a"}, ""},
		{"deploy ignored", "tend.yaml", "apps:\n  - script: a.js\ndeploy:\n  prod: {}\n", Options{}, []string{"a"}, ""},
		{"file dir is the default cwd", "/etc/tend/tend.yaml", "- script: a.js\n", Options{}, []string{"a"}, "/etc/tend"},
		{"Options.Cwd", "/etc/tend/tend.yaml", "- script: a.js\n  cwd: app\n", Options{Cwd: "/srv"}, []string{"a"}, "/srv/app"},
		{"cwd dot-dot", "/etc/tend/tend.yaml", "- script: a.js\n  cwd: ../x\n", Options{}, []string{"a"}, "/etc/x"},
		{"name from command", "tend.yaml", "- script: python3 -u app.py\n", Options{}, []string{"app"}, ""},
		{"name from env command", "tend.yaml", "- script: /usr/bin/env node ./dist/main.mjs\n", Options{}, []string{"main"}, ""},
		{"name from binary", "tend.yaml", "- script: ./bin/server --port 80\n", Options{}, []string{"server"}, ""},
		{"merge key list", "tend.yaml", "x-a: &a {instances: 2}\nx-b: &b {script: b.js}\napps:\n  - <<: [*a, *b]\n    name: m\n", Options{}, []string{"m"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.src), tt.file, tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, a := range got {
				names = append(names, a.Name)
				if a.Instances < 1 {
					t.Errorf("%s: instances %d", a.Name, a.Instances)
				}
			}
			if !reflect.DeepEqual(names, tt.want) {
				t.Errorf("names %q, want %q", names, tt.want)
			}
			if tt.cwd != "" && got[0].Cwd != tt.cwd {
				t.Errorf("cwd %q, want %q", got[0].Cwd, tt.cwd)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name      string
		file, src string
		want      string
	}{
		{"yaml syntax", "tend.yaml", "apps:\n  - name: a\n   script: x\n",
			`tend.yaml:3:4: syntax error: did not find expected '-' indicator`},
		{"yaml tab", "tend.yaml", "apps:\n\t- script: x\n",
			`tend.yaml:2:1: syntax error: found character that cannot start any token`},
		{"json syntax", "app.json", "{\n  \"apps\": [\n    {\"name\": \"a\" \"script\": \"x\"}\n  ]\n}\n",
			`app.json:3:18: syntax error: invalid character '"' after object key:value pair`},
		{"json trailing comma", "app.json", "{\"apps\": [\n  {\"script\": \"x\",}\n]}\n",
			`app.json:2:18: syntax error: invalid character '}' looking for beginning of object key string`},
		{"json truncated", "app.json", "{\"apps\": [\n  {\"script\": \"x\"}\n",
			`app.json:3:1: syntax error: unexpected end of JSON input`},
		{"unknown key with suggestion", "tend.yaml", "apps:\n  - name: api\n    script: a.js\n    instancez: 4\n",
			`tend.yaml:4:5: unknown key "instancez" in app "api" (did you mean "instances"?)`},
		{"unknown key case", "tend.yaml", "- script: a.js\n  Instances: 4\n",
			`tend.yaml:2:3: unknown key "Instances" in app "a" (did you mean "instances"?)`},
		{"unknown key no suggestion", "tend.yaml", "- script: a.js\n  frobnicate: 4\n",
			`tend.yaml:2:3: unknown key "frobnicate" in app "a"`},
		{"unsupported key", "tend.yaml", "- script: a.js\n  pid_file: a.pid\n",
			`tend.yaml:2:3: key "pid_file" in app "a" is not supported by tend`},
		{"instances lots", "ecosystem.yaml", "apps:\n  - name: api\n    script: a.js\n    instances: lots\n",
			`ecosystem.yaml:4:16: instances: "lots" is not a number, "max" or "-N" (app "api")`},
		{"instances fraction", "tend.yaml", "- script: a.js\n  instances: 1.5\n",
			`tend.yaml:2:14: instances: "1.5" is not a number, "max" or "-N" (app "a")`},
		{"negative timeout json", "app.json", "{\"apps\": [\n  {\"name\": \"web\",\n   \"kill_timeout\": -5, \"script\": \"x\"}\n]}",
			`app.json:3:20: kill_timeout: -5 must not be negative (app "web")`},
		{"negative duration string", "tend.yaml", "- script: a.js\n  min_uptime: -2s\n",
			`tend.yaml:2:15: min_uptime: -2s must not be negative (app "a")`},
		{"bad duration", "tend.yaml", "- script: a.js\n  restart_delay: soon\n",
			`tend.yaml:2:18: restart_delay: "soon" is not a duration; use milliseconds or a unit: 1500, 1500ms, 2s, 1m, 1h (app "a")`},
		{"bad signal", "tend.yaml", "- script: a.js\n  kill_signal: SIGFOO\n",
			`tend.yaml:2:16: kill_signal: unknown signal "SIGFOO" (app "a")`},
		{"missing script named", "tend.yaml", "apps:\n  - name: api\n    instances: 2\n",
			`tend.yaml:2:5: missing key "script" in app "api"`},
		{"missing script unnamed", "tend.yaml", "apps:\n  - script: a.js\n  - instances: 2\n",
			`tend.yaml:3:5: missing key "script" in apps[1]`},
		{"empty script", "tend.yaml", "- script: \"\"\n",
			`tend.yaml:1:11: script: must not be empty (apps[0])`},
		{"duplicate names", "tend.yaml", "apps:\n  - name: api\n    script: a.js\n  - name: api\n    script: b.js\n",
			`tend.yaml:4:11: duplicate app name "api" (first at line 2); give each app its own name`},
		{"duplicate derived names", "tend.yaml", "- script: a.js\n- script: lib/a.py\n",
			`tend.yaml:2:11: duplicate app name "a" (first at line 1); give each app its own name`},
		{"duplicate key", "tend.yaml", "- script: a.js\n  script: b.js\n",
			`tend.yaml:2:3: duplicate key "script"; the first is at line 1 (app "a")`},
		{"json duplicate key", "app.json", `{"apps": [{"script": "a", "script": "b"}]}`,
			`app.json:1:27: duplicate key "script"; the first is at line 1 (app "a")`},
		{"merge of itself", "tend.yaml", "apps: [&a {<<: *a, script: x}]\n",
			`tend.yaml:1:8: <<: the mapping merges itself (app "x")`},
		{"merge of a list", "tend.yaml", "apps: [{<<: [1], script: x}]\n",
			`tend.yaml:1:14: <<: expected a mapping, got 1 (app "x")`},
		{"alias and key", "tend.yaml", "- script: a.js\n  exec: b.js\n",
			`tend.yaml:2:3: duplicate key "exec": "script" at line 1 already sets it (app "a")`},
		{"top-level unknown key", "tend.yaml", "appz:\n  - script: a.js\n",
			`tend.yaml:1:1: unknown top-level key "appz" (did you mean "apps"?)`},
		{"top-level app key beside apps", "tend.yaml", "instances: 2\napps:\n  - script: a.js\n",
			`tend.yaml:1:1: unknown top-level key "instances"; list apps under "apps:"`},
		{"no apps key", "tend.yaml", "deploy: {}\n",
			`tend.yaml:1:1: no "apps:" list`},
		{"empty apps", "tend.yaml", "apps: []\n",
			`tend.yaml:1:7: the list of apps is empty`},
		{"empty file", "tend.yaml", "# nothing\n",
			`tend.yaml: the file is empty; it should list apps under "apps:"`},
		{"apps not a list", "tend.yaml", "apps: api\n",
			`tend.yaml:1:7: apps: expected a list of apps, got "api"`},
		{"app not a mapping", "tend.yaml", "apps:\n  - server.js\n",
			`tend.yaml:2:5: apps[0]: expected a mapping, got "server.js"`},
		{"env not a mapping", "tend.yaml", "- script: a.js\n  env: FOO=1\n",
			`tend.yaml:2:8: env: expected a mapping of variables, got "FOO=1" (app "a")`},
		{"env_name not a mapping", "tend.yaml", "- script: a.js\n  env_production: [a]\n",
			`tend.yaml:2:19: env_production: expected a mapping of variables, got a list (app "a")`},
		{"env value is a list", "tend.yaml", "- script: a.js\n  env:\n    A: [1]\n",
			`tend.yaml:3:8: env: A: expected a string, number or boolean, got a list (app "a")`},
		{"bool is a list", "tend.yaml", "- script: a.js\n  autorestart: [true]\n",
			`tend.yaml:2:16: autorestart: expected true or false, got a list (app "a")`},
		{"bool is a string", "tend.yaml", "- script: a.js\n  wait_ready: \"yes\"\n",
			`tend.yaml:2:15: wait_ready: expected true or false, got "yes" (app "a")`},
		{"args item is a mapping", "tend.yaml", "- script: a.js\n  args: [a, {b: c}]\n",
			`tend.yaml:2:13: args: expected a string, got a mapping (app "a")`},
		{"args unterminated quote", "tend.yaml", "- script: a.js\n  args: \"--name 'x\"\n",
			`tend.yaml:2:9: args: unterminated ' quote (app "a")`},
		{"exec_mode", "tend.yaml", "- script: a.js\n  exec_mode: spawn\n",
			`tend.yaml:2:14: exec_mode: "spawn" is not one of fork, cluster, socket, proxy (app "a")`},
		{"sched", "tend.yaml", "- script: a.js\n  sched: random\n",
			`tend.yaml:2:10: sched: "random" is not one of rr, shared, leastconn, sticky, reuseport (app "a")`},
		{"port range", "tend.yaml", "- script: a.js\n  port: 70000\n",
			`tend.yaml:2:9: port: 70000 is out of range 1-65535 (app "a")`},
		{"max_restarts negative", "tend.yaml", "- script: a.js\n  max_restarts: -1\n",
			`tend.yaml:2:17: max_restarts: -1 must not be negative (app "a")`},
		{"stop_exit_codes item", "tend.yaml", "- script: a.js\n  stop_exit_codes: [0, x]\n",
			`tend.yaml:2:24: stop_exit_codes: "x" is not a whole number (app "a")`},
		{"max_memory_restart", "tend.yaml", "- script: a.js\n  max_memory_restart: 2 bananas\n",
			`tend.yaml:2:23: max_memory_restart: "2 bananas" is not a size; use bytes or a unit: 1024, 512K, 200M, 1G (app "a")`},
		{"ready_url scheme", "tend.yaml", "- script: a.js\n  ready_url: localhost:3000/ready\n",
			`tend.yaml:2:14: ready_url: "localhost:3000/ready" is not an http:// or https:// URL (app "a")`},
		{"log_type", "tend.yaml", "- script: a.js\n  log_type: xml\n",
			`tend.yaml:2:13: log_type: "xml" is not one of json, raw (app "a")`},
		{"instance_var", "tend.yaml", "- script: a.js\n  instance_var: \"A=B\"\n",
			`tend.yaml:2:17: instance_var: "A=B" is not a variable name (app "a")`},
		{"reserved name", "tend.yaml", "- script: a.js\n  name: all\n",
			`tend.yaml:2:9: name: "all" is reserved: it targets every app (app "all")`},
		{"numeric name", "tend.yaml", "- script: a.js\n  name: 12\n",
			`tend.yaml:2:9: name: "12" would be read as an instance id; use a name with a letter (app "12")`},
		{"js via Parse", "ecosystem.config.js", "module.exports = {}",
			`ecosystem.config.js: JavaScript ecosystem files must be loaded from disk (Load), not parsed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			apps, err := Parse([]byte(tt.src), tt.file, Options{})
			if err == nil {
				t.Fatalf("no error; got %+v", apps)
			}
			checkErr(t, err, tend.EINVALID, tt.want)
		})
	}
}

// TestMergeBlowup: mappings that merge the previous one ten times over,
// twenty levels deep, would take 10^20 steps if each merge were expanded
// afresh.
func TestMergeBlowup(t *testing.T) {
	var b strings.Builder
	b.WriteString("x-0: &l0 {kill_timeout: 1}\n")
	for i := 1; i <= 20; i++ {
		fmt.Fprintf(&b, "x-%d: &l%d {<<: [%s]}\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d, ", i-1), 10), ", "))
	}
	b.WriteString("apps: [{<<: *l20, script: x}]\n")
	apps, err := Parse([]byte(b.String()), "tend.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if apps[0].KillTimeout != ms(1) {
		t.Errorf("kill_timeout %v, want 1ms", apps[0].KillTimeout.D())
	}
}

func checkErr(t *testing.T, err error, code tend.Code, msg string) {
	t.Helper()
	te, ok := errors.AsType[*tend.Error](err)
	if !ok {
		t.Fatalf("error %T %q is not a *tend.Error", err, err)
	}
	if te.Code != code {
		t.Errorf("code %q, want %q", te.Code, code)
	}
	if te.Message != msg {
		t.Errorf("message\n got %s\nwant %s", te.Message, msg)
	}
}

func TestLoadMissingFile(t *testing.T) {
	for _, name := range []string{"nope.yaml", "nope.config.js"} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), name)
			_, err := Load(p, Options{})
			checkErr(t, err, tend.ENOTFOUND, "config file "+p+" does not exist")
		})
	}
}

// TestValueTypes checks which YAML value types each kind of key accepts.
func TestValueTypes(t *testing.T) {
	pinCPUs(t, 4)
	tests := []struct {
		name  string
		key   string
		value string
		get   func(tend.AppSpec) any
		want  any
		err   string // message after "tend.yaml:2:N: ", empty when valid
	}{
		{"name number", "name", "web2", func(s tend.AppSpec) any { return s.Name }, "web2", ""},
		{"interpreter number is text", "interpreter", "3", func(s tend.AppSpec) any { return s.Interpreter }, "3", ""},
		{"interpreter bool", "interpreter", "true", nil, nil, `interpreter: expected a string, got true (app "a")`},
		{"interpreter null", "interpreter", "null", nil, nil, `interpreter: expected a string, got null (app "a")`},
		{"args string", "args", `a "b c" d\ e`, func(s tend.AppSpec) any { return s.Args }, []string{"a", "b c", "d e"}, ""},
		{"args list of numbers", "args", "[--port, 80, 1.5]", func(s tend.AppSpec) any { return s.Args }, []string{"--port", "80", "1.5"}, ""},
		{"args mapping", "args", "{a: b}", nil, nil, `args: expected a string or a list of strings, got a mapping (app "a")`},
		{"instances int", "instances", "3", func(s tend.AppSpec) any { return s.Instances }, 3, ""},
		{"instances string", "instances", `"3"`, func(s tend.AppSpec) any { return s.Instances }, 3, ""},
		{"instances zero", "instances", "0", func(s tend.AppSpec) any { return s.Instances }, 4, ""},
		{"instances negative", "instances", "-1", func(s tend.AppSpec) any { return s.Instances }, 3, ""},
		{"instances too negative", "instances", "-9", func(s tend.AppSpec) any { return s.Instances }, 1, ""},
		{"instances max", "instances", "max", func(s tend.AppSpec) any { return s.Instances }, 4, ""},
		{"instances hex", "instances", "0x2", func(s tend.AppSpec) any { return s.Instances }, 2, ""},
		{"instances bool", "instances", "true", nil, nil, `instances: expected a number or a string, got true (app "a")`},
		{"duration int", "kill_timeout", "1500", func(s tend.AppSpec) any { return s.KillTimeout }, ms(1500), ""},
		{"duration float", "kill_timeout", "1e3", func(s tend.AppSpec) any { return s.KillTimeout }, ms(1000), ""},
		{"duration string ms", "kill_timeout", `"1500"`, func(s tend.AppSpec) any { return s.KillTimeout }, ms(1500), ""},
		{"duration unit", "kill_timeout", "1m30s", func(s tend.AppSpec) any { return s.KillTimeout }, ms(90000), ""},
		{"duration list", "kill_timeout", "[1]", nil, nil, `kill_timeout: expected a number or a string, got a list (app "a")`},
		{"bytes int", "max_memory_restart", "1024", func(s tend.AppSpec) any { return s.MaxMemoryRestart }, int64(1024), ""},
		{"bytes unit", "max_memory_restart", "1G", func(s tend.AppSpec) any { return s.MaxMemoryRestart }, int64(1 << 30), ""},
		{"bytes negative", "max_memory_restart", "-1", nil, nil, `max_memory_restart: -1 must not be negative (app "a")`},
		{"int as string", "port", `"8080"`, func(s tend.AppSpec) any { return s.Port }, 8080, ""},
		{"int as float", "port", "80.5", nil, nil, `port: 80.5 is not a whole number (app "a")`},
		{"exit code single", "stop_exit_codes", "0", func(s tend.AppSpec) any { return s.StopExitCodes }, []int{0}, ""},
		{"exit code mapping", "stop_exit_codes", "{a: 1}", nil, nil, `stop_exit_codes: expected a number or a string, got a mapping (app "a")`},
		{"bool true", "merge_logs", "true", func(s tend.AppSpec) any { return s.MergeLogs }, true, ""},
		{"bool True", "merge_logs", "True", func(s tend.AppSpec) any { return s.MergeLogs }, true, ""},
		{"bool number", "merge_logs", "1", nil, nil, `merge_logs: expected true or false, got 1 (app "a")`},
		{"autorestart unset is nil", "name", "a", func(s tend.AppSpec) any { return s.Autorestart }, (*bool)(nil), ""},
		{"cron", "cron", `"0 3 * * *"`, func(s tend.AppSpec) any { return s.CronRestart }, "0 3 * * *", ""},
		{"cron seconds", "cron_restart", `"*/5 * * * * *"`, func(s tend.AppSpec) any { return s.CronRestart }, "*/5 * * * * *", ""},
		{"cron descriptor", "cron_restart", "'@every 6h'", func(s tend.AppSpec) any { return s.CronRestart }, "@every 6h", ""},
		{"cron never", "cron_restart", `"0 0 30 2 *"`, nil, nil, `cron_restart: "0 0 30 2 *" never comes (no such date within five years) (app "a")`},
		{"cron bad", "cron_restart", `"0 3 * *"`, nil, nil, `cron_restart: "0 3 * *": expected 5 to 6 fields, found 4: [0 3 * *] (five fields: minute hour day month weekday, e.g. "0 3 * * *"; or @daily, @every 6h) (app "a")`},
		{"rotate true is daily", "log_rotate_interval", "true", func(s tend.AppSpec) any { return s.LogRotateInterval }, "daily", ""},
		{"rotate false", "log_rotate_interval", "false", func(s tend.AppSpec) any { return s.LogRotateInterval }, "false", ""},
		{"rotate cron", "log_rotate_interval", `"0 */6 * * *"`, func(s tend.AppSpec) any { return s.LogRotateInterval }, "0 */6 * * *", ""},
		{"rotate bad", "log_rotate_interval", "dayly", nil, nil, `log_rotate_interval: "dayly" is not daily, hourly, false or a cron schedule such as "0 */6 * * *" (expected 5 to 6 fields, found 1: [dayly]) (app "a")`},
		{"autostart false", "autostart", "false", func(s tend.AppSpec) any { return s.AutostartOn() }, false, ""},
		{"autostart number", "autostart", "0", nil, nil, `autostart: expected true or false, got 0 (app "a")`},
		{"env types", "env", "{S: x, I: 3, F: 2.50, B: true, N: null, Q: \"007\"}", func(s tend.AppSpec) any { return s.Env },
			map[string]string{"S": "x", "I": "3", "F": "2.50", "B": "true", "N": "", "Q": "007"}, ""},
		{"env empty", "env", "{}", func(s tend.AppSpec) any { return s.Env }, map[string]string(nil), ""},
		{"signal number", "kill_signal", "9", func(s tend.AppSpec) any { return s.KillSignal }, "SIGKILL", ""},
		{"signal lower", "kill_signal", "sigusr2", func(s tend.AppSpec) any { return s.KillSignal }, "SIGUSR2", ""},
		{"time false", "time", "false", func(s tend.AppSpec) any { return s.LogDateFormat }, "", ""},
		{"go layout kept", "log_date_format", `"2006-01-02 15:04"`, func(s tend.AppSpec) any { return s.LogDateFormat }, "2006-01-02 15:04", ""},
		{"dayjs brackets", "log_date_format", `"[at] HH:mm"`, func(s tend.AppSpec) any { return s.LogDateFormat }, "at 15:04", ""},
		{"cwd home", "cwd", "~/app", func(s tend.AppSpec) any { return s.Cwd }, filepath.Join(os.Getenv("HOME"), "app"), ""},
		{"log_type raw is empty", "log_type", "raw", func(s tend.AppSpec) any { return s.LogType }, "", ""},
		{"ignored key any type", "vizion", "{deep: [1, 2]}", func(s tend.AppSpec) any { return s.Name }, "a", ""},
		{"namespace", "namespace", "shop", func(s tend.AppSpec) any { return s.Namespace }, "shop", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "- script: a.js\n  " + tt.key + ": " + tt.value + "\n"
			apps, err := Parse([]byte(src), "tend.yaml", Options{})
			if tt.err != "" {
				if err == nil {
					t.Fatalf("no error; got %+v", apps)
				}
				te, _ := errors.AsType[*tend.Error](err)
				if te == nil || te.Code != tend.EINVALID {
					t.Fatalf("error %v is not EINVALID", err)
				}
				// tend.yaml:2:COL: message; COL depends on the value.
				pos, msg, _ := strings.Cut(strings.TrimPrefix(te.Message, "tend.yaml:"), ": ")
				if !strings.HasPrefix(pos, "2:") || msg != tt.err {
					t.Errorf("message\n got %s\nwant tend.yaml:2:COL: %s", te.Message, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.get(apps[0]); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestIsConfigFile(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		{"tend.yaml", true}, {"x/tend.yml", true}, {"app.json", true}, {"APP.YAML", true},
		{"ecosystem.config.js", true}, {"ecosystem.config.cjs", true}, {"pm2.config.mjs", true},
		{"app.js", false}, {"server.mjs", false}, {"app.py", false}, {"config", false}, {"yaml", false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := IsConfigFile(tt.path); got != tt.want {
				t.Errorf("IsConfigFile(%q) = %v", tt.path, got)
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	tests := []struct{ in, want string }{
		{"instancez", "instances"}, {"kill_timout", "kill_timeout"}, {"scirpt", "script"},
		{"enviroment", ""}, {"x", ""}, {"autorestrat", "autorestart"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := suggest(tt.in, appKeyNames()); got != tt.want {
				t.Errorf("suggest(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestLoadJS evaluates ecosystem.config.js files with the real node. CI
// installs node; a missing node is a failure, not a skip.
func TestLoadJS(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is needed for this test: %v", err)
	}
	pinCPUs(t, 2)
	tests := []struct {
		name, file, src string
		want            []tend.AppSpec // Name, Script, Instances, Env
		err             string         // after the file name
	}{
		{
			name: "commonjs", file: "ecosystem.config.js",
			src: "module.exports = {\n  apps: [{\n    name: 'api',\n    script: './server.js',\n    instances: 'max',\n" +
				"    env: { PORT: 3000, FROM: process.env.TEND_JS_TEST },\n    env_production: { NODE_ENV: 'production' },\n  }],\n};\n",
			want: []tend.AppSpec{{Name: "api", Script: "./server.js", Instances: 2, InstancesGiven: true,
				Env: map[string]string{"PORT": "3000", "FROM": "base env", "NODE_ENV": "production"}}},
		},
		{
			name: "cjs", file: "pm2.config.cjs",
			src:  "module.exports = { apps: [{ script: 'worker.js' }] };\n",
			want: []tend.AppSpec{{Name: "worker", Script: "worker.js", Instances: 1}},
		},
		{
			name: "esm", file: "ecosystem.config.mjs",
			src:  "export default { apps: [{ script: 'w.mjs', instances: 3 }] };\n",
			want: []tend.AppSpec{{Name: "w", Script: "w.mjs", Instances: 3}},
		},
		{
			// A line and column would be the printed JSON's, which the
			// file does not have: the path to the value instead.
			name: "error position as a path", file: "ecosystem.config.js",
			src: "module.exports = { apps: [{ script: 'a.js', kill_timeout: -5 }] };\n",
			err: `: apps[0]: kill_timeout: -5 must not be negative (app "a")`,
		},
		{
			name: "throws", file: "ecosystem.config.js",
			src: "throw new Error('boom');\n",
			err: ": node could not evaluate the file: ",
		},
		{
			name: "exports nothing", file: "ecosystem.config.js",
			src: "module.exports = {};\n",
			err: `: no "apps:" list`,
		},
		{
			name: "exports undefined", file: "ecosystem.config.js",
			src: "module.exports = undefined;\n",
			err: `: expected a mapping with "apps:" or a list of apps, got null`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, tt.file)
			if err := os.WriteFile(p, []byte(tt.src), 0o644); err != nil {
				t.Fatal(err)
			}
			env := append(os.Environ(), "TEND_JS_TEST=base env")
			got, err := Load(p, Options{EnvName: "production", BaseEnv: env})
			if tt.err != "" {
				if err == nil {
					t.Fatalf("no error; got %+v", got)
				}
				te, ok := errors.AsType[*tend.Error](err)
				if !ok || te.Code != tend.EINVALID || !strings.HasPrefix(te.Message, p+tt.err) {
					t.Fatalf("error %v, want prefix %q", err, p+tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d apps, want %d", len(got), len(tt.want))
			}
			for i, w := range tt.want {
				g := got[i]
				if g.Name != w.Name || g.Script != w.Script || g.Instances != w.Instances || !reflect.DeepEqual(g.Env, w.Env) || g.Cwd != dir {
					t.Errorf("app %d: got %+v, want %+v in %s", i, g, w, dir)
				}
			}
		})
	}

	t.Run("node missing", func(t *testing.T) {
		old := nodeCommand
		nodeCommand = "tend-test-no-such-node"
		t.Cleanup(func() { nodeCommand = old })
		p := filepath.Join(t.TempDir(), "ecosystem.config.js")
		if err := os.WriteFile(p, []byte("module.exports = {}"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(p, Options{})
		checkErr(t, err, tend.EINVALID, p+": node is needed to read .js ecosystem files and was not found on PATH; install node, or write the file as YAML or JSON")
	})
}

func TestWatchKeys(t *testing.T) {
	for _, c := range []struct {
		src, want string
	}{
		{"watch: true", "[.]"},
		{"watch: false", "[]"},
		{"watch: [src, config.json]", "[src config.json]"},
		{"watch: src", "[src]"},
	} {
		apps, err := Parse([]byte("- script: a.js\n  "+c.src+"\n"), "tend.yaml", Options{})
		if err != nil {
			t.Fatalf("%s: %v", c.src, err)
		}
		if got := fmt.Sprint(apps[0].Watch); got != c.want {
			t.Errorf("%s: watch %s, want %s", c.src, got, c.want)
		}
	}
	apps, err := Parse([]byte("- script: a.js\n  ignore_watch: [dist, '*.tmp']\n  watch_delay: 250\n"), "tend.yaml", Options{})
	if err != nil || fmt.Sprint(apps[0].IgnoreWatch) != "[dist *.tmp]" || apps[0].WatchDelay.D() != 250*time.Millisecond {
		t.Errorf("ignore_watch, watch_delay: %+v, %v", apps, err)
	}
	if _, err := Parse([]byte("- script: a.js\n  ignore_watch: '[x'\n"), "tend.yaml", Options{}); err == nil || !strings.Contains(err.Error(), `"[x" is not a glob pattern`) {
		t.Errorf("a bad glob: %v", err)
	}
}
