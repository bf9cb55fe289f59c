package cgroup

import (
	"slices"
	"testing"
)

// mountinfo escapes a space as \040; /proc/self/cgroup does not.
func TestAncestorsSpaces(t *testing.T) {
	mountinfo := []byte("30 25 0:26 /docker/a\\040b /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct\n" +
		"31 25 0:27 / /mnt/my\\040cg rw - cgroup2 cgroup2 rw\n")
	self := []byte("4:cpu,cpuacct:/docker/a b/x\n0::/user.slice/app one.service\n")
	got := Ancestors(self, mountinfo, "cpu")
	want := []string{"/sys/fs/cgroup/cpu,cpuacct/x", "/sys/fs/cgroup/cpu,cpuacct", "/mnt/my cg/user.slice/app one.service", "/mnt/my cg/user.slice", "/mnt/my cg"}
	if !slices.Equal(got, want) {
		t.Fatalf("Ancestors = %q\nwant        %q", got, want)
	}
}

func TestAncestorsRootAndNamed(t *testing.T) {
	mountinfo := []byte("31 25 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n" +
		"32 25 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n")
	got := Ancestors([]byte("1:name=systemd:/init.scope\n0::/\n"), mountinfo, "cpu")
	t.Logf("%q", got)
	if !slices.Equal(got, []string{"/sys/fs/cgroup"}) {
		t.Fatalf("got %q", got)
	}
}
