//! Rendering of responses in the AWS CLI's output formats.

pub mod json;
pub mod table;
pub mod text;
pub mod yaml;

use serde_json::Value;

use super::settings::OutputFormat;

/// How a response is rendered.
#[derive(Debug, Clone)]
pub struct Style {
    /// The format.
    pub format: OutputFormat,
    /// Colors in tables.
    pub color: bool,
    /// Terminal width for tables (80 when stdout is not a terminal, as the
    /// AWS CLI assumes).
    pub width: usize,
}

/// Renders `value`, the (queried) response of `operation` (PascalCase; the
/// table's title).
pub fn render(style: &Style, operation: &str, value: &Value) -> String {
    match style.format {
        OutputFormat::Json => json::render(value),
        OutputFormat::Text => text::render(value),
        OutputFormat::Table => table::render(operation, value, style.color, style.width),
        OutputFormat::Yaml => yaml::render(value),
        OutputFormat::YamlStream => yaml::render_stream(std::slice::from_ref(value)),
    }
}

/// The scalar as Python's `str()` shows it, as the AWS CLI's text and
/// table formats print values.
pub fn scalar(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// Whether `value` is neither a list nor an object.
pub fn is_scalar(value: &Value) -> bool {
    !matches!(value, Value::Array(_) | Value::Object(_))
}

/// Golden files: `golden/describe-volumes.json` is the response the AWS CLI
/// User Guide's "Controlling Command Output" chapter starts from; the
/// `.txt` files are what the AWS CLI's own formatters
/// (`awscli.formatter.TextFormatter`/`TableFormatter`, 80 columns, no
/// color) print for it, and match the guide's examples token for token.
#[cfg(test)]
mod golden {
    use super::*;
    use crate::client::query::Query;
    use serde_json::json;

    fn input() -> Value {
        serde_json::from_str(include_str!("golden/describe-volumes.json")).expect("golden input")
    }

    fn style(format: OutputFormat) -> Style {
        Style {
            format,
            color: false,
            width: 80,
        }
    }

    fn rendered(format: OutputFormat, query: Option<&str>) -> String {
        let mut value = input();
        if let Some(q) = query {
            value = Query::compile(q)
                .expect("query")
                .search(&value)
                .expect("search");
        }
        render(&style(format), "DescribeVolumes", &value)
    }

    /// The words of a text, without the table's border characters.
    fn tokens(text: &str) -> Vec<String> {
        text.split(|c: char| c.is_whitespace() || c == '|' || c == '+')
            .map(|t| t.trim_matches(|c| c == '-' || c == '+' || c == '|'))
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn text_matches_the_aws_cli() {
        assert_eq!(
            rendered(OutputFormat::Text, None),
            include_str!("golden/text.txt")
        );
        // The guide's own listing, whose tabs became spaces on the page.
        let guide = "VOLUMES us-west-2a 2013-09-17T00:55:03.000Z 30 snap-f23ec1c8 in-use vol-e11a5288 standard
ATTACHMENTS 2013-09-17T00:55:03.000Z True /dev/sda1 i-a071c394 attached vol-e11a5288
VOLUMES us-west-2a 2013-09-18T20:26:15.000Z 8 snap-708e8348 in-use vol-2e410a47 standard
ATTACHMENTS 2013-09-18T20:26:16.000Z True /dev/sda1 i-4b41a37c attached vol-2e410a47";
        assert_eq!(tokens(&rendered(OutputFormat::Text, None)), tokens(guide));
    }

    #[test]
    fn text_with_a_list_query_prints_none_for_missing_keys() {
        let q = "Volumes[*].[VolumeId, Attachments[0].InstanceId, AvailabilityZone, Size, FakeKey]";
        let out = rendered(OutputFormat::Text, Some(q));
        assert_eq!(out, include_str!("golden/text-query-list.txt"));
        assert_eq!(out, "vol-e11a5288\ti-a071c394\tus-west-2a\t30\tNone\nvol-2e410a47\ti-4b41a37c\tus-west-2a\t8\tNone\n");
    }

    #[test]
    fn tables_match_the_aws_cli() {
        assert_eq!(
            rendered(OutputFormat::Table, None),
            include_str!("golden/table.txt")
        );
        let dict = "Volumes[*].{ID:VolumeId,InstanceId:Attachments[0].InstanceId,AZ:AvailabilityZone,Size:Size}";
        let out = rendered(OutputFormat::Table, Some(dict));
        assert_eq!(out, include_str!("golden/table-query-dict.txt"));
        assert_eq!(
            tokens(&out),
            tokens("DescribeVolumes AZ ID InstanceId Size us-west-2a vol-e11a5288 i-a071c394 30 us-west-2a vol-2e410a47 i-4b41a37c 8")
        );
        let list = "Volumes[*].[VolumeId,Attachments[0].InstanceId,AvailabilityZone,Size]";
        assert_eq!(
            rendered(OutputFormat::Table, Some(list)),
            include_str!("golden/table-query-list.txt")
        );
    }

    #[test]
    fn a_wide_terminal_keeps_rows_horizontal() {
        let out = render(
            &Style {
                format: OutputFormat::Table,
                color: false,
                width: 200,
            },
            "DescribeVolumes",
            &input(),
        );
        assert!(out.contains("|| AvailabilityZone |"), "{out}");
        assert!(out.contains("||  us-west-2a"), "{out}");
        let colored = render(
            &Style {
                format: OutputFormat::Table,
                color: true,
                width: 80,
            },
            "DescribeVolumes",
            &input(),
        );
        assert!(
            colored.contains("\x1b[1m\x1b[34mus-west-2a\x1b[0m"),
            "{colored}"
        );
    }

    #[test]
    fn json_matches_the_guide() {
        let out = rendered(
            OutputFormat::Json,
            Some("Volumes[*].{ID:VolumeId,AZ:AvailabilityZone,Size:Size}"),
        );
        let guide = json!([
            {"AZ": "us-west-2a", "ID": "vol-e11a5288", "Size": 30},
            {"AZ": "us-west-2a", "ID": "vol-2e410a47", "Size": 8}
        ]);
        assert_eq!(serde_json::from_str::<Value>(&out).expect("json"), guide);
        assert!(
            out.starts_with("[\n    {\n        \"AZ\": \"us-west-2a\",\n"),
            "{out}"
        );
        let first = rendered(
            OutputFormat::Json,
            Some("Volumes[0].Attachments[0].DeleteOnTermination"),
        );
        assert_eq!(first, "true\n");
        assert_eq!(
            rendered(
                OutputFormat::Json,
                Some("Volumes[?AvailabilityZone=='us-west-1']")
            ),
            "[]\n"
        );
        assert_eq!(render(&style(OutputFormat::Json), "X", &json!({})), "");
    }

    #[test]
    fn yaml_is_block_style() {
        let out = rendered(
            OutputFormat::Yaml,
            Some("Volumes[*].{ID:VolumeId,Size:Size}"),
        );
        assert_eq!(
            out,
            "- ID: vol-e11a5288\n  Size: 30\n- ID: vol-2e410a47\n  Size: 8\n"
        );
        let stream = render(
            &style(OutputFormat::YamlStream),
            "X",
            &json!({"Environments": []}),
        );
        assert_eq!(stream, "- Environments: []\n");
    }
}
