//! CloudShell REST-JSON request bodies: any bytes for any operation, never
//! a panic; what is accepted has passed the checks the service relies on.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seashell_server::services::cloudshell::input::{parse, Input, MAX_LAYOUT};
use seashell_server::services::cloudshell::Operation;

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let all = Operation::all();
    let operation = all[usize::from(which) % all.len()];
    let Ok(input) = parse(operation, body) else {
        return;
    };
    match input {
        Input::CreateEnvironment { name, vpc } => {
            assert!(name.is_none() || vpc.is_some(), "a name only with a VPC");
            if let Some(name) = name {
                assert!((1..=28).contains(&name.len()));
            }
        }
        Input::UpdateLayout { layout, .. } => assert!(layout.len() <= MAX_LAYOUT),
        Input::FileTransfer { relative, .. } => {
            assert!(!relative.starts_with('/'));
            assert!(!relative.split('/').any(|c| c == ".."));
        }
        _ => {}
    }
});
