//! The botocore service model of the CloudShell API
//! (`docs/cloudshell/service-2.json`), served at
//! `GET /cloudshell/model/service-2.json` so that users can install it with
//! `aws configure add-model` straight from their Seashell server.

use axum::http::header;
use axum::response::IntoResponse;

/// The model, as committed in `docs/cloudshell/service-2.json`.
pub const SERVICE_MODEL_JSON: &str = include_str!("../../../../../docs/cloudshell/service-2.json");

/// `GET /cloudshell/model/service-2.json`: the model, unauthenticated (it
/// holds nothing secret and the AWS CLI fetches it without signing).
pub async fn service_model() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        SERVICE_MODEL_JSON,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_is_botocore_rest_json_for_cloudshell() {
        let model: serde_json::Value =
            serde_json::from_str(SERVICE_MODEL_JSON).expect("the model is JSON");
        let meta = &model["metadata"];
        assert_eq!(meta["protocol"], "rest-json");
        assert_eq!(meta["signingName"], "cloudshell");
        assert_eq!(meta["serviceId"], "CloudShell");
        let ops = model["operations"].as_object().expect("operations");
        assert_eq!(ops.len(), 16);
        for (name, op) in ops {
            assert_eq!(op["http"]["method"], "POST", "{name}");
            let uri = op["http"]["requestUri"].as_str().expect("requestUri");
            assert_eq!(uri[1..].to_ascii_lowercase(), name.to_ascii_lowercase());
        }
    }

    #[tokio::test]
    async fn served_as_json() {
        let response = service_model().await.into_response();
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        assert_eq!(body, SERVICE_MODEL_JSON.as_bytes());
    }
}
