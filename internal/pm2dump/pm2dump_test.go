package pm2dump

import (
	"flag"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/config"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// shell is the importing shell of the tests: the same login as the one
// testdata/dump.pm2 was saved from, in another terminal.
var shell = []string{
	"HOME=/home/ann", "PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "SHELL=/bin/bash", "USER=ann",
	"PWD=/home/ann", "SHLVL=2", "TERM=screen", "GREETING=hello",
}

// testdata/dump.pm2 is a dump written by PM2 7.0.4's `pm2 save` (paths and
// environment replaced by a made-up user's), with what a user's dump may
// also hold added: a stopped app with a name tend refuses, a login of
// another PATH, keys tend lacks or refuses, a value it cannot read.
func convertTestdata(t *testing.T) *Import {
	t.Helper()
	b, err := os.ReadFile("testdata/dump.pm2")
	if err != nil {
		t.Fatal(err)
	}
	procs, err := Read(b)
	if err != nil {
		t.Fatal(err)
	}
	return Convert(procs, Options{Shell: shell, PM2Home: "/nowhere"})
}

// TestConvertGolden pins the ecosystem file and the notes of the dump.
func TestConvertGolden(t *testing.T) {
	im := convertTestdata(t)
	var got strings.Builder
	got.Write(im.YAML("testdata/dump.pm2"))
	got.WriteString("\n# notes\n")
	for _, n := range im.Notes {
		got.WriteString("# " + n.String() + "\n")
	}
	golden := filepath.Join("testdata", "dump.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != string(want) {
		t.Errorf("converted dump differs from %s (go test -update to accept):\n%s", golden, got.String())
	}
}

// TestConvertLoads checks what the apps are once the file is loaded as
// tend start loads one: the settings PM2 had, and none of PM2's
// bookkeeping or of the old shell's environment.
func TestConvertLoads(t *testing.T) {
	im := convertTestdata(t)
	specs, err := config.Parse(im.YAML("dump"), "imported.yaml", config.Options{})
	if err != nil {
		t.Fatalf("the converted file does not load: %v", err)
	}
	byName := map[string]tend.AppSpec{}
	for _, s := range specs {
		byName[s.Name] = s
	}
	if len(specs) != 5 {
		t.Fatalf("got %d apps, want web, worker, job, eco and old-api: %v", len(specs), specs)
	}
	web := byName["web"]
	if web.Instances != 2 || web.ExecMode != tend.ModeCluster || web.Script != "/home/ann/srv/web.js" || web.Cwd != "/home/ann/srv" {
		t.Errorf("web: %+v", web)
	}
	// GREETING is this shell's too; PORT is the user's; the rest was PM2's or the shell's.
	if want := map[string]string{"PORT": "0"}; !maps.Equal(web.Env, want) {
		t.Errorf("web env = %v, want %v", web.Env, want)
	}
	if web.OutFile != "/var/log/ann/web.log" || web.ErrorFile != "" {
		t.Errorf("web logs: out %q (PM2 added -<pm_id>), error %q (PM2's default)", web.OutFile, web.ErrorFile)
	}
	w := byName["worker"]
	if !slices.Equal(w.Args, []string{"--queue", "high", "--verbose"}) || w.MaxMemoryRestart != 200<<20 ||
		w.KillTimeout.D().Milliseconds() != 4000 || w.CronRestart != "0 3 * * *" || w.RestartDelay.D().Milliseconds() != 500 {
		t.Errorf("worker: %+v", w)
	}
	job := byName["job"]
	if job.Interpreter != "python3" || job.Namespace != "batch" || job.Autorestart == nil || *job.Autorestart ||
		!slices.Equal(job.Watch, []string{"."}) || !slices.Equal(job.IgnoreWatch, []string{"*.tmp"}) || job.OutFile != "/var/log/ann/job.out" {
		t.Errorf("job: %+v", job)
	}
	if len(job.Env) != 0 {
		t.Errorf("job env = %v: PATH and NVM_DIR were the old login's", job.Env)
	}
	eco := byName["eco"]
	if eco.MaxRestarts != 0 || eco.MinUptime.D().Milliseconds() != 2000 || !eco.WaitReady || !slices.Equal(eco.InterpreterArgs, []string{"--max-old-space-size=128"}) {
		t.Errorf("eco: %+v", eco)
	}
	if want := map[string]string{"DB_URL": "postgres://x", "NODE_ENV": "production", "PORT": "3000"}; !maps.Equal(eco.Env, want) {
		t.Errorf("eco env = %v, want %v", eco.Env, want)
	}
	old := byName["old-api"]
	if old.Autostart == nil || *old.Autostart || old.Interpreter != "none" {
		t.Errorf("old api, stopped in PM2: %+v", old)
	}
}

// TestConvertNotes checks that each thing left out is said, once, for
// its app and key.
func TestConvertNotes(t *testing.T) {
	im := convertTestdata(t)
	want := map[string]string{
		"job: log_file":      "no combined log file",
		"job: filter_env":    "this shell's environment",
		"job: env":           "NVM_DIR, PATH",
		"eco: max_restarts":  `"lots" is not a whole number`,
		"eco: ignore_watch":  "[unclosed",
		"eco: my_custom_key": "no such setting",
		"eco: port":          "add port: 3000",
		"eco: env":           "BAD=NAME",
		"old-api: name":      "imported as old-api",
		"old-api: status":    "autostart: false",
	}
	got := map[string]int{}
	for _, n := range im.Notes {
		key := n.App + ": " + n.Key
		got[key]++
		w, ok := want[key]
		if !ok {
			t.Errorf("unexpected note %q", n)
			continue
		}
		if !strings.Contains(n.Why, w) {
			t.Errorf("note %q does not say %q", n, w)
		}
	}
	for key := range want {
		if got[key] != 1 {
			t.Errorf("%d notes for %s, want 1", got[key], key)
		}
	}
}

func TestReadErrors(t *testing.T) {
	for _, tc := range []struct{ name, data, want string }{
		{"not json", "apps: []", "not PM2's JSON"},
		{"an object", `{"name": "x"}`, "not a PM2 process list"},
		{"empty", `[]`, "empty"},
		{"no name", `[{"pm_exec_path": "/x"}]`, "no name"},
		{"only modules", `[{"name": "pm2-logrotate", "pmx_module": true}]`, "only PM2 modules"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Read([]byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Read(%s) = %v, want an error saying %q", tc.data, err, tc.want)
			}
		})
	}
}

// TestReadJList reads the form `pm2 jlist` prints: pm2_env inside.
func TestReadJList(t *testing.T) {
	procs, err := Read([]byte(`[{"pid": 10, "name": "a", "pm_id": 0, "pm2_env": {"name": "a", "pm_exec_path": "/srv/a.js", "pm_cwd": "/srv", "instances": 1, "status": "online", "env": {}}}]`))
	if err != nil {
		t.Fatal(err)
	}
	im := Convert(procs, Options{})
	if len(im.Apps) != 1 || len(im.Notes) != 0 {
		t.Fatalf("apps %v, notes %v", im.Apps, im.Notes)
	}
	if got := string(im.YAML("x")); !strings.Contains(got, "script: /srv/a.js") || strings.Contains(got, "instances") {
		t.Errorf("got\n%s", got)
	}
}

// TestConvertDefaults: what only says "PM2's default" stays out of the
// file, and tend's own default applies.
func TestConvertDefaults(t *testing.T) {
	for _, script := range []string{"/srv/a.js", "/srv/a.py"} {
		interp := map[string]string{".js": "node", ".py": "python"}[filepath.Ext(script)]
		procs, err := Read([]byte(`[{"name": "a", "pm_exec_path": "` + script + `", "pm_cwd": "/srv", "exec_interpreter": "` + interp + `",
			"namespace": "default", "cron_restart": 0, "autostart": true, "autorestart": true, "watch": false, "instance_var": "NODE_APP_INSTANCE",
			"node_args": [], "args": [], "filter_env": [], "merge_logs": false, "wait_ready": false, "status": "online", "env": {"PM2_HOME": "/srv/.pm2"},
			"pm_out_log_path": "/srv/.pm2/logs/a-out.log", "pm_err_log_path": "/srv/.pm2/logs/a-error.log", "pm_pid_path": "/srv/.pm2/pids/a-0.pid"}]`))
		if err != nil {
			t.Fatal(err)
		}
		im := Convert(procs, Options{})
		want := "apps:\n  - name: a\n    script: " + script + "\n    cwd: /srv\n"
		if got := string(im.YAML("x")); !strings.HasSuffix(got, want) || len(im.Notes) != 0 {
			t.Errorf("%s: got\n%s\nnotes %v\nwant only\n%s", script, got, im.Notes, want)
		}
	}
}

// TestConvertNameTwice: two different scripts PM2 ran under one name.
func TestConvertNameTwice(t *testing.T) {
	procs, err := Read([]byte(`[{"name": "a", "pm_exec_path": "/srv/a.js", "pm_cwd": "/srv", "env": {}},
		{"name": "a", "pm_exec_path": "/srv/b.js", "pm_cwd": "/srv", "env": {}, "cron_restart": null}]`))
	if err != nil {
		t.Fatal(err)
	}
	im := Convert(procs, Options{})
	if len(im.Apps) != 1 || im.Apps[0].Instances != 2 || len(im.Notes) != 1 || !strings.Contains(im.Notes[0].Why, "instances of the first (/srv/a.js)") {
		t.Errorf("apps %+v, notes %v", im.Apps, im.Notes)
	}
}
