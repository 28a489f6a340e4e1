//! Named counters that hand out numbers atomically, e.g. the daily work-order sequence.
//!
//! Taking one number inside the caller's transaction would keep the counter's row locked
//! until that transaction commits, so every concurrent create would queue on it (the hot
//! row). [`NumberBlocks`] instead reserves a block of numbers at a time in a statement of its
//! own (the row is locked for that one statement only) and hands them out from memory. Numbers stay unique across instances and restarts; the price is gaps (a
//! block an instance did not use up before it stopped, or a number whose transaction
//! failed) and, with several instances, numbers that are not in creation order.

use std::collections::HashMap;
use std::sync::Mutex;

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};

/// Numbers an instance reserves at a time.
pub(crate) const BLOCK: i64 = 16;

/// Adds `by` to the counter `name` (created at 0) and returns its new value.
pub(crate) async fn advance(db: &impl ConnectionTrait, name: &str, by: i64) -> Result<i64, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "INSERT INTO counters (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = counters.value + $2 RETURNING value"
        }
        _ => {
            "INSERT INTO counters (name, value) VALUES (?1, ?2) \
             ON CONFLICT (name) DO UPDATE SET value = counters.value + ?2 RETURNING value"
        }
    };
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [name.into(), by.into()],
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("counter {name}")))?;
    row.try_get::<i64>("", "value")
}

/// Blocks of reserved numbers per counter name, handed out from memory.
#[derive(Default)]
pub(crate) struct NumberBlocks {
    /// Counter name → reserved ranges `[next, end]`, oldest first.
    held: Mutex<HashMap<String, Vec<(i64, i64)>>>,
}

impl NumberBlocks {
    /// A number of `name` no other caller, here or on another instance, ever gets. `db`
    /// should not be a transaction of the caller's: the reservation must commit on its own.
    pub(crate) async fn take(&self, db: &impl ConnectionTrait, name: &str) -> Result<i64, DbErr> {
        loop {
            if let Some(n) = self.take_held(name) {
                return Ok(n);
            }
            let end = advance(db, name, BLOCK).await?;
            self.hold(name, end - BLOCK + 1, end);
        }
    }

    fn take_held(&self, name: &str) -> Option<i64> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let ranges = held.get_mut(name)?;
        let (next, end) = ranges.first_mut()?;
        let n = *next;
        *next += 1;
        if *next > *end {
            ranges.remove(0);
        }
        Some(n)
    }

    fn hold(&self, name: &str, from: i64, to: i64) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        // One counter is current at a time (today's): the rest of another day's block is
        // given up, a gap like any other.
        held.retain(|k, _| k == name);
        held.entry(name.to_string()).or_default().push((from, to));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_numbers_come_out_in_order_and_each_once() {
        let blocks = NumberBlocks::default();
        assert_eq!(blocks.take_held("d1"), None);
        blocks.hold("d1", 1, 3);
        blocks.hold("d1", 33, 34);
        let got: Vec<i64> = std::iter::from_fn(|| blocks.take_held("d1")).collect();
        assert_eq!(got, vec![1, 2, 3, 33, 34]);
        assert_eq!(blocks.take_held("d1"), None);
    }
}
