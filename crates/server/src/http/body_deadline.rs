//! A deadline on every request body, so a client cannot hold a connection
//! and a handler by sending its body a byte at a time (slowloris with a
//! body; docs/security.md §5.1).
//!
//! The body must arrive within `body_read_timeout_secs`, extended by one
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
    timer: Pin<Box<Sleep>>,
    started: Instant,
    deadline: BodyDeadline,
    received: u64,
    expired: Arc<AtomicBool>,
}

impl DeadlineBody {
    fn new(inner: Body, deadline: BodyDeadline, expired: Arc<AtomicBool>) -> Self {
        let started = Instant::now();
        DeadlineBody {
            inner,
            timer: Box::pin(tokio::time::sleep_until(started + deadline.grace)),
            started,
            deadline,
            received: 0,
            expired,
        }
    }

    /// When the body must be complete, given what has arrived so far.
    fn due(&self) -> Instant {
        let earned = match self.deadline.min_rate_bytes {
            0 => Duration::ZERO,
            rate => Duration::from_secs(self.received / rate),
        };
        self.started + self.deadline.grace + earned
    }
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
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    let due = this.due();
                    this.timer.as_mut().reset(due);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => match this.timer.as_mut().poll(cx) {
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

    fn body(received: u64, grace: u64, rate: u64) -> DeadlineBody {
        let mut b = DeadlineBody::new(
            Body::empty(),
            BodyDeadline {
                grace: Duration::from_secs(grace),
                min_rate_bytes: rate,
            },
            Arc::default(),
        );
        b.received = received;
        b
    }

    #[tokio::test]
    async fn the_deadline_grows_with_what_arrived() {
        let b = body(0, 20, 500);
        assert_eq!(b.due() - b.started, Duration::from_secs(20));
        let b = body(5_000, 20, 500);
        assert_eq!(b.due() - b.started, Duration::from_secs(30));
        // Without a rate the grace is all a body gets.
        let b = body(1 << 30, 20, 0);
        assert_eq!(b.due() - b.started, Duration::from_secs(20));
    }
}
