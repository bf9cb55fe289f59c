package cli

import (
	"encoding/json"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/config"
)

// fromFlags builds the app `tend start app.js flags...` would start.
func fromFlags(flags ...string) (tend.AppSpec, error) {
	var f startFlags
	var specs []tend.AppSpec
	cmd := &cobra.Command{Use: "start", SilenceErrors: true, SilenceUsage: true, RunE: func(cmd *cobra.Command, args []string) (err error) {
		specs, err = f.specs(cmd, args)
		return err
	}}
	f.register(cmd.Flags())
	cmd.SetArgs(append([]string{"app.js"}, flags...))
	if err := cmd.Execute(); err != nil {
		return tend.AppSpec{}, err
	}
	specs[0].BaseEnv = nil
	return specs[0], nil
}

// fromFile builds the app of a file with script app.js and lines.
func fromFile(lines ...string) (tend.AppSpec, error) {
	wd, _ := os.Getwd()
	src := "- script: app.js\n"
	for _, l := range lines {
		src += "  " + l + "\n"
	}
	specs, err := config.Parse([]byte(src), "tend.yaml", config.Options{Cwd: wd})
	if err != nil {
		return tend.AppSpec{}, err
	}
	specs[0].BaseEnv = nil
	return specs[0], nil
}

// flagFor is how a user gives value to st on the command line.
func flagFor(st *tend.Setting, value string) []string {
	switch {
	case st.Kind == tend.KindSwitch && value == strconv.FormatBool(!st.Invert):
		return []string{"--" + st.Flag}
	case st.Kind == tend.KindSwitch:
		return []string{"--" + st.Flag + "=" + strconv.FormatBool(value == "true" != st.Invert)}
	case st.Bare != "":
		return []string{"--" + st.Flag + "=" + value} // alone, it means Bare
	}
	return []string{"--" + st.Flag, value}
}

// lineFor is how a user gives value to st in a file.
func lineFor(st *tend.Setting, value string) string {
	switch st.Kind {
	case tend.KindSwitch:
		return st.Key + ": " + value
	case tend.KindEnv:
		k, v, _ := strings.Cut(value, "=")
		return st.Key + ": {" + k + ": " + strconv.Quote(v) + "}"
	}
	return st.Key + ": " + strconv.Quote(value)
}

// The same value means the same from a flag and from a file key, for
// every setting with a flag: one table parses both.
func TestFlagsAndFileAgree(t *testing.T) {
	for i := range tend.Settings {
		st := &tend.Settings[i]
		if st.Flag == "" {
			continue
		}
		t.Run(st.Key, func(t *testing.T) {
			agree(t, st, st.Example, true)
		})
	}
}

// The differences a review of the three old parsers found, each now one
// behaviour.
func TestFormerMismatches(t *testing.T) {
	for _, c := range []struct {
		key, value string
		ok         bool
		check      func(tend.AppSpec) bool
	}{
		{"log_date_format", "YYYY-MM-DD HH:mm:ss", true, func(s tend.AppSpec) bool { return s.LogDateFormat == "2006-01-02 15:04:05" }},
		{"log_type", "xml", false, nil},
		{"ready_url", "notaurl", false, nil},
		{"ready_url", "tcp://127.0.0.1:$PORT", true, func(s tend.AppSpec) bool { return s.ReadyURL == "tcp://127.0.0.1:$PORT" }},
		{"instance_var", "A=B", false, nil},
		{"exec_mode", "cluster_mode", true, func(s tend.AppSpec) bool { return s.ExecMode == tend.ModeCluster }},
		{"interpreter_args", `--inspect --title 'my app'`, true, func(s tend.AppSpec) bool {
			return reflect.DeepEqual(s.InterpreterArgs, []string{"--inspect", "--title", "my app"})
		}},
		{"cron_restart", "0 3 * *", false, nil},
		{"watch", "src config.json", true, func(s tend.AppSpec) bool { return reflect.DeepEqual(s.Watch, []string{"src", "config.json"}) }},
	} {
		st, ok := tend.Lookup(c.key)
		if !ok {
			t.Fatalf("no setting %q", c.key)
		}
		t.Run(c.key+"="+c.value, func(t *testing.T) {
			s := agree(t, st, c.value, c.ok)
			if c.check != nil && !c.check(s) {
				t.Errorf("%s %q gave %+v", c.key, c.value, s)
			}
		})
	}
}

// agree checks that value for st gives the same app, or an error, from a
// flag and from a file.
func agree(t *testing.T, st *tend.Setting, value string, ok bool) tend.AppSpec {
	t.Helper()
	byFlag, ferr := fromFlags(flagFor(st, value)...)
	byFile, perr := fromFile(lineFor(st, value))
	if (ferr == nil) != ok || (perr == nil) != ok {
		t.Fatalf("%s %q: flag error %v, file error %v; want errors: %v", st.Key, value, ferr, perr, !ok)
	}
	if ok && !sameSpec(byFlag, byFile) {
		t.Errorf("%s %q:\nflag %+v\nfile %+v", st.Key, value, byFlag, byFile)
	}
	return byFlag
}

// sameSpec compares specs as the daemon receives them: an empty list is
// no list.
func sameSpec(a, b tend.AppSpec) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}
