package pm2dump

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Proc is one PM2 instance as PM2 saved it: its pm2_env, with JSON
// numbers kept as written (json.Number).
type Proc map[string]any

// Read parses a PM2 process list: the array of pm2_env objects that `pm2
// save` writes, or the array of {name, pm_id, pm2_env, ...} objects that
// `pm2 jlist` prints. An empty list is an error: importing nothing is
// never what the user meant.
func Read(data []byte) ([]Proc, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var list []map[string]any
	if err := dec.Decode(&list); err != nil {
		if se, ok := errors.AsType[*json.SyntaxError](err); ok {
			return nil, fmt.Errorf("not PM2's JSON: %v (at byte %d)", err, se.Offset)
		}
		return nil, fmt.Errorf("not a PM2 process list (a JSON array of processes): %v", err)
	}
	if len(list) == 0 {
		return nil, errors.New("the PM2 process list is empty: nothing to import")
	}
	procs := make([]Proc, 0, len(list))
	for i, p := range list {
		if env, ok := p["pm2_env"].(map[string]any); ok {
			p = env // jlist's form
		}
		if _, ok := p["name"].(string); !ok {
			return nil, fmt.Errorf("process %d of the list has no name: is this PM2's dump.pm2?", i)
		}
		if p["pmx_module"] == true {
			continue // a PM2 module (pm2-logrotate...): PM2's own plug-in, not an app
		}
		procs = append(procs, Proc(p))
	}
	if len(procs) == 0 {
		return nil, errors.New("the PM2 process list holds only PM2 modules: nothing to import")
	}
	return procs, nil
}

// group gathers the instances of each app, in the order PM2 listed the
// apps: a cluster app of N instances is N processes of one name.
func group(procs []Proc) (names []string, byName map[string][]Proc) {
	byName = map[string][]Proc{}
	for _, p := range procs {
		n := p.str("name")
		if _, seen := byName[n]; !seen {
			names = append(names, n)
		}
		byName[n] = append(byName[n], p)
	}
	return names, byName
}

// str returns key's value if it is a string.
func (p Proc) str(key string) string {
	s, _ := p[key].(string)
	return s
}

// env returns the pm2_env.env mapping, nil if there is none.
func (p Proc) env() map[string]any {
	m, _ := p["env"].(map[string]any)
	return m
}
