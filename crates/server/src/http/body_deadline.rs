//! A deadline on every request body, so a client cannot hold a connection
//! and a handler by sending its body a byte at a time (slowloris with a
//! body; docs/security.md §5.1).
//!
//! The body must arrive within `body_read_timeout_secs` of the handler's
//! first asking for it (so neither a handler that waits for an environment
//! first nor a client that waits for `100 Continue` loses time), extended by one
//! second for every `body_min_rate_bytes` received: a large upload on a slow
//! but working link goes on for as long as it keeps that rate, while a
//! dribble runs out of time. (Apache's `mod_reqtimeout` works the same way.)
//! A timeout between frames alone would not do: a byte every few seconds
//! resets it for ever.
//!
//! When the deadline passes, the body fails; whatever the handler then
//! answers is replaced with `408 Request Timeout`, and an HTTP/1 connection
//! is closed, since the rest of the body is still on it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode, Version};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// The deadline's settings (`[limits]`).
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline {
    /// Time for a body before any of it counts.
    pub grace: Duration,
    /// Bytes that buy one more second; 0 means the grace is all there is.
    pub min_rate_bytes: u64,
}

/// The error a body gives when its deadline passed.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimedOut;

/// Middleware: puts the deadline on the request's body and answers 408 if
/// it passed.
pub async fn enforce(deadline: BodyDeadline, req: Request, next: Next) -> Response {
    let version = req.version();
    let expired = Arc::new(AtomicBool::new(false));
    let req = req.map(|body| {
        if body.is_end_stream() {
            body
        } else {
            Body::new(DeadlineBody::new(body, deadline, expired.clone()))
        }
    });
    let response = next.run(req).await;
    if !expired.load(Ordering::Acquire) {
        return response;
    }
    tracing::info!("request body timed out");
    let mut response = (
        StatusCode::REQUEST_TIMEOUT,
        "The request body did not arrive in time; send it faster or in a new request.\n",
    )
        .into_response();
    if version <= Version::HTTP_11 {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// A body that fails once its deadline has passed.
struct DeadlineBody {
    inner: Body,
    /// When the body was first read, and the timer set for its deadline;
    /// none before that read.
    clock: Option<(Instant, Pin<Box<Sleep>>)>,
    deadline: BodyDeadline,
    received: u64,
    expired: Arc<AtomicBool>,
}

impl DeadlineBody {
    fn new(inner: Body, deadline: BodyDeadline, expired: Arc<AtomicBool>) -> Self {
        DeadlineBody {
            inner,
            clock: None,
            deadline,
            received: 0,
            expired,
        }
    }
}

/// When a body first read at `started` must be complete, `received` bytes
/// into it.
fn due(started: Instant, deadline: BodyDeadline, received: u64) -> Instant {
    let earned = match deadline.min_rate_bytes {
        0 => Duration::ZERO,
        rate => Duration::from_secs(received / rate),
    };
    started + deadline.grace + earned
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if this.expired.load(Ordering::Acquire) {
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut))));
        }
        let (started, timer) = this.clock.get_or_insert_with(|| {
            let now = Instant::now();
            let first = due(now, this.deadline, this.received);
            (now, Box::pin(tokio::time::sleep_until(first)))
        });
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    timer
                        .as_mut()
                        .reset(due(*started, this.deadline, this.received));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => match timer.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.expired.store(true, Ordering::Release);
                    Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut))))
                }
                Poll::Pending => Poll::Pending,
            },
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How long after its first read a body must be complete.
    fn allowed(received: u64, grace: u64, rate: u64) -> Duration {
        let now = Instant::now();
        let deadline = BodyDeadline {
            grace: Duration::from_secs(grace),
            min_rate_bytes: rate,
        };
        due(now, deadline, received) - now
    }

    /// The next frame, or `None` if none came within `wait`.
    async fn next_frame(
        body: &mut DeadlineBody,
        wait: Duration,
    ) -> Option<Option<Result<Frame<Bytes>, axum::Error>>> {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx));
        tokio::time::timeout(wait, frame).await.ok()
    }

    #[tokio::test]
    async fn the_clock_starts_when_the_body_is_first_read() {
        let silent = futures_util::stream::pending::<Result<Bytes, std::io::Error>>();
        let expired = Arc::new(AtomicBool::new(false));
        let mut b = DeadlineBody::new(
            Body::from_stream(silent),
            BodyDeadline {
                grace: Duration::from_secs(1),
                min_rate_bytes: 0,
            },
            expired.clone(),
        );
        // A handler that reads late, well past the grace: the body still
        // has its whole grace from then on.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let first_read = Instant::now();
        assert!(next_frame(&mut b, Duration::from_millis(300))
            .await
            .is_none());
        assert!(!expired.load(Ordering::Acquire));
        let timed_out = next_frame(&mut b, Duration::from_secs(5)).await;
        assert!(
            matches!(timed_out, Some(Some(Err(_)))),
            "the silent body did not time out"
        );
        let after = first_read.elapsed();
        assert!(
            after >= Duration::from_millis(900) && after < Duration::from_secs(3),
            "{after:?}"
        );
        assert!(expired.load(Ordering::Acquire));
    }

    #[tokio::test]
    async fn the_deadline_grows_with_what_arrived() {
        assert_eq!(allowed(0, 20, 500), Duration::from_secs(20));
        assert_eq!(allowed(5_000, 20, 500), Duration::from_secs(30));
        // Without a rate the grace is all a body gets.
        assert_eq!(allowed(1 << 30, 20, 0), Duration::from_secs(20));
    }
}
