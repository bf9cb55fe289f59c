package cli

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/human"
)

// stopSequence says how an instance of s is stopped in mode, as the
// supervisor does it.
func stopSequence(s tend.AppSpec, mode tend.Mode) string {
	sig := cmpOr(s.KillSignal, tend.DefaultKillSignal)
	kt := cmpOr(s.KillTimeout, tend.DefaultKillTimeout).D()
	switch {
	case s.ShutdownWithMessage:
		return fmt.Sprintf("the message 'shutdown', then SIGKILL after %s", kt)
	case mode == tend.ModeCluster:
		return fmt.Sprintf("disconnect (it leaves by itself), %s after %s if still running, SIGKILL after %s", sig, kt/2, kt)
	}
	return fmt.Sprintf("%s, then SIGKILL after %s", sig, kt)
}

// printDescribe prints one app as key: value sections: what tend runs,
// then every setting (tend.Settings) as the user gave it, or as tend
// chose it, or its default, said so.
func (e *env) printDescribe(a tend.App) {
	s := a.Spec
	kv := func(k string, v any) {
		fmt.Fprintf(e.out, "  %-28s %v\n", k+":", v)
	}
	fmt.Fprintln(e.out, e.paint(bold, "app "+s.Name))
	if a.ScriptPath != "" {
		kv("script path", a.ScriptPath)
	}
	kv("command", tend.JoinWords(a.Command))
	kv("created", a.CreatedAt.Local().Format(time.RFC3339))
	chosen := map[string]string{"exec_mode": string(a.Mode), "sched": string(a.Sched), "instances": strconv.Itoa(s.Instances)}
	if m := a.MaxMemoryRestart; m > 0 {
		chosen["max_memory_restart"] = fmt.Sprintf("%dM, 90%% of the cgroup's memory limit over every instance", m>>20)
	}
	if a.Mode == tend.ModeCluster {
		chosen["host"] = "what the app's listen() asks for (every interface by default, as Node)"
	}
	for _, g := range tend.Groups {
		if g.ID != "app" {
			fmt.Fprintln(e.out, e.paint(bold, g.Title))
		}
		for i := range tend.Settings {
			st := &tend.Settings[i]
			if st.Group != g.ID {
				continue
			}
			label := strings.ReplaceAll(st.Key, "_", " ")
			v, given := st.Show(&s)
			switch {
			case given && chosen[st.Key] != "" && v != chosen[st.Key] && st.Key != "host" && st.Key != "instances":
				kv(label, chosen[st.Key]+e.paint(grey, " (chosen; asked: "+v+")"))
			case given:
				kv(label, v)
			case st.Key == "sched" && a.Mode == tend.ModeFork, st.Key == "host" && s.Port == 0:
				// They apply only to a port the instances share.
			case st.Key == "exp_backoff_restart_delay" && s.RestartDelay > 0:
				// restart_delay applies instead.
			case st.Group == "health" && !s.HasLiveness():
				// No probe: its defaults say nothing.
			case chosen[st.Key] != "":
				kv(label, chosen[st.Key]+e.paint(grey, " (chosen)"))
			case v != "":
				kv(label, v+e.paint(grey, " (default)"))
			}
		}
		if g.ID == "stop" {
			kv("stop", stopSequence(s, a.Mode))
		}
	}
	fmt.Fprintln(e.out, e.paint(bold, "log files"))
	for i := range a.OutLog {
		kv(fmt.Sprintf("[%d] out", i), a.OutLog[i])
		kv(fmt.Sprintf("[%d] err", i), a.ErrLog[i])
	}
	for _, p := range a.LogProblems {
		fmt.Fprintf(e.out, "  %s %s\n", e.paint(yellow, "!"), p)
	}
	fmt.Fprintln(e.out, e.paint(bold, "environment"))
	if len(a.EnvValues) > 0 {
		for _, v := range a.EnvValues {
			fmt.Fprintf(e.out, "  %s\n", v)
		}
	} else if len(a.EnvKeys) > 0 {
		kv("keys", strings.Join(a.EnvKeys, " ")+"  (values: --env)")
	} else {
		fmt.Fprintln(e.out, "  (none besides the shell's)")
	}
	fmt.Fprintln(e.out, e.paint(bold, "instances"))
	e.printTable(a.Instances)
	if r := a.LastReload; r != nil {
		fmt.Fprintln(e.out, e.paint(bold, "last "+r.Action))
		saved := e.errOut
		e.errOut = e.out
		e.printReports([]tend.ReloadReport{*r})
		e.errOut = saved
	}
	fmt.Fprintln(e.out, e.paint(bold, "last exits"))
	if len(a.Exits) == 0 {
		fmt.Fprintln(e.out, "  (none)")
	}
	exits := slices.Clone(a.Exits)
	slices.Reverse(exits)
	for _, x := range exits {
		how := fmt.Sprintf("code %d", x.Code)
		if x.Signal != "" {
			how = "signal " + x.Signal
		}
		fmt.Fprintf(e.out, "  %s  %-8s %-14s after %s\n", x.Time.Local().Format("2006-01-02 15:04:05"), x.Cause, how,
			human.Duration(time.Duration(x.UptimeMS)*time.Millisecond))
	}
}
