//! When humans are available: `serviceHours` over the working-hours calendar (weekly hours
//! per skill group, public holidays and make-up working days 调休, Asia/Shanghai).

use async_graphql::{Context, Object, SimpleObject};
use chrono::{DateTime, Utc};
use taxdesk_workflow::{Error, Workflow};

use crate::error::OrGql;
use crate::identity::viewer;

/// An open period, end exclusive.
#[derive(SimpleObject, Debug, Clone, PartialEq, Eq)]
pub struct Period {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct ServiceHours {
    /// Whether human agents of the group work now (a request for a human may still find no
    /// agent online).
    pub open_now: bool,
    /// When the group is next open: now when it is open; null when it does not open within
    /// the next 400 days (a calendar that is never open).
    pub next_open_at: Option<DateTime<Utc>>,
    /// The open periods of today (the date in Asia/Shanghai), in order; empty on a day off.
    pub periods_today: Vec<Period>,
}

#[derive(Default)]
pub struct HoursQuery;

#[Object]
impl HoursQuery {
    /// The working hours of a skill group (omitted: the default group), for any signed-in
    /// user.
    async fn service_hours(
        &self,
        ctx: &Context<'_>,
        skill_group: Option<String>,
    ) -> async_graphql::Result<ServiceHours> {
        viewer(ctx)?;
        let wf = ctx.data_unchecked::<Workflow>();
        let config = wf.config();
        let group = skill_group
            .as_deref()
            .map(str::trim)
            .filter(|g| !g.is_empty());
        if let Some(g) = group
            && !config.categories.iter().any(|c| c == g)
        {
            return Err(Error::input(
                "skillGroup",
                format!(
                    "未知的技能组「{g}」，可选：{}",
                    config.categories.join("、")
                ),
                format!(
                    "unknown skill group {g:?}; one of: {}",
                    config.categories.join(", ")
                ),
            ))
            .or_gql(ctx);
        }
        let calendar = &config.calendar;
        let now = wf.now();
        let today = now.with_timezone(&calendar.timezone()).date_naive();
        Ok(ServiceHours {
            open_now: calendar.is_open(group, now),
            next_open_at: calendar.next_open(group, now),
            periods_today: calendar
                .periods_on(group, today)
                .into_iter()
                .map(|(start, end)| Period { start, end })
                .collect(),
        })
    }
}
