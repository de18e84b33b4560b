//! `seashell image …`: building environment images.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use seashell_runtime::image::{self, BuildOptions, BuildOutcome, ImageKind, Progress};

/// Image commands.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Build the default environment image (Debian stable with the tools of
    /// AWS CloudShell), or with `--minimal` the busybox test image. Must run
    /// as root. An existing complete image is reused unless `--force` is
    /// given.
    Build(BuildArgs),
}

/// Arguments of `seashell image build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Directory that will hold the image's root filesystem [default:
    /// DATA_DIR/images/default, or DATA_DIR/images/minimal with --minimal].
    #[arg(long, value_name = "DIR")]
    output: Option<PathBuf>,
    /// The server's data directory, which holds the images by default.
    #[arg(long, env = "SEASHELL_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Build the busybox test image of images/minimal instead (seconds, no
    /// network).
    #[arg(long)]
    minimal: bool,
    /// Rebuild even if the output already holds a complete image; the new
    /// image replaces the old one only once it is complete.
    #[arg(long)]
    force: bool,
    /// Debian mirror [default: the host's apt mirror, else
    /// http://deb.debian.org/debian].
    #[arg(long, env = "SEASHELL_DEBIAN_MIRROR", value_name = "URL")]
    mirror: Option<String>,
}

/// Runs an image command.
pub async fn run(cmd: ImageCommand) -> anyhow::Result<()> {
    match cmd {
        ImageCommand::Build(args) => {
            // The build runs external programs for minutes; keep it off the
            // async workers.
            tokio::task::spawn_blocking(move || build(args))
                .await
                .context("the image build task failed")?
        }
    }
}

fn build(args: BuildArgs) -> anyhow::Result<()> {
    let kind = if args.minimal {
        ImageKind::Minimal
    } else {
        ImageKind::Default
    };
    let output = match args.output {
        Some(dir) => dir,
        None => {
            let data_dir = args
                .data_dir
                .unwrap_or_else(seashell_server::config::default_data_dir);
            let name = match kind {
                ImageKind::Default => "default",
                ImageKind::Minimal => "minimal",
            };
            data_dir.join("images").join(name)
        }
    };
    let options = BuildOptions {
        kind,
        output: output.clone(),
        force: args.force,
        mirror: args.mirror,
    };
    let mut reporter = Reporter::new();
    // File timestamps are coarser than the clock; allow for it.
    let started = SystemTime::now()
        .checked_sub(Duration::from_secs(1))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let report = image::build(&options, &mut reporter).with_context(|| {
        // Point at the log only if this build wrote it: checks that fail
        // before the build starts leave an older log, or none.
        let log = image::build_log_path(&output);
        let fresh = std::fs::metadata(&log)
            .and_then(|m| m.modified())
            .map(|t| t >= started)
            .unwrap_or(false);
        if fresh {
            format!(
                "cannot build the image at {} (full log: {})",
                output.display(),
                log.display()
            )
        } else {
            format!("cannot build the image at {}", output.display())
        }
    })?;
    drop(reporter);
    let info = &report.info;
    match report.outcome {
        BuildOutcome::Built => println!(
            "Built {} {} at {} ({}, packages {})",
            info.name,
            info.version,
            report.path.display(),
            info.build_date,
            info.packages_digest
        ),
        BuildOutcome::Reused => println!(
            "Reusing {} {} at {}, built {} (--force rebuilds it)",
            info.name,
            info.version,
            report.path.display(),
            info.build_date
        ),
    }
    Ok(())
}

/// Shows build progress on standard error: a spinner with the latest output
/// line on a terminal, one line per step otherwise (logs and CI).
struct Reporter {
    interactive: bool,
    bar: Option<ProgressBar>,
    title: String,
}

impl Reporter {
    fn new() -> Reporter {
        Reporter {
            interactive: std::io::stderr().is_terminal(),
            bar: None,
            title: String::new(),
        }
    }
}

impl Progress for Reporter {
    fn step(&mut self, index: usize, total: usize, title: &str) {
        self.title = format!("[{index}/{total}] {title}");
        if !self.interactive {
            eprintln!("{}", self.title);
            return;
        }
        let bar = ProgressBar::new_spinner();
        // The template is a literal known to be valid; fall back to the
        // default spinner rather than fail a build over cosmetics.
        if let Ok(style) = ProgressStyle::with_template("{spinner:.cyan} {prefix} {wide_msg:.dim}")
        {
            bar.set_style(style);
        }
        bar.set_prefix(self.title.clone());
        bar.enable_steady_tick(Duration::from_millis(120));
        self.bar = Some(bar);
    }

    fn output(&mut self, line: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(line.trim().to_owned());
        }
    }

    fn step_done(&mut self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        match self.bar.take() {
            Some(bar) => {
                bar.finish_and_clear();
                eprintln!("✓ {} ({secs:.1} s)", self.title);
            }
            None => eprintln!("    done in {secs:.1} s"),
        }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        // A failed step leaves its spinner running; stop it so the error
        // message is printed on a clean line.
        if let Some(bar) = self.bar.take() {
            bar.abandon();
        }
    }
}
