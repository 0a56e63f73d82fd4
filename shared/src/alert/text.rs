//! Small text helpers for alerts: shortening, SNS-safe subjects, console links.

use std::fmt::Write as _;

/// SNS subjects must be shorter than 100 characters (the Publish API reference: "less than
/// 100 characters long"; the service has accepted exactly 100, but we do not rely on it).
pub const MAX_SUBJECT: usize = 99;

/// `text` cut to at most `max` characters, ending in `…` when something was cut.
pub fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let keep = max.saturating_sub(1);
    let mut out: String = text.chars().take(keep).collect();
    out.truncate(out.trim_end().len());
    out.push('…');
    out
}

/// Like [`shorten`], for single-line fields: line breaks and control characters become
/// spaces first, so a multi-line value cannot break the layout of a table or a list.
pub fn one_line(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    shorten(flat.trim(), max)
}

/// Printable ASCII for a subject: control characters and whitespace runs become one space,
/// every other non-ASCII character becomes `?` (the body carries the real name).
pub fn ascii(text: &str) -> String {
    let mut out = ascii_inner(text, true);
    out.truncate(out.trim_end().len());
    out
}

/// [`ascii`] without trimming (`trim_start` drops leading spaces).
fn ascii_inner(text: &str, trim_start: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last_space = trim_start;
    for c in text.chars() {
        let mapped = if c.is_whitespace() || c.is_control() {
            ' '
        } else if c.is_ascii_graphic() {
            c
        } else {
            '?'
        };
        if mapped == ' ' {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
        } else {
            out.push(mapped);
            last_space = false;
        }
    }
    out
}

/// `text` (ASCII) cut to `max` characters keeping both ends (`long-rel...-1234`): release and
/// application names often differ only at the end.
pub fn elide_middle(text: &str, max: usize) -> String {
    let len = text.len();
    if len <= max {
        return text.to_owned();
    }
    if max <= 3 {
        return text[..max].to_owned();
    }
    let keep = max - 3;
    let head = keep.div_ceil(2);
    let tail = keep - head;
    format!("{}...{}", &text[..head], &text[len - tail..])
}

/// One piece of a subject: fixed wording, or a name that may be elided to fit.
pub enum Part<'a> {
    Fixed(&'a str),
    Name(&'a str),
}

/// Builds an SNS-safe subject (printable ASCII, no line breaks, at most [`MAX_SUBJECT`]
/// characters) from fixed wording and names. When it does not fit, the names are elided in
/// the middle, sharing the room fairly (short names stay whole).
pub fn subject(parts: &[Part<'_>]) -> String {
    let cleaned: Vec<(bool, String)> = parts
        .iter()
        .map(|p| match p {
            Part::Fixed(t) => (false, ascii_inner(t, false)),
            Part::Name(t) => (true, ascii(t)),
        })
        .collect();
    let fixed: usize = cleaned
        .iter()
        .filter(|(name, _)| !name)
        .map(|(_, t)| t.len())
        .sum();
    let mut room = MAX_SUBJECT.saturating_sub(fixed);
    // Water-filling: the shortest names take what they need, the rest share what is left.
    let mut names: Vec<usize> = (0..cleaned.len()).filter(|&i| cleaned[i].0).collect();
    names.sort_by_key(|&i| cleaned[i].1.len());
    let mut allowance = vec![0usize; cleaned.len()];
    let mut left = names.len();
    for i in names {
        let share = room / left.max(1);
        let take = cleaned[i].1.len().min(share);
        allowance[i] = take;
        room -= take;
        left -= 1;
    }
    let mut out = String::new();
    for (i, (name, text)) in cleaned.iter().enumerate() {
        if *name {
            out.push_str(&elide_middle(text, allowance[i]));
        } else {
            out.push_str(text);
        }
    }
    let mut out = ascii(&out);
    out.truncate(MAX_SUBJECT);
    out
}

/// Percent-encodes a URL query value (RFC 3986 unreserved characters stay as they are).
pub fn query_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// The AWS console's host for a region (the partitions have their own domains).
fn console_host(region: &str) -> String {
    if region.starts_with("cn-") {
        "console.amazonaws.cn".to_owned()
    } else if region.starts_with("us-gov-") {
        "console.amazonaws-us-gov.com".to_owned()
    } else {
        format!("{region}.console.aws.amazon.com")
    }
}

/// Regions are `[a-z0-9-]`; anything else (a corrupt event) gets no link rather than a
/// broken one.
fn valid_region(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= 32
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The S3 console page of an object, from its `s3://bucket/key` URI.
pub fn s3_console_url(uri: &str, region: &str) -> Option<String> {
    let (bucket, key) = crate::layout::parse_s3_uri(uri)?;
    if !valid_region(region) || key.is_empty() {
        return None;
    }
    let region_q = query_encode(region);
    Some(format!(
        "https://{}/s3/object/{}?region={region_q}&bucketType=general&prefix={}",
        console_host(region),
        query_encode(bucket),
        query_encode(key)
    ))
}

/// The region of an ARN (`arn:partition:service:region:account:resource`).
pub fn arn_region(arn: &str) -> Option<&str> {
    let region = arn.split(':').nth(3)?;
    valid_region(region).then_some(region)
}

/// The Bedrock console's list of model evaluation jobs.
pub fn bedrock_evaluations_url(region: &str) -> Option<String> {
    valid_region(region).then(|| {
        format!(
            "https://{}/bedrock/home?region={region}#/model-evaluation",
            console_host(region)
        )
    })
}

/// The CloudWatch console page of an alarm.
pub fn alarm_console_url(name: &str, region: &str) -> Option<String> {
    valid_region(region).then(|| {
        format!(
            "https://{}/cloudwatch/home?region={region}#alarmsV2:alarm/{}",
            console_host(region),
            query_encode(name)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorten_counts_characters_and_marks_the_cut() {
        assert_eq!(shorten("abc", 3), "abc");
        assert_eq!(shorten("abcdef", 4), "abc…");
        assert_eq!(shorten("ab  cdef", 4), "ab…");
        assert_eq!(shorten("ééééé", 3), "éé…");
        assert_eq!(one_line("a\nb\tc", 10), "a b c");
    }

    #[test]
    fn ascii_replaces_what_subjects_cannot_carry() {
        assert_eq!(ascii("  café\n\tbot  "), "caf? bot");
        assert_eq!(ascii("客服"), "??");
        assert_eq!(ascii("a\u{7}b"), "a b");
    }

    #[test]
    fn subjects_fit_and_keep_both_ends_of_long_names() {
        let long_release = format!("release-{}-build-1234", "x".repeat(150));
        let s = subject(&[
            Part::Fixed("[HIGH] evalgate "),
            Part::Name("support-bot"),
            Part::Fixed(" "),
            Part::Name(&long_release),
            Part::Fixed(": quality gate FAILED"),
        ]);
        assert!(s.len() <= MAX_SUBJECT, "{} {s}", s.len());
        assert!(
            s.starts_with("[HIGH] evalgate support-bot release-x"),
            "{s}"
        );
        assert!(s.contains("..."), "{s}");
        assert!(s.ends_with("-build-1234: quality gate FAILED"), "{s}");
        assert!(s.chars().all(|c| c.is_ascii_graphic() || c == ' '), "{s}");
    }

    #[test]
    fn two_long_names_share_the_room() {
        let a = "a".repeat(200);
        let b = "b".repeat(200);
        let s = subject(&[Part::Name(&a), Part::Fixed(" -> "), Part::Name(&b)]);
        assert_eq!(s.len(), MAX_SUBJECT);
        let (left, right) = s.split_once(" -> ").unwrap();
        assert!(left.len().abs_diff(right.len()) <= 1, "{s}");
    }

    #[test]
    fn console_links_encode_keys_and_follow_the_partition() {
        assert_eq!(
            s3_console_url("s3://b/verdicts/app/v 1+2/report.md", "eu-west-1").unwrap(),
            "https://eu-west-1.console.aws.amazon.com/s3/object/b?region=eu-west-1&bucketType=general&prefix=verdicts%2Fapp%2Fv%201%2B2%2Freport.md"
        );
        assert!(
            s3_console_url("s3://b/k", "cn-north-1")
                .unwrap()
                .starts_with("https://console.amazonaws.cn/")
        );
        assert_eq!(s3_console_url("not-a-uri", "us-east-1"), None);
        assert_eq!(s3_console_url("s3://b/k", "us east"), None);
        assert_eq!(
            arn_region("arn:aws:bedrock:us-west-2:123456789012:evaluation-job/abc"),
            Some("us-west-2")
        );
        assert_eq!(
            alarm_console_url("app errors", "us-east-1").unwrap(),
            "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#alarmsV2:alarm/app%20errors"
        );
    }
}
