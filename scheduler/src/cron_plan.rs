//! Recurring jobs from cron expressions. Each tick is one job whose dedupe key is the tick's
//! time, so however many instances plan it, it runs once. Only the next tick is ever
//! planned: after downtime the missed tick runs once, then planning resumes from now.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Asia::Shanghai;
use taxdesk_workflow::Workflow;
use taxdesk_workflow::jobs::{self, NewJob};

#[derive(Debug, Clone)]
pub struct CronEntry {
    /// Also the job's kind, which must have a handler.
    pub kind: String,
    pub schedule: cron::Schedule,
}

impl CronEntry {
    /// `expr` has six or seven fields (seconds first) and is read in Asia/Shanghai;
    /// day names (`Mon-Fri`) are clearer than numbers, which count from Sunday = 1.
    pub fn parse(kind: &str, expr: &str) -> Result<CronEntry, String> {
        let schedule = cron::Schedule::from_str(expr).map_err(|e| {
            format!(
                "cron {kind} = {expr:?}: {e} (six fields, seconds first, e.g. \"0 30 3 * * *\")"
            )
        })?;
        Ok(CronEntry {
            kind: kind.to_string(),
            schedule,
        })
    }

    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule
            .after(&t.with_timezone(&Shanghai))
            .next()
            .map(|n| n.with_timezone(&Utc))
    }

    /// Writes the job of the first tick after `after` (a no-op if any instance already did).
    pub async fn plan(
        &self,
        wf: &Workflow,
        after: DateTime<Utc>,
    ) -> taxdesk_workflow::error::Result<()> {
        let Some(tick) = self.next_after(after) else {
            return Ok(());
        };
        let job = NewJob::new(
            &self.kind,
            format!("cron:{}:{}", self.kind, tick.timestamp()),
            tick,
            serde_json::json!({ "cron": self.kind, "tick": tick.to_rfc3339() }),
        );
        jobs::schedule(wf.db(), job, wf.now()).await?;
        Ok(())
    }
}
