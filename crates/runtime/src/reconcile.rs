//! Finding and cleaning leftovers after a crash.
//!
//! If the server dies, containers keep running and mounts, loop devices,
//! upper layers and cgroups stay behind. On restart the server calls
//! [`Runtime::reconcile`] with the set of environments its store says should
//! exist; everything else owned by this runtime instance is removed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::cmd;
use crate::environment::{EnvironmentId, Runtime};
use crate::error::{Error, Result};
use crate::home;
use crate::mounts;
use crate::network;

/// What [`Runtime::reconcile`] found and did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Containers that were not wanted and were killed and deleted.
    pub containers_removed: Vec<String>,
    /// Wanted containers left untouched.
    pub kept: Vec<String>,
    /// Environment directories (overlay layers, bundle) removed.
    pub directories_removed: Vec<PathBuf>,
    /// Mounts under the data directory removed outside of an environment.
    pub mounts_removed: Vec<PathBuf>,
    /// Loop devices over home volumes or root disks that nothing had
    /// mounted.
    pub loops_detached: Vec<String>,
    /// Empty cgroups of environments without a container.
    pub cgroups_removed: Vec<PathBuf>,
    /// Firewall rules (by tag) of environments without a container.
    pub rules_removed: Vec<String>,
    /// Problems that did not stop the sweep (each names its object).
    pub errors: Vec<String>,
}

impl Runtime {
    /// Removes every container, mount, loop device, overlay layer and cgroup
    /// of this runtime that does not belong to an environment for which
    /// `keep` returns true. Wanted environments whose container is gone have
    /// their stale layers removed too (they must be created again).
    pub fn reconcile(&self, keep: &dyn Fn(&EnvironmentId) -> bool) -> Result<ReconcileReport> {
        let _span = tracing::info_span!("runtime.reconcile").entered();
        let mut report = ReconcileReport::default();
        let mut alive: BTreeSet<String> = BTreeSet::new();

        for c in self.runc().list()? {
            match EnvironmentId::new(c.id.clone()) {
                Ok(id) if keep(&id) => {
                    alive.insert(c.id.clone());
                    report.kept.push(c.id);
                }
                Ok(id) => match self.stop(&id) {
                    Ok(()) => report.containers_removed.push(c.id),
                    Err(e) => report.errors.push(format!("container {}: {e}", c.id)),
                },
                Err(_) => {
                    // Not a name this runtime creates; still under our
                    // private state root, so it is ours to remove.
                    match self.runc().delete(&c.id) {
                        Ok(()) => report.containers_removed.push(c.id),
                        Err(e) => report.errors.push(format!("container {}: {e}", c.id)),
                    }
                }
            }
        }

        let envs = self.envs_dir();
        for name in dir_names(&envs)? {
            if alive.contains(&name) {
                continue;
            }
            let dir = envs.join(&name);
            let result = match EnvironmentId::new(name.clone()) {
                Ok(id) => self.teardown(&id),
                Err(_) => remove_dir_unmounted(&dir),
            };
            match result {
                Ok(()) => report.directories_removed.push(dir),
                Err(e) => report.errors.push(format!("{}: {e}", dir.display())),
            }
        }

        // Anything else mounted under the data directory that is not part of
        // a kept environment.
        let data = &self.config().data_dir;
        for m in mounts::under(data)? {
            let in_alive = alive.iter().any(|a| m.target.starts_with(envs.join(a)));
            if !in_alive {
                match mounts::unmount_all(&m.target) {
                    Ok(()) => report.mounts_removed.push(m.target),
                    Err(e) => report.errors.push(e.to_string()),
                }
            }
        }

        // Loop devices over our home volumes and root disks that nothing
        // mounts (a crash between losetup and mount, or a lazy unmount that
        // finished). A root disk's image may already be deleted; losetup
        // still names its old path.
        let homes = data.join("homes");
        let mounted_sources: BTreeSet<String> =
            mounts::current()?.into_iter().map(|m| m.source).collect();
        for (dev, file) in home::all_loops(&self.host().losetup)? {
            let ours = file.starts_with(&homes) || file.starts_with(&envs);
            if ours && !mounted_sources.contains(&dev) {
                match cmd::run(&mut cmd::command(
                    &self.host().losetup,
                    ["-d", dev.as_str()],
                )) {
                    Ok(_) => report.loops_detached.push(dev),
                    Err(e) => report.errors.push(e.to_string()),
                }
            }
        }

        // Half-written home volumes and root disk templates.
        let templates = data.join("templates");
        let partial = file_names(&homes)?
            .into_iter()
            .map(|n| homes.join(n))
            .chain(
                file_names(&templates)?
                    .into_iter()
                    .map(|n| templates.join(n)),
            );
        for p in partial {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            if name.contains(".partial-") {
                if let Err(e) = std::fs::remove_file(&p) {
                    report.errors.push(format!("{}: {e}", p.display()));
                }
            }
        }

        for dir in self.cgroup_parents() {
            for name in dir_names(&dir)? {
                if alive.contains(&name) {
                    continue;
                }
                let cg = dir.join(&name);
                // rmdir removes an empty cgroup; one with processes refuses
                // (EBUSY), which is reported rather than forced.
                match std::fs::remove_dir(&cg) {
                    Ok(()) => report.cgroups_removed.push(cg),
                    Err(e) => report.errors.push(format!("cgroup {}: {e}", cg.display())),
                }
            }
        }

        // Rules are swept even when networking is now disabled: they may
        // date from a run that had it.
        let tools = self
            .net_tools()
            .cloned()
            .or_else(|| network::NetTools::find().ok());
        if let Some(tools) = &tools {
            match network::sweep(tools, &self.config().cgroup_parent, &alive) {
                Ok(tags) => report.rules_removed = tags,
                Err(e) => report.errors.push(format!("firewall rules: {e}")),
            }
        }

        tracing::info!(
            removed = report.containers_removed.len(),
            kept = report.kept.len(),
            errors = report.errors.len(),
            "reconciled"
        );
        Ok(report)
    }

    /// The environments' parent cgroup in every hierarchy where it exists.
    pub(crate) fn cgroup_parents(&self) -> Vec<PathBuf> {
        let root = Path::new("/sys/fs/cgroup");
        let parent = &self.config().cgroup_parent;
        let mut out = Vec::new();
        let direct = root.join(parent);
        if direct.is_dir() {
            out.push(direct);
        }
        if let Ok(rd) = std::fs::read_dir(root) {
            for e in rd.flatten() {
                let p = e.path().join(parent);
                if p.is_dir() {
                    out.push(p);
                }
            }
        }
        out
    }

    /// Removes the (empty) parent cgroup of all environments from every
    /// hierarchy; for uninstalling and for tests. Fails while an
    /// environment's cgroup still exists.
    pub fn remove_cgroup_parent(&self) -> Result<()> {
        for p in self.cgroup_parents() {
            std::fs::remove_dir(&p).map_err(|e| Error::io("removing cgroup", &p, e))?;
        }
        Ok(())
    }
}

fn dir_names(dir: &Path) -> Result<Vec<String>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("listing", dir, e)),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|e| Error::io("listing", dir, e))?;
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            out.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    Ok(out)
}

fn file_names(dir: &Path) -> Result<Vec<String>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("listing", dir, e)),
    };
    Ok(rd
        .flatten()
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect())
}

fn remove_dir_unmounted(dir: &Path) -> Result<()> {
    for m in mounts::under(dir)? {
        mounts::unmount_all(&m.target)?;
    }
    if !mounts::under(dir)?.is_empty() {
        return Err(Error::Sys {
            action: "still mounted after unmount",
            path: dir.to_path_buf(),
            source: nix::errno::Errno::EBUSY,
        });
    }
    std::fs::remove_dir_all(dir).map_err(|e| Error::io("removing", dir, e))
}
