package container

import (
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"

	"github.com/zviz/zviz/internal/initproc"
	"github.com/zviz/zviz/internal/rootfs"
	"github.com/zviz/zviz/landlock"
	"github.com/zviz/zviz/seccomp"
)

// Features is the runtime-spec features document (features.md): what this
// zviz build implements, from the same tables the code uses.
func Features(version string) *features.Features {
	no, yes := false, true
	actions, ops, flags := seccomp.OCIFeatures()
	ns := make([]string, 0, len(cloneFlag))
	for _, t := range []specs.LinuxNamespaceType{
		specs.CgroupNamespace, specs.IPCNamespace, specs.MountNamespace, specs.NetworkNamespace,
		specs.PIDNamespace, specs.TimeNamespace, specs.UserNamespace, specs.UTSNamespace,
	} {
		if _, ok := cloneFlag[t]; ok {
			ns = append(ns, string(t))
		}
	}
	return &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		MountOptions:  rootfs.MountOptions(),
		Linux: &features.Linux{
			Namespaces:   ns,
			Capabilities: initproc.CapabilityNames(),
			Cgroup:       &features.Cgroup{V1: &no, V2: &yes, Systemd: &yes, SystemdUser: &yes, Rdma: &yes},
			Seccomp: &features.Seccomp{Enabled: &yes, Actions: actions, Operators: ops,
				Archs: []string{"SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"}, KnownFlags: flags, SupportedFlags: flags},
			Apparmor:        &features.Apparmor{Enabled: &no},
			Selinux:         &features.Selinux{Enabled: &no},
			MountExtensions: &features.MountExtensions{IDMap: &features.IDMap{Enabled: &no}},
		},
		Annotations: map[string]string{
			"run.zviz.version":  version,
			"run.zviz.profiles": strings.Join(seccomp.Builtins(), ","),
			"run.zviz.landlock": strconv.Itoa(landlock.ABI()),
		},
	}
}
