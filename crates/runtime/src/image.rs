//! Building environment images: the default Debian image and the minimal
//! busybox test image.
//!
//! An image is a plain root filesystem directory, owned by host root, ready
//! for [`Runtime::import_image`](crate::Runtime::import_image) (which copies
//! it and shifts its ownership into an environment's id range).
//!
//! # The default image
//!
//! `debootstrap --variant=minbase` of Debian stable (bookworm), then the
//! Debian packages of `images/default/packages.txt` with
//! `apt-get install --no-install-recommends`, then the Python packages of
//! the hashed lock `images/default/pip-requirements.lock` (the AWS CLI,
//! boto3 and their dependencies, generated from `pip-packages.txt` by
//! `scripts/lock-image-python.sh`) from PyPI into the system Python, wheels
//! only and each checked against its pinned SHA-256, then the `cloudshell-user` account with passwordless
//! sudo, the login banner and prompt, and a cleanup of caches and
//! documentation. The recipe files are compiled into the binary, so an
//! installed `seashell` builds the same image as a source checkout.
//!
//! # Safety of the build
//!
//! Every build happens in a temporary directory next to the output
//! (`.NAME.partial-PID`) that is renamed onto the output name only when the
//! image is complete, so the output name only ever holds a complete image.
//! An existing image is reused unless a rebuild is forced; a forced rebuild
//! swaps the new tree in atomically (`renameat2(RENAME_EXCHANGE)`) and then
//! deletes the old one. A lock file (`.NAME.lock`) serialises builds of one
//! output; the build holding it removes what interrupted builds left behind,
//! unmounting anything still mounted inside first so that no deletion ever
//! crosses into a host filesystem.
//!
//! # Image on first use
//!
//! [`ensure`] is what the server calls at start: it returns at once when
//! the output holds a complete image (checked against the digest the image
//! records), waits for a build another process is running, and otherwise
//! builds, replacing an incomplete image of the same kind.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::fcntl::{Flock, FlockArg, RenameFlags};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use sha2::{Digest, Sha256};

use crate::cmd;
use crate::error::{Error, Result};

/// Path, relative to an image's root, of the file describing the image
/// (`KEY=value` lines, like `/etc/os-release`).
pub const IMAGE_INFO_FILE: &str = "etc/seashell-image";

/// Path, relative to an image's root, of the list of its installed
/// packages (`name=version` lines, then `pip list --format=freeze`, then
/// `pip-requirements.lock sha256:…`, the digest of the Python lock it was
/// built from), whose SHA-256 is the image's `PACKAGES_DIGEST`.
pub const PACKAGE_LISTING_FILE: &str = "etc/seashell-image.packages";

/// Debian release the default image is built from.
pub const DEBIAN_SUITE: &str = "bookworm";

/// Mirror used when none is given and the host's apt sources name none.
pub const FALLBACK_MIRROR: &str = "http://deb.debian.org/debian";

/// Debian packages of the default image (`images/default/packages.txt`).
pub const DEFAULT_PACKAGES: &str = include_str!("../../../images/default/packages.txt");

/// Top-level PyPI requirements of the default image
/// (`images/default/pip-packages.txt`), edited by hand; the build installs
/// [`DEFAULT_PIP_LOCK`], which is generated from it.
pub const DEFAULT_PIP_PACKAGES: &str = include_str!("../../../images/default/pip-packages.txt");

/// The hashed lock of the default image's Python packages
/// (`images/default/pip-requirements.lock`): every package of the closure of
/// [`DEFAULT_PIP_PACKAGES`] pinned `name==version` with the SHA-256 of each
/// of its wheels. `scripts/lock-image-python.sh` regenerates it.
pub const DEFAULT_PIP_LOCK: &str = include_str!("../../../images/default/pip-requirements.lock");

/// Where the lock is copied inside the tree for pip (`/tmp`, emptied by
/// the cleanup).
const PIP_LOCK_IN_TREE: &str = "tmp/seashell-pip-requirements.lock";

/// Name under which the package listing records the lock's digest.
const PIP_LOCK_LISTING_NAME: &str = "pip-requirements.lock";

const MOTD: &str = include_str!("../../../images/default/motd");
const PROFILE: &str = include_str!("../../../images/default/profile.sh");
const SUDOERS: &str = include_str!("../../../images/default/sudoers");
const SKEL_BASHRC: &str = include_str!("../../../images/default/skel-bashrc");
const MINIMAL_SCRIPT: &str = include_str!("../../../images/minimal/build.sh");

/// The environment's user, as DESIGN and the agent expect it.
const USER: &str = "cloudshell-user";
const USER_ID: u32 = 1000;

/// The host's CA bundle (Debian's `ca-certificates` path).
const HOST_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Proxy variables handed from the host to apt and pip inside the tree.
const PROXY_VARS: &[&str] = &[
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
];

/// Lines of command output kept for error messages.
const TAIL_LINES: usize = 25;

/// PATH of commands run inside the image while it is built.
const CHROOT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Which image to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// The Debian image environments run by default (needs network, minutes).
    Default,
    /// The busybox test image of `images/minimal/build.sh` (seconds, offline).
    Minimal,
}

impl ImageKind {
    /// The `NAME` recorded in the image's [`IMAGE_INFO_FILE`].
    pub fn image_name(self) -> &'static str {
        match self {
            ImageKind::Default => "seashell-default",
            ImageKind::Minimal => "seashell-minimal",
        }
    }
}

/// What to build and where.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Which image.
    pub kind: ImageKind,
    /// The directory that will hold the root filesystem.
    pub output: PathBuf,
    /// Rebuild even if `output` already holds a complete image of this kind.
    pub force: bool,
    /// Debian mirror for the default image; `None` takes the first Debian
    /// mirror of the host's apt sources, else [`FALLBACK_MIRROR`].
    pub mirror: Option<String>,
}

/// Whether [`build`] produced a new image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildOutcome {
    /// A new image was built and moved into place.
    Built,
    /// The output already held a complete image of the requested kind.
    Reused,
}

/// Result of [`build`].
#[derive(Debug, Clone)]
pub struct BuildReport {
    /// Built or reused.
    pub outcome: BuildOutcome,
    /// The image directory (the requested output).
    pub path: PathBuf,
    /// The image's description, read back from [`IMAGE_INFO_FILE`].
    pub info: ImageInfo,
}

/// The contents of an image's [`IMAGE_INFO_FILE`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// Image name, e.g. `seashell-default`.
    pub name: String,
    /// Version of Seashell that built it.
    pub version: String,
    /// Build time, UTC, RFC 3339.
    pub build_date: String,
    /// `sha256:` digest of the image's installed package list.
    pub packages_digest: String,
}

impl ImageInfo {
    /// Reads the description of the image rooted at `root`; `Ok(None)` if it
    /// has none (not an image built by Seashell).
    pub fn read(root: &Path) -> Result<Option<ImageInfo>> {
        let path = root.join(IMAGE_INFO_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("reading", &path, e)),
        };
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .map(|v| v.trim().trim_matches('"').to_owned())
                .ok_or_else(|| Error::Parse {
                    what: "image description",
                    detail: format!("{}: no {key}", path.display()),
                })
        };
        Ok(Some(ImageInfo {
            name: field("NAME")?,
            version: field("VERSION")?,
            build_date: field("BUILD_DATE")?,
            packages_digest: field("PACKAGES_DIGEST")?,
        }))
    }

    fn render(&self) -> String {
        format!(
            "NAME={}\nVERSION={}\nBUILD_DATE={}\nPACKAGES_DIGEST={}\n",
            self.name, self.version, self.build_date, self.packages_digest
        )
    }
}

/// Receives progress of a [`build`]: numbered steps, and the output lines of
/// the commands each step runs.
pub trait Progress {
    /// Step `index` (1-based) of `total` starts.
    fn step(&mut self, index: usize, total: usize, title: &str);
    /// One line of output of the running step's commands.
    fn output(&mut self, line: &str);
    /// The current step finished successfully after `elapsed`.
    fn step_done(&mut self, elapsed: Duration);
}

/// A [`Progress`] that discards everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn step(&mut self, _: usize, _: usize, _: &str) {}
    fn output(&mut self, _: &str) {}
    fn step_done(&mut self, _: Duration) {}
}

/// Builds the image described by `options`, or reuses the one already there.
///
/// Must run as root: debootstrap, chroot and the ownership of the image's
/// files need it. The full output of every command goes to
/// `OUTPUT.build.log` next to the output; errors carry its last lines.
pub fn build(options: &BuildOptions, progress: &mut dyn Progress) -> Result<BuildReport> {
    build_with(options, progress, Mode::Build)
}

/// Makes sure `options.output` holds a complete image of `options.kind`,
/// building it only if it does not: what the server calls at start, so the
/// first environment has an image without a separate `seashell image build`.
///
/// - A complete image is reused at once, without taking the build lock or
///   writing anything. Complete means: its [`IMAGE_INFO_FILE`] names the
///   requested kind, its shell (`bin/sh`) exists, and the packages digest it
///   records still matches what it describes (the package list of the
///   default image, the busybox binary of the minimal one), and a default
///   image was built from this binary's Python lock ([`DEFAULT_PIP_LOCK`]).
/// - A missing image is built as [`build`] builds it.
/// - An image of the right kind that is not complete (damaged, or cut short
///   by something other than the build) is rebuilt and swapped in
///   atomically; `options.force` is not consulted.
/// - While another build of the same output runs, this waits for it (and
///   then normally finds its image complete) instead of failing.
/// - A directory holding another kind of image, or one not built by
///   Seashell, is an error, as with [`build`]: it is never replaced.
///
/// Must run as root when it has to build.
pub fn ensure(options: &BuildOptions, progress: &mut dyn Progress) -> Result<BuildReport> {
    let _span = tracing::info_span!(
        "image.ensure",
        image = options.kind.image_name(),
        output = %options.output.display()
    )
    .entered();
    let output = absolute(&options.output)?;
    if let Some(info) = complete(&output, options.kind)? {
        return Ok(BuildReport {
            outcome: BuildOutcome::Reused,
            path: output,
            info,
        });
    }
    tracing::info!("the image is missing or incomplete; building it");
    build_with(options, progress, Mode::Ensure)
}

/// Whether `root` holds a complete image of `kind` (see [`ensure`]); its
/// description if so.
pub fn complete(root: &Path, kind: ImageKind) -> Result<Option<ImageInfo>> {
    match existing(root)? {
        Existing::Image(info) if info.name == kind.image_name() && verify(root, kind, &info)? => {
            Ok(Some(info))
        }
        _ => Ok(None),
    }
}

/// Checks an image's contents against its description.
fn verify(root: &Path, kind: ImageKind, info: &ImageInfo) -> Result<bool> {
    if std::fs::symlink_metadata(root.join("bin/sh")).is_err() {
        return Ok(false);
    }
    let listing = match kind {
        ImageKind::Default => {
            let p = root.join(PACKAGE_LISTING_FILE);
            let listing = match std::fs::read(&p) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(Error::io("reading", &p, e)),
            };
            // The Python packages are pinned by the lock compiled into this
            // binary; an image built from another lock (or before there was
            // one) does not hold the software this binary would install, so
            // it counts as incomplete and `ensure` replaces it.
            let wanted = pip_lock_listing_line(DEFAULT_PIP_LOCK);
            if !String::from_utf8_lossy(&listing)
                .lines()
                .any(|l| l == wanted.trim_end())
            {
                tracing::info!(
                    image = %root.display(),
                    "the image was not built from this binary's Python lock"
                );
                return Ok(false);
            }
            listing
        }
        ImageKind::Minimal => {
            let p = root.join("bin/busybox");
            match std::fs::read(&p) {
                Ok(b) => minimal_listing(&b).into_bytes(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(Error::io("reading", &p, e)),
            }
        }
    };
    Ok(packages_digest(&listing) == info.packages_digest)
}

/// The package listing of the minimal image: its one binary.
fn minimal_listing(busybox: &[u8]) -> String {
    format!("busybox sha256:{}\n", hex(&Sha256::digest(busybox)))
}

fn packages_digest(listing: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(listing)))
}

/// The line of the default image's package listing that names the Python
/// lock it was built from.
fn pip_lock_listing_line(lock: &str) -> String {
    format!(
        "{PIP_LOCK_LISTING_NAME} sha256:{}\n",
        hex(&Sha256::digest(lock.as_bytes()))
    )
}

/// One requirement of a hashed pip lock: `name==version` and the SHA-256
/// digests pip accepts for its files.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LockedPackage {
    name: String,
    version: String,
    sha256: Vec<String>,
}

/// Parses a lock as `scripts/lock-image-python.sh` writes it, strictly:
/// every requirement is `name==version` followed only by
/// `--hash=sha256:HEX` options (at least one), lines may continue with a
/// trailing `\`, and `#` starts a comment. Anything else (a range, a URL,
/// an option, a marker, a name twice) is refused, so nothing but pinned,
/// hashed files can reach `pip install --require-hashes`.
fn parse_pip_lock(text: &str) -> Result<Vec<LockedPackage>> {
    let bad = |detail: String| Error::Parse {
        what: "the Python lock (pip-requirements.lock)",
        detail,
    };
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        // pip's comment rule: `#` at the start or after whitespace.
        let line = match line.find('#') {
            Some(0) => "",
            Some(i) if line[..i].ends_with(char::is_whitespace) => &line[..i],
            _ => line,
        };
        match line.trim_end().strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                logical.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.trim().is_empty() {
        return Err(bad(format!(
            "ends inside a continued line: {}",
            current.trim()
        )));
    }
    let mut packages: Vec<LockedPackage> = Vec::new();
    for line in logical {
        let mut words = line.split_whitespace();
        let Some(pin) = words.next() else { continue };
        let (name, version) = pin
            .split_once("==")
            .filter(|(n, v)| {
                !n.is_empty()
                    && n.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
                    && !v.is_empty()
                    && v.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._+!".contains(c))
            })
            .ok_or_else(|| bad(format!("{pin:?} is not pinned as name==version")))?;
        let mut sha256 = Vec::new();
        for word in words {
            let digest = word
                .strip_prefix("--hash=sha256:")
                .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
                .ok_or_else(|| {
                    bad(format!(
                        "{pin}: {word:?} is not --hash=sha256:<64 hex digits>"
                    ))
                })?;
            sha256.push(digest.to_ascii_lowercase());
        }
        if sha256.is_empty() {
            return Err(bad(format!("{pin} has no --hash=sha256:")));
        }
        let name = canonical_python_name(name);
        if packages.iter().any(|p| p.name == name) {
            return Err(bad(format!("{name} is pinned twice")));
        }
        packages.push(LockedPackage {
            name,
            version: version.to_owned(),
            sha256,
        });
    }
    Ok(packages)
}

/// A Python distribution name as PyPI compares them (PEP 503): lower case,
/// runs of `-`, `_` and `.` as one `-`.
fn canonical_python_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if "-_.".contains(c) {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// Parses `lock` and checks that it was made from the top-level list
/// `list`: an edited `pip-packages.txt` with a stale lock would otherwise
/// build the old packages without a word.
fn checked_pip_lock(lock: &str, list: &str) -> Result<Vec<LockedPackage>> {
    let packages = parse_pip_lock(lock)?;
    let made_from = lock
        .lines()
        .find_map(|l| l.strip_prefix("# requirements: "))
        .map(str::trim);
    if made_from != Some(requirements_digest(list).as_str()) {
        return Err(Error::Parse {
            what: "the Python lock (pip-requirements.lock)",
            detail: "it was not made from the current pip-packages.txt; run \
                     scripts/lock-image-python.sh and build again"
                .into(),
        });
    }
    Ok(packages)
}

/// The `sha256:` digest of a top-level requirements list as the lock's
/// `# requirements:` header records it: its entries, one per line.
fn requirements_digest(list: &str) -> String {
    let joined: String = list_entries(list)
        .iter()
        .map(|e| format!("{e}\n"))
        .collect();
    format!("sha256:{}", hex(&Sha256::digest(joined.as_bytes())))
}

/// How [`build_with`] treats the lock and an existing image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `seashell image build`: fail at once if another build runs; reuse an
    /// image of the right kind unless forced.
    Build,
    /// [`ensure`]: wait for another build; rebuild an incomplete image.
    Ensure,
}

fn build_with(
    options: &BuildOptions,
    progress: &mut dyn Progress,
    mode: Mode,
) -> Result<BuildReport> {
    if !nix::unistd::Uid::effective().is_root() {
        return Err(Error::Host {
            check: "image build",
            reason: "building an image must run as root (debootstrap, chroot and file \
                     ownership need it); run it with sudo"
                .into(),
        });
    }
    let output = absolute(&options.output)?;
    let (parent, name) = split_output(&output)?;
    std::fs::create_dir_all(&parent).map_err(|e| Error::io("creating directory", &parent, e))?;
    let _lock = lock(&parent.join(format!(".{name}.lock")), mode == Mode::Ensure)?;
    remove_stale(&parent, &name)?;

    let wanted = options.kind.image_name();
    let force = match mode {
        Mode::Build => options.force,
        Mode::Ensure => false,
    };
    match existing(&output)? {
        Existing::Absent => {}
        Existing::Image(info)
            if info.name == wanted
                && mode == Mode::Ensure
                && !verify(&output, options.kind, &info)? =>
        {
            tracing::warn!(output = %output.display(), "replacing an incomplete image");
        }
        Existing::Image(info) if info.name == wanted && !force => {
            return Ok(BuildReport {
                outcome: BuildOutcome::Reused,
                path: output,
                info,
            });
        }
        Existing::Image(info) if !force => {
            return Err(Error::Invalid {
                what: "image output",
                value: format!("{} (holding {})", output.display(), info.name),
                reason: "holds another image than the one requested; pass --force to replace it",
            });
        }
        Existing::Image(_) => {}
        Existing::Foreign => {
            return Err(Error::Invalid {
                what: "image output",
                value: output.display().to_string(),
                reason: "exists and is not an image built by Seashell (no etc/seashell-image); \
                         refusing to replace it, choose another output",
            });
        }
    }

    let partial = parent.join(format!(".{name}.partial-{}", std::process::id()));
    let log_path = build_log_path(&output);
    let log = File::create(&log_path).map_err(|e| Error::io("creating", &log_path, e))?;
    let mut builder = Builder {
        root: partial.clone(),
        progress,
        log,
        step: 0,
        total: 0,
        step_started: Instant::now(),
        extra_env: proxy_env(),
    };
    let result = match options.kind {
        ImageKind::Default => builder.default_image(options.mirror.as_deref()),
        ImageKind::Minimal => builder.minimal_image(),
    }
    .and_then(|()| {
        builder.begin("Moving the image into place");
        install(&partial, &output)?;
        builder.end();
        Ok(())
    });
    if let Err(e) = result {
        // The partial tree is worthless; remove it now rather than at the
        // next build (which would also do it).
        let _ = discard(&partial);
        return Err(e);
    }
    let info = ImageInfo::read(&output)?.ok_or_else(|| Error::Parse {
        what: "image description",
        detail: format!(
            "{} has no {IMAGE_INFO_FILE} after the build",
            output.display()
        ),
    })?;
    Ok(BuildReport {
        outcome: BuildOutcome::Built,
        path: output,
        info,
    })
}

/// Where [`build`] writes the full output of the commands it runs for
/// `output`: `OUTPUT.build.log`, next to the image.
pub fn build_log_path(output: &Path) -> PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_owned();
    name.push(".build.log");
    output.with_file_name(name)
}

/// Reads the Debian mirror from the host's apt sources (`sources.list`,
/// `sources.list.d/*.list` and deb822 `*.sources`): the first `deb` URI that
/// is not the security archive.
pub fn host_debian_mirror() -> Option<String> {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
        more.sort();
        files.extend(more);
    }
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .find_map(|text| mirror_from_sources(&text))
}

/// Finds the first non-security Debian mirror URI in one apt sources file,
/// one-line (`deb URI suite …`) or deb822 (`URIs: URI`) format.
fn mirror_from_sources(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            if let Some(rest) = l.strip_prefix("deb ") {
                // Skip an options block such as `[signed-by=…]`.
                let rest = match rest.trim_start().strip_prefix('[') {
                    Some(r) => r.split_once(']')?.1,
                    None => rest,
                };
                rest.split_whitespace().next()
            } else {
                l.strip_prefix("URIs:")?.split_whitespace().next()
            }
        })
        .find(|uri| {
            (uri.starts_with("http://") || uri.starts_with("https://")) && !uri.contains("security")
        })
        .map(|uri| uri.trim_end_matches('/').to_owned())
}

/// What the output path currently holds.
enum Existing {
    Absent,
    Image(ImageInfo),
    Foreign,
}

fn existing(output: &Path) -> Result<Existing> {
    match std::fs::symlink_metadata(output) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Existing::Absent),
        Err(e) => return Err(Error::io("inspecting", output, e)),
        Ok(m) if !m.is_dir() => return Ok(Existing::Foreign),
        Ok(_) => {}
    }
    if let Some(info) = ImageInfo::read(output)? {
        return Ok(Existing::Image(info));
    }
    // An empty directory (created by hand, or by a packaging script) may be
    // replaced: rename(2) moves a directory onto an empty one.
    let mut entries = std::fs::read_dir(output).map_err(|e| Error::io("listing", output, e))?;
    Ok(if entries.next().is_none() {
        Existing::Absent
    } else {
        Existing::Foreign
    })
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|e| Error::io("resolving", path, e))
}

fn split_output(output: &Path) -> Result<(PathBuf, String)> {
    match (output.parent(), output.file_name()) {
        (Some(parent), Some(name)) => Ok((parent.to_owned(), name.to_string_lossy().into_owned())),
        _ => Err(Error::Invalid {
            what: "image output",
            value: output.display().to_string(),
            reason: "must name a directory below an existing parent",
        }),
    }
}

/// Takes the build lock of one output. Fails at once if another build of
/// the same output runs, or with `wait` waits for it to finish.
fn lock(path: &Path, wait: bool) -> Result<Flock<File>> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| Error::io("opening lock file", path, e))?;
    if wait {
        let file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => return Ok(locked),
            Err((file, nix::errno::Errno::EWOULDBLOCK)) => file,
            Err((_, errno)) => return Err(Error::sys("locking", path, errno)),
        };
        tracing::info!(lock = %path.display(), "waiting for another build of this image");
        return Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, errno)| Error::sys("locking", path, errno));
    }
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
        if errno == nix::errno::Errno::EWOULDBLOCK {
            Error::Host {
                check: "image build",
                reason: format!(
                    "another build of this image is running (it holds {})",
                    path.display()
                ),
            }
        } else {
            Error::sys("locking", path, errno)
        }
    })
}

/// Removes the temporary trees of interrupted builds of `name` in `parent`.
/// Called with the build lock held, so none of them is in use.
fn remove_stale(parent: &Path, name: &str) -> Result<()> {
    let prefixes = [format!(".{name}.partial-"), format!(".{name}.old-")];
    for entry in std::fs::read_dir(parent).map_err(|e| Error::io("listing", parent, e))? {
        let entry = entry.map_err(|e| Error::io("listing", parent, e))?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if prefixes.iter().any(|p| file_name.starts_with(p.as_str())) {
            tracing::info!(path = %entry.path().display(), "removing the leftovers of an interrupted image build");
            discard(&entry.path())?;
        }
    }
    Ok(())
}

/// Deletes a build tree, first detaching anything still mounted inside it
/// (an interrupted build can leave `/proc` mounted there), so the deletion
/// never reaches into another filesystem.
fn discard(tree: &Path) -> Result<()> {
    let mounts = mounts_under(tree)?;
    for m in mounts.iter().rev() {
        umount2(m, MntFlags::MNT_DETACH).map_err(|e| Error::sys("unmounting", m, e))?;
    }
    if !mounts_under(tree)?.is_empty() {
        return Err(Error::Host {
            check: "image build",
            reason: format!(
                "{} still has filesystems mounted inside; unmount them and remove it by hand",
                tree.display()
            ),
        });
    }
    match std::fs::remove_dir_all(tree) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("removing", tree, e)),
        _ => Ok(()),
    }
}

/// Mount points at or below `tree`, outermost first.
fn mounts_under(tree: &Path) -> Result<Vec<PathBuf>> {
    let info = "/proc/self/mountinfo";
    let text = std::fs::read_to_string(info).map_err(|e| Error::io("reading", info, e))?;
    let mut found: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mount_path(p)))
        .filter(|p| p.starts_with(tree))
        .collect();
    found.sort_by_key(|p| p.components().count());
    Ok(found)
}

/// Undoes the octal escapes (`\040` for a space, …) of `/proc/self/mountinfo`.
fn unescape_mount_path(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match escape {
            Some(d) => {
                out.push(
                    d.iter()
                        .fold(0u8, |v, c| v.wrapping_mul(8).wrapping_add(c - b'0')),
                );
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Moves the finished tree onto `output`. An existing image is exchanged
/// atomically with the new one and then deleted, so `output` never stops
/// holding a complete image.
fn install(partial: &Path, output: &Path) -> Result<()> {
    let exists = std::fs::symlink_metadata(output).is_ok();
    if exists {
        match nix::fcntl::renameat2(None, partial, None, output, RenameFlags::RENAME_EXCHANGE) {
            // `partial` now names the old image.
            Ok(()) => return discard(partial),
            // Filesystems without RENAME_EXCHANGE: move the old image aside
            // first; a crash in between leaves the output absent, never
            // half-made, and the old tree is removed by the next build.
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOSYS) => {
                let (parent, name) = split_output(output)?;
                let old = parent.join(format!(".{name}.old-{}", std::process::id()));
                std::fs::rename(output, &old)
                    .map_err(|e| Error::io("moving the old image aside", output, e))?;
                std::fs::rename(partial, output)
                    .map_err(|e| Error::io("renaming image into", output, e))?;
                return discard(&old);
            }
            Err(e) => return Err(Error::sys("exchanging the image with", output, e)),
        }
    }
    std::fs::rename(partial, output).map_err(|e| Error::io("renaming image into", output, e))
}

/// State of one build: where the tree is, and where its progress goes.
struct Builder<'a> {
    root: PathBuf,
    progress: &'a mut dyn Progress,
    log: File,
    step: usize,
    total: usize,
    step_started: Instant,
    /// Variables passed to commands run inside the tree besides the fixed ones.
    extra_env: Vec<(String, String)>,
}

impl Builder<'_> {
    fn begin(&mut self, title: &str) {
        self.step += 1;
        self.step_started = Instant::now();
        let _ = writeln!(self.log, "==> [{}/{}] {title}", self.step, self.total);
        self.progress.step(self.step, self.total, title);
    }

    fn end(&mut self) {
        self.progress.step_done(self.step_started.elapsed());
    }

    fn minimal_image(&mut self) -> Result<()> {
        self.total = 3;
        self.begin("Building the busybox root filesystem (images/minimal/build.sh)");
        cmd::require_program("sh", "dash")?;
        // The script is compiled in; `sh -c SCRIPT NAME ARG` runs it with
        // `$0` = NAME and `$1` = ARG, exactly as `sh build.sh ARG` would.
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(MINIMAL_SCRIPT)
            .arg("build.sh")
            .arg(&self.root);
        self.run(&mut c)?;
        self.end();

        self.begin("Writing /etc/seashell-image");
        let busybox = self.root.join("bin/busybox");
        let bytes = std::fs::read(&busybox).map_err(|e| Error::io("reading", &busybox, e))?;
        let listing = minimal_listing(&bytes);
        self.write_info(ImageKind::Minimal, &listing)?;
        self.end();
        Ok(())
    }

    fn default_image(&mut self, mirror: Option<&str>) -> Result<()> {
        self.total = 9;
        self.begin("Checking the host");
        let debootstrap = cmd::require_program("debootstrap", "debootstrap")?;
        cmd::require_program("chroot", "coreutils")?;
        cmd::require_program("find", "findutils")?;
        let mirror = mirror
            .map(str::to_owned)
            .or_else(host_debian_mirror)
            .unwrap_or_else(|| FALLBACK_MIRROR.to_owned());
        let mirror = mirror.trim_end_matches('/').to_owned();
        self.progress.output(&format!("mirror {mirror}"));
        let packages = list_entries(DEFAULT_PACKAGES);
        let pip_lock = checked_pip_lock(DEFAULT_PIP_LOCK, DEFAULT_PIP_PACKAGES)?;
        self.end();

        self.begin(&format!(
            "Bootstrapping Debian {DEBIAN_SUITE} (debootstrap, variant minbase)"
        ));
        // Downloaded .debs are kept next to the images so that rebuilds do
        // not fetch the base system again.
        let parent = self.root.parent().map(Path::to_owned).unwrap_or_default();
        let cache = parent.join(".debootstrap-cache");
        std::fs::create_dir_all(&cache).map_err(|e| Error::io("creating directory", &cache, e))?;
        let mut c = Command::new(&debootstrap);
        c.arg("--variant=minbase")
            .arg(format!("--cache-dir={}", cache.display()))
            .arg(DEBIAN_SUITE)
            .arg(&self.root)
            .arg(&mirror);
        self.run(&mut c)?;
        self.end();

        self.begin("Configuring apt and dpkg");
        self.configure_apt(&mirror)?;
        self.end();

        let proc_mount = ProcMount::new(&self.root.join("proc"))?;

        self.begin(&format!("Installing {} Debian packages", packages.len()));
        self.chroot(&["apt-get", "update"])?;
        let mut install = vec![
            "apt-get",
            "install",
            "--yes",
            "--no-install-recommends",
            "-o",
            "Dpkg::Use-Pty=0",
        ];
        install.extend(packages.iter().map(String::as_str));
        self.chroot(&install)?;
        self.end();

        self.begin(&format!(
            "Installing {} pinned Python packages from PyPI",
            pip_lock.len()
        ));
        // Debian marks its Python "externally managed" (PEP 668), which makes
        // `pip install` and `pip install --user` fail. The image is a
        // read-only lower layer that only changes by rebuilding, and users
        // of a cloud shell expect `pip install --user` into their persistent
        // home to work, as on AWS CloudShell; so the marker goes. pip as
        // root installs into /usr/local, apart from Debian's /usr.
        for marker in glob_python_marker(&self.root)? {
            std::fs::remove_file(&marker).map_err(|e| Error::io("removing", &marker, e))?;
        }
        // Downloads trust the host's CA bundle while the image is built, so
        // a build works behind a TLS-inspecting proxy whose CA the host
        // trusts; the image itself keeps Debian's CA set (the copy lives in
        // /tmp, which the cleanup empties).
        if Path::new(HOST_CA_BUNDLE).is_file() {
            let copy = self.root.join("tmp/seashell-host-ca.crt");
            std::fs::copy(HOST_CA_BUNDLE, &copy)
                .map_err(|e| Error::io("copying the host CA bundle to", &copy, e))?;
            self.extra_env
                .push(("PIP_CERT".into(), "/tmp/seashell-host-ca.crt".into()));
        }
        // Exactly the files of the lock: wheels only, so no package's code
        // (an sdist's setup.py) runs as root while the image is built; every
        // download checked against its pinned SHA-256; no dependency
        // resolution, so nothing outside the lock is fetched. `pip check`
        // then proves the lock is the whole closure.
        write_file(&self.root.join(PIP_LOCK_IN_TREE), DEFAULT_PIP_LOCK, 0o644)?;
        let lock_in_tree = format!("/{PIP_LOCK_IN_TREE}");
        self.chroot(&[
            "python3",
            "-m",
            "pip",
            "install",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--root-user-action=ignore",
            "--progress-bar=off",
            "--require-hashes",
            "--only-binary=:all:",
            "--no-deps",
            "--requirement",
            &lock_in_tree,
        ])?;
        self.chroot(&[
            "python3",
            "-m",
            "pip",
            "check",
            "--disable-pip-version-check",
        ])?;
        self.end();

        self.begin("Creating cloudshell-user and the shell setup");
        self.configure_user()?;
        self.end();

        self.begin("Removing caches and documentation");
        drop(proc_mount);
        self.cleanup()?;
        self.end();

        self.begin("Writing /etc/seashell-image");
        let mut listing = self.chroot_output(&[
            "dpkg-query",
            "--show",
            "--showformat=${Package}=${Version}\\n",
        ])?;
        listing.push_str(&self.chroot_output(&[
            "python3",
            "-m",
            "pip",
            "list",
            "--format=freeze",
        ])?);
        listing.push_str(&pip_lock_listing_line(DEFAULT_PIP_LOCK));
        let listing_path = self.root.join(PACKAGE_LISTING_FILE);
        write_file(&listing_path, &listing, 0o644)?;
        self.write_info(ImageKind::Default, &listing)?;
        self.end();
        Ok(())
    }

    fn configure_apt(&mut self, mirror: &str) -> Result<()> {
        let security = if mirror.ends_with("/debian") {
            format!("{}-security", mirror)
        } else {
            "http://deb.debian.org/debian-security".to_owned()
        };
        write_file(
            &self.root.join("etc/apt/sources.list"),
            &format!(
                "deb {mirror} {DEBIAN_SUITE} main\n\
                 deb {mirror} {DEBIAN_SUITE}-updates main\n\
                 deb {security} {DEBIAN_SUITE}-security main\n"
            ),
            0o644,
        )?;
        // Nothing in the image may start a service while it is built.
        write_file(
            &self.root.join("usr/sbin/policy-rc.d"),
            "#!/bin/sh\nexit 101\n",
            0o755,
        )?;
        // Documentation is not installed, except copyright notices (which
        // the licenses require) and English manual pages, which `man` needs.
        write_file(
            &self.root.join("etc/dpkg/dpkg.cfg.d/seashell-nodoc"),
            "path-exclude /usr/share/doc/*\n\
             path-include /usr/share/doc/*/copyright\n\
             path-exclude /usr/share/man/*\n\
             path-include /usr/share/man/man[1-9]/*\n\
             path-exclude /usr/share/info/*\n\
             path-exclude /usr/share/locale/*\n\
             path-include /usr/share/locale/locale.alias\n\
             path-exclude /usr/share/lintian/*\n",
            0o644,
        )?;
        write_file(
            &self.root.join("etc/apt/apt.conf.d/90seashell"),
            "APT::Install-Recommends \"false\";\n\
             APT::Install-Suggests \"false\";\n\
             Acquire::Languages \"none\";\n",
            0o644,
        )?;
        // Name resolution for apt and pip inside the tree while it is built.
        let resolv = self.root.join("etc/resolv.conf");
        let _ = std::fs::remove_file(&resolv);
        std::fs::copy("/etc/resolv.conf", &resolv)
            .map_err(|e| Error::io("copying /etc/resolv.conf into", &resolv, e))?;
        Ok(())
    }

    fn configure_user(&mut self) -> Result<()> {
        let id = USER_ID.to_string();
        self.chroot(&["groupadd", "--gid", &id, USER])?;
        self.chroot(&[
            "useradd",
            "--uid",
            &id,
            "--gid",
            &id,
            "--create-home",
            "--home-dir",
            "/home/cloudshell-user",
            "--shell",
            "/bin/bash",
            "--comment",
            "CloudShell user",
            USER,
        ])?;
        write_file(
            &self.root.join("etc/sudoers.d/cloudshell-user"),
            SUDOERS,
            0o440,
        )?;
        self.chroot(&["visudo", "--check", "--file=/etc/sudoers.d/cloudshell-user"])?;
        write_file(&self.root.join("etc/motd"), MOTD, 0o644)?;
        write_file(&self.root.join("etc/profile.d/seashell.sh"), PROFILE, 0o644)?;
        write_file(&self.root.join("etc/skel/.bashrc"), SKEL_BASHRC, 0o644)?;
        let home_bashrc = self.root.join("home/cloudshell-user/.bashrc");
        write_file(&home_bashrc, SKEL_BASHRC, 0o644)?;
        std::os::unix::fs::chown(&home_bashrc, Some(USER_ID), Some(USER_ID))
            .map_err(|e| Error::io("changing owner of", &home_bashrc, e))?;
        // zsh reads /etc/zsh/zprofile, not /etc/profile, for login shells.
        let zprofile = self.root.join("etc/zsh/zprofile");
        let mut text = std::fs::read_to_string(&zprofile).unwrap_or_default();
        text.push_str(
            "\n# Seashell: the same banner and prompt as bash.\n\
             [ -r /etc/profile.d/seashell.sh ] && emulate sh -c '. /etc/profile.d/seashell.sh'\n",
        );
        write_file(&zprofile, &text, 0o644)?;
        // C.UTF-8 is built into Debian's libc; no locale needs generating.
        write_file(
            &self.root.join("etc/default/locale"),
            "LANG=C.UTF-8\n",
            0o644,
        )?;
        write_file(&self.root.join("etc/hostname"), "localhost\n", 0o644)?;
        Ok(())
    }

    fn cleanup(&mut self) -> Result<()> {
        self.chroot(&["apt-get", "clean"])?;
        let root = self.root.clone();
        // Package indexes and caches are refetched by `apt-get update`;
        // debconf's answers (var/cache/debconf/*.dat) stay so that packages
        // installed later inside an environment see a consistent database.
        for dir in ["var/lib/apt/lists", "var/cache/apt", "tmp", "var/tmp"] {
            empty_dir(&root.join(dir))?;
        }
        for f in ["config.dat-old", "templates.dat-old", "passwords.dat-old"] {
            let _ = std::fs::remove_file(root.join("var/cache/debconf").join(f));
        }
        // Documentation the base system brought before the dpkg excludes
        // were in place, by the same rules.
        self.run(Command::new("find").args([
            root.join("usr/share/doc").as_os_str(),
            "-mindepth".as_ref(),
            "1".as_ref(),
            "-not".as_ref(),
            "-name".as_ref(),
            "copyright".as_ref(),
            "-not".as_ref(),
            "-type".as_ref(),
            "d".as_ref(),
            "-delete".as_ref(),
        ]))?;
        for dir in ["usr/share/info", "usr/share/lintian"] {
            empty_dir(&root.join(dir))?;
        }
        let locale = root.join("usr/share/locale");
        if let Ok(entries) = std::fs::read_dir(&locale) {
            for e in entries.flatten() {
                if e.file_name() != "locale.alias" {
                    remove_any(&e.path())?;
                }
            }
        }
        let man = root.join("usr/share/man");
        if let Ok(entries) = std::fs::read_dir(&man) {
            for e in entries.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                let section = n.strip_prefix("man").unwrap_or("");
                if !(section.len() == 1 && section.as_bytes()[0].is_ascii_digit()) {
                    remove_any(&e.path())?;
                }
            }
        }
        // Logs and state of the build itself; the environment gets its own
        // resolv.conf, hostname and machine id from the runtime.
        self.run(Command::new("find").args([
            root.join("var/log").as_os_str(),
            "-type".as_ref(),
            "f".as_ref(),
            "-delete".as_ref(),
        ]))?;
        for f in [
            "usr/sbin/policy-rc.d",
            "var/cache/ldconfig/aux-cache",
            "root/.bash_history",
        ] {
            let _ = std::fs::remove_file(root.join(f));
        }
        write_file(&root.join("etc/resolv.conf"), "", 0o644)?;
        write_file(&root.join("etc/machine-id"), "", 0o444)?;
        // Bytecode caches are rebuilt on demand, and the image is read-only
        // below the overlay anyway.
        self.run(Command::new("find").args([
            root.join("usr").as_os_str(),
            "-type".as_ref(),
            "d".as_ref(),
            "-name".as_ref(),
            "__pycache__".as_ref(),
            "-prune".as_ref(),
            "-exec".as_ref(),
            "rm".as_ref(),
            "-rf".as_ref(),
            "{}".as_ref(),
            "+".as_ref(),
        ]))?;
        Ok(())
    }

    fn write_info(&mut self, kind: ImageKind, listing: &str) -> Result<()> {
        let info = ImageInfo {
            name: kind.image_name().to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            build_date: rfc3339_now(),
            packages_digest: packages_digest(listing.as_bytes()),
        };
        write_file(&self.root.join(IMAGE_INFO_FILE), &info.render(), 0o644)
    }

    /// Runs `args` inside the tree with a clean, non-interactive environment.
    fn chroot(&mut self, args: &[&str]) -> Result<()> {
        let mut c = self.chroot_command(args);
        self.run(&mut c)
    }

    fn chroot_output(&mut self, args: &[&str]) -> Result<String> {
        let mut c = self.chroot_command(args);
        cmd::run_stdout(&mut c)
    }

    fn chroot_command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("chroot");
        c.arg(&self.root)
            .args(args)
            .env_clear()
            .env("PATH", CHROOT_PATH)
            .env("HOME", "/root")
            .env("LANG", "C.UTF-8")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env("DEBCONF_NONINTERACTIVE_SEEN", "true")
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)));
        c
    }

    /// Runs `c`, streaming its output lines to the progress sink and the
    /// build log; a failure carries the last lines of output.
    fn run(&mut self, c: &mut Command) -> Result<()> {
        let line = cmd::display(c);
        let _ = writeln!(self.log, "$ {line}");
        let mut child = c
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::Command {
                command: line.clone(),
                status: "could not be started".into(),
                stderr: e.to_string(),
            })?;
        let (tx, rx) = mpsc::channel::<String>();
        let readers: Vec<_> = [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        .map(|stream| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for l in BufReader::new(stream).split(b'\n').map_while(|l| l.ok()) {
                    if tx.send(String::from_utf8_lossy(&l).into_owned()).is_err() {
                        break;
                    }
                }
            })
        })
        .collect();
        drop(tx);
        let mut tail = VecDeque::with_capacity(TAIL_LINES);
        for l in rx {
            let l = l.trim_end_matches('\r');
            let _ = writeln!(self.log, "{l}");
            self.progress.output(l);
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(l.to_owned());
        }
        for r in readers {
            let _ = r.join();
        }
        let status = child.wait().map_err(|e| Error::Command {
            command: line.clone(),
            status: "could not be waited for".into(),
            stderr: e.to_string(),
        })?;
        if status.success() {
            return Ok(());
        }
        Err(Error::Command {
            command: line,
            status: status.to_string(),
            stderr: Vec::from(tail).join("\n"),
        })
    }
}

/// `/proc` mounted inside the tree for package scripts, unmounted on drop
/// (also when a step fails).
struct ProcMount(PathBuf);

impl ProcMount {
    fn new(target: &Path) -> Result<ProcMount> {
        std::fs::create_dir_all(target).map_err(|e| Error::io("creating directory", target, e))?;
        mount(
            Some("proc"),
            target,
            Some("proc"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None::<&str>,
        )
        .map_err(|e| Error::sys("mounting proc on", target, e))?;
        Ok(ProcMount(target.to_owned()))
    }
}

impl Drop for ProcMount {
    fn drop(&mut self) {
        if let Err(e) = umount2(&self.0, MntFlags::MNT_DETACH) {
            tracing::warn!(path = %self.0.display(), error = %e, "cannot unmount proc from the image tree");
        }
    }
}

/// The host's proxy settings, for downloads made inside the tree.
fn proxy_env() -> Vec<(String, String)> {
    PROXY_VARS
        .iter()
        .filter_map(|k| Some((k.to_string(), std::env::var(k).ok()?)))
        .collect()
}

/// The non-empty, non-comment lines of a package list.
fn list_entries(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `usr/lib/python3*/EXTERNALLY-MANAGED` files of the tree.
fn glob_python_marker(root: &Path) -> Result<Vec<PathBuf>> {
    let lib = root.join("usr/lib");
    let mut found = Vec::new();
    for e in std::fs::read_dir(&lib).map_err(|e| Error::io("listing", &lib, e))? {
        let e = e.map_err(|e| Error::io("listing", &lib, e))?;
        if e.file_name().to_string_lossy().starts_with("python3") {
            let marker = e.path().join("EXTERNALLY-MANAGED");
            if marker.exists() {
                found.push(marker);
            }
        }
    }
    Ok(found)
}

fn write_file(path: &Path, contents: &str, mode: u32) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("creating directory", dir, e))?;
    }
    std::fs::write(path, contents).map_err(|e| Error::io("writing", path, e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io("setting permissions of", path, e))
}

/// Removes everything inside `dir`, keeping `dir` itself.
fn empty_dir(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("listing", dir, e)),
    };
    for e in entries {
        let e = e.map_err(|e| Error::io("listing", dir, e))?;
        remove_any(&e.path())?;
    }
    Ok(())
}

fn remove_any(path: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| Error::io("inspecting", path, e))?;
    if meta.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    }
    .map_err(|e| Error::io("removing", path, e))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The current time as `YYYY-MM-DDTHH:MM:SSZ`.
fn rfc3339_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339(secs)
}

fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
    }

    #[test]
    fn mirrors() {
        let deb822 = "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm\n";
        assert_eq!(
            mirror_from_sources(deb822).as_deref(),
            Some("http://deb.debian.org/debian")
        );
        let one_line =
            "# comment\ndeb http://security.debian.org/debian-security bookworm-security main\n\
                        deb [signed-by=/k.gpg] http://mirror.example/debian/ bookworm main\n";
        assert_eq!(
            mirror_from_sources(one_line).as_deref(),
            Some("http://mirror.example/debian")
        );
        assert_eq!(
            mirror_from_sources("deb-src http://x/debian bookworm main"),
            None
        );
    }

    #[test]
    fn package_lists() {
        let pkgs = list_entries(DEFAULT_PACKAGES);
        for wanted in ["bash", "python3-pip", "nodejs", "sudo", "postgresql-client"] {
            assert!(pkgs.iter().any(|p| p == wanted), "{wanted} missing");
        }
        assert!(pkgs.iter().all(|p| !p.contains(' ')));
        let pip = list_entries(DEFAULT_PIP_PACKAGES);
        assert_eq!(pip, ["awscli", "boto3"]);
    }

    #[test]
    fn the_python_lock_pins_and_hashes_the_whole_top_level_list() {
        let lock = parse_pip_lock(DEFAULT_PIP_LOCK).expect("the lock parses");
        // The closure, not just the two top-level packages.
        assert!(lock.len() > 5, "{lock:?}");
        for p in &lock {
            assert!(!p.version.is_empty(), "{p:?}");
            assert!(!p.sha256.is_empty(), "{} has no hash", p.name);
            assert!(p.sha256.iter().all(|h| h.len() == 64), "{p:?}");
        }
        // Every requirement line of the file pins with `==` (the parser
        // rejects anything else; this checks the file's text directly too).
        let pins = DEFAULT_PIP_LOCK
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with(' ') && !l.is_empty());
        for line in pins {
            assert!(line.contains("=="), "{line}");
        }
        for top in list_entries(DEFAULT_PIP_PACKAGES) {
            let name = canonical_python_name(
                top.split(|c: char| !(c.is_ascii_alphanumeric() || "._-".contains(c)))
                    .next()
                    .unwrap_or(""),
            );
            assert!(
                lock.iter().any(|p| p.name == name),
                "{top} is not in the lock"
            );
        }
        for dep in ["botocore", "s3transfer", "pyyaml", "urllib3"] {
            assert!(lock.iter().any(|p| p.name == dep), "{dep} missing");
        }
        // The lock was generated from the current top-level list: a changed
        // pip-packages.txt needs scripts/lock-image-python.sh run again.
        assert_eq!(
            checked_pip_lock(DEFAULT_PIP_LOCK, DEFAULT_PIP_PACKAGES).expect("current"),
            lock,
            "pip-packages.txt changed since the lock was made; run scripts/lock-image-python.sh"
        );
        // Comments in the list do not matter; another requirement does.
        let commented = format!("# a note\n{DEFAULT_PIP_PACKAGES}  # more\n");
        assert!(checked_pip_lock(DEFAULT_PIP_LOCK, &commented).is_ok());
        let edited = format!("{DEFAULT_PIP_PACKAGES}requests\n");
        assert!(checked_pip_lock(DEFAULT_PIP_LOCK, &edited).is_err());
    }

    #[test]
    fn lock_parser_refuses_unpinned_or_unhashed_requirements() {
        let h = "a".repeat(64);
        let ok = format!("# c\nFoo_Bar==1.0 \\\n    --hash=sha256:{h} \\\n    --hash=sha256:{}\n\nbaz==2 --hash=sha256:{h}  # why\n", "B".repeat(64));
        let parsed = parse_pip_lock(&ok).expect("parses");
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].name, "foo-bar");
        assert_eq!(parsed[0].version, "1.0");
        assert_eq!(parsed[0].sha256, [h.clone(), "b".repeat(64)]);
        for bad in [
            "foo\n".to_owned(),
            format!("foo>=1 --hash=sha256:{h}\n"),
            "foo==1\n".to_owned(),
            format!("foo==1 --hash=md5:{h}\n"),
            "foo==1 --hash=sha256:abc\n".to_owned(),
            format!("foo==1 --hash=sha256:{h} --index-url=http://x\n"),
            format!("foo==1; python_version<'3' --hash=sha256:{h}\n"),
            format!("-e git+https://x/y --hash=sha256:{h}\n"),
            format!("foo==1 --hash=sha256:{h}\nFoo==2 --hash=sha256:{h}\n"),
            format!("foo==1 \\\n --hash=sha256:{h} \\\n"),
        ] {
            assert!(parse_pip_lock(&bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn an_image_from_another_python_lock_is_incomplete() {
        let dir = std::env::temp_dir().join(format!("seashell-image-lock-{}", std::process::id()));
        let image = |lock_line: &str| {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("bin")).expect("mkdir");
            std::os::unix::fs::symlink("busybox", dir.join("bin/sh")).expect("sh");
            let listing = format!("bash=5.2.15-2+b7\nawscli==1.46.3\n{lock_line}");
            write_file(&dir.join(PACKAGE_LISTING_FILE), &listing, 0o644).expect("listing");
            let info = ImageInfo {
                name: "seashell-default".into(),
                version: "0.1.0".into(),
                build_date: "2026-01-01T00:00:00Z".into(),
                packages_digest: packages_digest(listing.as_bytes()),
            };
            write_file(&dir.join(IMAGE_INFO_FILE), &info.render(), 0o644).expect("info");
        };
        image(&pip_lock_listing_line(DEFAULT_PIP_LOCK));
        assert!(complete(&dir, ImageKind::Default).expect("check").is_some());
        // Built from another lock: its listing is consistent, but not what
        // this binary installs.
        image(&pip_lock_listing_line("awscli==0.1 --hash=sha256:00\n"));
        assert!(complete(&dir, ImageKind::Default).expect("check").is_none());
        // Built before images recorded a lock.
        image("");
        assert!(complete(&dir, ImageKind::Default).expect("check").is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mount_path(r"/a\040b/c"), "/a b/c");
        assert_eq!(unescape_mount_path(r"/plain"), "/plain");
        assert_eq!(unescape_mount_path(r"/end\"), "/end\\");
    }

    #[test]
    fn info_round_trip() {
        let dir = std::env::temp_dir().join(format!("seashell-image-info-{}", std::process::id()));
        let info = ImageInfo {
            name: "seashell-minimal".into(),
            version: "0.1.0".into(),
            build_date: "2026-01-01T00:00:00Z".into(),
            packages_digest: "sha256:00".into(),
        };
        write_file(&dir.join(IMAGE_INFO_FILE), &info.render(), 0o644).expect("write");
        assert_eq!(ImageInfo::read(&dir).expect("read"), Some(info));
        assert_eq!(ImageInfo::read(&dir.join("nothing")).expect("read"), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
