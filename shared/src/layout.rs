//! The evaluation bucket's layout: every S3 key evalgate reads or writes is built here.
//!
//! ```text
//! datasets/<application>/<release>/<name>.jsonl     uploaded by teams (input)
//! policies/<application>.yaml                       uploaded by teams (input)
//! shards/<app>/<rel>/<dataset-id>/shard-0001.jsonl  Bedrock-ready shards (only documented keys)
//! metadata/<app>/<rel>/<dataset-id>/shard-0001.jsonl  per-record metadata kept aside (latency, tokens, cost…)
//! evaluations/<app>/<rel>/<dataset-id>/             Bedrock's output prefix (it adds <jobName>/<jobId>/…)
//! rejections/<app>/<rel>/<name>.json                why a dataset was rejected, and what to do
//! verdicts/<app>/<rel>/verdict.json, report.md      the gate's verdict, written once
//! verdicts/<app>/<rel>/scores.jsonl                 per-prompt scores (regression baseline)
//! ledger/…                                          evalgate's own records (see `ledger`)
//! ```
//!
//! `<app>`, `<rel>` and `<dataset-id>` in derived keys are [`safe_segment`]s: Bedrock only
//! accepts S3 URIs whose key characters are `[-!_*'().a-zA-Z0-9/]`, while teams may name
//! releases and datasets freely (spaces, `+`, `=`, unicode). Records keep the real names.

use sha2::{Digest, Sha256};
use thiserror::Error;

/// Prefix under which teams upload datasets.
pub const DATASETS_PREFIX: &str = "datasets/";
/// Prefix under which teams upload policies.
pub const POLICIES_PREFIX: &str = "policies/";

/// The parts of a dataset key `datasets/<application>/<release>/<name>.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetKey {
    pub application: String,
    pub release: String,
    /// File name without the `.jsonl` suffix.
    pub name: String,
}

/// A key that does not follow the dataset convention.
#[derive(Debug, Error, PartialEq, Eq)]
#[error(
    "S3 key {key:?} is not a dataset key: {problem}. Upload datasets as datasets/<application>/<release>/<name>.jsonl, e.g. datasets/support-bot/v42/smoke.jsonl"
)]
pub struct KeyError {
    pub key: String,
    pub problem: String,
}

/// Application names: they name the policy file, CloudWatch dimensions and release pointers.
pub fn is_valid_application(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

impl DatasetKey {
    /// Parses an already-decoded object key.
    pub fn parse(key: &str) -> Result<DatasetKey, KeyError> {
        let fail = |problem: &str| KeyError {
            key: key.to_owned(),
            problem: problem.to_owned(),
        };
        let rest = key
            .strip_prefix(DATASETS_PREFIX)
            .ok_or_else(|| fail("it does not start with datasets/"))?;
        let parts: Vec<&str> = rest.split('/').collect();
        let [application, release, file] = parts.as_slice() else {
            return Err(fail(&format!(
                "expected 3 path segments after datasets/, found {}",
                parts.len()
            )));
        };
        if !is_valid_application(application) {
            return Err(fail(&format!(
                "application {application:?} must be 1-64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit"
            )));
        }
        if release.is_empty()
            || release.chars().count() > 128
            || release.chars().any(char::is_control)
        {
            return Err(fail(
                "the release segment must be 1-128 printable characters",
            ));
        }
        let name = file
            .strip_suffix(".jsonl")
            .ok_or_else(|| fail("the file name must end with .jsonl"))?;
        if name.is_empty() || name.chars().any(char::is_control) {
            return Err(fail(
                "the file name before .jsonl must be non-empty printable text",
            ));
        }
        Ok(DatasetKey {
            application: (*application).to_owned(),
            release: (*release).to_owned(),
            name: name.to_owned(),
        })
    }
}

/// Decodes an object key as S3 event notifications deliver it: URL-encoded, `+` for space.
pub fn decode_event_key(raw: &str) -> Result<String, KeyError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                let value = hex
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| KeyError {
                        key: raw.to_owned(),
                        problem: format!("invalid percent-escape at byte {i}"),
                    })?;
                out.push(value);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| KeyError {
        key: raw.to_owned(),
        problem: "the decoded key is not UTF-8".to_owned(),
    })
}

/// Lowercase hex SHA-256 of `parts` joined by NUL bytes (unambiguous for any text).
pub fn fingerprint(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update([0u8]);
        }
        hasher.update(part.as_bytes());
    }
    hex(&hasher.finalize())
}

/// The identity of a prompt across datasets, shards, results and releases: the first 16 hex
/// characters of the SHA-256 of its exact text. Used to match prompts for regression checks
/// and to refer to a prompt in logs and alerts without its text.
pub fn prompt_hash(prompt: &str) -> String {
    prompt_hash_of_pieces([prompt.as_bytes()])
}

/// [`prompt_hash`] of the text made of `pieces`, in order: a text hashed as it is decoded,
/// without building it.
pub fn prompt_hash_of_pieces<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> String {
    prompt_hash_hex(prompt_hash_value(pieces))
}

/// [`prompt_hash_of_pieces`] as a number (its 16 hex characters, read big-endian): what
/// in-memory comparisons use, with the same order as the text.
pub fn prompt_hash_value<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> u64 {
    let mut hasher = Sha256::new();
    for piece in pieces {
        hasher.update(piece);
    }
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// The text of a [`prompt_hash_value`].
pub fn prompt_hash_hex(value: u64) -> String {
    format!("{value:016x}")
}

/// Lowercase hex encoding.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xf) as usize] as char);
    }
    s
}

/// A key segment Bedrock's S3 URI pattern accepts, stable for a given input and distinct
/// for distinct inputs: the text itself when it is already safe, else a readable slug plus
/// 8 hex characters of its hash.
pub fn safe_segment(text: &str) -> String {
    let already_safe = !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && text != "."
        && text != "..";
    if already_safe {
        return text.to_owned();
    }
    let mut slug = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug: String = slug
        .trim_matches(|c| c == '-' || c == '.')
        .chars()
        .take(40)
        .collect();
    let hash = &fingerprint(&[text])[..8];
    if slug.is_empty() {
        format!("x-{hash}")
    } else {
        format!("{slug}-{hash}")
    }
}

/// Identifies one uploaded version of a dataset in derived keys:
/// `<safe name>-<8 hex of the object's ETag or version>`, so that a re-upload of the same
/// key never overwrites shards an earlier job may still be reading.
pub fn dataset_id(name: &str, version_or_etag: &str) -> String {
    format!(
        "{}-{}",
        safe_segment(name),
        &fingerprint(&[version_or_etag])[..8]
    )
}

/// The policy for `application`.
pub fn policy_key(application: &str) -> String {
    format!("{POLICIES_PREFIX}{application}.yaml")
}

fn release_path(application: &str, release: &str) -> String {
    format!("{}/{}", safe_segment(application), safe_segment(release))
}

/// The prefix under which one dataset version's shards live.
pub fn shard_prefix(application: &str, release: &str, dataset_id: &str) -> String {
    format!(
        "shards/{}/{dataset_id}/",
        release_path(application, release)
    )
}

/// Shard `index` (0-based) of a dataset version; file numbers are 1-based and 4 digits wide.
pub fn shard_key(application: &str, release: &str, dataset_id: &str, index: usize) -> String {
    format!(
        "{}shard-{:04}.jsonl",
        shard_prefix(application, release, dataset_id),
        index + 1
    )
}

/// The prefix under which one dataset version's metadata sidecars live.
pub fn metadata_prefix(application: &str, release: &str, dataset_id: &str) -> String {
    format!(
        "metadata/{}/{dataset_id}/",
        release_path(application, release)
    )
}

/// The metadata sidecar of shard `index` (never sent to Bedrock).
pub fn metadata_key(application: &str, release: &str, dataset_id: &str, index: usize) -> String {
    format!(
        "{}shard-{:04}.jsonl",
        metadata_prefix(application, release, dataset_id),
        index + 1
    )
}

/// The output prefix given to Bedrock for a dataset version (kept apart from inputs).
pub fn output_prefix(application: &str, release: &str, dataset_id: &str) -> String {
    format!(
        "evaluations/{}/{dataset_id}/",
        release_path(application, release)
    )
}

/// Where the rejection report for a dataset goes. Keys outside the convention (no
/// application or release to file them under) go to `rejections/_invalid-keys/`.
pub fn rejection_key(dataset: Option<&DatasetKey>, raw_key: &str) -> String {
    match dataset {
        Some(d) => format!(
            "rejections/{}/{}.json",
            release_path(&d.application, &d.release),
            safe_segment(&d.name)
        ),
        None => format!("rejections/_invalid-keys/{}.json", safe_segment(raw_key)),
    }
}

/// The prefix holding a release's verdict and report.
pub fn verdict_prefix(application: &str, release: &str) -> String {
    format!("verdicts/{}/", release_path(application, release))
}

/// The prefix holding every verdict of an application.
pub fn verdicts_prefix(application: &str) -> String {
    format!("verdicts/{}/", safe_segment(application))
}

/// A release's verdict record (JSON).
pub fn verdict_key(application: &str, release: &str) -> String {
    format!("{}verdict.json", verdict_prefix(application, release))
}

/// A release's per-prompt scores (`scores.jsonl`, one line per prompt hash): the
/// regression baseline of later releases.
pub fn scores_key(application: &str, release: &str) -> String {
    format!("{}scores.jsonl", verdict_prefix(application, release))
}

/// A release's Markdown report.
pub fn report_key(application: &str, release: &str) -> String {
    format!("{}report.md", verdict_prefix(application, release))
}

/// A deterministic Bedrock job name for shard `index` of a dataset version:
/// `eg-<app>-<release>-<10 hex>-<shard>`, lowercase, at most 63 characters, matching
/// `[a-z0-9](-*[a-z0-9]){0,62}`. `source` identifies the upload (bucket, key, version/ETag).
pub fn job_name(application: &str, release: &str, source: &[&str], index: usize) -> String {
    let shard = (index + 1).to_string();
    let mut parts: Vec<&str> = source.to_vec();
    parts.push(&shard);
    let hash = fingerprint(&parts);
    let app = name_slug(application, 20);
    let rel = name_slug(release, 12);
    let mut name = String::from("eg");
    for part in [
        app.as_str(),
        rel.as_str(),
        &hash[..10],
        &format!("{:03}", index + 1),
    ] {
        if !part.is_empty() {
            name.push('-');
            name.push_str(part);
        }
    }
    name
}

/// The idempotency token for shard `index` of a dataset version: 64 hex characters,
/// matching `[a-zA-Z0-9]([-a-zA-Z0-9]{0,254}[a-zA-Z0-9])?`.
pub fn client_request_token(source: &[&str], index: usize) -> String {
    let shard = (index + 1).to_string();
    let mut parts: Vec<&str> = vec!["evalgate-token"];
    parts.extend_from_slice(source);
    parts.push(&shard);
    fingerprint(&parts)
}

/// Lowercase alphanumerics with single hyphens, at most `max` characters.
fn name_slug(text: &str, max: usize) -> String {
    let mut slug = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
        if slug.len() >= max {
            break;
        }
    }
    slug.trim_end_matches('-').to_owned()
}

/// The S3 URI Bedrock pattern: `s3://[a-z0-9][-.a-z0-9]{1,61}[a-z0-9](/[-!_*'().a-zA-Z0-9]+)*/?`.
pub fn is_bedrock_safe_uri(uri: &str) -> bool {
    let Some(rest) = uri.strip_prefix("s3://") else {
        return false;
    };
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && !bucket.starts_with(['-', '.'])
        && !bucket.ends_with(['-', '.']);
    let key = key.strip_suffix('/').unwrap_or(key);
    let key_ok = key.is_empty()
        || key.split('/').all(|seg| {
            !seg.is_empty()
                && seg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-!_*'().".contains(c))
        });
    bucket_ok && key_ok && uri.len() <= 1024
}

/// `s3://bucket/key`
pub fn s3_uri(bucket: &str, key: &str) -> String {
    format!("s3://{bucket}/{key}")
}

/// Splits `s3://bucket/key` into its parts.
pub fn parse_s3_uri(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("s3://")?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then_some((bucket, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dataset_keys() {
        let k =
            DatasetKey::parse("datasets/support-bot/v1.2 beta/smoke test + more.jsonl").unwrap();
        assert_eq!(k.application, "support-bot");
        assert_eq!(k.release, "v1.2 beta");
        assert_eq!(k.name, "smoke test + more");
    }

    #[test]
    fn rejects_keys_outside_the_convention_with_the_expected_form() {
        for (key, problem) in [
            ("uploads/app/v1/a.jsonl", "does not start with datasets/"),
            ("datasets/app/a.jsonl", "expected 3 path segments"),
            ("datasets/app/v1/x/a.jsonl", "expected 3 path segments"),
            ("datasets/app/v1/a.json", "must end with .jsonl"),
            ("datasets/app/v1/.jsonl", "non-empty"),
            ("datasets/my app/v1/a.jsonl", "application \"my app\""),
            ("datasets/app//a.jsonl", "release segment"),
        ] {
            let err = DatasetKey::parse(key).unwrap_err();
            assert!(err.problem.contains(problem), "{key}: {}", err.problem);
            assert!(
                err.to_string()
                    .contains("datasets/<application>/<release>/<name>.jsonl")
            );
        }
    }

    #[test]
    fn decodes_event_keys() {
        assert_eq!(
            decode_event_key("datasets/a/v1/my+file%3D1.jsonl").unwrap(),
            "datasets/a/v1/my file=1.jsonl"
        );
        assert_eq!(
            decode_event_key("datasets/a/v1/caf%C3%A9.jsonl").unwrap(),
            "datasets/a/v1/café.jsonl"
        );
        assert_eq!(decode_event_key("a%2Bb").unwrap(), "a+b");
        assert!(decode_event_key("bad%2").is_err());
        assert!(decode_event_key("bad%zz").is_err());
        assert!(decode_event_key("%ff%fe").is_err(), "not UTF-8");
    }

    #[test]
    fn safe_segments_are_bedrock_safe_stable_and_distinct() {
        assert_eq!(safe_segment("v1.2_rc-1"), "v1.2_rc-1");
        let names = [
            "my file",
            "my+file",
            "my=file",
            "café",
            "ünïcødé",
            "..",
            "a/b",
            "x y z",
        ];
        let mut seen = std::collections::HashSet::new();
        for name in names {
            let seg = safe_segment(name);
            assert_eq!(seg, safe_segment(name));
            assert!(seen.insert(seg.clone()), "collision for {name}: {seg}");
            assert!(
                is_bedrock_safe_uri(&format!("s3://bucket-a/{seg}/x")),
                "{name} -> {seg}"
            );
        }
    }

    #[test]
    fn derived_keys_are_bedrock_safe() {
        let id = dataset_id("smoke test + = café", "\"etag-1\"");
        for key in [
            shard_key("app", "v 1+2", &id, 0),
            metadata_key("app", "v 1+2", &id, 11),
            output_prefix("app", "v 1+2", &id),
        ] {
            assert!(is_bedrock_safe_uri(&s3_uri("eval-bucket", &key)), "{key}");
        }
        assert!(shard_key("a", "r", &id, 0).ends_with("/shard-0001.jsonl"));
        assert_ne!(dataset_id("a", "e1"), dataset_id("a", "e2"));
    }

    #[test]
    fn job_names_match_the_bedrock_pattern() {
        let long = "A".repeat(200);
        for (app, rel) in [
            ("support-bot", "v1"),
            (long.as_str(), long.as_str()),
            ("x", "---"),
            ("app", "café"),
        ] {
            for index in [0, 2, 999] {
                let name = job_name(app, rel, &["bucket", "key", "etag"], index);
                assert!(name.len() <= 63, "{name}");
                let ok = name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !name.starts_with('-')
                    && !name.ends_with('-')
                    && !name.contains("--");
                assert!(ok, "{name}");
            }
        }
        assert_ne!(
            job_name("a", "r", &["b", "k", "e"], 0),
            job_name("a", "r", &["b", "k", "e"], 1)
        );
        assert_ne!(
            job_name("a", "r", &["b", "k", "e1"], 0),
            job_name("a", "r", &["b", "k", "e2"], 0)
        );
    }

    #[test]
    fn tokens_are_deterministic_and_valid() {
        let t = client_request_token(&["b", "k", "e"], 0);
        assert_eq!(t, client_request_token(&["b", "k", "e"], 0));
        assert_ne!(t, client_request_token(&["b", "k", "e"], 1));
        assert_eq!(t.len(), 64);
        assert!(t.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn prompt_hashes_are_short_stable_and_distinct() {
        assert_eq!(prompt_hash("What is 2+2?"), prompt_hash("What is 2+2?"));
        assert_ne!(prompt_hash("What is 2+2?"), prompt_hash("What is 2+3?"));
        assert_eq!(prompt_hash("x").len(), 16);
        // The number is the text, read as hex; its order is the text's order.
        let (a, b) = (prompt_hash("a"), prompt_hash("b"));
        let value = |t: &str| prompt_hash_value([t.as_bytes()]);
        assert_eq!(prompt_hash_hex(value("a")), a);
        assert_eq!(u64::from_str_radix(&b, 16).unwrap(), value("b"));
        assert_eq!(a < b, value("a") < value("b"));
    }

    #[test]
    fn bedrock_uri_pattern() {
        assert!(is_bedrock_safe_uri("s3://my-bucket/datasets/a/b.jsonl"));
        assert!(is_bedrock_safe_uri("s3://my-bucket/out/"));
        assert!(!is_bedrock_safe_uri("s3://my-bucket/a b.jsonl"));
        assert!(!is_bedrock_safe_uri("s3://my-bucket/a=b"));
        assert!(!is_bedrock_safe_uri("s3://My-Bucket/a"));
        assert!(!is_bedrock_safe_uri("s3://my-bucket//a"));
        assert_eq!(parse_s3_uri("s3://b/k/x"), Some(("b", "k/x")));
        assert_eq!(parse_s3_uri("s3://b"), Some(("b", "")));
        assert_eq!(parse_s3_uri("http://b"), None);
    }
}
