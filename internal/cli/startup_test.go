package cli_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeSystemctl puts on h's PATH a systemctl that records its arguments,
// one command a line, in the file it returns. It answers
// is-system-running with running, or with offline when SYSTEMCTL_OFFLINE
// is set, as where systemd is not the init; with SYSTEMCTL_FAIL set, every
// other command fails as there. systemd cannot run in
// the container the tests run in, so this script is the one stand-in for
// the OS these tests allow: what tend asks of systemctl is checked, the
// unit file itself is real and checked by systemd-analyze where it is.
func fakeSystemctl(t *testing.T, h *harness) string {
	t.Helper()
	dir := t.TempDir()
	log := filepath.Join(dir, "calls")
	script := "#!/bin/sh\necho \"$*\" >> " + log + "\n" +
		"if [ \"$1\" = is-system-running ]; then\n" +
		"  if [ -n \"$SYSTEMCTL_OFFLINE\" ]; then echo offline; exit 1; fi\n" +
		"  echo running; exit 0\n" +
		"fi\n" +
		"if [ -n \"$SYSTEMCTL_FAIL\" ]; then echo 'Failed to connect to bus: Host is down' >&2; exit 1; fi\n"
	if err := os.WriteFile(filepath.Join(dir, "systemctl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	h.env = append(h.env, "PATH="+dir+":"+os.Getenv("PATH"))
	return log
}

// calls returns the systemctl commands recorded since the last call.
func calls(t *testing.T, log string) []string {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	os.Remove(log)
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func sameCalls(got []string, want ...string) bool {
	return strings.Join(got, "|") == strings.Join(want, "|")
}

func TestStartupInstall(t *testing.T) {
	h := newHarness(t)
	log := fakeSystemctl(t, h)
	dir := t.TempDir()
	path := filepath.Join(dir, "apps.service")
	unit := h.ok("startup", "--service-name", "apps")
	install := []string{"startup", "--install", "--unit-dir", dir, "--service-name", "apps"}

	h.ok(install...)
	b, err := os.ReadFile(path)
	if err != nil || string(b) != unit {
		t.Fatalf("the installed unit (%v):\n%s\nwant what tend startup prints:\n%s", err, b, unit)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Errorf("the unit's mode is %04o, want 0644", fi.Mode().Perm())
	}
	if got := calls(t, log); !sameCalls(got, "is-system-running", "daemon-reload", "enable --now apps") {
		t.Errorf("systemctl calls: %q", got)
	}
	if analyze, err := exec.LookPath("systemd-analyze"); err == nil {
		if out, err := exec.Command(analyze, "verify", path).CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", path, err, out)
		}
	}

	// The same unit again: nothing to write, enabled all the same.
	if errOut := h.fail(0, install...); !strings.Contains(errOut, "already this unit") {
		t.Errorf("installing the same unit again says:\n%s", errOut)
	}
	calls(t, log)

	// Another unit of that name is kept, unless --force.
	os.WriteFile(path, []byte("[Service]\nExecStart=/bin/true\n"), 0o644)
	if errOut := h.fail(1, install...); !strings.Contains(errOut, path+" exists and is another unit") || !strings.Contains(errOut, "--force") {
		t.Errorf("over another unit:\n%s", errOut)
	}
	if b, _ := os.ReadFile(path); string(b) != "[Service]\nExecStart=/bin/true\n" {
		t.Errorf("a refused install changed the file:\n%s", b)
	}
	if got := calls(t, log); !sameCalls(got, "") {
		t.Errorf("a refused install ran systemctl %q", got)
	}
	h.ok(append(install, "--force")...)
	if b, _ := os.ReadFile(path); string(b) != unit {
		t.Errorf("--force did not replace the unit:\n%s", b)
	}
	calls(t, log)

	// A symlink planted at the unit's path is never written through.
	target := filepath.Join(t.TempDir(), "precious")
	os.WriteFile(target, []byte("precious\n"), 0o644)
	os.Remove(path)
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	if errOut := h.fail(1, install...); !strings.Contains(errOut, "is a symlink") {
		t.Errorf("over a symlink:\n%s", errOut)
	}
	h.ok(append(install, "--force")...)
	if b, _ := os.ReadFile(target); string(b) != "precious\n" {
		t.Errorf("the install wrote through the symlink: %s", b)
	}
	if fi, _ := os.Lstat(path); !fi.Mode().IsRegular() {
		t.Errorf("--force left %s as %s, want the unit file in place of the link", path, fi.Mode())
	}
	calls(t, log)

	// A daemon of this home runs: the unit is enabled, not started.
	h.ok("ls")
	if errOut := h.fail(0, install...); !strings.Contains(errOut, "enabled, not started") || !strings.Contains(errOut, "systemctl start apps") {
		t.Errorf("with a daemon running:\n%s", errOut)
	}
	if got := calls(t, log); !sameCalls(got, "is-system-running", "daemon-reload", "enable apps") {
		t.Errorf("systemctl calls with a daemon running: %q", got)
	}

	// tend unstartup disables, stops and removes it.
	uninstall := []string{"unstartup", "--unit-dir", dir, "--service-name", "apps"}
	h.ok(uninstall...)
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("unstartup left %s: %v", path, err)
	}
	if got := calls(t, log); !sameCalls(got, "is-system-running", "disable --now apps", "daemon-reload") {
		t.Errorf("systemctl calls of unstartup: %q", got)
	}
	if errOut := h.fail(3, uninstall...); !strings.Contains(errOut, "no unit at "+path) {
		t.Errorf("unstartup with nothing installed:\n%s", errOut)
	}

	// A file tend did not write stays, unless --force.
	os.WriteFile(path, []byte("[Service]\nExecStart=/bin/true\n"), 0o644)
	if errOut := h.fail(1, uninstall...); !strings.Contains(errOut, "not a unit of tend startup") {
		t.Errorf("unstartup of another unit:\n%s", errOut)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("a refused unstartup removed the file: %v", err)
	}
	h.ok(append(uninstall, "--force")...)
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("unstartup --force left %s", path)
	}
}

func TestStartupInstallErrors(t *testing.T) {
	h := newHarness(t)
	log := fakeSystemctl(t, h)
	dir := t.TempDir()
	path := filepath.Join(dir, "apps.service")
	install := []string{"startup", "--install", "--unit-dir", dir, "--service-name", "apps"}

	if errOut := h.fail(2, "startup", "--install", "--unit-dir", dir, "--service-name", "../evil"); !strings.Contains(errOut, `"../evil" is not a systemd unit name`) {
		t.Errorf("a bad service name:\n%s", errOut)
	}
	if errOut := h.fail(1, "startup", "--install", "--unit-dir", filepath.Join(dir, "missing"), "--service-name", "apps"); !strings.Contains(errOut, "writing the unit") {
		t.Errorf("a missing unit directory:\n%s", errOut)
	}

	// systemd does not run: the file is there, the error says what failed.
	h.env = append(h.env, "SYSTEMCTL_FAIL=1")
	if errOut := h.fail(1, install...); !strings.Contains(errOut, "systemctl daemon-reload: exit status 1: Failed to connect to bus") {
		t.Errorf("systemctl failing:\n%s", errOut)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the unit was not written: %v", err)
	}
	if errOut := h.fail(1, "unstartup", "--unit-dir", dir, "--service-name", "apps"); !strings.Contains(errOut, "systemctl disable --now apps") {
		t.Errorf("unstartup with systemctl failing:\n%s", errOut)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("unstartup removed a unit it could not disable: %v", err)
	}
	calls(t, log)

	// Where systemd is not the init (a container, a chroot), only the
	// unit's links are made and removed, for a boot where it is.
	h.env = append(h.env, "SYSTEMCTL_FAIL=", "SYSTEMCTL_OFFLINE=1")
	if errOut := h.fail(0, install...); !strings.Contains(errOut, "systemd does not run here") {
		t.Errorf("install, systemd offline:\n%s", errOut)
	}
	if got := calls(t, log); !sameCalls(got, "is-system-running", "enable apps") {
		t.Errorf("systemctl calls, offline: %q", got)
	}
	h.ok("unstartup", "--unit-dir", dir, "--service-name", "apps")
	if got := calls(t, log); !sameCalls(got, "is-system-running", "disable apps") {
		t.Errorf("systemctl calls of unstartup, offline: %q", got)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("unstartup, offline, left %s", path)
	}

	// No systemctl at all: what to run is said.
	h.env = append(h.env, "PATH="+t.TempDir())
	if errOut := h.fail(0, install...); !strings.Contains(errOut, "systemctl is not on PATH; where systemd runs, run: systemctl daemon-reload && systemctl enable --now apps") {
		t.Errorf("without systemctl:\n%s", errOut)
	}
}
