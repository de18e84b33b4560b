//! The file-path resolver of uploads and downloads: any path, never a
//! panic; every accepted path stays beneath the home directory by its
//! components (the agent also resolves it with `openat2(RESOLVE_BENEATH)`),
//! names a file, and resolves to itself when given again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seashell_server::services::cloudshell::files::home_relative;

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(relative) = home_relative(path) else {
        return;
    };
    assert!(!relative.is_empty());
    assert!(!relative.starts_with('/'), "{relative:?} is relative");
    assert!(!relative.ends_with('/'));
    assert!(!relative.contains('\0'));
    assert!(relative.split('/').all(|c| c != ".."), "{relative:?} stays in home");
    assert!(relative.split('/').any(|c| !c.is_empty() && c != "."));
    assert_eq!(home_relative(&relative).ok().as_deref(), Some(relative.as_str()));
    let absolute = format!("/home/cloudshell-user/{relative}");
    // Within the length limit, the absolute form names the same file.
    if absolute.len() <= 4096 {
        assert_eq!(home_relative(&absolute).ok().as_deref(), Some(relative.as_str()));
    }
});
