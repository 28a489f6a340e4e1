//! Named counters that hand out the next number atomically, e.g. the daily work-order
//! sequence. One statement, so two transactions never get the same value.

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};

pub(crate) async fn next(db: &impl ConnectionTrait, name: &str) -> Result<i64, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "INSERT INTO counters (name, value) VALUES ($1, 1) \
             ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value"
        }
        _ => {
            "INSERT INTO counters (name, value) VALUES (?, 1) \
             ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value"
        }
    };
    let row = db
        .query_one_raw(Statement::from_sql_and_values(backend, sql, [name.into()]))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("counter {name}")))?;
    row.try_get::<i64>("", "value")
}
