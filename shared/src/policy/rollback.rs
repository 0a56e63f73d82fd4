//! The `rollback` section: which alarms roll a release back, and how cautiously.
//!
//! ```yaml
//! rollback:
//!   alarms:                  # this application's alarms: exact names or patterns (* and ?)
//!     - support-bot-5xx-rate
//!     - support-bot-quality-*
//!   min_duration: 5m         # act only on a breach that lasted at least this long …
//!   min_periods: 3           # … and/or spans at least this many breaching datapoints
//!   cooldown: 30m            # after a rollback, ignore alarms for this long (default 30m)
//!   max_alarm_age: 1h        # an ALARM state older than this is stale (default 1h)
//!   dry_run: false           # decide and report, never move the pointer
//! ```
//!
//! A `rollback` section needs a `release.pointer`. `docs/policy-release-rollback.md`
//! documents every key; `docs/rollback.md` how decisions are made.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::Problem;

/// Default [`RollbackPolicy::cooldown`].
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(30 * 60);
/// Default [`RollbackPolicy::max_alarm_age`].
pub const DEFAULT_MAX_ALARM_AGE: Duration = Duration::from_secs(60 * 60);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackPolicy {
    /// Alarm names or patterns (`*` any run of characters, `?` one character).
    pub alarms: Spanned<Vec<Spanned<String>>>,
    /// The breach the alarm reports must cover at least this much time
    /// (breaching datapoints × period).
    #[serde(default)]
    pub min_duration: Option<PolicyDuration>,
    /// The breach the alarm reports must rest on at least this many breaching datapoints.
    #[serde(default)]
    pub min_periods: Option<Spanned<u32>>,
    #[serde(default)]
    pub cooldown: Option<PolicyDuration>,
    #[serde(default)]
    pub max_alarm_age: Option<PolicyDuration>,
    #[serde(default)]
    pub dry_run: bool,
}

/// The rules the decision applies, as plain values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackRules {
    pub alarms: Vec<String>,
    pub min_duration: Option<Duration>,
    pub min_periods: Option<u32>,
    pub cooldown: Duration,
    pub max_alarm_age: Duration,
    pub dry_run: bool,
}

impl Default for RollbackRules {
    fn default() -> Self {
        RollbackRules {
            alarms: Vec::new(),
            min_duration: None,
            min_periods: None,
            cooldown: DEFAULT_COOLDOWN,
            max_alarm_age: DEFAULT_MAX_ALARM_AGE,
            dry_run: false,
        }
    }
}

impl RollbackRules {
    /// Whether `alarm_name` is one of this application's alarms.
    pub fn matches(&self, alarm_name: &str) -> bool {
        self.alarms.iter().any(|p| glob_match(p, alarm_name))
    }
}

impl RollbackPolicy {
    pub fn validate(&self, policy: &super::Policy, problems: &mut Vec<Problem>) {
        if policy.release.is_none() {
            problems.push(Problem::spanned(
                &self.alarms,
                "rollback",
                "a rollback section needs a release pointer to move: add `release: {pointer: {ssm_parameter: /<app>/release}}` (or a lambda_alias)",
            ));
        }
        if self.alarms.value.is_empty() {
            problems.push(Problem::spanned(
                &self.alarms,
                "rollback.alarms",
                "name at least one alarm (exact name or a pattern such as support-bot-*)",
            ));
        }
        for (i, pattern) in self.alarms.value.iter().enumerate() {
            let path = format!("rollback.alarms[{i}]");
            let text = pattern.value.as_str();
            if text.trim().is_empty() || text.len() > 255 {
                problems.push(Problem::spanned(
                    pattern,
                    path,
                    "an alarm name or pattern is 1-255 characters",
                ));
            } else if text.chars().all(|c| matches!(c, '*' | '?')) {
                problems.push(Problem::spanned(
                    pattern,
                    path,
                    format!(
                        "{text:?} matches every alarm in the account; name this application's alarms (e.g. support-bot-*)"
                    ),
                ));
            }
        }
        if let Some(periods) = &self.min_periods
            && periods.value == 0
        {
            problems.push(Problem::spanned(
                periods,
                "rollback.min_periods",
                "must be at least 1 (leave it out to act on the alarm's own judgement)",
            ));
        }
        if let Some(d) = &self.min_duration
            && d.value.is_zero()
        {
            problems.push(Problem::spanned(
                &d.spanned,
                "rollback.min_duration",
                "must be longer than 0s (leave it out to act on the alarm's own judgement)",
            ));
        }
        if let Some(d) = &self.max_alarm_age
            && d.value < Duration::from_secs(60)
        {
            problems.push(Problem::spanned(
                &d.spanned,
                "rollback.max_alarm_age",
                "must be at least 1m: alarm events take time to arrive",
            ));
        }
    }

    /// The rules as plain values, defaults applied.
    pub fn rules(&self) -> RollbackRules {
        RollbackRules {
            alarms: self.alarms.value.iter().map(|p| p.value.clone()).collect(),
            min_duration: self.min_duration.as_ref().map(|d| d.value),
            min_periods: self.min_periods.as_ref().map(|p| p.value),
            cooldown: self.cooldown.as_ref().map_or(DEFAULT_COOLDOWN, |d| d.value),
            max_alarm_age: self
                .max_alarm_age
                .as_ref()
                .map_or(DEFAULT_MAX_ALARM_AGE, |d| d.value),
            dry_run: self.dry_run,
        }
    }
}

/// A duration written as `90s`, `5m`, `1h30m`, `2d` (units `s`, `m`, `h`, `d`).
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyDuration {
    pub value: Duration,
    /// The text as written, with its location.
    pub spanned: Spanned<String>,
}

impl<'de> Deserialize<'de> for PolicyDuration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<DurationText>::deserialize(deserializer)?;
        let value = parse_duration(&spanned.value.0).map_err(serde::de::Error::custom)?;
        Ok(PolicyDuration {
            value,
            spanned: Spanned::new(spanned.value.0, spanned.referenced, spanned.defined),
        })
    }
}

/// Accepts a string; explains the expected form for anything else (a bare `300` is
/// ambiguous: seconds? minutes?).
struct DurationText(String);

impl<'de> Deserialize<'de> for DurationText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = DurationText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration with a unit, e.g. 90s, 5m, 1h30m")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<DurationText, E> {
                Ok(DurationText(v.to_owned()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<DurationText, E> {
                Err(E::custom(format!(
                    "a duration needs a unit: write {v}s, {v}m or {v}h"
                )))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<DurationText, E> {
                Err(E::custom(format!(
                    "a duration needs a unit and cannot be negative: got {v}"
                )))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Parses `90s`, `5m`, `1h30m`, `2d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let fail = || {
        format!(
            "invalid duration {text:?}: write a number and a unit (s, m, h, d), e.g. 90s, 5m, 1h30m"
        )
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(fail());
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in trimmed.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(fail()),
        };
        let n: u64 = digits.parse().map_err(|_| fail())?;
        digits.clear();
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(fail)?;
    }
    if !digits.is_empty() {
        return Err(fail());
    }
    Ok(Duration::from_secs(total))
}

/// Formats a duration the way policies write it (`1h30m`, `90s` → `1m30s`).
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

/// Glob matching over characters: `*` matches any run (including none), `?` one character.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    // Position of the last `*` and the name index it is currently matched up to.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;

    const HEAD: &str = "version: 1\nevaluation:\n  evaluator_model: us.amazon.nova-pro-v1:0\n  metrics: [Builtin.Correctness]\nrelease:\n  pointer:\n    ssm_parameter: /bot/release\n";

    fn parse(rollback: &str) -> Result<Policy, crate::policy::PolicyError> {
        Policy::parse("p.yaml", &format!("{HEAD}{rollback}"))
    }

    #[test]
    fn full_section() {
        let policy = parse(
            "rollback:\n  alarms: [bot-5xx, bot-quality-*]\n  min_duration: 5m\n  min_periods: 3\n  cooldown: 1h30m\n  max_alarm_age: 2h\n  dry_run: true\n",
        )
        .unwrap();
        let rules = policy.rollback.unwrap().rules();
        assert_eq!(
            rules,
            RollbackRules {
                alarms: vec!["bot-5xx".into(), "bot-quality-*".into()],
                min_duration: Some(Duration::from_secs(300)),
                min_periods: Some(3),
                cooldown: Duration::from_secs(5400),
                max_alarm_age: Duration::from_secs(7200),
                dry_run: true,
            }
        );
        assert!(rules.matches("bot-quality-correctness"));
        assert!(rules.matches("bot-5xx"));
        assert!(!rules.matches("bot-5xx-canary"));
    }

    #[test]
    fn defaults() {
        let rules = parse("rollback:\n  alarms: [bot-5xx]\n")
            .unwrap()
            .rollback
            .unwrap()
            .rules();
        assert_eq!(rules.cooldown, DEFAULT_COOLDOWN);
        assert_eq!(rules.max_alarm_age, DEFAULT_MAX_ALARM_AGE);
        assert_eq!((rules.min_duration, rules.min_periods), (None, None));
        assert!(!rules.dry_run);
    }

    #[test]
    fn rollback_needs_a_release_pointer() {
        let text = "version: 1\nevaluation:\n  evaluator_model: us.amazon.nova-pro-v1:0\n  metrics: [Builtin.Correctness]\nrollback:\n  alarms: [bot-5xx]\n";
        let err = Policy::parse("p.yaml", text).unwrap_err();
        assert!(err.to_string().contains("needs a release pointer"), "{err}");
    }

    #[test]
    fn bad_values_are_located_and_explained() {
        let err = parse("rollback:\n  alarms: [\"*\"]\n").unwrap_err();
        assert!(err.to_string().contains("matches every alarm"), "{err}");
        assert_eq!(err.problems[0].line, Some(9), "{err}");

        let err = parse("rollback:\n  alarms: []\n").unwrap_err();
        assert!(err.to_string().contains("at least one alarm"), "{err}");

        let err = parse("rollback:\n  alarms: [a]\n  cooldown: 5 minutes\n").unwrap_err();
        assert!(err.to_string().contains("invalid duration"), "{err}");
        assert_eq!(err.problems[0].line, Some(10), "{err}");

        let err = parse("rollback:\n  alarms: [a]\n  min_duration: 300\n").unwrap_err();
        assert!(err.to_string().contains("write 300s"), "{err}");

        let err = parse("rollback:\n  alarms: [a]\n  min_periods: 0\n  max_alarm_age: 10s\n")
            .unwrap_err();
        assert_eq!(err.problems.len(), 2, "{err}");
        assert!(err.to_string().contains("rollback.min_periods"), "{err}");
        assert!(err.to_string().contains("rollback.max_alarm_age"), "{err}");
        assert_eq!(err.problems[1].line, Some(11), "{err}");

        let err = parse("rollback:\n  alarms: [a]\n  dryrun: true\n").unwrap_err();
        assert!(err.to_string().contains("dryrun"), "{err}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        for bad in ["", "5", "m", "5x", "1.5h", "-5m", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn globs() {
        let cases = [
            ("bot-*", "bot-5xx", true),
            ("bot-*", "bot-", true),
            ("bot-*", "other-bot-5xx", false),
            ("*-5xx", "bot-5xx", true),
            ("bot-?xx", "bot-5xx", true),
            ("bot-?xx", "bot-50xx", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("exact", "exact", true),
            ("exact", "Exact", false),
            ("*", "", true),
            ("é*", "école", true),
        ];
        for (pattern, name, expected) in cases {
            assert_eq!(glob_match(pattern, name), expected, "{pattern} vs {name}");
        }
    }
}
