//! The audit history table: every record, indexed for `LookupEvents`.

use seashell_audit::lookup::{LookupAttributeKey, LookupQuery};
use seashell_audit::{HistoryError, LookupEventsResponse, RedactedRecord};
use sqlx::Row;

use super::{query_err, Store, StoreError};

/// Rows fetched per round trip while filtering a lookup.
const BATCH: i64 = 200;

impl Store {
    /// Stores audit records in one transaction (records without an account
    /// are kept under ""); one already stored (a retried batch whose commit
    /// went through) is left as it is.
    pub async fn insert_audit_records(&self, records: &[RedactedRecord]) -> Result<(), StoreError> {
        let mut tx = self
            .write_tx()
            .await
            .map_err(query_err("recording audit events"))?;
        for record in records {
            let json =
                serde_json::to_string(record).map_err(|e| StoreError::Encode(e.to_string()))?;
            sqlx::query(
                "INSERT INTO audit_events (event_id, account_id, event_time, event_name, event_source, \
                 username, access_key_id, read_only, record) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (event_id) DO NOTHING",
            )
            .bind(record.event_id.to_string())
            .bind(record.recipient_account_id.clone().unwrap_or_default())
            .bind(record.event_time.timestamp())
            .bind(&record.event_name)
            .bind(&record.event_source)
            .bind(record.user_identity.lookup_username().map(str::to_string))
            .bind(record.user_identity.access_key_id.clone())
            .bind(i64::from(record.read_only))
            .bind(json)
            .execute(&mut *tx)
            .await
            .map_err(query_err("recording audit events"))?;
        }
        tx.commit()
            .await
            .map_err(query_err("recording audit events"))
    }

    /// The `eventTime` (seconds) of the newest indexed record.
    pub async fn newest_audit_time(&self) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT MAX(event_time) AS t FROM audit_events")
            .fetch_one(&self.pool)
            .await
            .map_err(query_err("reading the audit history"))?;
        row.try_get::<Option<i64>, _>("t")
            .map_err(query_err("reading the audit history"))
    }

    /// The ids of the records indexed with `eventTime` at or after `since`.
    pub async fn audit_event_ids_since(
        &self,
        since: i64,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let rows = sqlx::query("SELECT event_id FROM audit_events WHERE event_time >= $1")
            .bind(since)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("reading the audit history"))?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("event_id"))
            .collect::<Result<_, _>>()
            .map_err(query_err("reading the audit history"))
    }

    /// One page of an account's events matching `query`, newest first.
    pub async fn lookup_events(
        &self,
        account_id: &str,
        query: &LookupQuery,
    ) -> Result<LookupEventsResponse, HistoryError> {
        let store_err = |e: sqlx::Error| HistoryError::Store(e.to_string());
        // Columns that narrow the scan in SQL; the query's own `matches`
        // decides the rest (resources), so both paths agree by construction.
        let (column, value) = match &query.attribute {
            Some(a) => match a.key {
                LookupAttributeKey::EventName => (Some("event_name"), Some(a.value.clone())),
                LookupAttributeKey::EventSource => (Some("event_source"), Some(a.value.clone())),
                LookupAttributeKey::Username => (Some("username"), Some(a.value.clone())),
                LookupAttributeKey::AccessKeyId => (Some("access_key_id"), Some(a.value.clone())),
                LookupAttributeKey::EventId => (Some("event_id"), Some(a.value.clone())),
                _ => (None, None),
            },
            None => (None, None),
        };
        let start = query.start_time.map(|t| t.timestamp()).unwrap_or(i64::MIN);
        let end = query.end_time.map(|t| t.timestamp()).unwrap_or(i64::MAX);
        let mut cursor = query
            .after
            .map(|c| (c.event_time.timestamp(), c.event_id.to_string()));
        let mut matched: Vec<RedactedRecord> = Vec::new();
        loop {
            // Without a cursor the time bound alone admits every record.
            let (before_time, before_id) = cursor.clone().unwrap_or((i64::MAX, String::new()));
            let filter = column.map(|c| format!(" AND {c} = $6")).unwrap_or_default();
            let sql = format!(
                "SELECT event_time, event_id, record FROM audit_events \
                 WHERE account_id = $1 AND event_time >= $2 AND event_time <= $3 \
                 AND (event_time < $4 OR (event_time = $4 AND event_id < $5)){filter} \
                 ORDER BY event_time DESC, event_id DESC LIMIT {BATCH}"
            );
            let mut q = sqlx::query(&sql)
                .bind(account_id)
                .bind(start)
                .bind(end)
                .bind(before_time)
                .bind(before_id);
            if let Some(v) = &value {
                q = q.bind(v.clone());
            }
            let rows = q.fetch_all(&self.pool).await.map_err(store_err)?;
            let fetched = rows.len();
            for row in &rows {
                let time: i64 = row.try_get("event_time").map_err(store_err)?;
                let id: String = row.try_get("event_id").map_err(store_err)?;
                cursor = Some((time, id));
                let text: String = row.try_get("record").map_err(store_err)?;
                let record: RedactedRecord =
                    serde_json::from_str(&text).map_err(|e| HistoryError::Store(e.to_string()))?;
                if query.matches(&record) {
                    matched.push(record);
                    if matched.len() > query.max_results {
                        break;
                    }
                }
            }
            if matched.len() > query.max_results || fetched < BATCH as usize {
                break;
            }
        }
        seashell_audit::history::page_from_sorted(query, matched.iter())
    }
}
