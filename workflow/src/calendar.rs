//! The working calendar of the Chinese mainland in Asia/Shanghai: weekends, the public
//! holidays and the make-up working days (调休) of each year's official arrangement, and the
//! weekly working hours (several periods a day, e.g. around a lunch break 午休), optionally
//! different per skill group.
//!
//! A year without official data is counted by weekends only, and says so
//! (`has_official_data`), rather than guessing its holidays.
//!
//! # The calendar file (`TAXDESK_CALENDAR`)
//!
//! JSON, one of:
//! - one year's arrangement, as bundled (`{"year": 2027, "holidays": [{"days": [..]}],
//!   "makeup_workdays": [{"date": ..}]}`), or a list of them;
//! - an object with any of `"hours"` (below), `"years"` (a list of years) and a year's own
//!   fields. Other top-level keys (`source`, `note`) are ignored.
//!
//! `"hours"` is `{"default": WEEK, "groups": {"个人所得税": WEEK, ..}}`, both optional. A WEEK
//! maps `mon` .. `sun`, `weekdays` (Mon–Fri) and `makeup` (a 调休 working day) to a list of
//! local periods `"HH:MM-HH:MM"` (end exclusive, up to `24:00`; `[]` = closed). A WEEK gives
//! only what differs from the week it is based on: `default` is based on the built-in
//! Mon–Fri 09:00–12:00 and 13:30–17:30, a group on `default`; a named day wins over
//! `weekdays`; a make-up day has Monday's hours unless `makeup` is given. Public holidays are
//! closed whatever the hours say. A skill group without its own hours has the default ones.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::Value;

/// The official arrangement bundled with this release.
pub const BUNDLED: &str = include_str!("../data/cn-official-2026.json");

/// How far ahead `next_open` looks before it gives up.
pub const HORIZON_DAYS: u32 = 400;

/// The built-in hours of a weekday: 09:00–12:00 and 13:30–17:30, closed for lunch.
const DEFAULT_DAY: [Span; 2] = [
    Span {
        start: 9 * 60,
        end: 12 * 60,
    },
    Span {
        start: 13 * 60 + 30,
        end: 17 * 60 + 30,
    },
];

const MINUTES_PER_DAY: u16 = 24 * 60;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    /// Open every day (demos and tests).
    Always,
    /// Never open (demos and tests of after-hours behaviour).
    Never,
    Official,
}

/// A local period of one day, in minutes after midnight: `start..end`, `end <= 24:00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Span {
    start: u16,
    end: u16,
}

/// The open periods of each day of the week (index: days from Monday).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Week {
    days: [Vec<Span>; 7],
    /// The hours of a make-up working day (调休); `None`: Monday's.
    makeup: Option<Vec<Span>>,
}

impl Week {
    fn builtin() -> Week {
        let open = DEFAULT_DAY.to_vec();
        Week {
            days: [
                open.clone(),
                open.clone(),
                open.clone(),
                open.clone(),
                open,
                Vec::new(),
                Vec::new(),
            ],
            makeup: None,
        }
    }

    fn day(&self, weekday: Weekday) -> &[Span] {
        &self.days[weekday.num_days_from_monday() as usize]
    }

    fn makeup_day(&self) -> &[Span] {
        self.makeup.as_deref().unwrap_or(&self.days[0])
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Hours {
    default: Week,
    groups: HashMap<String, Week>,
}

impl Default for Hours {
    fn default() -> Self {
        Hours {
            default: Week::builtin(),
            groups: HashMap::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Calendar {
    rule: Rule,
    tz: Tz,
    holidays: HashSet<NaiveDate>,
    makeup_days: HashSet<NaiveDate>,
    years: BTreeSet<i32>,
    hours: Hours,
}

#[derive(Deserialize)]
struct YearFile {
    year: i32,
    #[serde(default)]
    timezone: Option<String>,
    holidays: Vec<Holiday>,
    makeup_workdays: Vec<Makeup>,
}

#[derive(Deserialize)]
struct Holiday {
    days: Vec<NaiveDate>,
}

#[derive(Deserialize)]
struct Makeup {
    date: NaiveDate,
}

/// `"hours"` as written in the file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HoursFile {
    #[serde(default)]
    default: Option<BTreeMap<String, Vec<String>>>,
    #[serde(default)]
    groups: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    #[error("calendar file is not valid: {0}")]
    Invalid(String),
    #[error("reading calendar file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

fn invalid(msg: impl Into<String>) -> CalendarError {
    CalendarError::Invalid(msg.into())
}

/// `"HH:MM"`, `00:00` to `24:00`, as minutes after midnight.
fn parse_clock(s: &str) -> Option<u16> {
    let (h, m) = s.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    let minutes = h * 60 + m;
    (m < 60 && minutes <= MINUTES_PER_DAY).then_some(minutes)
}

/// One day's periods, sorted; overlaps and empty periods are refused.
fn parse_day(at: &str, periods: &[String]) -> Result<Vec<Span>, CalendarError> {
    let mut spans = periods
        .iter()
        .map(|p| {
            let span = p.split_once('-').and_then(|(a, b)| {
                Some(Span {
                    start: parse_clock(a)?,
                    end: parse_clock(b)?,
                })
            });
            match span {
                Some(s) if s.start < s.end => Ok(s),
                Some(_) => Err(invalid(format!("{at}: period {p:?} ends before it starts"))),
                None => Err(invalid(format!(
                    "{at}: period {p:?} is not written HH:MM-HH:MM (00:00 to 24:00)"
                ))),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    spans.sort();
    if let Some(w) = spans.windows(2).find(|w| w[1].start < w[0].end) {
        return Err(invalid(format!(
            "{at}: periods {} and {} overlap",
            show(w[0]),
            show(w[1])
        )));
    }
    Ok(spans)
}

fn show(s: Span) -> String {
    format!(
        "{:02}:{:02}-{:02}:{:02}",
        s.start / 60,
        s.start % 60,
        s.end / 60,
        s.end % 60
    )
}

/// A week written in the file, on top of `base`.
fn parse_week(
    at: &str,
    raw: &BTreeMap<String, Vec<String>>,
    base: &Week,
) -> Result<Week, CalendarError> {
    const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let mut week = base.clone();
    // `weekdays` first, so that a named day wins over it.
    if let Some(p) = raw.get("weekdays") {
        let spans = parse_day(&format!("{at}.weekdays"), p)?;
        for day in &mut week.days[..5] {
            day.clone_from(&spans);
        }
    }
    for (key, p) in raw.iter().filter(|(k, _)| *k != "weekdays") {
        let spans = parse_day(&format!("{at}.{key}"), p)?;
        match (key.as_str(), DAYS.iter().position(|d| d == key)) {
            (_, Some(i)) => week.days[i] = spans,
            ("makeup", None) => week.makeup = Some(spans),
            (other, None) => {
                return Err(invalid(format!(
                    "{at}: unknown key {other:?}; use mon, tue, wed, thu, fri, sat, sun, \
                     weekdays or makeup"
                )));
            }
        }
    }
    Ok(week)
}

impl Calendar {
    pub fn always() -> Calendar {
        Calendar::empty(Rule::Always)
    }

    pub fn never() -> Calendar {
        Calendar::empty(Rule::Never)
    }

    fn empty(rule: Rule) -> Calendar {
        Calendar {
            rule,
            tz: chrono_tz::Asia::Shanghai,
            holidays: HashSet::new(),
            makeup_days: HashSet::new(),
            years: BTreeSet::new(),
            hours: Hours::default(),
        }
    }

    /// The bundled official calendar, with the default working hours.
    pub fn bundled() -> Calendar {
        let mut c = Calendar::empty(Rule::Official);
        // The bundled file is checked by a unit test, so this cannot fail at run time.
        if let Err(e) = c.add_json(BUNDLED) {
            tracing::error!(error = %e, "bundled calendar unreadable; counting weekends only");
        }
        c
    }

    /// `always`, `never`, or the path of a calendar file (see the module documentation) that
    /// adds to the bundled calendar; unset means the bundled calendar.
    pub fn from_setting(setting: Option<&str>) -> Result<Calendar, CalendarError> {
        match setting.map(str::trim) {
            None | Some("") => Ok(Calendar::bundled()),
            Some("always") => Ok(Calendar::always()),
            Some("never") => Ok(Calendar::never()),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| CalendarError::Io {
                    path: path.to_string(),
                    source,
                })?;
                let mut c = Calendar::bundled();
                c.add_json(&text)?;
                Ok(c)
            }
        }
    }

    /// Adds a calendar file's contents: one year's arrangement (`{"year": …}`), several
    /// (`[{…}, …]`), and/or working hours (`{"hours": …, "years": […]}`). A year given again
    /// replaces nothing already known, it adds to it; hours given replace the hours known.
    /// Nothing is changed when the text is refused.
    pub fn add_json(&mut self, text: &str) -> Result<(), CalendarError> {
        let value: Value = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let mut next = self.clone();
        next.add_value(value)?;
        *self = next;
        Ok(())
    }

    fn add_value(&mut self, value: Value) -> Result<(), CalendarError> {
        let Value::Object(mut obj) = value else {
            let Value::Array(items) = value else {
                return Err(invalid("expected an object or a list of years"));
            };
            return items.into_iter().try_for_each(|v| self.add_value(v));
        };
        let hours = obj.remove("hours");
        let years = obj.remove("years");
        let is_year = obj.contains_key("year");
        if hours.is_none() && years.is_none() && !is_year {
            return Err(invalid(
                "expected a year's arrangement (\"year\"), \"years\" or \"hours\"",
            ));
        }
        if let Some(h) = hours {
            self.set_hours(h)?;
        }
        if let Some(y) = years {
            let Value::Array(_) = y else {
                return Err(invalid("\"years\" must be a list"));
            };
            self.add_value(y)?;
        }
        if is_year {
            self.add_year(Value::Object(obj))?;
        }
        Ok(())
    }

    fn set_hours(&mut self, value: Value) -> Result<(), CalendarError> {
        if !value.is_object() {
            return Err(invalid("\"hours\" must be an object"));
        }
        let file: HoursFile =
            serde_json::from_value(value).map_err(|e| invalid(format!("hours: {e}")))?;
        let default = match &file.default {
            Some(raw) => parse_week("hours.default", raw, &Week::builtin())?,
            None => Week::builtin(),
        };
        let groups = file
            .groups
            .iter()
            .map(|(name, raw)| {
                let week = parse_week(&format!("hours.groups.{name}"), raw, &default)?;
                Ok((name.clone(), week))
            })
            .collect::<Result<HashMap<_, _>, CalendarError>>()?;
        self.hours = Hours { default, groups };
        Ok(())
    }

    fn add_year(&mut self, value: Value) -> Result<(), CalendarError> {
        let y: YearFile = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
        if let Some(tz) = &y.timezone
            && tz != "Asia/Shanghai"
        {
            return Err(invalid(format!(
                "year {} is in {tz}; only Asia/Shanghai is supported",
                y.year
            )));
        }
        self.holidays
            .extend(y.holidays.into_iter().flat_map(|h| h.days));
        self.makeup_days
            .extend(y.makeup_workdays.into_iter().map(|m| m.date));
        self.years.insert(y.year);
        Ok(())
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// Whether the year's official holidays are known (else weekends only are counted).
    pub fn has_official_data(&self, year: i32) -> bool {
        self.rule != Rule::Official || self.years.contains(&year)
    }

    /// The skill groups that have hours of their own (the rest have the default hours), so a
    /// configuration can be checked against the known groups.
    pub fn groups_with_own_hours(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.hours.groups.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        match self.rule {
            Rule::Always => true,
            Rule::Never => false,
            Rule::Official => {
                if self.makeup_days.contains(&date) {
                    return true;
                }
                if self.holidays.contains(&date) {
                    return false;
                }
                !matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
            }
        }
    }

    /// Whether `skill_group` (`None`: the default hours) is open at `at`.
    pub fn is_open(&self, skill_group: Option<&str>, at: DateTime<Utc>) -> bool {
        match self.rule {
            Rule::Always => true,
            Rule::Never => false,
            Rule::Official => {
                let date = at.with_timezone(&self.tz).date_naive();
                self.periods_on(skill_group, date)
                    .iter()
                    .any(|(start, end)| *start <= at && at < *end)
            }
        }
    }

    /// The first instant at or after `after` when `skill_group` is open: `after` itself when
    /// open then. `None` when it does not open within [`HORIZON_DAYS`] (and always for a
    /// calendar that is never open).
    pub fn next_open(
        &self,
        skill_group: Option<&str>,
        after: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        match self.rule {
            Rule::Always => Some(after),
            Rule::Never => None,
            Rule::Official => {
                let mut date = after.with_timezone(&self.tz).date_naive();
                for _ in 0..=HORIZON_DAYS {
                    let open = self
                        .periods_on(skill_group, date)
                        .into_iter()
                        .find(|(_, end)| *end > after);
                    if let Some((start, _)) = open {
                        return Some(start.max(after));
                    }
                    date = date.succ_opt()?;
                }
                None
            }
        }
    }

    /// The open periods of `skill_group` (`None`: the default hours) on the local `date`, in
    /// order, as UTC instants (end exclusive). A calendar that is always open has the whole
    /// local day.
    pub fn periods_on(
        &self,
        skill_group: Option<&str>,
        date: NaiveDate,
    ) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let spans: &[Span] = match self.rule {
            Rule::Always => &[Span {
                start: 0,
                end: MINUTES_PER_DAY,
            }],
            Rule::Never => &[],
            Rule::Official => {
                let week = skill_group
                    .and_then(|g| self.hours.groups.get(g))
                    .unwrap_or(&self.hours.default);
                if self.makeup_days.contains(&date) {
                    week.makeup_day()
                } else if self.holidays.contains(&date) {
                    &[]
                } else {
                    week.day(date.weekday())
                }
            }
        };
        spans
            .iter()
            .map(|s| (self.local(date, s.start), self.local(date, s.end)))
            .collect()
    }

    /// `minutes` after the local midnight of `date`, in UTC.
    fn local(&self, date: NaiveDate, minutes: u16) -> DateTime<Utc> {
        let naive = date.and_time(NaiveTime::MIN) + Duration::minutes(minutes.into());
        match naive.and_local_timezone(self.tz).earliest() {
            Some(t) => t.with_timezone(&Utc),
            // Shanghai has no DST; a local time in a gap of another zone is read as UTC+8.
            None => naive.and_utc() - Duration::hours(8),
        }
    }

    /// The same local time `days` working days after `from`'s local date. With a calendar
    /// that is never open, calendar days are counted instead.
    pub fn add_working_days(&self, from: DateTime<Utc>, days: u32) -> DateTime<Utc> {
        if self.rule == Rule::Never {
            return from + Duration::days(days.into());
        }
        let local = from.with_timezone(&self.tz);
        let mut date = local.date_naive();
        let mut left = days;
        while left > 0 {
            date = date.succ_opt().unwrap_or(date);
            if self.is_working_day(date) {
                left -= 1;
            }
        }
        let naive = date.and_time(local.time());
        match naive.and_local_timezone(self.tz).earliest() {
            Some(t) => t.with_timezone(&Utc),
            // Shanghai has no DST; this is only reachable with a gap in another zone.
            None => from + Duration::days(days.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    /// A local time in Shanghai, in UTC.
    fn sh(y: i32, m: u32, day: u32, h: u32, min: u32) -> DateTime<Utc> {
        chrono_tz::Asia::Shanghai
            .with_ymd_and_hms(y, m, day, h, min, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// Local "HH:MM-HH:MM" of each period, for readable assertions.
    fn local_periods(c: &Calendar, group: Option<&str>, date: &str) -> Vec<String> {
        let tz = chrono_tz::Asia::Shanghai;
        c.periods_on(group, d(date))
            .into_iter()
            .map(|(s, e)| {
                format!(
                    "{}-{}",
                    s.with_timezone(&tz).format("%H:%M"),
                    e.with_timezone(&tz).format("%H:%M")
                )
            })
            .collect()
    }

    fn with_hours(json: &str) -> Calendar {
        let mut c = Calendar::bundled();
        c.add_json(json).unwrap();
        c
    }

    #[test]
    fn the_bundled_2026_arrangement() {
        let c = Calendar::bundled();
        assert!(c.has_official_data(2026));
        assert!(
            !c.has_official_data(2027),
            "2027 is not published yet: weekends only"
        );
        assert!(!c.is_working_day(d("2026-10-01")), "国庆节");
        assert!(!c.is_working_day(d("2026-02-17")), "春节");
        assert!(
            c.is_working_day(d("2026-10-10")),
            "a Saturday made a working day (调休)"
        );
        assert!(c.is_working_day(d("2026-02-14")));
        assert!(!c.is_working_day(d("2026-11-28")), "an ordinary Saturday");
        assert!(c.is_working_day(d("2026-11-26")), "an ordinary Thursday");
        assert!(!c.is_working_day(d("2027-01-02")), "2027: weekends only");
    }

    #[test]
    fn working_days_skip_weekends_and_holidays() {
        let c = Calendar::bundled();
        let sh = chrono_tz::Asia::Shanghai;
        // Wednesday 30 Sep 2026, 10:00: the National Day week is off, Sat 10 Oct works.
        let from = sh
            .with_ymd_and_hms(2026, 9, 30, 10, 0, 0)
            .unwrap()
            .with_timezone(&Utc);
        let due = c.add_working_days(from, 1).with_timezone(&sh);
        assert_eq!(due.date_naive(), d("2026-10-08"));
        let due = c.add_working_days(from, 3).with_timezone(&sh);
        assert_eq!(due.date_naive(), d("2026-10-10"));
        assert_eq!(due.format("%H:%M").to_string(), "10:00");
        // Always open: calendar days. Never open: calendar days too.
        assert_eq!(
            Calendar::always().add_working_days(from, 3),
            from + Duration::days(3)
        );
        assert_eq!(
            Calendar::never().add_working_days(from, 3),
            from + Duration::days(3)
        );
    }

    #[test]
    fn settings() {
        assert!(
            Calendar::from_setting(Some("always"))
                .unwrap()
                .is_working_day(d("2026-10-01"))
        );
        assert!(
            !Calendar::from_setting(Some("never"))
                .unwrap()
                .is_working_day(d("2026-11-26"))
        );
        assert!(Calendar::from_setting(Some("/no/such/file.json")).is_err());
        let mut c = Calendar::bundled();
        c.add_json(
            r#"[{"year": 2027, "holidays": [{"days": ["2027-01-01"]}], "makeup_workdays": []}]"#,
        )
        .unwrap();
        assert!(c.has_official_data(2027));
        assert!(!c.is_working_day(d("2027-01-01")));
    }

    #[test]
    fn default_hours_close_for_lunch() {
        let c = Calendar::bundled();
        // Thursday 26 Nov 2026, an ordinary working day.
        for (h, m, open) in [
            (8, 59, false),
            (9, 0, true),
            (11, 59, true),
            (12, 0, false),
            (12, 45, false),
            (13, 29, false),
            (13, 30, true),
            (17, 29, true),
            (17, 30, false),
            (23, 0, false),
            (0, 0, false),
        ] {
            assert_eq!(
                c.is_open(None, sh(2026, 11, 26, h, m)),
                open,
                "{h:02}:{m:02}"
            );
        }
        assert_eq!(
            c.periods_on(None, d("2026-11-26")),
            vec![
                (utc("2026-11-26T01:00:00Z"), utc("2026-11-26T04:00:00Z")),
                (utc("2026-11-26T05:30:00Z"), utc("2026-11-26T09:30:00Z")),
            ],
            "periods are UTC instants"
        );
        // Every group without hours of its own has the default hours, as has an unknown one.
        for g in [Some("个人所得税"), Some("no such group"), None] {
            assert_eq!(
                local_periods(&c, g, "2026-11-26"),
                ["09:00-12:00", "13:30-17:30"]
            );
        }
    }

    #[test]
    fn weekends_are_closed() {
        let c = Calendar::bundled();
        for day in [28, 29] {
            assert!(!c.is_open(None, sh(2026, 11, day, 10, 0)));
            assert!(
                c.periods_on(None, NaiveDate::from_ymd_opt(2026, 11, day).unwrap())
                    .is_empty()
            );
        }
    }

    #[test]
    fn a_makeup_saturday_has_weekday_hours() {
        let c = Calendar::bundled();
        // Saturday 10 Oct 2026 and Sunday 20 Sep 2026 are working days (调休).
        assert!(c.is_open(None, sh(2026, 10, 10, 10, 0)));
        assert!(!c.is_open(None, sh(2026, 10, 10, 12, 30)), "lunch");
        assert!(c.is_open(None, sh(2026, 9, 20, 15, 0)));
        assert_eq!(
            local_periods(&c, None, "2026-10-10"),
            ["09:00-12:00", "13:30-17:30"]
        );
        // The Saturday after is an ordinary one.
        assert!(!c.is_open(None, sh(2026, 10, 17, 10, 0)));
    }

    #[test]
    fn holidays_are_closed() {
        let c = Calendar::bundled();
        // Thursday 1 Oct 2026 (国庆节), Tuesday 17 Feb 2026 (春节), Friday 1 Jan 2026 (元旦).
        for t in [
            sh(2026, 10, 1, 10, 0),
            sh(2026, 10, 7, 15, 0),
            sh(2026, 2, 17, 10, 0),
            sh(2026, 1, 1, 10, 0),
        ] {
            assert!(!c.is_open(None, t), "{t}");
        }
        assert!(c.periods_on(None, d("2026-10-01")).is_empty());
    }

    #[test]
    fn next_open_across_holidays() {
        let c = Calendar::bundled();
        let cases = [
            // Open now: now.
            (sh(2026, 9, 30, 10, 15), sh(2026, 9, 30, 10, 15)),
            // Lunch: the afternoon.
            (sh(2026, 9, 30, 12, 15), sh(2026, 9, 30, 13, 30)),
            // The evening before the National Day week: Thursday after it.
            (sh(2026, 9, 30, 17, 30), sh(2026, 10, 8, 9, 0)),
            (sh(2026, 10, 3, 11, 0), sh(2026, 10, 8, 9, 0)),
            // Friday evening: the make-up Saturday.
            (sh(2026, 10, 9, 18, 0), sh(2026, 10, 10, 9, 0)),
            // That Saturday evening: Monday, skipping Sunday.
            (sh(2026, 10, 10, 17, 30), sh(2026, 10, 12, 9, 0)),
            // Before 中秋节 (Fri 25 Sep) and its weekend: Monday 28 Sep.
            (sh(2026, 9, 24, 18, 0), sh(2026, 9, 28, 9, 0)),
            // Early morning: 09:00 the same day.
            (sh(2026, 11, 26, 3, 0), sh(2026, 11, 26, 9, 0)),
        ];
        for (after, want) in cases {
            assert_eq!(c.next_open(None, after), Some(want), "after {after}");
        }
    }

    #[test]
    fn per_group_hours() {
        let c = with_hours(include_str!("../data/calendar-example.json"));
        assert_eq!(c.groups_with_own_hours(), ["个人所得税", "社保费"]);
        let iit = Some("个人所得税");
        // Thursday 26 Nov 2026, 19:00: 个人所得税 works late, the rest do not.
        assert!(c.is_open(iit, sh(2026, 11, 26, 19, 0)));
        assert!(!c.is_open(None, sh(2026, 11, 26, 19, 0)));
        assert!(!c.is_open(Some("发票业务"), sh(2026, 11, 26, 19, 0)));
        assert_eq!(
            local_periods(&c, iit, "2026-11-26"),
            ["08:30-12:00", "13:00-20:00"]
        );
        // An ordinary Saturday morning: only 个人所得税.
        assert_eq!(local_periods(&c, iit, "2026-11-28"), ["09:00-12:00"]);
        assert!(c.periods_on(None, d("2026-11-28")).is_empty());
        // A holiday closes every group, whatever its hours.
        assert!(c.periods_on(iit, d("2026-10-01")).is_empty());
        assert!(
            c.periods_on(iit, d("2026-10-03")).is_empty(),
            "a holiday Saturday"
        );
        // A make-up Saturday has the group's Monday hours, not its Saturday hours.
        assert_eq!(
            local_periods(&c, iit, "2026-10-10"),
            ["08:30-12:00", "13:00-20:00"]
        );
        // 社保费 differs only on Fridays; the other days come from the default.
        assert_eq!(
            local_periods(&c, Some("社保费"), "2026-11-27"),
            ["09:00-12:00"]
        );
        assert_eq!(
            local_periods(&c, Some("社保费"), "2026-11-26"),
            ["09:00-12:00", "13:30-17:30"]
        );
        // Friday 27 Nov 13:00: 社保费 next opens on Monday, the default group on the same day.
        let fri = sh(2026, 11, 27, 13, 0);
        assert_eq!(
            c.next_open(Some("社保费"), fri),
            Some(sh(2026, 11, 30, 9, 0))
        );
        assert_eq!(c.next_open(None, fri), Some(sh(2026, 11, 27, 13, 30)));
        assert_eq!(c.next_open(iit, fri), Some(fri));
        // The example file adds no year; the bundled one is still there.
        assert!(c.has_official_data(2026));
    }

    #[test]
    fn default_hours_and_makeup_days_can_be_changed() {
        let c = with_hours(
            r#"{"hours": {
                "default": {"sat": ["10:00-11:00"], "makeup": ["09:00-12:00"]},
                "groups": {"其他": {"weekdays": ["00:00-24:00"]}}
            }}"#,
        );
        // Weekdays keep the built-in hours; Saturdays open an hour.
        assert_eq!(
            local_periods(&c, None, "2026-11-26"),
            ["09:00-12:00", "13:30-17:30"]
        );
        assert_eq!(local_periods(&c, None, "2026-11-28"), ["10:00-11:00"]);
        assert!(c.periods_on(None, d("2026-11-29")).is_empty());
        // Make-up days have the `makeup` hours, also in a group based on the default.
        assert_eq!(local_periods(&c, None, "2026-10-10"), ["09:00-12:00"]);
        assert_eq!(
            local_periods(&c, Some("其他"), "2026-10-10"),
            ["09:00-12:00"]
        );
        // A whole day ends at the next local midnight.
        assert_eq!(
            c.periods_on(Some("其他"), d("2026-11-26")),
            vec![(utc("2026-11-25T16:00:00Z"), utc("2026-11-26T16:00:00Z"))]
        );
        assert!(c.is_open(Some("其他"), sh(2026, 11, 26, 23, 59)));
        assert!(!c.is_open(Some("其他"), sh(2026, 11, 28, 0, 0)), "Saturday");
    }

    #[test]
    fn a_group_that_never_opens_has_no_next_open() {
        let c = with_hours(r#"{"hours": {"groups": {"其他": {"weekdays": []}}}}"#);
        assert_eq!(c.next_open(Some("其他"), sh(2026, 11, 26, 10, 0)), None);
        assert!(
            !c.is_open(Some("其他"), sh(2026, 10, 10, 10, 0)),
            "nor on 调休"
        );
        assert!(c.is_open(None, sh(2026, 11, 26, 10, 0)));
    }

    #[test]
    fn always_and_never() {
        let t = sh(2026, 10, 1, 3, 0);
        let always = Calendar::always();
        assert!(always.is_open(None, t));
        assert!(always.is_open(Some("个人所得税"), sh(2026, 11, 28, 12, 30)));
        assert_eq!(always.next_open(None, t), Some(t));
        assert_eq!(
            always.periods_on(None, d("2026-10-01")),
            vec![(utc("2026-09-30T16:00:00Z"), utc("2026-10-01T16:00:00Z"))],
            "the whole local day"
        );
        let never = Calendar::never();
        assert!(!never.is_open(None, sh(2026, 11, 26, 10, 0)));
        assert_eq!(never.next_open(None, t), None);
        assert_eq!(never.next_open(Some("个人所得税"), t), None);
        assert!(never.periods_on(None, d("2026-11-26")).is_empty());
    }

    #[test]
    fn a_year_without_official_data_counts_weekends_only() {
        let c = Calendar::bundled();
        assert!(!c.has_official_data(2027));
        // Friday 1 Jan 2027 will likely be 元旦, but nothing is guessed.
        assert!(c.is_open(None, sh(2027, 1, 1, 10, 0)));
        assert!(!c.is_open(None, sh(2027, 1, 2, 10, 0)), "Saturday");
        assert_eq!(
            c.next_open(None, sh(2027, 1, 1, 18, 0)),
            Some(sh(2027, 1, 4, 9, 0))
        );
        // Crossing from the last published year into the next.
        assert_eq!(
            c.next_open(None, sh(2026, 12, 31, 18, 0)),
            Some(sh(2027, 1, 1, 9, 0))
        );
    }

    #[test]
    fn is_open_and_next_open_agree_with_the_periods() {
        let c = with_hours(include_str!("../data/calendar-example.json"));
        for group in [None, Some("个人所得税"), Some("社保费")] {
            let mut t = sh(2026, 9, 18, 0, 0);
            while t < sh(2026, 10, 20, 0, 0) {
                let date = t.with_timezone(&c.timezone()).date_naive();
                let inside = c
                    .periods_on(group, date)
                    .iter()
                    .any(|(s, e)| *s <= t && t < *e);
                assert_eq!(c.is_open(group, t), inside, "{group:?} at {t}");
                let next = c.next_open(group, t).expect("opens within the horizon");
                assert!(next >= t && c.is_open(group, next), "{group:?} after {t}");
                assert_eq!(next == t, inside);
                // Nothing opens in between (checked every 10 minutes).
                let mut u = t;
                while u < next {
                    assert!(!c.is_open(group, u), "{group:?} open at {u} before {next}");
                    u += Duration::minutes(10);
                }
                t += Duration::minutes(15);
            }
        }
    }

    #[test]
    fn file_forms() {
        // A year with hours beside it; a year list under "years" with hours.
        let c = with_hours(
            r#"{"year": 2027, "holidays": [{"days": ["2027-01-01"]}], "makeup_workdays": [],
                "hours": {"default": {"fri": []}}}"#,
        );
        assert!(c.has_official_data(2027));
        assert!(!c.is_open(None, sh(2027, 1, 1, 10, 0)));
        assert!(!c.is_open(None, sh(2026, 11, 27, 10, 0)), "Fridays closed");
        let c = with_hours(
            r#"{"years": [{"year": 2027, "holidays": [], "makeup_workdays": [{"date": "2027-01-02"}]}],
                "hours": {}}"#,
        );
        assert!(c.is_open(None, sh(2027, 1, 2, 10, 0)), "a make-up Saturday");
        assert_eq!(
            local_periods(&c, None, "2026-11-26"),
            ["09:00-12:00", "13:30-17:30"],
            "empty hours: the built-in ones"
        );
        // A calendar file with hours, through the setting.
        let path = std::env::temp_dir().join(format!("taxdesk-cal-{}.json", std::process::id()));
        std::fs::write(
            &path,
            r#"{"hours": {"default": {"weekdays": ["08:00-18:00"]}}}"#,
        )
        .unwrap();
        let c = Calendar::from_setting(path.to_str()).unwrap();
        std::fs::remove_file(&path).ok();
        assert!(c.is_open(None, sh(2026, 11, 26, 12, 30)));
        assert!(
            !c.is_open(None, sh(2026, 10, 1, 12, 30)),
            "bundled holidays kept"
        );
    }

    #[test]
    fn bad_hours_are_refused_and_change_nothing() {
        for bad in [
            r#"{"hours": {"default": {"mon": ["9:00-12:00"]}}}"#,
            r#"{"hours": {"default": {"mon": ["12:00-09:00"]}}}"#,
            r#"{"hours": {"default": {"mon": ["09:00-09:00"]}}}"#,
            r#"{"hours": {"default": {"mon": ["09:00-12:00", "11:00-14:00"]}}}"#,
            r#"{"hours": {"default": {"mon": ["09:00-24:01"]}}}"#,
            r#"{"hours": {"default": {"mon": ["09:60-10:00"]}}}"#,
            r#"{"hours": {"default": {"mon": ["0900-1200"]}}}"#,
            r#"{"hours": {"default": {"monday": ["09:00-12:00"]}}}"#,
            r#"{"hours": {"defaults": {}}}"#,
            r#"{"hours": {"groups": {"个人所得税": {"sat": "09:00-12:00"}}}}"#,
            r#"{"hours": [], "years": []}"#,
            r#"{"years": {}}"#,
            r#"{"source": "nothing else"}"#,
            r#"{"hours": {}, "year": 2027}"#,
            r#"42"#,
        ] {
            let mut c = Calendar::bundled();
            let err = c.add_json(bad).expect_err(bad);
            assert!(matches!(err, CalendarError::Invalid(_)), "{bad}: {err}");
            assert_eq!(c.hours, Hours::default(), "{bad}: nothing changed");
            assert!(!c.has_official_data(2027));
        }
        // Touching periods are fine.
        with_hours(r#"{"hours": {"default": {"mon": ["09:00-12:00", "12:00-13:00"]}}}"#);
        let err = Calendar::bundled()
            .add_json(r#"{"hours": {"groups": {"社保费": {"tue": ["13:00-12:00"]}}}}"#)
            .unwrap_err();
        assert!(err.to_string().contains("hours.groups.社保费.tue"), "{err}");
    }
}
