//! The seam between `LookupEvents` and wherever records are stored.
//!
//! The server stores records in its database by implementing [`Sink`] and
//! answers lookups by implementing [`EventHistory`] over the same table,
//! ordered by ([`crate::PageCursor`]) `eventTime` then `eventID`, newest
//! first. [`MemoryHistory`] is the reference implementation.

use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::error::SinkError;
use crate::lookup::{Event, LookupEventsResponse, LookupQuery, PageCursor};
use crate::redact::RedactedRecord;
use crate::sink::Sink;

/// Why a lookup could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The store failed.
    #[error("audit history: store failed: {0}")]
    Store(String),
    /// A stored record could not be encoded for the response.
    #[error("audit history: cannot encode record {event_id}: {source}")]
    Encode {
        /// The record's `eventID`.
        event_id: uuid::Uuid,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
}

/// Answers `LookupEvents` queries over stored records.
#[async_trait]
pub trait EventHistory: Send + Sync + fmt::Debug {
    /// One page of events matching `query`, newest first, with a
    /// `NextToken` when more follow.
    async fn lookup(&self, query: &LookupQuery) -> Result<LookupEventsResponse, HistoryError>;
}

/// Builds a response page from records already filtered and sorted newest
/// first (by [`PageCursor::key_of`], descending), holding at most
/// `max_results + 1` records: the extra one only signals a next page.
///
/// # Errors
/// [`HistoryError::Encode`] when a record cannot be encoded.
pub fn page_from_sorted<'a>(
    query: &LookupQuery,
    records: impl IntoIterator<Item = &'a RedactedRecord>,
) -> Result<LookupEventsResponse, HistoryError> {
    let mut events = Vec::with_capacity(query.max_results);
    let mut last = None;
    let mut more = false;
    for record in records {
        if events.len() == query.max_results {
            more = true;
            break;
        }
        events.push(
            Event::from_record(record).map_err(|source| HistoryError::Encode {
                event_id: record.event_id,
                source,
            })?,
        );
        last = Some(PageCursor::after(record));
    }
    Ok(LookupEventsResponse {
        events,
        next_token: if more {
            last.map(|c| c.to_string())
        } else {
            None
        },
    })
}

/// Keeps records in memory; for tests and single-process setups.
#[derive(Debug, Clone, Default)]
pub struct MemoryHistory {
    records: Arc<Mutex<Vec<RedactedRecord>>>,
}

impl MemoryHistory {
    /// An empty history.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of every stored record, in arrival order.
    #[must_use]
    pub fn records(&self) -> Vec<RedactedRecord> {
        self.records.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl Sink for MemoryHistory {
    async fn write(&self, record: &RedactedRecord) -> Result<(), SinkError> {
        self.records
            .lock()
            .map_err(|_| SinkError::Poisoned)?
            .push(record.clone());
        Ok(())
    }
}

#[async_trait]
impl EventHistory for MemoryHistory {
    async fn lookup(&self, query: &LookupQuery) -> Result<LookupEventsResponse, HistoryError> {
        let records = self
            .records
            .lock()
            .map_err(|_| HistoryError::Store("history lock poisoned".into()))?;
        let mut matching: Vec<&RedactedRecord> = records
            .iter()
            .filter(|r| query.matches(r) && query.is_after_cursor(r))
            .collect();
        matching.sort_by_key(|r| std::cmp::Reverse(PageCursor::key_of(r)));
        page_from_sorted(query, matching)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::UserIdentity;
    use crate::lookup::{LookupAttribute, LookupAttributeKey, LookupEventsRequest};
    use crate::record::Record;
    use chrono::{TimeZone, Utc};

    fn record(name: &str, secs: i64, user: &str) -> RedactedRecord {
        Record::api_call(
            "cloudshell.amazonaws.com",
            name,
            "us-east-1",
            UserIdentity::iam_user("111122223333", user, "AIDAEXAMPLE"),
        )
        .event_time(Utc.timestamp_opt(secs, 0).single().unwrap_or_default())
        .build()
    }

    #[tokio::test]
    async fn pages_newest_first_with_filter() -> Result<(), Box<dyn std::error::Error>> {
        let history = MemoryHistory::new();
        for i in 0..7 {
            let user = if i % 2 == 0 { "alice" } else { "bob" };
            history
                .write(&record("DescribeEnvironments", 1000 + i, user))
                .await?;
        }
        let request = LookupEventsRequest {
            lookup_attributes: vec![LookupAttribute {
                key: LookupAttributeKey::Username,
                value: "alice".into(),
            }],
            max_results: Some(2),
            ..LookupEventsRequest::default()
        };
        let mut seen = Vec::new();
        let mut request = request;
        loop {
            let query = LookupQuery::from_request(&request)?;
            let page = history.lookup(&query).await?;
            assert!(page.events.len() <= 2);
            seen.extend(page.events.iter().map(|e| e.event_time.timestamp()));
            match page.next_token {
                Some(token) => request.next_token = Some(token),
                None => break,
            }
        }
        assert_eq!(seen, vec![1006, 1004, 1002, 1000]);
        Ok(())
    }

    #[tokio::test]
    async fn equal_times_are_not_lost_between_pages() -> Result<(), Box<dyn std::error::Error>> {
        let history = MemoryHistory::new();
        let mut ids = Vec::new();
        for _ in 0..5 {
            let r = record("GetEnvironmentStatus", 2000, "alice");
            ids.push(r.event_id.to_string());
            history.write(&r).await?;
        }
        let mut request = LookupEventsRequest {
            max_results: Some(2),
            ..LookupEventsRequest::default()
        };
        let mut seen = Vec::new();
        loop {
            let page = history
                .lookup(&LookupQuery::from_request(&request)?)
                .await?;
            seen.extend(page.events.into_iter().map(|e| e.event_id));
            match page.next_token {
                Some(token) => request.next_token = Some(token),
                None => break,
            }
        }
        seen.sort();
        ids.sort();
        assert_eq!(seen, ids);
        Ok(())
    }
}
