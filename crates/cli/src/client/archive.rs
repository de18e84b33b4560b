//! Unpacking the archive `cp --recursive` downloads from an environment.
//! Anything running in the environment can build that archive, so it is
//! checked whole before anything is written: an entry that would land
//! outside the destination, a link that points out of it, an entry placed
//! through a symbolic link, or a device refuses the download, with the
//! entry named, and nothing is unpacked.
//!
//! Symbolic links may point anywhere inside the tree (`../lib/x.so` within
//! the tree is common). Their targets are checked by walking them from the
//! link's own directory. Since no entry may lie beneath a symbolic link of
//! the archive, every entry's directory is exactly its archive path, so
//! that walk is exact, except after stepping through another link of the
//! archive: a `..` after that is refused, because it would climb from
//! wherever that link leads.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use tar::EntryType;

/// Why an archive was refused or could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// An entry is not safe to unpack.
    #[error("refused the archive: entry {entry:?} {why}; nothing was unpacked")]
    Refused { entry: String, why: &'static str },
    /// Reading the archive or writing the tree failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

fn refused(entry: &Path, why: &'static str) -> ArchiveError {
    ArchiveError::Refused {
        entry: entry.display().to_string(),
        why,
    }
}

/// An entry's path as plain names (`./` dropped), or `None` if it is
/// absolute or climbs with `..`.
fn plain(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(name) => out.push(name),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Whether a proper ancestor of `path` is one of `links`.
fn beneath_a_link(path: &Path, links: &HashSet<PathBuf>) -> bool {
    path.ancestors()
        .skip(1)
        .any(|a| !a.as_os_str().is_empty() && links.contains(a))
}

/// Whether the symbolic link at `at` pointing to `target` stays inside
/// the tree (see the module's comment).
fn link_stays_inside(at: &Path, target: &Path, links: &HashSet<PathBuf>) -> bool {
    if target.has_root() {
        return false;
    }
    let mut place: Vec<&std::ffi::OsStr> =
        at.parent().map(|p| p.iter().collect()).unwrap_or_default();
    let mut through_a_link = false;
    for c in target.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if through_a_link || place.pop().is_none() {
                    return false;
                }
            }
            Component::Normal(name) => {
                place.push(name);
                if links.contains(&place.iter().collect::<PathBuf>()) {
                    through_a_link = true;
                }
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// Checks every entry of the archive at `file` (see the module's comment).
fn check(file: &Path) -> Result<(), ArchiveError> {
    let mut symlinks = HashSet::new();
    let mut entries = Vec::new();
    let mut archive = tar::Archive::new(std::fs::File::open(file)?);
    for entry in archive.entries()? {
        let entry = entry?;
        let raw = entry.path()?.into_owned();
        let path = plain(&raw).ok_or_else(|| refused(&raw, "lies outside the destination"))?;
        let kind = entry.header().entry_type();
        let link = entry.link_name()?.map(|l| l.into_owned());
        match kind {
            EntryType::Directory => {}
            // PAX global headers carry defaults only and unpack to nothing.
            EntryType::XGlobalHeader => continue,
            _ if path.as_os_str().is_empty() => {
                return Err(refused(&raw, "would replace the destination"))
            }
            EntryType::Regular | EntryType::Continuous => {}
            EntryType::Symlink | EntryType::Link => {
                if link.as_deref().is_none_or(|l| l.as_os_str().is_empty()) {
                    return Err(refused(&raw, "is a link without a target"));
                }
                if kind == EntryType::Symlink {
                    symlinks.insert(path.clone());
                }
            }
            _ => return Err(refused(&raw, "is not a file, a directory or a link")),
        }
        entries.push((raw, path, kind, link));
    }
    for (raw, path, kind, link) in &entries {
        if beneath_a_link(path, &symlinks) {
            return Err(refused(raw, "would be written through a symbolic link"));
        }
        let Some(target) = link else { continue };
        if *kind == EntryType::Symlink {
            if !link_stays_inside(path, target, &symlinks) {
                return Err(refused(raw, "is a symbolic link out of the destination"));
            }
        } else {
            let inside = plain(target)
                .filter(|t| !t.as_os_str().is_empty() && !beneath_a_link(t, &symlinks));
            if inside.is_none() {
                return Err(refused(raw, "is a hard link to a file outside the archive"));
            }
        }
    }
    Ok(())
}

/// Unpacks the tar file `file` into the directory `dest` (created if
/// missing), after checking all of it.
pub fn unpack_tree(file: &Path, dest: &Path) -> Result<(), ArchiveError> {
    check(file)?;
    std::fs::create_dir_all(dest)?;
    let mut archive = tar::Archive::new(std::fs::File::open(file)?);
    // Modes as in the environment, but never set-uid, set-gid or sticky.
    archive.set_preserve_permissions(false);
    archive.unpack(dest)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How an entry of a test archive is made.
    enum Kind<'a> {
        File(&'a str),
        Dir,
        Symlink(&'a str),
        HardLink(&'a str),
        Fifo,
    }

    /// A tar archive written header by header, so that names `tar::Builder`
    /// refuses (`..`, absolute paths) can be put in it, as a hostile
    /// environment could.
    fn archive(dir: &Path, entries: &[(&str, Kind<'_>)]) -> PathBuf {
        let file = dir.join("tree.tar");
        let mut builder = tar::Builder::new(std::fs::File::create(&file).expect("create"));
        for (name, kind) in entries {
            let mut header = tar::Header::new_gnu();
            let data: &[u8] = match kind {
                Kind::File(text) => text.as_bytes(),
                _ => b"",
            };
            let (entry_type, mode, link) = match kind {
                Kind::File(_) => (EntryType::Regular, 0o644, None),
                Kind::Dir => (EntryType::Directory, 0o755, None),
                Kind::Symlink(to) => (EntryType::Symlink, 0o777, Some(*to)),
                Kind::HardLink(to) => (EntryType::Link, 0o644, Some(*to)),
                Kind::Fifo => (EntryType::Fifo, 0o644, None),
            };
            header.set_entry_type(entry_type);
            header.set_mode(mode);
            header.set_size(data.len() as u64);
            let raw = header.as_old_mut();
            raw.name[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(to) = link {
                raw.linkname[..to.len()].copy_from_slice(to.as_bytes());
            }
            header.set_cksum();
            builder.append(&header, data).expect("append");
        }
        builder.finish().expect("finish");
        file
    }

    /// Every path under `dir`, relative, sorted.
    fn tree(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("read_dir") {
                let p = e.expect("entry").path();
                out.push(p.strip_prefix(dir).expect("prefix").display().to_string());
                if p.symlink_metadata().expect("meta").is_dir() {
                    stack.push(p);
                }
            }
        }
        out.sort();
        out
    }

    /// A work directory holding `outside/` (a directory the archive aims
    /// at), `dest/` and the archive.
    struct Work {
        dir: tempfile::TempDir,
    }

    impl Work {
        fn new() -> Work {
            let dir = tempfile::tempdir().expect("tempdir");
            std::fs::create_dir(dir.path().join("outside")).expect("outside");
            std::fs::write(dir.path().join("outside/victim"), "original\n").expect("victim");
            Work { dir }
        }

        fn outside(&self) -> PathBuf {
            self.dir.path().join("outside")
        }

        fn dest(&self) -> PathBuf {
            self.dir.path().join("dest")
        }

        /// Unpacks `entries`, then checks that nothing outside `dest` was
        /// touched and that `dest` was not even created when refused.
        fn unpack(&self, entries: &[(&str, Kind<'_>)]) -> Result<(), ArchiveError> {
            let file = archive(self.dir.path(), entries);
            let result = unpack_tree(&file, &self.dest());
            assert_eq!(tree(&self.outside()), vec!["victim".to_string()]);
            assert_eq!(
                std::fs::read_to_string(self.outside().join("victim")).expect("victim"),
                "original\n"
            );
            let mut top = tree(self.dir.path());
            top.retain(|p| !p.starts_with("outside") && !p.starts_with("dest"));
            assert_eq!(top, vec!["tree.tar".to_string()], "written beside dest");
            if result.is_err() {
                assert!(
                    !self.dest().exists(),
                    "a refused archive unpacked something"
                );
            }
            result
        }

        fn refused(&self, entries: &[(&str, Kind<'_>)], entry: &str, why: &str) {
            match self.unpack(entries) {
                Err(e @ ArchiveError::Refused { .. }) => {
                    let text = e.to_string();
                    assert!(
                        text.contains(&format!("{entry:?}")) && text.contains(why),
                        "{text}"
                    );
                }
                other => panic!("{entry}: expected a refusal, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_plain_tree_with_inner_links_unpacks() {
        let w = Work::new();
        w.unpack(&[
            ("./", Kind::Dir),
            ("./top.txt", Kind::File("top\n")),
            ("./lib/", Kind::Dir),
            ("./lib/x.so", Kind::File("x\n")),
            ("./bin/", Kind::Dir),
            ("./bin/x.so", Kind::Symlink("../lib/x.so")),
            ("./here", Kind::Symlink(".")),
            ("./lib/again", Kind::HardLink("./lib/x.so")),
        ])
        .expect("a plain tree");
        assert_eq!(
            std::fs::read_to_string(w.dest().join("bin/x.so")).expect("through the link"),
            "x\n"
        );
        assert_eq!(
            std::fs::read_to_string(w.dest().join("lib/again")).expect("hard link"),
            "x\n"
        );
    }

    #[test]
    fn hostile_archives_are_refused_whole() {
        // Names that climb out, or are absolute.
        let w = Work::new();
        w.refused(
            &[
                ("./ok.txt", Kind::File("fine\n")),
                ("../escape", Kind::File("x")),
            ],
            "../escape",
            "outside the destination",
        );
        let w = Work::new();
        w.refused(
            &[
                ("./ok.txt", Kind::File("fine\n")),
                ("./a/../../escape", Kind::File("x")),
            ],
            "./a/../../escape",
            "outside the destination",
        );
        let w = Work::new();
        let absolute = w.outside().join("x").display().to_string();
        w.refused(
            &[
                ("./ok.txt", Kind::File("fine\n")),
                (&absolute, Kind::File("x")),
            ],
            &absolute,
            "outside the destination",
        );
        // A link out, then a file written through it.
        let w = Work::new();
        let out = w.outside().display().to_string();
        w.refused(
            &[
                ("./link", Kind::Symlink(&out)),
                ("./link/file", Kind::File("x")),
            ],
            "./link",
            "symbolic link out of the destination",
        );
        // A relative link whose target climbs out.
        let w = Work::new();
        w.refused(
            &[
                ("./sub/", Kind::Dir),
                ("./sub/link", Kind::Symlink("../../outside")),
            ],
            "./sub/link",
            "symbolic link out of the destination",
        );
        // Writing through a link is refused even when it points inside: it
        // would make the link checks inexact.
        let w = Work::new();
        w.refused(
            &[
                ("./sub/", Kind::Dir),
                ("./in", Kind::Symlink("sub")),
                ("./in/file", Kind::File("x")),
            ],
            "./in/file",
            "written through a symbolic link",
        );
        // Links chained to climb further than they seem to.
        let w = Work::new();
        w.refused(
            &[
                ("./q", Kind::Symlink(".")),
                ("./r", Kind::Symlink("q/q/q/../../..")),
            ],
            "./r",
            "symbolic link out of the destination",
        );
        // Hard links to a file outside, by absolute and relative names.
        let w = Work::new();
        let victim = w.outside().join("victim").display().to_string();
        w.refused(
            &[("./hard", Kind::HardLink(&victim))],
            "./hard",
            "hard link to a file outside",
        );
        let w = Work::new();
        w.refused(
            &[("./hard", Kind::HardLink("../outside/victim"))],
            "./hard",
            "hard link to a file outside",
        );
        // Something else in the destination's own place.
        let w = Work::new();
        w.refused(
            &[("./", Kind::Symlink("sub"))],
            "./",
            "replace the destination",
        );
        // Devices and pipes are not part of a tree to copy.
        let w = Work::new();
        w.refused(&[("./pipe", Kind::Fifo)], "./pipe", "not a file");
    }
}
