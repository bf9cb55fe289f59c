package tend

import (
	"errors"
	"fmt"
	"strings"
)

// The order of the apps of a file: depends_on, as docker compose writes
// it, and one-shot tasks (type: task) such as database migrations.

// AppType says whether an app runs for good or once.
type AppType string

// The types of app.
const (
	TypeService AppType = "service" // runs until stopped; the default ("")
	// TypeTask runs to completion once per start or reload of its file: an
	// exit 0 leaves it completed, not restarted. A failure is retried only
	// when max_restarts is given (that many more tries, with the usual
	// backoff); then the task is errored and blocks its dependents.
	TypeTask AppType = "task"
)

// Condition is what a dependency waits for.
type Condition string

// The conditions of depends_on, compose's meaning.
const (
	CondStarted   Condition = "started"   // its instances were spawned
	CondReady     Condition = "ready"     // its instances are ready (wait_ready, ready_url, listen)
	CondCompleted Condition = "completed" // a task whose instances exited 0
)

// composeConditions maps compose's long names to tend's, so that a
// compose user's depends_on carries over.
var composeConditions = map[string]Condition{
	"service_started":                CondStarted,
	"service_healthy":                CondReady,
	"service_completed_successfully": CondCompleted,
}

// Dependency is one entry of depends_on: App must meet Condition before
// the app that lists it starts.
type Dependency struct {
	App       string    `json:"app"`
	Condition Condition `json:"condition"`
}

func (d Dependency) String() string { return d.App + " (" + string(d.Condition) + ")" }

// IsTask reports whether the app is a one-shot task.
func (s *AppSpec) IsTask() bool { return s.Type == TypeTask }

// Needs returns the names of the apps s depends on.
func (s *AppSpec) Needs() []string {
	out := make([]string, len(s.DependsOn))
	for i, d := range s.DependsOn {
		out[i] = d.App
	}
	return out
}

// ParseDependency reads one item of depends_on: "db" (started), or
// "db:ready" as the mapping db: ready is written in a list.
func ParseDependency(item string) (Dependency, error) {
	name, cond, given := strings.Cut(strings.TrimSpace(item), ":")
	d := Dependency{App: strings.TrimSpace(name), Condition: CondStarted}
	if err := CheckName(d.App); err != nil {
		return d, fmt.Errorf("depends on %q: %v", item, err)
	}
	if !given {
		return d, nil
	}
	c := strings.TrimSpace(cond)
	if long, ok := composeConditions[c]; ok {
		d.Condition = long
		return d, nil
	}
	d.Condition = Condition(c)
	if err := oneOf(d.Condition, CondStarted, CondReady, CondCompleted); err != nil {
		return d, fmt.Errorf("%s: condition %v", d.App, err)
	}
	return d, nil
}

// dependsCodec is the codec of depends_on: items "name" or
// "name:condition", each app once, never the app itself.
var dependsCodec = codec{
	set: func(s *AppSpec, in Input) error {
		s.DependsOn = nil
		for _, item := range in.List {
			d, err := ParseDependency(item)
			if err != nil {
				return err
			}
			s.DependsOn = append(s.DependsOn, d)
		}
		return checkDepends(s)
	},
	check: checkDepends,
	show: func(s *AppSpec) string {
		items := make([]string, len(s.DependsOn))
		for i, d := range s.DependsOn {
			items[i] = d.App + ":" + string(d.Condition)
		}
		return strings.Join(items, " ")
	},
	zero: func(s *AppSpec) { s.DependsOn = nil },
}

func checkDepends(s *AppSpec) error {
	seen := map[string]bool{}
	for _, d := range s.DependsOn {
		if err := CheckName(d.App); err != nil {
			return fmt.Errorf("depends on %q: %v", d.App, err)
		}
		if err := oneOf(d.Condition, CondStarted, CondReady, CondCompleted); err != nil {
			return fmt.Errorf("%s: condition %v", d.App, err)
		}
		if seen[d.App] {
			return fmt.Errorf("%s is listed twice", d.App)
		}
		seen[d.App] = true
		if s.Name != "" && d.App == s.Name {
			return fmt.Errorf("an app cannot depend on itself (%s)", d.App)
		}
	}
	return nil
}

// CheckDependencies checks the depends_on of s: every dependency names
// an app that lookup finds (one of the same file, or one already
// running), and its condition fits it (completed: a task; ready: not a
// task, which never becomes ready). Cycles are the deps package's to
// find. hint, when not nil, suggests a name for an unknown one.
func CheckDependencies(s *AppSpec, lookup func(name string) (AppSpec, bool), hint func(name string) string) error {
	for _, d := range s.DependsOn {
		dep, ok := lookup(d.App)
		if !ok {
			msg := fmt.Sprintf("%s depends on %s, which is not an app of the file", s.Name, d.App)
			if hint != nil {
				if h := hint(d.App); h != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", h)
				}
			}
			return errors.New(msg)
		}
		switch {
		case d.Condition == CondCompleted && !dep.IsTask():
			return fmt.Errorf("%s depends on %s: completed, but %s is not a task: give it type: task, or use started or ready", s.Name, d.App, d.App)
		case d.Condition == CondReady && dep.IsTask():
			return fmt.Errorf("%s depends on %s: ready, but %s is a task, which is never ready: use completed", s.Name, d.App, d.App)
		}
	}
	return nil
}
