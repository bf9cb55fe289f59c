package cli

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/config"
	"github.com/tendhq/tend/internal/deps"
)

// startFlags are the flags of tend start and tend run: one per setting
// of tend.Settings that has a flag, and --force.
type startFlags struct {
	values []*settingValue
	env    *settingValue // --env, which names env_<name> for a config file
	force  bool
	only   []string // --only app1,app2 of a config file
	// added names the apps --only did not name that start because the
	// named ones depend on them, as compose does.
	added []string
	// noDeps, with --only, starts the named apps alone, without waiting
	// for what they depend on (compose's up --no-deps): where each app of
	// a file runs on its own (tend export), the others run elsewhere.
	noDeps bool
}

// settingValue is the pflag.Value of one setting's flag: it keeps what was
// given, and the setting parses it when the app is built, as a file's
// value is parsed.
type settingValue struct {
	st    *tend.Setting
	given []string // each time the flag was given, in order
}

func (v *settingValue) String() string { return "" }

func (v *settingValue) Set(s string) error {
	v.given = append(v.given, s)
	return nil
}

// Type names what the flag takes; pflag shows nothing for "bool".
func (v *settingValue) Type() string { return v.st.Arg() }

// register adds the flags that describe an app to fl.
func (f *startFlags) register(fl *pflag.FlagSet) {
	for i := range tend.Settings {
		st := &tend.Settings[i]
		if st.Flag == "" {
			continue
		}
		v := &settingValue{st: st}
		f.values = append(f.values, v)
		if st.Key == "env" {
			f.env = v
		}
		help := st.Help
		if st.Invert {
			help = "do not " + help
		} else if st.Default != "" {
			help += " (default " + st.Default + ")"
		}
		for j, name := range append([]string{st.Flag}, st.FlagAliases...) {
			short := st.Short
			if j > 0 {
				short, help = "", "alias of --"+st.Flag
			}
			fl.VarPF(v, name, short, help).NoOptDefVal = noOpt(st)
		}
	}
	fl.BoolVarP(&f.force, "force", "f", false, "replace an app of the same name")
	fl.StringSliceVar(&f.only, "only", nil, "with a config file: only these of its apps, app1,app2 (and those they depend on)")
	fl.BoolVar(&f.noDeps, "no-deps", false, "with --only: neither start nor wait for the apps they depend on")
}

// noOpt is what a flag given without a value means.
func noOpt(st *tend.Setting) string {
	switch {
	case st.Kind == tend.KindSwitch:
		return "true"
	case st.Bare != "":
		return st.Bare
	}
	return ""
}

// input is what the flags gave for v's setting, ready for Apply.
func (v *settingValue) input(dir string) (tend.Input, error) {
	in := tend.Input{Dir: dir}
	last := v.given[len(v.given)-1]
	switch v.st.Kind {
	case tend.KindList, tend.KindNumbers:
		for _, g := range v.given {
			items, err := v.st.Split(g)
			if err != nil {
				return in, err
			}
			in.List = append(in.List, items...)
		}
	case tend.KindEnv:
		in.List = v.given
	case tend.KindSwitch:
		on, err := strconv.ParseBool(last)
		if err != nil {
			return in, fmt.Errorf("%q is not true or false", last)
		}
		in.Text = strconv.FormatBool(on != v.st.Invert)
	default:
		in.Text = last
	}
	return in, nil
}

// specs builds the apps to start from the arguments and flags.
func (f *startFlags) specs(cmd *cobra.Command, args []string) ([]tend.AppSpec, error) {
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	target, extra := args[0], args[1:]
	if n := cmd.ArgsLenAtDash(); n == 0 {
		return nil, usageErr("name what to start before --")
	} else if n > 1 {
		hint := ""
		if slices.Contains(os.Args, "--watch") {
			hint = " (--watch takes paths with =: --watch=" + args[1] + ")"
		}
		return nil, usageErr("unexpected argument %q: put the app's arguments after --%s", args[1], hint)
	}
	if config.IsConfigFile(target) {
		return f.fileSpecs(target, extra, wd)
	}
	if len(f.only) > 0 || f.noDeps {
		return nil, usageErr("--only and --no-deps pick apps of a config file; %s is not one", target)
	}
	s := tend.AppSpec{Script: target, Args: extra, BaseEnv: os.Environ()}
	for _, after := range []bool{false, true} {
		for _, v := range f.values {
			if len(v.given) == 0 || v.st.After != after {
				continue
			}
			in, err := v.input(wd)
			if in.Text == "" && in.List == nil && (v.st.Kind == tend.KindText || v.st.Kind == tend.KindNumber) {
				continue // --name "$UNSET": as if not given
			}
			if err == nil {
				err = v.st.Apply(&s, in)
			}
			if err != nil {
				return nil, usageErr("--%s: %v", v.st.Flag, errText(err))
			}
		}
	}
	s.Complete(wd)
	return []tend.AppSpec{s}, nil
}

// fileSpecs loads the apps of an ecosystem file. Its settings are the
// file's: a flag that would set one is an error rather than ignored.
func (f *startFlags) fileSpecs(target string, extra []string, wd string) ([]tend.AppSpec, error) {
	if len(extra) > 0 {
		return nil, usageErr("arguments after -- do not apply to a config file; set args: in %s", target)
	}
	for _, v := range f.values {
		if len(v.given) > 0 && v != f.env {
			return nil, usageErr("--%s does not apply to a config file; set %s: in %s", v.st.Flag, v.st.Key, target)
		}
	}
	envName := ""
	for _, v := range f.env.given {
		if strings.Contains(v, "=") {
			return nil, usageErr("--env %s: with a config file, --env names an env_<NAME> block; put variables in the file", v)
		}
		envName = v
	}
	specs, err := config.Load(target, config.Options{EnvName: envName, Cwd: wd, BaseEnv: os.Environ()})
	if err != nil {
		return nil, err
	}
	if f.noDeps && len(f.only) == 0 {
		return nil, usageErr("--no-deps goes with --only: name the apps to start without their dependencies")
	}
	picked, err := onlyApps(specs, f.only)
	if err != nil || len(f.only) == 0 {
		return picked, err
	}
	if f.noDeps {
		// What they depend on runs elsewhere: nothing here waits for it.
		for i := range picked {
			picked[i].DependsOn = slices.DeleteFunc(picked[i].DependsOn, func(d tend.Dependency) bool {
				return !slices.ContainsFunc(picked, func(s tend.AppSpec) bool { return s.Name == d.App })
			})
		}
		return picked, nil
	}
	// What the named apps depend on starts too, as with compose.
	var names []string
	for _, s := range picked {
		names = append(names, s.Name)
	}
	need := deps.Closure(deps.OfApps(specs), names)
	for _, n := range need {
		if !slices.Contains(names, n) {
			f.added = append(f.added, n)
		}
	}
	return slices.DeleteFunc(slices.Clone(specs), func(s tend.AppSpec) bool { return !slices.Contains(need, s.Name) }), nil
}

// errText is the message of err without its code.
func errText(err error) string {
	if te, ok := err.(*tend.Error); ok {
		return te.Message
	}
	return err.Error()
}
