//! `seashell cp <local> :<remote>` and `seashell cp :<remote> <local>`:
//! files through the pre-signed URLs of GetFileUploadUrls and
//! GetFileDownloadUrls, with a progress bar on a terminal. Remote paths are
//! the console's: relative to /home/cloudshell-user, or absolute inside it.
//! `--recursive` moves a directory as one tar archive, unpacked (or packed)
//! by a command in the environment.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::archive;
use super::context::Context;
use super::environment;
use super::exit::CliError;
use super::settings::GlobalArgs;
use seashell_client::{command, files, CloudShell};

/// `seashell cp`.
#[derive(Debug, Args)]
pub struct CpArgs {
    /// The source: a local path, or `:path` in the environment.
    pub source: String,
    /// The destination: `:path` in the environment, or a local path.
    pub destination: String,
    /// Copy a directory and everything in it.
    #[arg(long)]
    pub recursive: bool,
    #[command(flatten)]
    pub global: GlobalArgs,
}

fn bar(what: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    if std::io::stderr().is_terminal() {
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(what.to_string());
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar
}

fn progress(bar: &ProgressBar) -> files::Progress {
    let bar = bar.clone();
    Arc::new(move |done| bar.set_position(done))
}

/// `'text'` for sh.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// The remote file a local file lands in: `:` or `:dir/` add the file's
/// name.
fn remote_target(remote: &str, local: &Path) -> String {
    let name = local
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if remote.is_empty() {
        name
    } else if remote.ends_with('/') {
        format!("{remote}{name}")
    } else {
        remote.to_string()
    }
}

/// The local file a remote file lands in: a directory adds its name.
fn local_target(local: &Path, remote: &str) -> PathBuf {
    if local.is_dir() {
        let name = remote
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or(remote);
        local.join(name)
    } else {
        local.to_path_buf()
    }
}

/// Runs `seashell cp`.
pub async fn run(args: CpArgs) -> Result<u8, CliError> {
    let ctx = Context::new(&args.global)?;
    let (remote, upload) = match (args.source.strip_prefix(':'), args.destination.strip_prefix(':')) {
        (None, Some(remote)) => (remote.to_string(), true),
        (Some(remote), None) => (remote.to_string(), false),
        _ => {
            return Err(CliError::usage(
                "cp copies between a local path and an environment path written :path (exactly one of the two)",
            ))
        }
    };
    let api = ctx.api().await?;
    let env = environment::running(&api).await?;
    match (upload, args.recursive) {
        (true, false) => {
            let local = PathBuf::from(&args.source);
            if local.is_dir() {
                return Err(CliError::usage(format!(
                    "{} is a directory: use --recursive",
                    local.display()
                )));
            }
            let target = remote_target(&remote, &local);
            let bar = bar(&format!("upload: {} to :{target}", local.display()));
            let size = files::upload(&api, &env, &local, &target, progress(&bar)).await;
            bar.finish_and_clear();
            let size = size?;
            eprintln!("upload: {} to :{target} ({size} bytes)", local.display());
        }
        (false, false) => {
            let local = local_target(Path::new(&args.destination), &remote);
            let bar = bar(&format!("download: :{remote} to {}", local.display()));
            let bar_total = bar.clone();
            let size = files::download(
                &api,
                &env,
                &remote,
                &local,
                move |total| {
                    if let Some(t) = total {
                        bar_total.set_length(t)
                    }
                },
                progress(&bar),
            )
            .await;
            bar.finish_and_clear();
            let size = size?;
            eprintln!("download: :{remote} to {} ({size} bytes)", local.display());
        }
        (true, true) => upload_tree(&api, &env, Path::new(&args.source), &remote).await?,
        (false, true) => download_tree(&api, &env, &remote, Path::new(&args.destination)).await?,
    }
    Ok(0)
}

fn archive_name() -> String {
    format!(".seashell-cp-{}.tar", uuid::Uuid::new_v4().simple())
}

async fn in_environment(api: &CloudShell, env: &str, script: &str) -> Result<(), CliError> {
    let mut output = Vec::new();
    let code = command::run(api, env, script, |b| output.extend_from_slice(b)).await?;
    if code != 0 {
        return Err(CliError::partial(format!(
            "in the environment, `{script}` failed ({code}): {}",
            String::from_utf8_lossy(&output).trim()
        )));
    }
    Ok(())
}

/// The contents of `local` into the remote directory `remote`.
async fn upload_tree(
    api: &CloudShell,
    env: &str,
    local: &Path,
    remote: &str,
) -> Result<(), CliError> {
    if !local.is_dir() {
        return Err(CliError::usage(format!(
            "{} is not a directory",
            local.display()
        )));
    }
    let tmp = tempfile::NamedTempFile::new()
        .map_err(|e| CliError::other(format!("a temporary file: {e}")))?;
    let dir = local.to_path_buf();
    let file = tmp
        .reopen()
        .map_err(|e| CliError::other(format!("a temporary file: {e}")))?;
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut builder = tar::Builder::new(file);
        builder.follow_symlinks(false);
        builder.append_dir_all(".", &dir)?;
        builder.into_inner()?.sync_all()
    })
    .await
    .map_err(|e| CliError::other(e.to_string()))?
    .map_err(|e| CliError::partial(format!("archiving {}: {e}", local.display())))?;
    let archive = archive_name();
    let bar = bar(&format!("upload: {} to :{remote}", local.display()));
    let sent = files::upload(api, env, tmp.path(), &archive, progress(&bar)).await;
    bar.finish_and_clear();
    let sent = sent?;
    let target = if remote.is_empty() { "." } else { remote };
    let script = format!(
        "cd ~ && mkdir -p {t} && tar -xf \"$HOME\"/{a} -C {t}; rc=$?; rm -f \"$HOME\"/{a}; exit $rc",
        t = quote(target),
        a = quote(&archive)
    );
    in_environment(api, env, &script).await?;
    eprintln!(
        "upload: {} to :{target} ({sent} bytes archived)",
        local.display()
    );
    Ok(())
}

/// The remote directory `remote` into the local directory `local`.
async fn download_tree(
    api: &CloudShell,
    env: &str,
    remote: &str,
    local: &Path,
) -> Result<(), CliError> {
    let archive = archive_name();
    let source = if remote.is_empty() { "." } else { remote };
    let script = format!(
        // Packed outside the tree (so it does not pack itself), then moved
        // where the download URLs reach.
        "cd ~ && tar -cf /tmp/{a} -C {s} . && mv /tmp/{a} \"$HOME\"/{a}",
        a = quote(&archive),
        s = quote(source)
    );
    in_environment(api, env, &script).await?;
    let tmp =
        tempfile::tempdir().map_err(|e| CliError::other(format!("a temporary directory: {e}")))?;
    let file = tmp.path().join("tree.tar");
    let bar = bar(&format!("download: :{source} to {}", local.display()));
    let got = files::download(api, env, &archive, &file, |_| {}, progress(&bar)).await;
    bar.finish_and_clear();
    let _ = in_environment(api, env, &format!("rm -f \"$HOME\"/{}", quote(&archive))).await;
    let got = got?;
    let dest = local.to_path_buf();
    tokio::task::spawn_blocking(move || archive::unpack_tree(&file, &dest))
        .await
        .map_err(|e| CliError::other(e.to_string()))?
        .map_err(|e| CliError::partial(format!("unpacking into {}: {e}", local.display())))?;
    eprintln!(
        "download: :{source} to {} ({got} bytes archived)",
        local.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_console_rules() {
        assert_eq!(remote_target("", Path::new("/tmp/a.txt")), "a.txt");
        assert_eq!(remote_target("sub/", Path::new("a.txt")), "sub/a.txt");
        assert_eq!(
            remote_target("/home/cloudshell-user/b.txt", Path::new("a.txt")),
            "/home/cloudshell-user/b.txt"
        );
        assert_eq!(quote("it's"), "'it'\\''s'");
    }
}
