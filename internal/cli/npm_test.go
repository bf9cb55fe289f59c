package cli_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// npmModules returns a node_modules directory holding pkgs (exact
// "name@version" specs), installed from the npm registry on first use into
// the user's cache directory and reused after: a test that needs them
// fails, not skips, when they cannot be installed, since what it tests
// would otherwise go untested. Concurrent test processes each install
// into a directory of their own and the first rename wins.
func npmModules(t *testing.T, pkgs ...string) string {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatalf("no cache directory for npm packages: %v", err)
	}
	dir := filepath.Join(cache, "tend-test", "npm", strings.NewReplacer("/", "_", "@", "-").Replace(strings.Join(pkgs, "+")))
	mods := filepath.Join(dir, "node_modules")
	if installed(mods, pkgs) {
		return mods
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "install-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	// Three minutes covers a cold npm cache on a slow link; the packages
	// these tests use are a few MB.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args := append([]string{"install", "--no-audit", "--no-fund", "--no-save", "--prefix", tmp}, pkgs...)
	out, err := exec.CommandContext(ctx, "npm", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("npm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if err := os.Rename(tmp, dir); err != nil && !installed(mods, pkgs) {
		t.Fatalf("keeping the npm packages in %s: %v", dir, err)
	}
	if !installed(mods, pkgs) {
		t.Fatalf("npm installed %v, but %s lacks them", pkgs, mods)
	}
	return mods
}

// installed reports whether mods has every package of pkgs.
func installed(mods string, pkgs []string) bool {
	for _, p := range pkgs {
		name := p[:strings.LastIndexByte(p, '@')]
		if _, err := os.Stat(filepath.Join(mods, name, "package.json")); err != nil {
			return false
		}
	}
	return true
}
