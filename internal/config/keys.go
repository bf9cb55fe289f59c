package config

import (
	"sort"
	"strings"

	"github.com/tendhq/tend"
)

// ignoredKeys are PM2 keys tend accepts and ignores: PM2's own
// instrumentation, source maps and deployment tracking, and flags of its
// CLI. Ignoring them keeps PM2 files loadable; none changes what runs or
// how it stops. Every other key is a setting (tend.Settings).
var ignoredKeys = map[string]bool{
	"source_map_support": true, "vizion": true, "pmx": true, "automation": true, "treekill": true, "force": true,
}

// unsupportedKeys are PM2 keys that tend does not implement. They are errors
// rather than silently ignored because each one changes what the app sees
// (its environment, where its logs go), so ignoring it would run
// the app differently from what the file asks for.
var unsupportedKeys = map[string]bool{
	"filter_env": true, "append_env_to_name": true, "node_version": true,
	"log_file": true, "log": true, "disable_logs": true,
	"pid_file": true, "pid": true,
	"name_prefix": true, "execute_command": true, "watch_options": true,
}

// topKeys are the keys allowed at the top level of a file.
var topKeys = []string{"apps", "deploy"}

// isScriptKey reports whether key is script or one of its aliases, which
// marks a top-level mapping as a single app.
func isScriptKey(key string) bool {
	st, ok := tend.Lookup(key)
	return ok && st.Key == "script"
}

// suggest returns the candidate closest to key, or "" when none is close
// enough to be a likely typo.
func suggest(key string, candidates []string) string {
	best, bestD := "", -1
	lk := strings.ToLower(key)
	for _, c := range candidates {
		d := editDistance(lk, strings.ToLower(c))
		if bestD < 0 || d < bestD || (d == bestD && c < best) {
			best, bestD = c, d
		}
	}
	// Two edits catch a transposition or a slip of two keys; beyond a third
	// of the key's length the "suggestion" is usually another word.
	if bestD < 0 || bestD > 2 || bestD > len(key)/3+1 {
		return ""
	}
	return best
}

// appKeyNames returns every accepted per-app key, for suggestions.
func appKeyNames() []string {
	var names []string
	for _, st := range tend.Settings {
		names = append(names, st.Key)
		names = append(names, st.Aliases...)
	}
	for k := range ignoredKeys {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// editDistance is the Levenshtein distance between a and b, in bytes: keys
// are ASCII.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
