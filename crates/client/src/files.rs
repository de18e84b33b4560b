//! File transfers through the pre-signed URLs of GetFileUploadUrls and
//! GetFileDownloadUrls. Bodies are streamed, never held whole in memory.

use std::path::Path;
use std::sync::Arc;

use futures_util::StreamExt;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::api::{error_chain, ApiError, CloudShell};

/// Why a transfer failed.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The API refused the URL.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Local {
        /// The local path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The transfer itself failed.
    #[error("{direction} of {remote} failed: {reason}")]
    Transfer {
        /// `upload` or `download`.
        direction: &'static str,
        /// The remote path.
        remote: String,
        /// What went wrong (the server's message when it sent one).
        reason: String,
    },
}

/// Progress of a transfer: bytes done so far.
pub type Progress = Arc<dyn Fn(u64) + Send + Sync>;

fn local(path: &Path) -> impl FnOnce(std::io::Error) -> FileError + '_ {
    move |source| FileError::Local {
        path: path.display().to_string(),
        source,
    }
}

fn url_field(reply: &serde_json::Value, name: &str) -> Result<String, FileError> {
    reply
        .get(name)
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .ok_or_else(|| FileError::Transfer {
            direction: "transfer",
            remote: String::new(),
            reason: format!("the answer has no {name}"),
        })
}

/// The text of a failed transfer's answer: the `message` of a JSON error
/// body, or the body itself.
async fn failure(reply: reqwest::Response) -> String {
    let status = reply.status();
    let body = reply.text().await.unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .or_else(|| v.get("Message"))
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or(body);
    format!("HTTP {status}: {}", message.trim())
}

/// Uploads `local_file` to `remote` (relative to /home/cloudshell-user or
/// absolute inside it); the number of bytes sent.
#[tracing::instrument(level = "debug", skip(api, progress))]
pub async fn upload(
    api: &CloudShell,
    environment_id: &str,
    local_file: &Path,
    remote: &str,
    progress: Progress,
) -> Result<u64, FileError> {
    let file = tokio::fs::File::open(local_file)
        .await
        .map_err(local(local_file))?;
    let size = file.metadata().await.map_err(local(local_file))?.len();
    let reply = api
        .call(
            "getFileUploadUrls",
            &json!({"EnvironmentId": environment_id, "FileUploadPath": remote}),
        )
        .await?;
    let url = url_field(&reply, "FileUploadPresignedUrl")?;
    let mut sent = 0u64;
    let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024).map(move |chunk| {
        if let Ok(bytes) = &chunk {
            sent += bytes.len() as u64;
            progress(sent);
        }
        chunk
    });
    let transfer_err = |reason: String| FileError::Transfer {
        direction: "upload",
        remote: remote.to_string(),
        reason,
    };
    let reply = api
        .http()
        .put(&url)
        .header("content-length", size.to_string())
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .map_err(|e| transfer_err(error_chain(&e)))?;
    if !reply.status().is_success() {
        return Err(transfer_err(failure(reply).await));
    }
    Ok(size)
}

/// Downloads `remote` into `local_file` (written beside it first and
/// renamed, so a failure leaves no partial file); the number of bytes.
/// `total` learns the size when the server tells it.
#[tracing::instrument(level = "debug", skip(api, progress, total))]
pub async fn download(
    api: &CloudShell,
    environment_id: &str,
    remote: &str,
    local_file: &Path,
    total: impl FnOnce(Option<u64>),
    progress: Progress,
) -> Result<u64, FileError> {
    let reply = api
        .call(
            "getFileDownloadUrls",
            &json!({"EnvironmentId": environment_id, "FileDownloadPath": remote}),
        )
        .await?;
    let url = url_field(&reply, "FileDownloadPresignedUrl")?;
    let transfer_err = |reason: String| FileError::Transfer {
        direction: "download",
        remote: remote.to_string(),
        reason,
    };
    let reply = api
        .http()
        .get(&url)
        .send()
        .await
        .map_err(|e| transfer_err(error_chain(&e)))?;
    if !reply.status().is_success() {
        return Err(transfer_err(failure(reply).await));
    }
    total(reply.content_length());
    let name = local_file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "download".into());
    let partial = local_file.with_file_name(format!(".{name}.seashell-partial"));
    let mut out = tokio::fs::File::create(&partial)
        .await
        .map_err(local(&partial))?;
    let mut received = 0u64;
    let mut body = reply.bytes_stream();
    let result: Result<(), FileError> = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| transfer_err(error_chain(&e)))?;
            out.write_all(&chunk).await.map_err(local(&partial))?;
            received += chunk.len() as u64;
            progress(received);
        }
        out.flush().await.map_err(local(&partial))?;
        Ok(())
    }
    .await;
    if let Err(e) = result {
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(e);
    }
    drop(out);
    tokio::fs::rename(&partial, local_file)
        .await
        .map_err(local(local_file))?;
    Ok(received)
}
