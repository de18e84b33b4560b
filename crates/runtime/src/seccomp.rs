//! The seccomp profile of every environment.
//!
//! The profile is *default-allow with a denylist*. A default-deny allowlist
//! (Docker's approach) must track every syscall that glibc, Python, Node.js
//! and friends start using, and a miss shows up as a baffling EPERM in a
//! user's shell; the environment is already confined by a user namespace and
//! a small capability set, so the filter's job is narrower: close the kernel
//! interfaces that are dangerous even to an unprivileged user, or that only
//! make sense for the host, and fail them with `EPERM` so programs print a
//! sensible error.
//!
//! Only the native architecture is listed. A syscall made through another
//! ABI (for example `int 0x80` from 32-bit code on x86-64) then fails the
//! filter's architecture check instead of slipping past a denylist written
//! in native syscall numbers.
//!
//! What stays allowed on purpose:
//! - `setuid`/`setgid`/`setgroups`/`capset` and friends: `sudo` and `su`
//!   inside the environment need them (bounded by the capability set).
//! - `ptrace`, `process_vm_readv`/`writev`: `strace` and `gdb` are normal
//!   tools in a shell; since Linux 4.8 a tracer cannot use ptrace to bypass
//!   seccomp, and the pid namespace limits targets to the environment's own
//!   processes.
//! - `chroot`: used by package tooling; it needs `CAP_SYS_CHROOT` in the
//!   environment's user namespace and cannot escape the mount namespace.

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompBuilder,
    LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};

use crate::error::Result;

/// Syscalls that fail with `EPERM` in every environment, with the reason.
pub const DENIED_SYSCALLS: &[(&str, &str)] = &[
    // Mounting: the environment's filesystem layout is fixed by the runtime.
    // Without CAP_SYS_ADMIN these fail anyway; the filter makes sure a nested
    // user namespace (which would grant it) cannot be used either.
    ("mount", "filesystem layout is fixed by the runtime"),
    ("umount", "filesystem layout is fixed by the runtime"),
    ("umount2", "filesystem layout is fixed by the runtime"),
    ("pivot_root", "filesystem layout is fixed by the runtime"),
    ("move_mount", "new mount API"),
    ("open_tree", "new mount API"),
    ("fsopen", "new mount API"),
    ("fsconfig", "new mount API"),
    ("fsmount", "new mount API"),
    ("fspick", "new mount API"),
    ("mount_setattr", "new mount API"),
    // Namespaces: joining or creating them is how most container escapes and
    // many kernel exploits start (unprivileged user namespaces expose large
    // amounts of kernel code). `clone`/`unshare` are filtered by flag below.
    ("setns", "joining other namespaces"),
    // Kernel code and boot.
    ("kexec_load", "replaces the running kernel"),
    ("kexec_file_load", "replaces the running kernel"),
    ("init_module", "loads kernel code"),
    ("finit_module", "loads kernel code"),
    ("delete_module", "unloads kernel code"),
    ("create_module", "obsolete module API"),
    ("query_module", "obsolete module API"),
    ("get_kernel_syms", "obsolete module API"),
    ("reboot", "host power state"),
    ("swapon", "host memory management"),
    ("swapoff", "host memory management"),
    ("acct", "host-wide process accounting"),
    // Large, frequently exploited kernel surfaces with no use in a shell.
    ("bpf", "eBPF programs and maps"),
    (
        "perf_event_open",
        "performance counters leak host information",
    ),
    (
        "userfaultfd",
        "used to widen kernel race windows in exploits",
    ),
    ("io_uring_setup", "io_uring bypasses syscall filtering"),
    ("io_uring_enter", "io_uring bypasses syscall filtering"),
    ("io_uring_register", "io_uring bypasses syscall filtering"),
    // The kernel keyring is not namespaced.
    ("keyctl", "kernel keyring is not namespaced"),
    ("add_key", "kernel keyring is not namespaced"),
    ("request_key", "kernel keyring is not namespaced"),
    // File handles allow opening any inode of a filesystem, bypassing the
    // mount tree (the "shocker" escape).
    ("open_by_handle_at", "opens files outside the mount tree"),
    ("name_to_handle_at", "pairs with open_by_handle_at"),
    // Host clock and hardware.
    ("settimeofday", "host clock"),
    ("clock_settime", "host clock"),
    ("clock_adjtime", "host clock"),
    ("adjtimex", "host clock"),
    ("stime", "host clock"),
    ("iopl", "raw I/O port access"),
    ("ioperm", "raw I/O port access"),
    ("quotactl", "host filesystem quotas"),
    ("quotactl_fd", "host filesystem quotas"),
    ("lookup_dcookie", "kernel profiling"),
    ("nfsservctl", "kernel NFS server"),
    ("syslog", "kernel log"),
    ("vhangup", "host terminals"),
    ("uselib", "obsolete loader interface"),
    ("_sysctl", "obsolete sysctl interface"),
    ("ustat", "obsolete"),
    ("sysfs", "obsolete"),
    // Modern clone and unshare can create namespaces; clone3 takes its flags
    // in a struct seccomp cannot inspect, so it reports ENOSYS (below) and
    // the C library falls back to clone, whose flags are checked.
];

/// Namespace-creating flags that `clone` and `unshare` may not use.
const NAMESPACE_FLAGS: &[(u64, &str)] = &[
    (0x0002_0000, "CLONE_NEWNS"),
    (0x0200_0000, "CLONE_NEWCGROUP"),
    (0x0400_0000, "CLONE_NEWUTS"),
    (0x0800_0000, "CLONE_NEWIPC"),
    (0x1000_0000, "CLONE_NEWUSER"),
    (0x2000_0000, "CLONE_NEWPID"),
    (0x4000_0000, "CLONE_NEWNET"),
    (0x0000_0080, "CLONE_NEWTIME"),
];

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

/// Builds the profile described in the module documentation.
pub fn profile() -> Result<LinuxSeccomp> {
    let mut rules: Vec<LinuxSyscall> = Vec::new();
    rules.push(
        LinuxSyscallBuilder::default()
            .names(
                DENIED_SYSCALLS
                    .iter()
                    .map(|(n, _)| (*n).to_owned())
                    .collect::<Vec<_>>(),
            )
            .action(LinuxSeccompAction::ScmpActErrno)
            .errno_ret(EPERM)
            .build()?,
    );
    rules.push(
        LinuxSyscallBuilder::default()
            .names(vec!["clone3".to_owned()])
            .action(LinuxSeccompAction::ScmpActErrno)
            .errno_ret(ENOSYS)
            .build()?,
    );
    // One rule per flag: libseccomp cannot express "flags & mask != 0" in a
    // single comparison, but "(flags & bit) == bit" per bit works, and any
    // matching rule denies. The flags are argument 0 of both syscalls on
    // x86-64 and arm64.
    for (bit, _name) in NAMESPACE_FLAGS {
        let arg = LinuxSeccompArgBuilder::default()
            .index(0usize)
            .value(*bit)
            .value_two(*bit)
            .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
            .build()?;
        rules.push(
            LinuxSyscallBuilder::default()
                .names(vec!["clone".to_owned(), "unshare".to_owned()])
                .action(LinuxSeccompAction::ScmpActErrno)
                .errno_ret(EPERM)
                .args(vec![arg])
                .build()?,
        );
    }
    Ok(LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        .architectures(vec![native_arch()])
        .syscalls(rules)
        .build()?)
}

fn native_arch() -> Arch {
    if cfg!(target_arch = "aarch64") {
        Arch::ScmpArchAarch64
    } else if cfg!(target_arch = "riscv64") {
        Arch::ScmpArchRiscv64
    } else if cfg!(target_arch = "s390x") {
        Arch::ScmpArchS390x
    } else if cfg!(target_arch = "powerpc64") {
        Arch::ScmpArchPpc64le
    } else {
        Arch::ScmpArchX86_64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denylist_covers_the_dangerous_ones() {
        let p = profile().expect("profile builds");
        let names: Vec<String> = p
            .syscalls()
            .iter()
            .flatten()
            .flat_map(|r| r.names().clone())
            .collect();
        for must in [
            "mount",
            "kexec_load",
            "init_module",
            "finit_module",
            "bpf",
            "keyctl",
            "open_by_handle_at",
            "reboot",
            "swapon",
            "userfaultfd",
            "perf_event_open",
        ] {
            assert!(names.iter().any(|n| n == must), "{must} missing");
        }
        for allowed in ["setuid", "setresuid", "capset", "ptrace", "execve"] {
            assert!(
                DENIED_SYSCALLS.iter().all(|(n, _)| *n != allowed),
                "{allowed} must stay allowed for sudo/debuggers"
            );
        }
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActAllow);
    }
}
