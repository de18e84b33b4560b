//! `seashell cloudshell <operation>`: every operation of the service model
//! as a command, its request members as options.

use clap::{Arg, ArgAction, ArgMatches, Command};
use serde_json::{Map, Value};

use super::context::Context;
use super::exit::CliError;
use super::model::{self, Operation};
use super::settings::GlobalArgs;
use super::timestamps;

/// The `cloudshell` command with one subcommand per operation.
pub fn command() -> Command {
    let mut cmd = Command::new("cloudshell")
        .about("Call the CloudShell API: one command per operation")
        .subcommand_required(true)
        .arg_required_else_help(true);
    for op in model::operations() {
        cmd = cmd.subcommand(operation_command(&op));
    }
    cmd
}

fn operation_command(op: &Operation) -> Command {
    let mut cmd = Command::new(op.command.clone()).about(first_sentence(&op.doc));
    cmd = cmd.long_about(op.doc.clone());
    for m in &op.members {
        let kind = model::shape_type(&m.shape);
        let mut arg = Arg::new(m.name.clone())
            .long(m.option.clone())
            .help(first_sentence(&m.doc))
            .required(false);
        arg = match kind {
            "boolean" => arg.action(ArgAction::SetTrue),
            "list" => arg
                .num_args(1..)
                .action(ArgAction::Append)
                .value_name("VALUE"),
            "structure" | "map" => arg.value_name("SHORTHAND|JSON"),
            _ => arg.value_name(kind.to_uppercase()),
        };
        if m.required {
            arg = arg.help(format!("{} (required)", first_sentence(&m.doc)));
        }
        cmd = cmd.arg(arg);
    }
    cmd.arg(
        Arg::new("cli-input-json")
            .long("cli-input-json")
            .value_name("JSON")
            .help("The request as JSON (or file://path); options given beside it win"),
    )
}

fn first_sentence(doc: &str) -> String {
    let doc = doc.trim();
    match doc.find(". ") {
        Some(i) => doc[..=i].to_string(),
        None => doc.to_string(),
    }
}

/// The request body from the parsed options.
pub fn request(op: &Operation, matches: &ArgMatches) -> Result<Value, CliError> {
    let mut body = Map::new();
    if let Some(input) = matches.get_one::<String>("cli-input-json") {
        let text = match input.strip_prefix("file://") {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| CliError::usage(format!("--cli-input-json {path}: {e}")))?,
            None => input.clone(),
        };
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(map)) => body = map,
            _ => return Err(CliError::usage("--cli-input-json must be a JSON object")),
        }
    }
    for m in &op.members {
        let value = match model::shape_type(&m.shape) {
            "boolean" => {
                if matches.get_flag(&m.name) {
                    Some(Value::Bool(true))
                } else {
                    None
                }
            }
            _ => match matches.get_many::<String>(&m.name) {
                Some(values) => {
                    let values: Vec<String> = values.cloned().collect();
                    Some(model::parse_value(&m.option, &m.shape, &values)?)
                }
                None => None,
            },
        };
        if let Some(v) = value {
            body.insert(m.name.clone(), v);
        }
    }
    let missing: Vec<String> = op
        .members
        .iter()
        .filter(|m| m.required && !body.contains_key(&m.name))
        .map(|m| format!("--{}", m.option))
        .collect();
    if !missing.is_empty() {
        return Err(CliError::usage(format!(
            "the following arguments are required: {}",
            missing.join(", ")
        )));
    }
    Ok(Value::Object(body))
}

/// The list member a response's items are in, when it has exactly one
/// (what --max-items and --starting-token page through).
fn result_key(op: &Operation) -> Option<String> {
    let out = model::model()
        .pointer(&format!("/operations/{}/output/shape", op.name))?
        .as_str()?;
    let members = model::shape(out)?.get("members")?.as_object()?;
    let lists: Vec<&String> = members
        .iter()
        .filter(|(_, m)| {
            m.get("shape")
                .and_then(Value::as_str)
                .is_some_and(|s| model::shape_type(s) == "list")
        })
        .map(|(k, _)| k)
        .collect();
    match lists.as_slice() {
        [one] => Some((*one).clone()),
        _ => None,
    }
}

/// Pages the response's list client-side: skips to `--starting-token`,
/// keeps `--max-items` and adds the `NextToken` that resumes.
fn page(op: &Operation, args: &GlobalArgs, response: &mut Value) -> Result<(), CliError> {
    if args.no_paginate || (args.max_items.is_none() && args.starting_token.is_none()) {
        return Ok(());
    }
    let Some(key) = result_key(op) else {
        return Ok(());
    };
    let start = match &args.starting_token {
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| CliError::usage(format!("Bad value for --starting-token: {t}")))?,
        None => 0,
    };
    let Some(items) = response.get_mut(&key).and_then(Value::as_array_mut) else {
        return Ok(());
    };
    let total = items.len();
    items.drain(..start.min(total));
    let keep = args.max_items.unwrap_or(usize::MAX).min(items.len());
    items.truncate(keep);
    if start + keep < total {
        if let Some(obj) = response.as_object_mut() {
            obj.insert(
                "NextToken".into(),
                Value::String((start + keep).to_string()),
            );
        }
    }
    Ok(())
}

/// Runs the operation named by `matches`' subcommand.
pub async fn run(global: &GlobalArgs, matches: &ArgMatches) -> Result<(), CliError> {
    let (name, sub) = matches
        .subcommand()
        .ok_or_else(|| CliError::usage("an operation is required"))?;
    let op = model::operations()
        .into_iter()
        .find(|o| o.command == name)
        .ok_or_else(|| CliError::usage(format!("Invalid choice: '{name}'")))?;
    let body = request(&op, sub)?;
    let ctx = Context::new(global)?;
    let api = ctx.api().await?;
    let mut response = api.call(&op.wire_name, &body).await?;
    if let Some(out) = model::model()
        .pointer(&format!("/operations/{}/output/shape", op.name))
        .and_then(Value::as_str)
    {
        timestamps::rewrite(&mut response, out);
    }
    page(&op, global, &mut response)?;
    ctx.print(&op.name, &response)
}
