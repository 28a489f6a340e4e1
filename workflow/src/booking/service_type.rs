//! Service types (预约服务类型): what a taxpayer may book, how (text, voice or video), for how
//! long a slot lasts, how many places a slot has, which skill group hosts it (and so whose
//! working hours its slots follow), how far ahead it is bookable and until when a taxpayer
//! may cancel.
//!
//! The list is data: [`BUNDLED`] (`workflow/data/service-types.json`) is the default, checked
//! by a unit test. Its form:
//!
//! ```json
//! {"service_types": [{"code": "invoice", "name": "发票业务咨询",
//!   "methods": ["TEXT", "VOICE", "VIDEO"], "slot_minutes": 30, "capacity": 5,
//!   "skill_group": "发票业务", "bookable_days": 14, "cancel_cutoff": null}]}
//! ```
//!
//! `cancel_cutoff` is a duration written like `90s`, `15m`, `2h` or `1d`; `null` (or absent)
//! means the global cut-off (`TAXDESK_CANCEL_CUTOFF`). Other top-level keys (`note`) are
//! ignored.

use std::collections::HashSet;

use chrono::Duration;
use serde::Deserialize;
use strum::{AsRefStr, EnumIter, EnumString};

use crate::error::{Error, Result};
use crate::workflow::WorkflowConfig;

/// The service types bundled with this release.
pub const BUNDLED: &str = include_str!("../../data/service-types.json");

/// The longest code (the width of `bookings.service_type` and `booking_slots.service_type`).
pub const MAX_CODE_LEN: usize = 32;

/// How a booked appointment is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, AsRefStr, EnumString, EnumIter, Deserialize)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Method {
    Text,
    Voice,
    Video,
}

impl Method {
    /// The name a taxpayer reads: 文字, 语音, 视频.
    pub fn label_zh(self) -> &'static str {
        match self {
            Method::Text => "文字",
            Method::Voice => "语音",
            Method::Video => "视频",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceType {
    /// Stable id, stored on bookings and slots (`invoice`).
    pub code: String,
    /// What a person reads (发票业务咨询).
    pub name: String,
    /// The methods offered, in the order given.
    pub methods: Vec<Method>,
    /// The length of one slot, in minutes.
    pub slot_minutes: i64,
    /// Places per slot.
    pub capacity: i32,
    /// The skill group that hosts it, one of the configured categories.
    pub skill_group: String,
    /// How far ahead a taxpayer may book, in days from now.
    pub bookable_days: i64,
    /// How long before the start a taxpayer may still cancel; `None`: the global cut-off.
    pub cancel_cutoff: Option<Duration>,
}

impl ServiceType {
    /// The length of one slot.
    pub fn slot(&self) -> Duration {
        Duration::minutes(self.slot_minutes)
    }

    pub fn offers(&self, method: Method) -> bool {
        self.methods.contains(&method)
    }

    /// This type's cancel cut-off, or `global` when it has none of its own.
    pub fn cancel_cutoff_or(&self, global: Duration) -> Duration {
        self.cancel_cutoff.unwrap_or(global)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceTypeError {
    #[error("service types are not valid: {0}")]
    Invalid(String),
}

fn invalid(msg: impl Into<String>) -> ServiceTypeError {
    ServiceTypeError::Invalid(msg.into())
}

#[derive(Deserialize)]
struct File {
    service_types: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    code: String,
    name: String,
    methods: Vec<Method>,
    slot_minutes: i64,
    capacity: i32,
    skill_group: String,
    bookable_days: i64,
    #[serde(default)]
    cancel_cutoff: Option<String>,
}

/// `90s`, `15m`, `2h`, `1d`.
fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().ok()?;
    match unit {
        "s" => Some(Duration::seconds(n)),
        "m" => Some(Duration::minutes(n)),
        "h" => Some(Duration::hours(n)),
        "d" => Some(Duration::days(n)),
        _ => None,
    }
}

/// Reads a service-type file (see the module documentation) and checks each entry on its own
/// and the codes for duplicates. Skill groups are checked against the configured ones by
/// [`check_skill_groups`].
pub fn parse(text: &str) -> std::result::Result<Vec<ServiceType>, ServiceTypeError> {
    let file: File = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
    let mut seen = HashSet::new();
    file.service_types
        .into_iter()
        .map(|e| {
            let at = format!("service type {:?}", e.code);
            let code_ok = !e.code.is_empty()
                && e.code.len() <= MAX_CODE_LEN
                && e.code
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
            if !code_ok {
                return Err(invalid(format!(
                    "{at}: a code is 1 to {MAX_CODE_LEN} of a-z, 0-9, _ and -"
                )));
            }
            if !seen.insert(e.code.clone()) {
                return Err(invalid(format!("{at}: the code is given twice")));
            }
            if e.name.trim().is_empty() {
                return Err(invalid(format!("{at}: name is empty")));
            }
            let methods: HashSet<_> = e.methods.iter().collect();
            if e.methods.is_empty() || methods.len() != e.methods.len() {
                return Err(invalid(format!(
                    "{at}: methods must name TEXT, VOICE and/or VIDEO, each once"
                )));
            }
            if !(1..=24 * 60).contains(&e.slot_minutes) {
                return Err(invalid(format!(
                    "{at}: slot_minutes must be 1 to 1440 (got {})",
                    e.slot_minutes
                )));
            }
            if e.capacity < 1 {
                return Err(invalid(format!(
                    "{at}: capacity must be at least 1 (got {})",
                    e.capacity
                )));
            }
            if !(1..=366).contains(&e.bookable_days) {
                return Err(invalid(format!(
                    "{at}: bookable_days must be 1 to 366 (got {})",
                    e.bookable_days
                )));
            }
            let cancel_cutoff = match e.cancel_cutoff.as_deref() {
                None => None,
                Some(s) => Some(parse_duration(s).ok_or_else(|| {
                    invalid(format!(
                        "{at}: cancel_cutoff {s:?} is not a duration like 90s, 15m, 2h or 1d"
                    ))
                })?),
            };
            Ok(ServiceType {
                code: e.code,
                name: e.name.trim().to_string(),
                methods: e.methods,
                slot_minutes: e.slot_minutes,
                capacity: e.capacity,
                skill_group: e.skill_group,
                bookable_days: e.bookable_days,
                cancel_cutoff,
            })
        })
        .collect()
}

/// Every service type's skill group must be one of `groups` (the configured categories).
pub fn check_skill_groups(
    types: &[ServiceType],
    groups: &[String],
) -> std::result::Result<(), ServiceTypeError> {
    match types.iter().find(|t| !groups.contains(&t.skill_group)) {
        Some(t) => Err(invalid(format!(
            "service type {:?}: unknown skill group {:?}; one of: {}",
            t.code,
            t.skill_group,
            groups.join(", ")
        ))),
        None => Ok(()),
    }
}

/// The bundled service types.
pub fn bundled() -> Vec<ServiceType> {
    // The bundled file is checked by a unit test, so this cannot fail at run time.
    parse(BUNDLED).unwrap_or_else(|e| {
        tracing::error!(error = %e, "bundled service types unreadable; none offered");
        Vec::new()
    })
}

impl WorkflowConfig {
    /// The service type of `code`, if configured.
    pub fn service_type(&self, code: &str) -> Option<&ServiceType> {
        self.service_types.iter().find(|t| t.code == code)
    }

    /// The service type of `code` offering `method` (when given), or input a person can
    /// correct: an unknown code (field `serviceType`) or a method it does not offer (field
    /// `method`), naming the choices.
    pub fn resolve_service_type(&self, code: &str, method: Option<Method>) -> Result<&ServiceType> {
        let code = code.trim();
        let Some(st) = self.service_type(code) else {
            let zh = self
                .service_types
                .iter()
                .map(|t| format!("{}（{}）", t.code, t.name))
                .collect::<Vec<_>>()
                .join("、");
            let en = self
                .service_types
                .iter()
                .map(|t| t.code.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(Error::input(
                "serviceType",
                format!("未知的预约服务类型「{code}」，可选：{zh}"),
                format!("unknown service type {code:?}; one of: {en}"),
            ));
        };
        match method {
            Some(m) if !st.offers(m) => Err(Error::input(
                "method",
                format!(
                    "「{}」不提供{}方式，可选：{}",
                    st.name,
                    m.label_zh(),
                    st.methods
                        .iter()
                        .map(|m| m.label_zh())
                        .collect::<Vec<_>>()
                        .join("、")
                ),
                format!(
                    "{} is not offered by {:?}; one of: {}",
                    m.as_ref(),
                    st.code,
                    st.methods
                        .iter()
                        .map(|m| m.as_ref())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
            _ => Ok(st),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::DEFAULT_CATEGORIES;

    fn categories() -> Vec<String> {
        DEFAULT_CATEGORIES.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn the_bundled_file_parses_and_its_skill_groups_are_known() {
        let types = parse(BUNDLED).expect("bundled service types");
        assert!(types.len() >= 5, "{types:?}");
        check_skill_groups(&types, &categories()).unwrap();
        assert_eq!(bundled(), types);
        let invoice = types.iter().find(|t| t.code == "invoice").unwrap();
        assert_eq!(invoice.name, "发票业务咨询");
        assert_eq!(invoice.skill_group, "发票业务");
        assert_eq!(
            invoice.methods,
            [Method::Text, Method::Voice, Method::Video]
        );
        for t in &types {
            assert_eq!(t.slot_minutes, 30, "{}", t.code);
            assert!((2..=5).contains(&t.capacity), "{}", t.code);
            assert_eq!(t.bookable_days, 14, "{}", t.code);
        }
        for (code, group) in [
            ("iit", "个人所得税"),
            ("registration", "登记与注销"),
            ("social", "社保费"),
            ("etax", "电子税务局操作"),
        ] {
            let t = types.iter().find(|t| t.code == code).expect(code);
            assert_eq!(t.skill_group, group);
        }
        let reg = types.iter().find(|t| t.code == "registration").unwrap();
        assert_eq!(reg.cancel_cutoff, Some(Duration::hours(2)));
        assert_eq!(reg.cancel_cutoff_or(Duration::hours(1)), Duration::hours(2));
        assert_eq!(
            invoice.cancel_cutoff_or(Duration::hours(1)),
            Duration::hours(1)
        );
    }

    #[test]
    fn the_default_config_has_the_bundled_types() {
        let c = WorkflowConfig::default();
        assert_eq!(c.service_types, bundled());
        assert_eq!(c.service_type("iit").unwrap().name, "个税汇算辅导");
        assert!(c.service_type("nope").is_none());
    }

    #[test]
    fn methods_are_upper_snake() {
        assert_eq!(Method::Video.as_ref(), "VIDEO");
        assert_eq!("VOICE".parse::<Method>().unwrap(), Method::Voice);
        assert!("voice".parse::<Method>().is_err());
    }

    #[test]
    fn resolving_names_the_choices() {
        let c = WorkflowConfig::default();
        assert_eq!(
            c.resolve_service_type(" etax ", Some(Method::Video))
                .unwrap()
                .code,
            "etax"
        );
        assert_eq!(c.resolve_service_type("etax", None).unwrap().code, "etax");
        let Err(Error::InvalidInput(e)) = c.resolve_service_type("visa", None) else {
            panic!("unknown code accepted");
        };
        assert_eq!(e.field, "serviceType");
        assert!(e.zh.contains("invoice（发票业务咨询）"), "{}", e.zh);
        assert!(
            e.en.contains("\"visa\"") && e.en.contains("iit"),
            "{}",
            e.en
        );
        let Err(Error::InvalidInput(e)) = c.resolve_service_type("etax", Some(Method::Voice))
        else {
            panic!("a method not offered accepted");
        };
        assert_eq!(e.field, "method");
        assert!(
            e.zh.contains("语音") && e.zh.contains("文字、视频"),
            "{}",
            e.zh
        );
        assert!(e.en.contains("TEXT, VIDEO"), "{}", e.en);
    }

    #[test]
    fn bad_files_are_refused() {
        let ok = r#"{"code": "a", "name": "甲", "methods": ["TEXT"], "slot_minutes": 30,
                     "capacity": 1, "skill_group": "其他", "bookable_days": 7"#;
        let one = |extra: &str| format!(r#"{{"service_types": [{ok}{extra}}}]}}"#);
        let types = parse(&one("")).unwrap();
        assert_eq!(types[0].cancel_cutoff, None);
        assert_eq!(
            parse(&one(r#", "cancel_cutoff": "90m""#)).unwrap()[0].cancel_cutoff,
            Some(Duration::minutes(90))
        );
        for bad in [
            one(r#", "cancel_cutoff": "1 hour""#),
            one(r#", "colour": "red""#),
            ok.replace(r#""a""#, r#""A b""#),
            ok.replace(r#"["TEXT"]"#, "[]"),
            ok.replace(r#"["TEXT"]"#, r#"["TEXT", "TEXT"]"#),
            ok.replace(r#"["TEXT"]"#, r#"["FAX"]"#),
            ok.replace("30", "0"),
            ok.replace(r#""capacity": 1"#, r#""capacity": 0"#),
            ok.replace(r#""bookable_days": 7"#, r#""bookable_days": 0"#),
            ok.replace(r#""甲""#, r#""  ""#),
            format!(r#"{{"service_types": [{ok}}}, {ok}}}]}}"#),
            "[]".to_string(),
        ] {
            let text = if bad.starts_with('{') && !bad.starts_with(r#"{"service_types"#) {
                format!(r#"{{"service_types": [{bad}}}]}}"#)
            } else {
                bad.clone()
            };
            assert!(parse(&text).is_err(), "{text}");
        }
        let other = parse(&one("")).unwrap();
        let err = check_skill_groups(&other, &["发票业务".to_string()]).unwrap_err();
        assert!(err.to_string().contains("\"其他\""), "{err}");
    }
}
