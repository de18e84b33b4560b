//! The AWS CLI takes its global options before the command as well as
//! after it (`aws --region eu-west-1 cloudshell …`). Seashell's parser
//! knows them on the client commands only (`serve` and `admin` have options
//! of the same names), so options written before a client command are moved
//! right after its name before parsing.

use std::ffi::OsString;

/// The commands whose global options may come first.
const CLIENT_COMMANDS: &[&str] = &["cloudshell", "connect", "cp", "configure"];
/// Global options that take no value.
const SWITCHES: &[&str] = &["--debug", "--no-paginate", "--no-cli-pager"];

/// `argv` with leading global options moved after the client command they
/// precede; anything else (help, version, a server command) unchanged.
pub fn hoist_global_options(argv: Vec<OsString>) -> Vec<OsString> {
    let Some((program, rest)) = argv.split_first() else {
        return argv;
    };
    let mut i = 0;
    while let Some(arg) = rest.get(i).and_then(|a| a.to_str()) {
        if !arg.starts_with("--") || matches!(arg, "--help" | "--version" | "--") {
            break;
        }
        let takes_value = !arg.contains('=') && !SWITCHES.contains(&arg);
        i += if takes_value { 2 } else { 1 };
    }
    let leading = &rest[..i.min(rest.len())];
    match rest.get(i).and_then(|a| a.to_str()) {
        Some(command) if !leading.is_empty() && CLIENT_COMMANDS.contains(&command) => {
            let mut out = vec![program.clone(), rest[i].clone()];
            out.extend_from_slice(leading);
            out.extend_from_slice(&rest[i + 1..]);
            out
        }
        _ => argv,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hoist(args: &[&str]) -> Vec<String> {
        hoist_global_options(args.iter().map(OsString::from).collect())
            .into_iter()
            .map(|a| a.into_string().unwrap_or_default())
            .collect()
    }

    #[test]
    fn leading_global_options_follow_the_client_command() {
        assert_eq!(
            hoist(&[
                "seashell",
                "--region",
                "eu-west-1",
                "--debug",
                "--output=text",
                "cloudshell",
                "describe-environments"
            ]),
            [
                "seashell",
                "cloudshell",
                "--region",
                "eu-west-1",
                "--debug",
                "--output=text",
                "describe-environments"
            ]
        );
        assert_eq!(
            hoist(&[
                "seashell",
                "--ca-bundle",
                "ca.pem",
                "connect",
                "--command",
                "ls"
            ]),
            [
                "seashell",
                "connect",
                "--ca-bundle",
                "ca.pem",
                "--command",
                "ls"
            ]
        );
        // Nothing to move, help, version, and server commands: unchanged.
        for args in [
            &["seashell", "connect", "--region", "x"][..],
            &["seashell", "--help"],
            &["seashell", "--version"],
            &["seashell", "--output", "json", "admin", "bootstrap"],
            &["seashell", "--region"],
        ] {
            assert_eq!(hoist(args), args);
        }
    }
}
