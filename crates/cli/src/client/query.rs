//! `--query`: a JMESPath expression (the `jmespath` crate), run once over
//! the whole (merged) response.

use serde_json::Value;

use super::exit::CliError;

/// A compiled `--query`.
#[derive(Debug)]
pub struct Query(jmespath::Expression<'static>);

impl Query {
    /// Compiles `expression`; a bad one is a usage error (252).
    pub fn compile(expression: &str) -> Result<Query, CliError> {
        jmespath::compile(expression)
            .map(Query)
            .map_err(|e| CliError::usage(format!("Bad value for --query {expression}: {e}")))
    }

    /// Runs the query over `value`.
    pub fn search(&self, value: &Value) -> Result<Value, CliError> {
        let result = self
            .0
            .search(value.clone())
            .map_err(|e| CliError::usage(format!("--query failed: {e}")))?;
        serde_json::to_value(&*result).map_err(|e| CliError::other(format!("--query result: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A describeEnvironments answer as the server gives it: a public
    /// environment and a VPC one.
    fn response() -> Value {
        json!({"Environments": [
            {"EnvironmentId": "env-public", "Status": "RUNNING"},
            {"EnvironmentId": "env-vpc", "EnvironmentName": "build", "Status": "SUSPENDED",
             "VpcConfig": {"VpcId": "vpc-1", "SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-1"]}}
        ]})
    }

    fn q(expression: &str) -> Value {
        Query::compile(expression)
            .and_then(|q| q.search(&response()))
            .unwrap_or_else(|e| panic!("{expression}: {e}"))
    }

    #[test]
    fn the_guides_query_forms_on_cloudshell_responses() {
        assert_eq!(q("Environments[0].EnvironmentId"), json!("env-public"));
        assert_eq!(
            q("Environments[*].EnvironmentId"),
            json!(["env-public", "env-vpc"])
        );
        assert_eq!(
            q("Environments[*].[EnvironmentId, Status, EnvironmentName]"),
            json!([
                ["env-public", "RUNNING", null],
                ["env-vpc", "SUSPENDED", "build"]
            ])
        );
        assert_eq!(
            q("Environments[*].{ID:EnvironmentId,Vpc:VpcConfig.VpcId}"),
            json!([{"ID": "env-public", "Vpc": null}, {"ID": "env-vpc", "Vpc": "vpc-1"}])
        );
        assert_eq!(
            q("Environments[?Status=='RUNNING'].EnvironmentId"),
            json!(["env-public"])
        );
        assert_eq!(
            q("Environments[?VpcConfig].VpcConfig.SubnetIds[]"),
            json!(["subnet-a", "subnet-b"])
        );
        assert_eq!(q("length(Environments)"), json!(2));
        assert_eq!(q("Environments[?Status=='DELETING']"), json!([]));
    }

    #[test]
    fn a_bad_expression_is_a_usage_error() {
        let e = Query::compile("Environments[[").expect_err("bad");
        assert_eq!(e.code, 252);
    }
}
