//! An OpenAPI 3.0 description of the CloudShell API, derived from its
//! botocore model (the one source of the API's shapes), served at
//! `GET /cloudshell/openapi.json` for generic HTTP tooling: property-based
//! testers such as schemathesis, client generators, API browsers.
//!
//! Each operation is `POST /cloudshell/<lowerCamelOp>` with the input shape
//! as its JSON body, the output shape as its 200 answer and
//! `{code, message}` for every error. Constraints the model states (lengths,
//! ranges, patterns, enums, required members) become JSON Schema keywords.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{json, Map, Value};

use super::model::SERVICE_MODEL_JSON;

/// The description, built once from the model.
static OPENAPI: LazyLock<String> = LazyLock::new(|| {
    let model: Value = serde_json::from_str(SERVICE_MODEL_JSON).unwrap_or(Value::Null);
    openapi(&model).to_string()
});

/// `GET /cloudshell/openapi.json`, unauthenticated like the model.
pub async fn document() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        OPENAPI.as_str(),
    )
}

/// The OpenAPI document of a botocore REST-JSON model.
pub fn openapi(model: &Value) -> Value {
    let mut paths = Map::new();
    if let Some(ops) = model["operations"].as_object() {
        for (name, op) in ops {
            let uri = op["http"]["requestUri"].as_str().unwrap_or_default();
            let method = op["http"]["method"]
                .as_str()
                .unwrap_or("POST")
                .to_ascii_lowercase();
            let mut operation = json!({
                "operationId": name,
                "description": strip_tags(op["documentation"].as_str().unwrap_or_default()),
                "responses": {
                    "200": response(op["output"]["shape"].as_str()),
                    "default": {
                        "description": "An error: its code (also in x-amzn-ErrorType) and message.",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
                    }
                }
            });
            if let Some(input) = op["input"]["shape"].as_str() {
                operation["requestBody"] = json!({
                    "required": true,
                    "content": {"application/json": {"schema": reference(input)}}
                });
            }
            paths.insert(uri.to_string(), json!({ method: operation }));
        }
    }
    let mut schemas = Map::new();
    if let Some(shapes) = model["shapes"].as_object() {
        for (name, shape) in shapes {
            schemas.insert(name.clone(), schema(shape));
        }
    }
    schemas.insert(
        "Error".into(),
        json!({
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}}
        }),
    );
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": model["metadata"]["serviceFullName"].as_str().unwrap_or("CloudShell"),
            "version": model["metadata"]["apiVersion"].as_str().unwrap_or("1"),
            "description": "The CloudShell API of Seashell, from its botocore model \
                            (/cloudshell/model/service-2.json). Requests are signed with \
                            SigV4 (service cloudshell) or carry the console's session cookie \
                            and X-CSRF-Token header."
        },
        "servers": [{"url": "/cloudshell"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "consoleSession": {"type": "apiKey", "in": "cookie", "name": "seashell_session"},
                "csrfToken": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token"},
                "sigv4": {"type": "apiKey", "in": "header", "name": "Authorization",
                          "description": "AWS Signature Version 4, service cloudshell"}
            }
        },
        "security": [{"consoleSession": [], "csrfToken": []}, {"sigv4": []}]
    })
}

fn reference(shape: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{shape}") })
}

fn response(output: Option<&str>) -> Value {
    match output {
        Some(shape) => json!({
            "description": "Success.",
            "content": {"application/json": {"schema": reference(shape)}}
        }),
        None => json!({"description": "Success."}),
    }
}

/// The JSON Schema of one botocore shape.
fn schema(shape: &Value) -> Value {
    let mut s = match shape["type"].as_str().unwrap_or_default() {
        "structure" => {
            let mut properties = Map::new();
            if let Some(members) = shape["members"].as_object() {
                for (name, member) in members {
                    let target = member["shape"].as_str().unwrap_or_default();
                    properties.insert(name.clone(), reference(target));
                }
            }
            let mut s = json!({"type": "object", "properties": properties});
            if let Some(required) = shape["required"].as_array().filter(|r| !r.is_empty()) {
                s["required"] = Value::Array(required.clone());
            }
            s
        }
        "list" => {
            let mut s = json!({"type": "array", "items": reference(shape["member"]["shape"].as_str().unwrap_or_default())});
            copy(shape, &mut s, "min", "minItems");
            copy(shape, &mut s, "max", "maxItems");
            s
        }
        "map" => {
            json!({"type": "object", "additionalProperties": reference(shape["value"]["shape"].as_str().unwrap_or_default())})
        }
        "string" => {
            let mut s = json!({"type": "string"});
            copy(shape, &mut s, "min", "minLength");
            copy(shape, &mut s, "max", "maxLength");
            if let Some(pattern) = shape["pattern"].as_str() {
                s["pattern"] = json!(pattern);
            }
            if let Some(values) = shape["enum"].as_array() {
                s["enum"] = Value::Array(values.clone());
            }
            s
        }
        "integer" | "long" => {
            let mut s = json!({"type": "integer"});
            copy(shape, &mut s, "min", "minimum");
            copy(shape, &mut s, "max", "maximum");
            s
        }
        "float" | "double" => json!({"type": "number"}),
        "boolean" => json!({"type": "boolean"}),
        // REST-JSON timestamps are epoch seconds.
        "timestamp" => json!({"type": "number"}),
        "blob" => json!({"type": "string", "format": "byte"}),
        _ => json!({}),
    };
    if let Some(doc) = shape["documentation"].as_str() {
        s["description"] = json!(strip_tags(doc));
    }
    s
}

fn copy(shape: &Value, s: &mut Value, from: &str, to: &str) {
    if let Some(n) = shape[from].as_i64() {
        s[to] = json!(n);
    }
}

/// The model's HTML documentation as plain text.
fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_and_shape_is_described() {
        let model: Value = serde_json::from_str(SERVICE_MODEL_JSON).expect("model");
        let doc = openapi(&model);
        let paths = doc["paths"].as_object().expect("paths");
        assert_eq!(
            paths.len(),
            model["operations"].as_object().expect("ops").len()
        );
        let create = &paths["/createSession"]["post"];
        assert_eq!(create["operationId"], "CreateSession");
        let body = &create["requestBody"]["content"]["application/json"]["schema"]["$ref"];
        assert_eq!(body, "#/components/schemas/CreateSessionRequest");
        let request = &doc["components"]["schemas"]["CreateSessionRequest"];
        assert_eq!(request["type"], "object");
        assert!(request["required"]
            .as_array()
            .expect("required")
            .iter()
            .any(|r| r == "EnvironmentId"));
        // Every reference resolves.
        let text = doc.to_string();
        for piece in text.split("#/components/schemas/").skip(1) {
            let name = &piece[..piece.find('"').expect("end")];
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "{name} is referenced but not described"
            );
        }
        assert_eq!(strip_tags("<p>Runs <code>x</code>.</p>"), "Runs x.");
    }
}
