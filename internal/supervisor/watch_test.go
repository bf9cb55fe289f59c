package supervisor

import "testing"

func TestWatchIgnoresOwnLogs(t *testing.T) {
	// An app's out_file out.txt, with its per-instance and rotated names.
	w := &watcher{own: []string{"/app/out"}}
	for _, tt := range []struct {
		path    string
		ignored bool
	}{
		{"/app/out.txt", true},
		{"/app/out-1.txt", true},
		{"/app/out.txt.1.gz", true},
		{"/app/out__2026-03-01_00-00-00.txt", true},
		{"/app/out-1__2026-03-01_00-00-00_001.txt.gz", true},
		{"/app/outlet.js", false},
		{"/app/out_of_band.js", false},
	} {
		if got := w.ignored(tt.path); got != tt.ignored {
			t.Errorf("ignored(%s) = %v, want %v", tt.path, got, tt.ignored)
		}
	}
}
