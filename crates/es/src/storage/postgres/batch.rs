//! A follower's batch in one transaction: one statement per table, its rows
//! passed as arrays and unnested, so a batch costs a few round trips however
//! many rows it holds.

use postgres::types::ToSql;
use uuid::Uuid;

use super::config::pg;
use super::pool::Conn;
use super::to_i64;
use crate::storage::Batch;
use crate::Result;

const INSERT_EVENTS: &str = r#"
    INSERT INTO es_events (aggregate_type, aggregate_id, version, event_id, ts, topic, partition, "offset", envelope)
    SELECT t, i, v, e, ts, tp, p, o, env
    FROM unnest($1::text[], $2::text[], $3::bigint[], $4::uuid[], $5::bigint[], $6::text[], $7::bigint[], $8::bigint[], $9::bytea[])
         WITH ORDINALITY AS u(t, i, v, e, ts, tp, p, o, env, n)
    ORDER BY n
    ON CONFLICT DO NOTHING"#;
const PUT_DOCUMENTS: &str = "
    INSERT INTO documents (projection, view, key, doc)
    SELECT $1::text, v, k, d FROM unnest($2::text[], $3::text[], $4::text[]) AS u(v, k, d)
    ON CONFLICT (projection, view, key) DO UPDATE SET doc = excluded.doc";
const DELETE_DOCUMENTS: &str = "
    DELETE FROM documents AS d USING unnest($2::text[], $3::text[]) AS u(v, k)
    WHERE d.projection = $1 AND d.view = u.v AND d.key = u.k";
const PUT_WATERMARKS: &str = "
    INSERT INTO watermarks (follower, aggregate_type, aggregate_id, version, commit_id)
    SELECT $1::text, t, i, v, c FROM unnest($2::text[], $3::text[], $4::bigint[], $5::uuid[]) AS u(t, i, v, c)
    ON CONFLICT (follower, aggregate_type, aggregate_id)
    DO UPDATE SET version = excluded.version, commit_id = excluded.commit_id";
const PUT_CHECKPOINTS: &str = "
    INSERT INTO checkpoints (follower, topic, partition, next_offset)
    SELECT $1::text, t, p, o FROM unnest($2::text[], $3::bigint[], $4::bigint[]) AS u(t, p, o)
    ON CONFLICT (follower, topic, partition) DO UPDATE SET next_offset = excluded.next_offset";

/// A batch as statement parameters: one array per column.
#[derive(Debug, Default)]
pub(super) struct Columns {
    ev_type: Vec<String>,
    ev_id: Vec<String>,
    ev_version: Vec<i64>,
    ev_event: Vec<Uuid>,
    ev_ts: Vec<i64>,
    ev_topic: Vec<String>,
    ev_partition: Vec<i64>,
    ev_offset: Vec<i64>,
    ev_envelope: Vec<Vec<u8>>,
    put_view: Vec<String>,
    put_key: Vec<String>,
    put_doc: Vec<String>,
    del_view: Vec<String>,
    del_key: Vec<String>,
    wm_type: Vec<String>,
    wm_id: Vec<String>,
    wm_version: Vec<i64>,
    wm_commit: Vec<Option<Uuid>>,
    cp_topic: Vec<String>,
    cp_partition: Vec<i64>,
    cp_offset: Vec<i64>,
}

impl Columns {
    pub(super) fn of(batch: &Batch) -> Columns {
        let mut c = Columns::default();
        for e in &batch.events {
            c.ev_type.push(e.aggregate_type.clone());
            c.ev_id.push(e.aggregate_id.clone());
            c.ev_version.push(to_i64(e.version));
            c.ev_event.push(e.event_id);
            c.ev_ts.push(e.timestamp);
            c.ev_topic.push(e.topic.clone());
            c.ev_partition.push(i64::from(e.partition));
            c.ev_offset.push(to_i64(e.offset));
            c.ev_envelope.push(e.envelope.clone());
        }
        for ((view, key), doc) in &batch.documents {
            match doc {
                Some(doc) => {
                    c.put_view.push(view.clone());
                    c.put_key.push(key.clone());
                    c.put_doc.push(doc.to_string());
                }
                None => {
                    c.del_view.push(view.clone());
                    c.del_key.push(key.clone());
                }
            }
        }
        for ((ty, id), w) in &batch.watermarks {
            c.wm_type.push(ty.clone());
            c.wm_id.push(id.clone());
            c.wm_version.push(to_i64(w.version));
            c.wm_commit.push(w.commit);
        }
        for ((topic, partition), next) in &batch.checkpoints {
            c.cp_topic.push(topic.clone());
            c.cp_partition.push(i64::from(*partition));
            c.cp_offset.push(to_i64(*next));
        }
        c
    }

    /// Writes the batch in one transaction: events, documents, watermarks,
    /// checkpoints, as SQLite does.
    pub(super) fn write(&self, c: &mut Conn, follower: &str) -> Result<()> {
        let op = "writing a batch";
        // Prepared before the transaction, so a statement never depends on it.
        let insert = c.prepare(INSERT_EVENTS).map_err(pg(op))?;
        let put = c.prepare(PUT_DOCUMENTS).map_err(pg(op))?;
        let delete = c.prepare(DELETE_DOCUMENTS).map_err(pg(op))?;
        let mark = c.prepare(PUT_WATERMARKS).map_err(pg(op))?;
        let checkpoint = c.prepare(PUT_CHECKPOINTS).map_err(pg(op))?;
        let mut tx = c.client.transaction().map_err(pg(op))?;
        let statements: [(bool, _, &[&(dyn ToSql + Sync)]); 5] = [
            (
                !self.ev_type.is_empty(),
                &insert,
                &[
                    &self.ev_type,
                    &self.ev_id,
                    &self.ev_version,
                    &self.ev_event,
                    &self.ev_ts,
                    &self.ev_topic,
                    &self.ev_partition,
                    &self.ev_offset,
                    &self.ev_envelope,
                ],
            ),
            (
                !self.put_key.is_empty(),
                &put,
                &[&follower, &self.put_view, &self.put_key, &self.put_doc],
            ),
            (
                !self.del_key.is_empty(),
                &delete,
                &[&follower, &self.del_view, &self.del_key],
            ),
            (
                !self.wm_type.is_empty(),
                &mark,
                &[
                    &follower,
                    &self.wm_type,
                    &self.wm_id,
                    &self.wm_version,
                    &self.wm_commit,
                ],
            ),
            (
                !self.cp_topic.is_empty(),
                &checkpoint,
                &[
                    &follower,
                    &self.cp_topic,
                    &self.cp_partition,
                    &self.cp_offset,
                ],
            ),
        ];
        for (_, statement, params) in statements.iter().filter(|s| s.0) {
            tx.execute(*statement, params).map_err(pg(op))?;
        }
        tx.commit().map_err(pg(op))
    }
}
