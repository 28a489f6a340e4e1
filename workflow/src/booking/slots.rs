//! Slots (预约时段): the places a service type offers, cut from its skill group's working
//! hours (public holidays closed, make-up working days 调休 open, the lunch break skipped).
//!
//! A slot is `slot_minutes` long and lies entirely inside one open period of its local date;
//! the slots of a period start at the period's start and follow each other. A taxpayer books
//! one of them ([`check_start`]): in the future and at most `bookable_days` ahead. Staff may
//! invite for any start whose whole slot lies in working hours ([`check_invite_start`]).
//! Refusals name the next time that would do, so a person can act on them.
//!
//! Everything above [`Slot`] is pure. [`taken_places`] and [`Workflow::available_slots`] read
//! the places taken (`booking_slots`) with one query.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Duration, DurationRound, NaiveDate, Utc, Weekday};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

use super::service_type::{Method, ServiceType};
use crate::calendar::{Calendar, HORIZON_DAYS};
use crate::entities::booking_slot;
use crate::error::{Error, Result};
use crate::workflow::Workflow;

/// The longest range `availableSlots` answers for; a longer one is cut to this.
pub const MAX_RANGE_DAYS: i64 = 31;

/// The latest start a taxpayer may book at `now`: `bookable_days` ahead.
pub fn horizon(st: &ServiceType, now: DateTime<Utc>) -> DateTime<Utc> {
    now + Duration::days(st.bookable_days)
}

/// The slots of `st` on the local `date`, in order, whether past or not.
fn slots_on(
    st: &ServiceType,
    cal: &Calendar,
    date: NaiveDate,
) -> impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>)> {
    let slot = st.slot();
    cal.periods_on(Some(&st.skill_group), date)
        .into_iter()
        .flat_map(move |(start, end)| {
            std::iter::successors(Some(start), move |s| Some(*s + slot))
                .map(move |s| (s, s + slot))
                .take_while(move |(_, e)| *e <= end)
        })
}

fn local_date(cal: &Calendar, t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&cal.timezone()).date_naive()
}

/// The slots a taxpayer may book now: `(start, end)` of every slot of `st` that lies inside
/// `[from, to]`, starts after `now` and at most `bookable_days` after it, in order. A range
/// longer than [`MAX_RANGE_DAYS`] is cut to that many days from `from`.
pub fn slot_starts(
    st: &ServiceType,
    cal: &Calendar,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let to = to.min(from + Duration::days(MAX_RANGE_DAYS));
    let latest = horizon(st, now);
    let first = from.max(now);
    let last = to.min(latest + st.slot());
    if first >= last {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut date = local_date(cal, first);
    let end_date = local_date(cal, last);
    while date <= end_date {
        out.extend(
            slots_on(st, cal, date)
                .filter(|(s, e)| *s > now && *s <= latest && *s >= from && *e <= to),
        );
        let Some(next) = date.succ_opt() else { break };
        date = next;
    }
    out
}

/// The first slot of `st` starting after `after` (taken or not, however far ahead), within
/// the calendar's horizon.
pub fn next_slot_after(
    st: &ServiceType,
    cal: &Calendar,
    after: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    // Skip the closed days at once.
    let open = cal.next_open(Some(&st.skill_group), after)?;
    let mut date = local_date(cal, open);
    for _ in 0..=HORIZON_DAYS {
        if let Some((s, _)) = slots_on(st, cal, date).find(|(s, _)| *s > after) {
            return Some(s);
        }
        date = date.succ_opt()?;
    }
    None
}

/// The end of the run of open time containing `t` (periods that touch, also across
/// midnight, count as one), or `None` when closed at `t`. Stops looking once it reaches
/// `enough`.
fn open_until(
    cal: &Calendar,
    group: &str,
    t: DateTime<Utc>,
    enough: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let mut end = None;
    let mut at = t;
    // A slot is at most a day long: a few periods at most.
    for _ in 0..64 {
        let Some((_, e)) = cal
            .periods_on(Some(group), local_date(cal, at))
            .into_iter()
            .find(|(s, e)| *s <= at && at < *e)
        else {
            break;
        };
        end = Some(e);
        if e >= enough {
            break;
        }
        at = e;
    }
    end
}

/// Whether `[start, end)` lies in the group's working hours.
fn inside_hours(cal: &Calendar, group: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
    open_until(cal, group, start, end).is_some_and(|e| e >= end)
}

/// The first start at or after `after` whose whole slot lies in working hours.
fn next_fit(st: &ServiceType, cal: &Calendar, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let group = st.skill_group.as_str();
    let give_up = after + Duration::days(HORIZON_DAYS.into());
    let mut t = cal.next_open(Some(group), after)?;
    while t <= give_up {
        let e = open_until(cal, group, t, t + st.slot())?;
        if e - t >= st.slot() {
            return Some(t);
        }
        t = cal.next_open(Some(group), e)?;
    }
    None
}

fn weekday_zh(d: Weekday) -> &'static str {
    match d {
        Weekday::Mon => "星期一",
        Weekday::Tue => "星期二",
        Weekday::Wed => "星期三",
        Weekday::Thu => "星期四",
        Weekday::Fri => "星期五",
        Weekday::Sat => "星期六",
        Weekday::Sun => "星期日",
    }
}

/// `2026-10-08（星期四）09:00`, local.
fn show_zh(cal: &Calendar, t: DateTime<Utc>) -> String {
    let l = t.with_timezone(&cal.timezone());
    format!(
        "{}（{}）{}",
        l.format("%Y-%m-%d"),
        weekday_zh(l.weekday()),
        l.format("%H:%M")
    )
}

/// `Thu 2026-10-08 09:00`, local.
fn show_en(cal: &Calendar, t: DateTime<Utc>) -> String {
    t.with_timezone(&cal.timezone())
        .format("%a %Y-%m-%d %H:%M")
        .to_string()
}

/// "… 起可预约" / "the next bookable time is …".
fn next_phrase(cal: &Calendar, next: Option<DateTime<Utc>>) -> (String, String) {
    match next {
        Some(t) => (
            format!("{} 起可预约", show_zh(cal, t)),
            format!("the next bookable time is {}", show_en(cal, t)),
        ),
        None => (
            "近期没有可预约的时间".to_string(),
            "no time is bookable in the coming months".to_string(),
        ),
    }
}

fn past(cal: &Calendar, start: DateTime<Utc>, next: Option<DateTime<Utc>>) -> Error {
    let (zh, en) = next_phrase(cal, next);
    Error::input(
        "start",
        format!("{} 已经过去，不能预约；{zh}", show_zh(cal, start)),
        format!("{} is in the past; {en}", show_en(cal, start)),
    )
}

fn off_hours(
    st: &ServiceType,
    cal: &Calendar,
    start: DateTime<Utc>,
    next: Option<DateTime<Utc>>,
) -> Error {
    let (zh, en) = next_phrase(cal, next);
    let end = start + st.slot();
    Error::input(
        "start",
        format!(
            "{}–{} 不在「{}」的服务时间内（节假日、周末或非工作时段）；{zh}",
            show_zh(cal, start),
            end.with_timezone(&cal.timezone()).format("%H:%M"),
            st.skill_group
        ),
        format!(
            "{}–{} is outside the service hours of {} (a holiday, a weekend or off hours); {en}",
            show_en(cal, start),
            end.with_timezone(&cal.timezone()).format("%H:%M"),
            st.skill_group
        ),
    )
}

/// Checks a taxpayer's booking of `st` at `start`: it must be one of the slots
/// [`slot_starts`] offers at `now`. Returns the slot's end; otherwise input naming the next
/// bookable time (field `start`).
pub fn check_start(
    st: &ServiceType,
    cal: &Calendar,
    start: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>> {
    if start <= now {
        return Err(past(cal, start, next_slot_after(st, cal, now)));
    }
    let latest = horizon(st, now);
    if start > latest {
        return Err(Error::input(
            "start",
            format!(
                "「{}」最多可提前 {} 天预约（至 {}）",
                st.name,
                st.bookable_days,
                show_zh(cal, latest)
            ),
            format!(
                "{} can be booked at most {} days ahead (until {})",
                st.code,
                st.bookable_days,
                show_en(cal, latest)
            ),
        ));
    }
    let end = start + st.slot();
    if slots_on(st, cal, local_date(cal, start)).any(|(s, _)| s == start) {
        return Ok(end);
    }
    let next = next_slot_after(st, cal, start);
    if !inside_hours(cal, &st.skill_group, start, end) {
        return Err(off_hours(st, cal, start, next));
    }
    let (zh, en) = next_phrase(cal, next);
    Err(Error::input(
        "start",
        format!(
            "{} 不是预约时段的起点（每段 {} 分钟，从服务时间开始计）；{zh}",
            show_zh(cal, start),
            st.slot_minutes
        ),
        format!(
            "{} is not the start of a slot ({}-minute slots from the start of service hours); {en}",
            show_en(cal, start),
            st.slot_minutes
        ),
    ))
}

/// Checks a staff invitation for `st` at `start`: any future start whose whole slot
/// (`[start, start + slot)`) lies in the skill group's working hours. Returns the end;
/// otherwise input naming the next time that would do (field `start`).
pub fn check_invite_start(
    st: &ServiceType,
    cal: &Calendar,
    start: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>> {
    if start <= now {
        // The next start that fits, from the next whole minute.
        let minute = now.duration_trunc(Duration::minutes(1)).unwrap_or(now);
        let next = next_fit(st, cal, minute + Duration::minutes(1));
        return Err(past(cal, start, next));
    }
    let end = start + st.slot();
    if inside_hours(cal, &st.skill_group, start, end) {
        return Ok(end);
    }
    Err(off_hours(st, cal, start, next_fit(st, cal, start)))
}

/// A slot with the places left in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// `capacity − taken`, never below 0; a full slot is listed with 0.
    pub remaining: i32,
}

/// The slots with their places left, from the places `taken` per start (absent: none).
pub fn with_remaining(
    slots: &[(DateTime<Utc>, DateTime<Utc>)],
    capacity: i32,
    taken: &HashMap<DateTime<Utc>, i32>,
) -> Vec<Slot> {
    slots
        .iter()
        .map(|&(start, end)| Slot {
            start,
            end,
            remaining: (capacity - taken.get(&start).copied().unwrap_or(0)).max(0),
        })
        .collect()
}

/// The places taken in the slots of `service_type` starting in `[first, last]`, by start,
/// in one query.
pub async fn taken_places<C: ConnectionTrait>(
    db: &C,
    service_type: &str,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
) -> std::result::Result<HashMap<DateTime<Utc>, i32>, DbErr> {
    Ok(booking_slot::Entity::find()
        .filter(booking_slot::Column::ServiceType.eq(service_type))
        .filter(booking_slot::Column::StartAt.gte(first))
        .filter(booking_slot::Column::StartAt.lte(last))
        .all(db)
        .await?
        .into_iter()
        .map(|r| (r.start_at, r.taken))
        .collect())
}

impl Workflow {
    /// The bookable slots of the service type `code` (offering `method`, when given) in
    /// `[from, to]` (at most [`MAX_RANGE_DAYS`]), with the places left; full ones included.
    pub async fn available_slots(
        &self,
        code: &str,
        method: Option<Method>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Slot>> {
        let st = self.config.resolve_service_type(code, method)?;
        if to <= from {
            return Err(Error::input(
                "to",
                "结束时间须晚于开始时间",
                "to must be later than from",
            ));
        }
        let slots = slot_starts(st, &self.config.calendar, from, to, self.now());
        let (Some(first), Some(last)) = (slots.first(), slots.last()) else {
            return Ok(Vec::new());
        };
        let taken = taken_places(&self.db, &st.code, first.0, last.0).await?;
        Ok(with_remaining(&slots, st.capacity, &taken))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::booking::service_type::bundled;
    use chrono::TimeZone;

    /// A local time in Shanghai, in UTC.
    fn sh(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        chrono_tz::Asia::Shanghai
            .with_ymd_and_hms(y, m, d, h, min, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn st(code: &str) -> ServiceType {
        bundled().into_iter().find(|t| t.code == code).unwrap()
    }

    /// Local "HH:MM" of each start.
    fn local(slots: &[(DateTime<Utc>, DateTime<Utc>)]) -> Vec<String> {
        slots
            .iter()
            .map(|(s, _)| {
                s.with_timezone(&chrono_tz::Asia::Shanghai)
                    .format("%H:%M")
                    .to_string()
            })
            .collect()
    }

    fn input_err(r: Result<DateTime<Utc>>) -> crate::InputError {
        match r {
            Err(Error::InvalidInput(e)) => {
                assert_eq!(e.field, "start");
                e
            }
            other => panic!("expected invalid input, got {other:?}"),
        }
    }

    const WEEKDAY: [&str; 14] = [
        "09:00", "09:30", "10:00", "10:30", "11:00", "11:30", "13:30", "14:00", "14:30", "15:00",
        "15:30", "16:00", "16:30", "17:00",
    ];

    #[test]
    fn a_weekday_has_fourteen_slots_around_lunch() {
        let (cal, t) = (Calendar::bundled(), st("invoice"));
        // Thursday 26 Nov 2026, asked on the Friday before.
        let now = sh(2026, 11, 20, 10, 0);
        let slots = slot_starts(
            &t,
            &cal,
            sh(2026, 11, 26, 0, 0),
            sh(2026, 11, 27, 0, 0),
            now,
        );
        assert_eq!(local(&slots), WEEKDAY);
        for (s, e) in &slots {
            assert_eq!(*e - *s, Duration::minutes(30));
            assert!(cal.is_open(Some("发票业务"), *s));
            assert!(cal.is_open(Some("发票业务"), *e - Duration::seconds(1)));
        }
        // The lunch break is not offered, nor a start at its edge.
        for (h, m) in [(12, 0), (12, 30), (13, 0), (11, 45), (17, 30)] {
            let e = input_err(check_start(&t, &cal, sh(2026, 11, 26, h, m), now));
            assert!(e.zh.contains("不在「发票业务」的服务时间内"), "{}", e.zh);
            assert!(e.en.contains("outside the service hours"), "{}", e.en);
        }
        let e = input_err(check_start(&t, &cal, sh(2026, 11, 26, 12, 0), now));
        assert!(
            e.zh.contains("2026-11-26（星期四）13:30 起可预约"),
            "{}",
            e.zh
        );
        assert!(
            e.en.contains("the next bookable time is Thu 2026-11-26 13:30"),
            "{}",
            e.en
        );
        // Each slot offered may be booked, and ends with its slot.
        for (s, e) in &slots {
            assert_eq!(check_start(&t, &cal, *s, now).unwrap(), *e);
        }
    }

    #[test]
    fn a_national_day_holiday_is_refused_naming_the_8th() {
        let (cal, t) = (Calendar::bundled(), st("iit"));
        let now = sh(2026, 9, 30, 10, 0);
        for day in 1..=7 {
            let at = sh(2026, 10, day, 10, 0);
            let e = input_err(check_start(&t, &cal, at, now));
            assert!(
                e.zh.contains("2026-10-08（星期四）09:00 起可预约"),
                "{}",
                e.zh
            );
            assert!(
                e.en.contains("the next bookable time is Thu 2026-10-08 09:00"),
                "{}",
                e.en
            );
            assert!(e.zh.contains("个人所得税"), "{}", e.zh);
            // Staff may not invite then either.
            let e = input_err(check_invite_start(&t, &cal, at, now));
            assert!(e.en.contains("Thu 2026-10-08 09:00"), "{}", e.en);
        }
        // The whole week off offers nothing; Thursday the 8th its usual slots.
        let slots = slot_starts(&t, &cal, sh(2026, 10, 1, 0, 0), sh(2026, 10, 8, 0, 0), now);
        assert_eq!(local(&slots), Vec::<String>::new());
        let slots = slot_starts(&t, &cal, sh(2026, 10, 8, 0, 0), sh(2026, 10, 9, 0, 0), now);
        assert_eq!(local(&slots), WEEKDAY);
    }

    #[test]
    fn a_makeup_saturday_is_offered() {
        let (cal, t) = (Calendar::bundled(), st("social"));
        let now = sh(2026, 10, 9, 18, 0);
        let slots = slot_starts(
            &t,
            &cal,
            sh(2026, 10, 10, 0, 0),
            sh(2026, 10, 12, 0, 0),
            now,
        );
        assert_eq!(
            local(&slots),
            WEEKDAY,
            "Saturday 10 Oct (调休); Sunday closed"
        );
        assert!(
            slots
                .iter()
                .all(|(s, _)| s.with_timezone(&cal.timezone()).day() == 10)
        );
        check_start(&t, &cal, sh(2026, 10, 10, 9, 0), now).unwrap();
        // The ordinary Saturday after is closed, and names the Monday.
        let e = input_err(check_start(&t, &cal, sh(2026, 10, 17, 9, 0), now));
        assert!(e.zh.contains("2026-10-19（星期一）09:00"), "{}", e.zh);
        assert!(e.en.contains("Mon 2026-10-19 09:00"), "{}", e.en);
    }

    #[test]
    fn only_the_future_and_the_horizon() {
        let (cal, t) = (Calendar::bundled(), st("invoice"));
        // Thursday 26 Nov 2026 at 10:00 exactly: that slot has begun.
        let now = sh(2026, 11, 26, 10, 0);
        let slots = slot_starts(
            &t,
            &cal,
            sh(2026, 11, 26, 0, 0),
            sh(2026, 11, 27, 0, 0),
            now,
        );
        assert_eq!(local(&slots), WEEKDAY[3..]);
        let e = input_err(check_start(&t, &cal, now, now));
        assert!(e.zh.contains("已经过去"), "{}", e.zh);
        assert!(
            e.zh.contains("2026-11-26（星期四）10:30 起可预约"),
            "{}",
            e.zh
        );
        assert!(e.en.contains("is in the past"), "{}", e.en);
        let e = input_err(check_start(&t, &cal, sh(2026, 11, 25, 9, 0), now));
        assert!(e.en.contains("in the past"), "{}", e.en);
        // 14 days ahead: Thursday 10 Dec up to 10:00; Friday the 11th is too far.
        let far = slot_starts(
            &t,
            &cal,
            sh(2026, 12, 10, 0, 0),
            sh(2026, 12, 12, 0, 0),
            now,
        );
        assert_eq!(local(&far), WEEKDAY[..3]);
        check_start(&t, &cal, sh(2026, 12, 10, 10, 0), now).unwrap();
        let e = input_err(check_start(&t, &cal, sh(2026, 12, 10, 10, 30), now));
        assert!(e.zh.contains("最多可提前 14 天预约"), "{}", e.zh);
        assert!(e.en.contains("at most 14 days ahead"), "{}", e.en);
        // The range is cut at 31 days from its start.
        let cut = slot_starts(&t, &cal, sh(2026, 11, 1, 0, 0), sh(2026, 12, 31, 0, 0), now);
        assert_eq!(cut.last().map(|s| s.0), Some(sh(2026, 12, 1, 17, 0)));
        // The range may start in the past; it is cut at now and at the horizon.
        let all = slot_starts(
            &t,
            &cal,
            sh(2026, 11, 20, 0, 0),
            sh(2026, 12, 31, 0, 0),
            now,
        );
        assert_eq!(all.first().map(|s| s.0), Some(sh(2026, 11, 26, 10, 30)));
        assert_eq!(all.last().map(|s| s.0), Some(sh(2026, 12, 10, 10, 0)));
        // Ten working days from Fri 27 Nov to Thu 10 Dec, plus the two ends.
        assert_eq!(all.len(), 11 + 9 * 14 + 3);
        // An empty or reversed range has nothing.
        assert!(slot_starts(&t, &cal, now + Duration::days(2), now, now).is_empty());
    }

    #[test]
    fn a_start_between_slot_boundaries_names_the_next_one() {
        let (cal, t) = (Calendar::bundled(), st("etax"));
        let now = sh(2026, 11, 20, 10, 0);
        let e = input_err(check_start(&t, &cal, sh(2026, 11, 26, 9, 10), now));
        assert!(e.zh.contains("不是预约时段的起点"), "{}", e.zh);
        assert!(
            e.zh.contains("2026-11-26（星期四）09:30 起可预约"),
            "{}",
            e.zh
        );
        assert!(e.en.contains("30-minute slots"), "{}", e.en);
        // Staff may invite at 09:10; not at 11:45 (the slot runs into lunch).
        assert_eq!(
            check_invite_start(&t, &cal, sh(2026, 11, 26, 9, 10), now).unwrap(),
            sh(2026, 11, 26, 9, 40)
        );
        assert_eq!(
            check_invite_start(&t, &cal, sh(2026, 11, 26, 17, 0), now).unwrap(),
            sh(2026, 11, 26, 17, 30)
        );
        let e = input_err(check_invite_start(&t, &cal, sh(2026, 11, 26, 11, 45), now));
        assert!(
            e.zh.contains("2026-11-26（星期四）13:30 起可预约"),
            "{}",
            e.zh
        );
        let e = input_err(check_invite_start(&t, &cal, sh(2026, 11, 26, 17, 15), now));
        assert!(e.en.contains("Fri 2026-11-27 09:00"), "{}", e.en);
        // In the past: the next start that fits after now.
        let now = sh(2026, 11, 26, 11, 45);
        let e = input_err(check_invite_start(&t, &cal, sh(2026, 11, 26, 10, 0), now));
        assert!(e.en.contains("in the past"), "{}", e.en);
        assert!(e.en.contains("Thu 2026-11-26 13:30"), "{}", e.en);
        // Invitations may be far ahead.
        check_invite_start(&t, &cal, sh(2026, 12, 30, 14, 5), now).unwrap();
    }

    #[test]
    fn a_group_with_its_own_hours_has_its_own_slots() {
        let mut cal = Calendar::bundled();
        cal.add_json(include_str!("../../data/calendar-example.json"))
            .unwrap();
        let now = sh(2026, 11, 20, 10, 0);
        let day = (sh(2026, 11, 26, 0, 0), sh(2026, 11, 27, 0, 0));
        // 个人所得税 works 08:30–12:00 and 13:00–20:00.
        let iit = slot_starts(&st("iit"), &cal, day.0, day.1, now);
        assert_eq!(iit.len(), 7 + 14);
        assert_eq!(local(&iit)[0], "08:30");
        assert_eq!(local(&iit).last().unwrap(), "19:30");
        let invoice = slot_starts(&st("invoice"), &cal, day.0, day.1, now);
        assert_eq!(local(&invoice), WEEKDAY);
        check_start(&st("iit"), &cal, sh(2026, 11, 26, 19, 0), now).unwrap();
        let e = input_err(check_start(
            &st("invoice"),
            &cal,
            sh(2026, 11, 26, 19, 0),
            now,
        ));
        assert!(e.en.contains("Fri 2026-11-27 09:00"), "{}", e.en);
    }

    #[test]
    fn always_open_has_slots_at_any_hour() {
        let (cal, t) = (Calendar::always(), st("invoice"));
        let now = sh(2026, 9, 30, 22, 10);
        // A holiday, all day and night.
        let slots = slot_starts(&t, &cal, sh(2026, 10, 1, 0, 0), sh(2026, 10, 2, 0, 0), now);
        assert_eq!(slots.len(), 48);
        assert_eq!(local(&slots)[0], "00:00");
        assert_eq!(local(&slots)[47], "23:30");
        check_start(&t, &cal, sh(2026, 10, 1, 3, 0), now).unwrap();
        check_start(&t, &cal, sh(2026, 9, 30, 22, 30), now).unwrap();
        // Not a slot boundary, though open.
        let e = input_err(check_start(&t, &cal, sh(2026, 10, 1, 3, 10), now));
        assert!(e.en.contains("Thu 2026-10-01 03:30"), "{}", e.en);
        // Invitations may run across midnight.
        assert_eq!(
            check_invite_start(&t, &cal, sh(2026, 10, 1, 23, 45), now).unwrap(),
            sh(2026, 10, 2, 0, 15)
        );
        // The range is cut at 31 days.
        let mut long = t.clone();
        long.bookable_days = 100;
        let from = sh(2026, 10, 1, 0, 0);
        let slots = slot_starts(&long, &cal, from, from + Duration::days(60), now);
        assert_eq!(slots.len(), 31 * 48);
        assert_eq!(slots.last().unwrap().1, from + Duration::days(31));
    }

    #[test]
    fn never_open_has_nothing() {
        let (cal, t) = (Calendar::never(), st("invoice"));
        let now = sh(2026, 11, 20, 10, 0);
        assert!(slot_starts(&t, &cal, now, now + Duration::days(14), now).is_empty());
        let e = input_err(check_start(&t, &cal, sh(2026, 11, 26, 9, 0), now));
        assert!(e.zh.contains("近期没有可预约的时间"), "{}", e.zh);
        let e = input_err(check_invite_start(&t, &cal, sh(2026, 11, 26, 9, 0), now));
        assert!(e.en.contains("no time is bookable"), "{}", e.en);
        assert_eq!(next_slot_after(&t, &cal, now), None);
    }

    #[test]
    fn remaining_places() {
        let a = sh(2026, 11, 26, 9, 0);
        let b = a + Duration::minutes(30);
        let c = b + Duration::minutes(30);
        let slots = [(a, b), (b, c), (c, c + Duration::minutes(30))];
        let taken = HashMap::from([(a, 2), (b, 5)]);
        let got: Vec<i32> = with_remaining(&slots, 3, &taken)
            .iter()
            .map(|s| s.remaining)
            .collect();
        assert_eq!(got, [1, 0, 3]);
    }
}
