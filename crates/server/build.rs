//! Builds the web console (`web/`, TypeScript and Vite) into `web/dist`,
//! which `src/console.rs` embeds, whenever `web/dist` is missing or older
//! than the console's sources. Needs Node.js 18 or later and npm.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// What the console is built from (directories are walked).
const SOURCES: &[&str] = &[
    "src",
    "index.html",
    "package.json",
    "package-lock.json",
    "tsconfig.json",
    "vite.config.ts",
];

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let web = manifest.join("../../web");
    for source in SOURCES {
        println!("cargo:rerun-if-changed={}", web.join(source).display());
    }
    let built = web.join("dist/index.html");
    println!("cargo:rerun-if-changed={}", built.display());
    println!("cargo:rerun-if-env-changed=SEASHELL_NPM");

    let newest_source = SOURCES.iter().filter_map(|s| newest(&web.join(s))).max();
    let built_at = std::fs::metadata(&built).and_then(|m| m.modified()).ok();
    let fresh = matches!((built_at, newest_source), (Some(b), Some(s)) if b >= s);
    if fresh {
        return;
    }
    let npm = std::env::var("SEASHELL_NPM").unwrap_or_else(|_| "npm".to_string());
    check_node();
    let installed = web.join("node_modules/.package-lock.json");
    let lock_changed = match (newest(&installed), newest(&web.join("package-lock.json"))) {
        (Some(i), Some(l)) => l > i,
        _ => true,
    };
    if lock_changed {
        run(
            Command::new(&npm)
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&web),
            "npm ci",
        );
    }
    run(
        Command::new(&npm).args(["run", "build"]).current_dir(&web),
        "npm run build",
    );
}

/// Stops the build with a message naming what is needed.
fn fail(why: &str) -> ! {
    eprintln!(
        "\nerror: the web console (web/) cannot be built: {why}\n\
         Seashell embeds its console in the server binary and builds it with Node.js 18 or later and npm.\n\
         Install them (Debian: `apt-get install nodejs npm`, or https://nodejs.org), then build again.\n"
    );
    std::process::exit(1);
}

fn check_node() {
    let out = Command::new("node").arg("--version").output();
    let version = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ => fail("`node` was not found"),
    };
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major < 18 {
        fail(&format!(
            "Node.js {version} is too old; 18 or later is needed"
        ));
    }
}

fn run(cmd: &mut Command, what: &str) {
    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(s) => fail(&format!("`{what}` failed ({s}); its output is above")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => fail("`npm` was not found"),
        Err(e) => fail(&format!("`{what}` could not run: {e}")),
    }
}

/// The latest modification time of a file, or of anything under a
/// directory.
fn newest(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| newest(&e.path()))
        .max()
}
