//! The working-day calendar of the Chinese mainland in Asia/Shanghai: weekends, the public
//! holidays and the make-up working days (调休) of each year's official arrangement.
//!
//! A year without official data is counted by weekends only, and says so
//! (`has_official_data`), rather than guessing its holidays.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc, Weekday};
use chrono_tz::Tz;
use serde::Deserialize;

/// The official arrangement bundled with this release.
pub const BUNDLED: &str = include_str!("../data/cn-official-2026.json");

#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    /// Open every day (demos and tests).
    Always,
    /// Never open (demos and tests of after-hours behaviour).
    Never,
    Official,
}

#[derive(Debug, Clone)]
pub struct Calendar {
    rule: Rule,
    tz: Tz,
    holidays: HashSet<NaiveDate>,
    makeup_days: HashSet<NaiveDate>,
    years: BTreeSet<i32>,
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
        }
    }

    /// The bundled official calendar.
    pub fn bundled() -> Calendar {
        let mut c = Calendar::empty(Rule::Official);
        // The bundled file is checked by a unit test, so this cannot fail at run time.
        if let Err(e) = c.add_year_json(BUNDLED) {
            tracing::error!(error = %e, "bundled calendar unreadable; counting weekends only");
        }
        c
    }

    /// `always`, `never`, or the path of a JSON file with one year (as bundled) or a list of
    /// years; unset means the bundled calendar.
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

    /// Adds one year's arrangement (`{"year": …}`) or several (`[{…}, …]`); a year given
    /// again replaces nothing already known, it adds to it.
    pub fn add_json(&mut self, text: &str) -> Result<(), CalendarError> {
        if text.trim_start().starts_with('[') {
            let years: Vec<serde_json::Value> =
                serde_json::from_str(text).map_err(|e| CalendarError::Invalid(e.to_string()))?;
            for y in years {
                self.add_year_json(&y.to_string())?;
            }
            Ok(())
        } else {
            self.add_year_json(text)
        }
    }

    fn add_year_json(&mut self, text: &str) -> Result<(), CalendarError> {
        let y: YearFile =
            serde_json::from_str(text).map_err(|e| CalendarError::Invalid(e.to_string()))?;
        if let Some(tz) = &y.timezone
            && tz != "Asia/Shanghai"
        {
            return Err(CalendarError::Invalid(format!(
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
}
