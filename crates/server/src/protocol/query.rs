//! The AWS Query protocol (IAM, STS): form-encoded requests with `Action` and
//! `Version`, XML replies wrapped in `<OpResponse><OpResult>…`, errors in
//! `<ErrorResponse>`.

use std::collections::BTreeMap;

use super::xml::XmlWriter;

/// A decoded Query request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryRequest {
    /// The operation, e.g. `GetCallerIdentity`.
    pub action: String,
    /// The API version, e.g. `2011-06-15`.
    pub version: String,
    /// Every other parameter, by name (`Tags.member.1.Key`, …).
    pub params: BTreeMap<String, String>,
}

/// Why a Query request cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// No `Action` parameter.
    #[error("Missing required parameter Action")]
    MissingAction,
    /// `Version` missing or not the service's.
    #[error("Could not find operation {action} for version {version}")]
    BadVersion {
        /// The action asked for.
        action: String,
        /// The version given.
        version: String,
    },
    /// The same parameter given twice with different values.
    #[error("Parameter {0} is given more than once")]
    Repeated(String),
}

impl QueryRequest {
    /// Decodes the form body and query string (both carry parameters in the
    /// Query protocol). `expected_version` is the service's API version.
    pub fn decode(
        query: &str,
        body: &[u8],
        expected_version: &str,
    ) -> Result<QueryRequest, QueryError> {
        let mut params = BTreeMap::new();
        let pairs = form_urlencoded::parse(query.as_bytes()).chain(form_urlencoded::parse(body));
        for (k, v) in pairs {
            // SigV4 query parameters are not operation parameters.
            if k.starts_with("X-Amz-") {
                continue;
            }
            match params.get(k.as_ref()) {
                Some(existing) if existing != &v => {
                    return Err(QueryError::Repeated(k.into_owned()))
                }
                _ => {
                    params.insert(k.into_owned(), v.into_owned());
                }
            }
        }
        let action = params.remove("Action").ok_or(QueryError::MissingAction)?;
        let version = params.remove("Version").unwrap_or_default();
        if version != expected_version {
            return Err(QueryError::BadVersion { action, version });
        }
        Ok(QueryRequest {
            action,
            version,
            params,
        })
    }

    /// A parameter's value.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// Whether the caller or the service is at fault, as Query errors say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The request was wrong (4xx).
    Sender,
    /// The service failed (5xx).
    Receiver,
}

/// Writes a successful reply: `<{action}Response xmlns=…><{action}Result>…`.
pub fn reply(
    action: &str,
    xmlns: &str,
    request_id: &str,
    result: impl FnOnce(&mut XmlWriter),
) -> String {
    let mut w = XmlWriter::new();
    let response = format!("{action}Response");
    let result_name = format!("{action}Result");
    w.open(&response, Some(xmlns));
    w.open(&result_name, None);
    result(&mut w);
    w.close(&result_name);
    w.open("ResponseMetadata", None)
        .element("RequestId", request_id)
        .close("ResponseMetadata");
    w.close(&response);
    w.finish()
}

/// Writes an error reply.
pub fn error(xmlns: &str, fault: Fault, code: &str, message: &str, request_id: &str) -> String {
    let mut w = XmlWriter::new();
    w.open("ErrorResponse", Some(xmlns)).open("Error", None);
    w.element(
        "Type",
        match fault {
            Fault::Sender => "Sender",
            Fault::Receiver => "Receiver",
        },
    );
    w.element("Code", code)
        .element("Message", message)
        .close("Error");
    w.element("RequestId", request_id).close("ErrorResponse");
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_form_bodies() {
        let r = QueryRequest::decode(
            "",
            b"Action=GetCallerIdentity&Version=2011-06-15",
            "2011-06-15",
        )
        .expect("decodes");
        assert_eq!(r.action, "GetCallerIdentity");
        assert!(r.params.is_empty());
        let r = QueryRequest::decode(
            "Action=CreateUser&Version=2010-05-08",
            b"UserName=al%20ice&Tags.member.1.Key=k",
            "2010-05-08",
        )
        .expect("decodes");
        assert_eq!(r.param("UserName"), Some("al ice"));
        assert_eq!(r.param("Tags.member.1.Key"), Some("k"));
    }

    #[test]
    fn refuses_bad_requests() {
        assert_eq!(
            QueryRequest::decode("", b"Version=2011-06-15", "2011-06-15"),
            Err(QueryError::MissingAction)
        );
        assert!(matches!(
            QueryRequest::decode("", b"Action=X&Version=1999-01-01", "2011-06-15"),
            Err(QueryError::BadVersion { .. })
        ));
        assert!(matches!(
            QueryRequest::decode("", b"Action=X&Version=2011-06-15&A=1&A=2", "2011-06-15"),
            Err(QueryError::Repeated(_))
        ));
        // Garbage bytes decode to something harmless, never a panic.
        let _ = QueryRequest::decode("%%%", &[0xff, 0xfe, b'=', b'&'], "2011-06-15");
    }

    #[test]
    fn replies() {
        let xml = reply(
            "GetCallerIdentity",
            "https://sts.amazonaws.com/doc/2011-06-15/",
            "rid",
            |w| {
                w.element("Account", "123456789012");
            },
        );
        assert!(xml.contains("<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult><Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata></GetCallerIdentityResponse>"));
        let xml = error("urn:x", Fault::Sender, "AccessDenied", "no <way>", "rid");
        assert!(xml.contains("<Type>Sender</Type><Code>AccessDenied</Code><Message>no &lt;way&gt;</Message></Error><RequestId>rid</RequestId>"));
    }
}
