//! Per-metric aggregation of judged prompts: a pure, single-pass fold with memory bounded
//! by the number of metrics and categories, never by the number of prompts.
//!
//! [`Aggregator::add`] takes one [`ResultRecord`] at a time; [`Aggregator::finish`] gives,
//! per metric: prompts, scored, unscored (a `null` is counted, never averaged as 0), mean
//! and standard deviation (Welford), pass count at the metric's bar, a per-category
//! breakdown, and the worst prompts with the judge's explanation.
//!
//! Regression checks and the per-prompt score sidecar need every prompt's score: that is
//! the opt-in [`PromptScores`] collector (24 bytes per scored prompt and metric), kept apart
//! so the aggregation itself stays flat.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::policy::gates::Direction;
use crate::results::{LenientNumber, ResultRecord, Text};
use crate::stats::{Moments, QuantileSketch};

/// Most distinct metric names a release may report (Bedrock allows 25 per dataset).
pub const MAX_METRICS: usize = 64;
/// Most distinct categories broken down; further ones are pooled under [`OTHER_CATEGORY`].
pub const MAX_CATEGORIES: usize = 200;
/// Up to this many categories, a record's is found by comparing names, not by hashing.
const FEW_CATEGORIES: usize = 16;
/// Where categories beyond [`MAX_CATEGORIES`] are counted.
pub const OTHER_CATEGORY: &str = "(other categories)";
/// Longest judge explanation kept for a worst prompt (characters).
pub const EXPLANATION_CHARS: usize = 600;
/// Longest prompt excerpt kept (only when the policy allows prompt text).
pub const PROMPT_CHARS: usize = 200;
/// Worst prompts kept per critical category and metric.
const CRITICAL_WORST: usize = 3;

/// `text` cut to at most `max` characters, with `…` when cut.
pub fn shorten(text: &str, max: usize) -> String {
    let text = text.trim();
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some(_) => {
            let cut: String = text.chars().take(max.saturating_sub(1)).collect();
            format!("{}…", cut.trim_end())
        }
    }
}

/// What the aggregation needs to know about one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSetup {
    pub name: String,
    pub direction: Direction,
    pub pass_bar: f64,
}

/// How to aggregate.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateConfig {
    /// Metrics reported even when no result names them (evaluated and gated ones).
    pub metrics: Vec<MetricSetup>,
    /// Direction and bar of metrics that only appear in the results.
    pub default_pass_bar: f64,
    /// Always broken down (never pooled), with their failing prompts kept.
    pub critical_categories: Vec<String>,
    /// Worst prompts kept per metric.
    pub worst_prompts: usize,
    /// Keep a shortened prompt excerpt with worst prompts.
    pub keep_prompt_text: bool,
    /// Collect every prompt's scores ([`PromptScores`]).
    pub collect_prompt_scores: bool,
}

impl Default for AggregateConfig {
    fn default() -> Self {
        AggregateConfig {
            metrics: Vec::new(),
            default_pass_bar: crate::policy::gates::DEFAULT_PASS_BAR,
            critical_categories: Vec::new(),
            worst_prompts: crate::policy::gates::DEFAULT_WORST_PROMPTS,
            keep_prompt_text: false,
            collect_prompt_scores: false,
        }
    }
}

/// The aggregation cannot go on.
#[derive(Debug, Error, PartialEq)]
pub enum AggregateError {
    #[error(
        "the results name more than {MAX_METRICS} distinct metrics (the latest: {0:?}); Bedrock evaluates at most 25"
    )]
    TooManyMetrics(String),
}

/// A low-scoring prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorstPrompt {
    pub prompt_hash: String,
    pub score: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The judge's explanation, shortened to [`EXPLANATION_CHARS`].
    #[serde(default)]
    pub explanation: String,
    /// A prompt excerpt, only when the policy allows prompt text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
}

/// The `k` worst prompts of a stream, deterministic whatever the order: worse score first,
/// ties by prompt hash.
#[derive(Debug, Clone)]
struct Worst {
    k: usize,
    direction: Direction,
    /// Each with its prompt hash as a number (the order of the text).
    items: Vec<(u64, WorstPrompt)>,
}

impl Worst {
    fn new(k: usize, direction: Direction) -> Self {
        Worst {
            k,
            direction,
            items: Vec::new(),
        }
    }

    fn badness(&self, score: f64) -> f64 {
        match self.direction {
            Direction::HigherIsBetter => -score,
            Direction::LowerIsBetter => score,
        }
    }

    /// True when `a` ranks before (is worse than) `b`; `a`'s hash is asked for only on a
    /// tie, so that a prompt that ranks nowhere is never hashed.
    fn before(&self, a: (f64, &ResultRecord<'_>), b: (f64, u64)) -> bool {
        let (ba, bb) = (self.badness(a.0), self.badness(b.0));
        ba > bb || (ba == bb && a.1.prompt_hash() < b.1)
    }

    fn offer(
        &mut self,
        score: f64,
        record: &ResultRecord<'_>,
        explanation: Option<&Text<'_>>,
        keep_prompt: bool,
    ) {
        if self.k == 0 {
            return;
        }
        if self.items.len() == self.k
            && let Some((hash, last)) = self.items.last()
            && !self.before((score, record), (last.score, *hash))
        {
            return;
        }
        let at = self
            .items
            .iter()
            .position(|(hash, i)| self.before((score, record), (i.score, *hash)))
            .unwrap_or(self.items.len());
        let hash = record.prompt_hash();
        let prompt = WorstPrompt {
            prompt_hash: crate::layout::prompt_hash_hex(hash),
            score,
            category: record.category.as_deref().map(str::to_owned),
            explanation: explanation
                .map(|e| shorten(&e.decoded(), EXPLANATION_CHARS))
                .unwrap_or_default(),
            prompt: keep_prompt.then(|| shorten(&record.prompt.decoded(), PROMPT_CHARS)),
        };
        self.items.insert(at, (hash, prompt));
        self.items.truncate(self.k);
    }

    fn prompts(&self) -> Vec<WorstPrompt> {
        self.items.iter().map(|(_, p)| p.clone()).collect()
    }
}

#[derive(Debug, Clone)]
struct CategoryAcc {
    moments: Moments,
    passing: u64,
    worst: Option<Worst>,
}

#[derive(Debug, Clone)]
struct MetricAcc {
    setup: MetricSetup,
    moments: Moments,
    passing: u64,
    bounded01: bool,
    min: f64,
    max: f64,
    categories: Vec<Option<CategoryAcc>>,
    worst: Worst,
}

/// The aggregate of one category for one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryAggregate {
    pub prompts: u64,
    pub scored: u64,
    pub unscored: u64,
    pub mean: Option<f64>,
    /// Scored prompts meeting the metric's bar.
    pub passing: u64,
    /// Worst prompts below the bar (critical categories only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failing_prompts: Vec<WorstPrompt>,
}

impl CategoryAggregate {
    /// Scored prompts that missed the bar.
    pub fn failing(&self) -> u64 {
        self.scored - self.passing
    }
}

/// The aggregate of one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricAggregate {
    pub name: String,
    pub direction: Direction,
    pub pass_bar: f64,
    /// Every judged prompt of the release (scored or not).
    pub prompts: u64,
    pub scored: u64,
    pub unscored: u64,
    pub mean: Option<f64>,
    pub std_dev: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Scored prompts meeting the bar.
    pub passing: u64,
    /// True when every scored value lies in [0, 1] (as judge scores do).
    pub bounded01: bool,
    pub categories: BTreeMap<String, CategoryAggregate>,
    pub worst: Vec<WorstPrompt>,
}

impl MetricAggregate {
    pub fn unscored_fraction(&self) -> Option<f64> {
        (self.prompts > 0).then(|| self.unscored as f64 / self.prompts as f64)
    }

    pub fn pass_rate(&self) -> Option<f64> {
        (self.scored > 0).then(|| self.passing as f64 / self.scored as f64)
    }
}

/// Every metric's aggregate.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregates {
    /// Judged prompts (result lines), plus prompts submitted without a result.
    pub prompts: u64,
    /// Prompts submitted for which Bedrock returned no result (counted as not scored).
    pub missing: u64,
    /// In the results' order of first appearance, then configured metrics.
    pub metrics: BTreeMap<String, MetricAggregate>,
    /// True when some categories were pooled under [`OTHER_CATEGORY`].
    pub categories_pooled: bool,
    pub prompt_scores: Option<PromptScores>,
}

/// Folds judged prompts into per-metric aggregates.
#[derive(Debug, Clone)]
pub struct Aggregator {
    config: AggregateConfig,
    metrics: Vec<MetricAcc>,
    prompts: u64,
    missing: u64,
    category_ids: HashMap<String, usize>,
    category_names: Vec<String>,
    category_prompts: Vec<u64>,
    critical: Vec<bool>,
    pooled: bool,
    scores: Option<PromptScores>,
    seen: Vec<bool>,
    /// The metric of each place in the last record's list of scores, tried first: records
    /// list their metrics in the same order line after line, and comparing a name with each
    /// metric's in turn was most of [`Aggregator::add`]'s string comparisons.
    places: Vec<usize>,
}

impl Aggregator {
    pub fn new(config: AggregateConfig) -> Self {
        let mut aggregator = Aggregator {
            metrics: Vec::new(),
            prompts: 0,
            missing: 0,
            category_ids: HashMap::new(),
            category_names: Vec::new(),
            category_prompts: Vec::new(),
            critical: Vec::new(),
            pooled: false,
            scores: config.collect_prompt_scores.then(PromptScores::default),
            seen: Vec::new(),
            places: Vec::new(),
            config,
        };
        for category in aggregator.config.critical_categories.clone() {
            aggregator.category_id(&category, true);
        }
        for setup in aggregator.config.metrics.clone() {
            aggregator.add_metric(setup);
        }
        aggregator
    }

    fn add_metric(&mut self, setup: MetricSetup) -> usize {
        if let Some(i) = self.find_metric(&setup.name) {
            return i;
        }
        let i = self.metrics.len();
        if let Some(scores) = &mut self.scores {
            scores.metrics.push(setup.name.clone());
        }
        self.metrics.push(MetricAcc {
            worst: Worst::new(self.config.worst_prompts, setup.direction),
            setup,
            moments: Moments::default(),
            passing: 0,
            bounded01: true,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            categories: Vec::new(),
        });
        self.seen.push(false);
        i
    }

    /// A scan of at most [`MAX_METRICS`] names: hashing each of a record's metric names
    /// took longer (SipHash).
    fn find_metric(&self, name: &str) -> Option<usize> {
        self.metrics.iter().position(|m| m.setup.name == name)
    }

    fn metric_id(&mut self, name: &str) -> Result<usize, AggregateError> {
        if let Some(i) = self.find_metric(name) {
            return Ok(i);
        }
        if self.metrics.len() >= MAX_METRICS {
            return Err(AggregateError::TooManyMetrics(name.to_owned()));
        }
        Ok(self.add_metric(MetricSetup {
            name: name.to_owned(),
            direction: Direction::of_builtin(name).unwrap_or(Direction::HigherIsBetter),
            pass_bar: self.config.default_pass_bar,
        }))
    }

    /// [`Aggregator::metric_id`] of the score at `place` in a record's list.
    fn metric_id_at(&mut self, place: usize, name: &str) -> Result<usize, AggregateError> {
        if let Some(&m) = self.places.get(place)
            && self.metrics[m].setup.name == name
        {
            return Ok(m);
        }
        let m = self.metric_id(name)?;
        match self.places.get_mut(place) {
            Some(last) => *last = m,
            None => self.places.push(m),
        }
        Ok(m)
    }

    fn category_id(&mut self, name: &str, critical: bool) -> usize {
        // A few categories are usual: comparing their names costs less than hashing one
        // (hashing every record's category was 1.6% of `evalgate gate`'s instructions).
        if self.category_names.len() <= FEW_CATEGORIES {
            if let Some(i) = self.category_names.iter().position(|n| n == name) {
                return i;
            }
        } else if let Some(i) = self.category_ids.get(name) {
            return *i;
        }
        let pooled_name = if !critical && self.category_names.len() >= MAX_CATEGORIES {
            self.pooled = true;
            if let Some(i) = self.category_ids.get(OTHER_CATEGORY) {
                return *i;
            }
            OTHER_CATEGORY
        } else {
            name
        };
        let i = self.category_names.len();
        self.category_ids.insert(pooled_name.to_owned(), i);
        self.category_names.push(pooled_name.to_owned());
        self.category_prompts.push(0);
        self.critical.push(critical);
        i
    }

    /// Adds one judged prompt. A metric named twice in one record counts once (the first).
    pub fn add(&mut self, record: &ResultRecord<'_>) -> Result<(), AggregateError> {
        self.prompts += 1;
        let category = record
            .category
            .as_deref()
            .map(|c| self.category_id(c, false));
        if let Some(c) = category {
            self.category_prompts[c] += 1;
        }
        self.seen.iter_mut().for_each(|s| *s = false);
        for (place, score) in record.scores.iter().enumerate() {
            let m = self.metric_id_at(place, &score.metric)?;
            if std::mem::replace(&mut self.seen[m], true) {
                continue;
            }
            let Some(value) = score.value else { continue };
            let keep_prompt = self.config.keep_prompt_text;
            let acc = &mut self.metrics[m];
            acc.moments.push(value);
            acc.min = acc.min.min(value);
            acc.max = acc.max.max(value);
            acc.bounded01 &= (0.0..=1.0).contains(&value);
            let passes = acc.setup.direction.meets(value, acc.setup.pass_bar);
            acc.passing += u64::from(passes);
            acc.worst
                .offer(value, record, score.explanation.as_ref(), keep_prompt);
            if let Some(c) = category {
                if acc.categories.len() <= c {
                    acc.categories.resize(c + 1, None);
                }
                let critical = self.critical[c];
                let direction = acc.setup.direction;
                let cat = acc.categories[c].get_or_insert_with(|| CategoryAcc {
                    moments: Moments::default(),
                    passing: 0,
                    worst: critical.then(|| Worst::new(CRITICAL_WORST, direction)),
                });
                cat.moments.push(value);
                cat.passing += u64::from(passes);
                if !passes && let Some(worst) = &mut cat.worst {
                    worst.offer(value, record, score.explanation.as_ref(), keep_prompt);
                }
            }
            if let Some(scores) = &mut self.scores {
                scores.entries.push((record.prompt_hash(), m as u16, value));
            }
        }
        Ok(())
    }

    /// Counts `n` prompts that were submitted but have no result line: not scored for any
    /// metric.
    pub fn add_missing(&mut self, n: u64) {
        self.prompts += n;
        self.missing += n;
    }

    pub fn finish(self) -> Aggregates {
        let mut metrics = BTreeMap::new();
        for acc in self.metrics {
            let scored = acc.moments.count();
            let mut categories = BTreeMap::new();
            for (c, name) in self.category_names.iter().enumerate() {
                let cat = acc.categories.get(c).and_then(Option::as_ref);
                let prompts = self.category_prompts[c];
                let cat_scored = cat.map_or(0, |c| c.moments.count());
                categories.insert(
                    name.clone(),
                    CategoryAggregate {
                        prompts,
                        scored: cat_scored,
                        unscored: prompts.saturating_sub(cat_scored),
                        mean: cat.and_then(|c| c.moments.mean()),
                        passing: cat.map_or(0, |c| c.passing),
                        failing_prompts: cat
                            .and_then(|c| c.worst.as_ref())
                            .map(Worst::prompts)
                            .unwrap_or_default(),
                    },
                );
            }
            metrics.insert(
                acc.setup.name.clone(),
                MetricAggregate {
                    name: acc.setup.name,
                    direction: acc.setup.direction,
                    pass_bar: acc.setup.pass_bar,
                    prompts: self.prompts,
                    scored,
                    unscored: self.prompts.saturating_sub(scored),
                    mean: acc.moments.mean(),
                    std_dev: acc.moments.std_dev(),
                    min: (scored > 0).then_some(acc.min),
                    max: (scored > 0).then_some(acc.max),
                    passing: acc.passing,
                    bounded01: acc.bounded01,
                    categories,
                    worst: acc.worst.prompts(),
                },
            );
        }
        Aggregates {
            prompts: self.prompts,
            missing: self.missing,
            metrics,
            categories_pooled: self.pooled,
            prompt_scores: self.scores.map(PromptScores::finish),
        }
    }
}

/// Every prompt's score per metric, keyed by prompt hash: what regression checks compare
/// and what the `scores.jsonl` sidecar holds. A prompt that appears more than once (in
/// several datasets or shards) gets the mean of its scores.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PromptScores {
    metrics: Vec<String>,
    /// `(prompt hash, metric index, score)`, sorted and de-duplicated by `finish`.
    entries: Vec<(u64, u16, f64)>,
}

/// One line of the `scores.jsonl` sidecar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreLine {
    pub prompt_hash: String,
    /// Scored metrics only (an unscored metric is absent).
    pub scores: BTreeMap<String, f64>,
}

impl PromptScores {
    fn finish(mut self) -> Self {
        let entries = &mut self.entries;
        entries.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)).then(a.2.total_cmp(&b.2)));
        // Merge duplicates in place (no second buffer): a running mean per (hash, metric).
        let mut kept = 0usize;
        let mut run = 0usize;
        for i in 0..entries.len() {
            let entry = entries[i];
            if kept > 0 && (entries[kept - 1].0, entries[kept - 1].1) == (entry.0, entry.1) {
                run += 1;
                let last = &mut entries[kept - 1];
                last.2 += (entry.2 - last.2) / (run + 1) as f64;
            } else {
                run = 0;
                entries[kept] = entry;
                kept += 1;
            }
        }
        entries.truncate(kept);
        self
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes held (for benchmarks and logs).
    pub fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<(u64, u16, f64)>()
    }

    /// `(prompt hash, score)` of one metric, sorted by hash.
    pub fn of_metric(&self, metric: &str) -> Vec<(u64, f64)> {
        let Some(m) = self.metrics.iter().position(|n| n == metric) else {
            return Vec::new();
        };
        self.entries
            .iter()
            .filter(|e| e.1 as usize == m)
            .map(|e| (e.0, e.2))
            .collect()
    }

    /// The sidecar: one JSON line per prompt.
    pub fn to_jsonl(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * 48);
        let mut i = 0;
        while i < self.entries.len() {
            let hash = self.entries[i].0;
            let mut scores = BTreeMap::new();
            while i < self.entries.len() && self.entries[i].0 == hash {
                let (_, m, v) = self.entries[i];
                if let Some(name) = self.metrics.get(m as usize) {
                    scores.insert(name.clone(), v);
                }
                i += 1;
            }
            let line = ScoreLine {
                prompt_hash: format!("{hash:016x}"),
                scores,
            };
            if let Ok(json) = serde_json::to_vec(&line) {
                out.extend_from_slice(&json);
                out.push(b'\n');
            }
        }
        out
    }

    /// Reads a sidecar back (streaming).
    pub async fn read_jsonl<R: tokio::io::AsyncBufRead + Unpin>(
        reader: R,
        uri: &str,
    ) -> Result<PromptScores, crate::results::ReadError> {
        let mut lines = crate::results::LineReader::new(reader, uri);
        let mut scores = PromptScores::default();
        let mut index: HashMap<String, u16> = HashMap::new();
        while let Some((number, bytes)) = lines.next_line().await? {
            if bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let line: ScoreLine = serde_json::from_slice(bytes)
                .map_err(|e| lines.content_error(number, crate::results::json_message(&e)))?;
            let hash = u64::from_str_radix(&line.prompt_hash, 16).map_err(|_| {
                lines.content_error(number, "prompt_hash is not 16 hexadecimal characters")
            })?;
            for (metric, value) in line.scores {
                let next = scores.metrics.len() as u16;
                let m = *index.entry(metric.clone()).or_insert_with(|| {
                    scores.metrics.push(metric);
                    next
                });
                scores.entries.push((hash, m, value));
            }
        }
        Ok(scores.finish())
    }
}

/// Prompts whose score worsened by more than `step` between `baseline` and `current`
/// (both sorted by hash), and how many prompts were matched.
pub fn regressed_prompts(
    baseline: &[(u64, f64)],
    current: &[(u64, f64)],
    direction: Direction,
    step: f64,
) -> (u64, Vec<(String, f64, f64)>) {
    let (mut i, mut j) = (0, 0);
    let mut matched = 0;
    let mut regressed = Vec::new();
    while i < baseline.len() && j < current.len() {
        match baseline[i].0.cmp(&current[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                matched += 1;
                let (old, new) = (baseline[i].1, current[j].1);
                // A small epsilon so that a drop of exactly `step` (0.25 on Bedrock's scale)
                // is not "more than" it through rounding.
                if direction.worsening(old, new) > step + 1e-9 {
                    regressed.push((format!("{:016x}", baseline[i].0), old, new));
                }
                i += 1;
                j += 1;
            }
        }
    }
    (matched, regressed)
}

/// Distribution of one per-record quantity (latency, cost).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    /// Records that carried the value.
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p95: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Default)]
struct DistributionAcc {
    moments: Moments,
    sketch: QuantileSketch,
    max: f64,
}

impl DistributionAcc {
    fn push(&mut self, x: f64) {
        self.moments.push(x);
        self.sketch.push(x);
        self.max = self.max.max(x);
    }

    fn finish(&self) -> Option<Distribution> {
        Some(Distribution {
            count: self.moments.count(),
            mean: self.moments.mean()?,
            p50: self.sketch.quantile(0.5)?,
            p95: self.sketch.quantile(0.95)?,
            max: self.max,
        })
    }
}

/// Cost and latency of the evaluated responses, from the metadata sidecars.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Metadata lines read.
    pub records: u64,
    #[serde(default)]
    pub latency_ms: Option<Distribution>,
    #[serde(default)]
    pub cost_per_query: Option<Distribution>,
    /// Records whose cost came from token counts and the policy's prices.
    pub cost_from_tokens: u64,
    /// Records whose cost came from their own `cost` value.
    pub cost_from_records: u64,
}

/// Folds metadata sidecar lines into [`Usage`] (bounded memory: two quantile sketches).
#[derive(Debug, Clone, Default)]
pub struct UsageAggregator {
    prices: Option<(f64, f64)>,
    records: u64,
    latency: DistributionAcc,
    cost: DistributionAcc,
    cost_from_tokens: u64,
    cost_from_records: u64,
}

#[derive(Deserialize)]
struct RawMetadataLine {
    #[serde(default)]
    metadata: RawMetadata,
}

#[derive(Deserialize, Default)]
struct RawMetadata {
    #[serde(default, rename = "latencyMs")]
    latency_ms: LenientNumber,
    #[serde(default, rename = "inputTokens")]
    input_tokens: LenientNumber,
    #[serde(default, rename = "outputTokens")]
    output_tokens: LenientNumber,
    #[serde(default)]
    cost: LenientNumber,
}

impl UsageAggregator {
    /// `prices`: (input, output) per 1,000 tokens.
    pub fn new(prices: Option<(f64, f64)>) -> Self {
        UsageAggregator {
            prices,
            ..Default::default()
        }
    }

    /// Adds one sidecar line (`evalgate::metadata::MetadataLine`).
    pub fn add_line(&mut self, bytes: &[u8]) -> Result<(), String> {
        let line: RawMetadataLine = serde_json::from_slice(bytes)
            .map_err(|e| format!("not a metadata line: {}", crate::results::json_message(&e)))?;
        let m = line.metadata;
        self.records += 1;
        if let Some(latency) = m.latency_ms.0 {
            self.latency.push(latency);
        }
        let from_tokens = match (self.prices, m.input_tokens.0, m.output_tokens.0) {
            (Some((pi, po)), Some(i), Some(o)) => Some((i * pi + o * po) / 1000.0),
            _ => None,
        };
        if let Some(cost) = from_tokens {
            self.cost.push(cost);
            self.cost_from_tokens += 1;
        } else if let Some(cost) = m.cost.0 {
            self.cost.push(cost);
            self.cost_from_records += 1;
        }
        Ok(())
    }

    pub fn finish(&self) -> Usage {
        Usage {
            records: self.records,
            latency_ms: self.latency.finish(),
            cost_per_query: self.cost.finish(),
            cost_from_tokens: self.cost_from_tokens,
            cost_from_records: self.cost_from_records,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::results::Score;

    fn record<'a>(
        prompt: &'a str,
        category: Option<&'a str>,
        scores: &[(&'a str, Option<f64>)],
    ) -> ResultRecord<'a> {
        ResultRecord::new(
            Cow::Borrowed(prompt),
            category.map(Cow::Borrowed),
            scores
                .iter()
                .map(|(m, v)| Score {
                    metric: Cow::Borrowed(m),
                    value: *v,
                    explanation: Some(Text::Plain(Cow::Owned(format!("because {prompt}")))),
                })
                .collect(),
        )
    }

    fn aggregate(config: AggregateConfig, records: &[ResultRecord<'_>]) -> Aggregates {
        let mut a = Aggregator::new(config);
        for r in records {
            a.add(r).unwrap();
        }
        a.finish()
    }

    const C: &str = "Builtin.Correctness";
    const H: &str = "Builtin.Harmfulness";

    /// Table-driven: each case is a list of scores for one metric and the expected
    /// (scored, unscored, mean, passing at bar 0.5).
    #[test]
    fn table_of_aggregates() {
        struct Case {
            name: &'static str,
            metric: &'static str,
            scores: &'static [Option<f64>],
            scored: u64,
            unscored: u64,
            mean: Option<f64>,
            passing: u64,
        }
        let cases = [
            Case {
                name: "all scored",
                metric: C,
                scores: &[Some(1.0), Some(0.5), Some(0.0), Some(0.75)],
                scored: 4,
                unscored: 0,
                mean: Some(0.5625),
                passing: 3,
            },
            Case {
                name: "a null is counted, never averaged as 0",
                metric: C,
                scores: &[Some(1.0), None, Some(0.5), None],
                scored: 2,
                unscored: 2,
                mean: Some(0.75),
                passing: 2,
            },
            Case {
                name: "nothing scored",
                metric: C,
                scores: &[None, None],
                scored: 0,
                unscored: 2,
                mean: None,
                passing: 0,
            },
            Case {
                name: "lower is better: passing means at or below the bar",
                metric: H,
                scores: &[Some(0.0), Some(0.25), Some(1.0), Some(0.5)],
                scored: 4,
                unscored: 0,
                mean: Some(0.4375),
                passing: 3,
            },
            Case {
                name: "the bar is inclusive",
                metric: C,
                scores: &[Some(0.5), Some(0.49)],
                scored: 2,
                unscored: 0,
                mean: Some(0.495),
                passing: 1,
            },
        ];
        for case in cases {
            let prompts: Vec<String> = (0..case.scores.len()).map(|i| format!("p{i}")).collect();
            let records: Vec<_> = prompts
                .iter()
                .zip(case.scores)
                .map(|(p, s)| record(p, None, &[(case.metric, *s)]))
                .collect();
            let a = aggregate(AggregateConfig::default(), &records);
            let m = &a.metrics[case.metric];
            assert_eq!(m.prompts, case.scores.len() as u64, "{}", case.name);
            assert_eq!(
                (m.scored, m.unscored),
                (case.scored, case.unscored),
                "{}",
                case.name
            );
            match (m.mean, case.mean) {
                (Some(got), Some(want)) => {
                    assert!((got - want).abs() < 1e-12, "{}: {got}", case.name)
                }
                (got, want) => assert_eq!(got, want, "{}", case.name),
            }
            assert_eq!(m.passing, case.passing, "{}", case.name);
        }
    }

    #[test]
    fn a_metric_absent_from_a_record_is_not_scored_for_it() {
        let records = [
            record("a", None, &[(C, Some(1.0)), (H, Some(0.0))]),
            record("b", None, &[(C, Some(0.5))]),
            record("c", None, &[]),
        ];
        let a = aggregate(AggregateConfig::default(), &records);
        assert_eq!((a.metrics[C].scored, a.metrics[C].unscored), (2, 1));
        assert_eq!((a.metrics[H].scored, a.metrics[H].unscored), (1, 2));
    }

    #[test]
    fn configured_metrics_are_reported_even_without_results() {
        let config = AggregateConfig {
            metrics: vec![MetricSetup {
                name: "brand_voice".into(),
                direction: Direction::LowerIsBetter,
                pass_bar: 2.0,
            }],
            ..Default::default()
        };
        let a = aggregate(config, &[record("a", None, &[(C, Some(1.0))])]);
        let b = &a.metrics["brand_voice"];
        assert_eq!((b.prompts, b.scored, b.unscored, b.mean), (1, 0, 1, None));
        assert_eq!(b.direction, Direction::LowerIsBetter);
    }

    #[test]
    fn missing_results_count_as_unscored() {
        let mut a = Aggregator::new(AggregateConfig::default());
        a.add(&record("a", None, &[(C, Some(1.0))])).unwrap();
        a.add_missing(3);
        let a = a.finish();
        assert_eq!((a.prompts, a.missing), (4, 3));
        assert_eq!((a.metrics[C].scored, a.metrics[C].unscored), (1, 3));
    }

    #[test]
    fn categories_are_broken_down_and_critical_failures_kept() {
        let config = AggregateConfig {
            critical_categories: vec!["Safety".into(), "Empty".into()],
            ..Default::default()
        };
        let records = [
            record("a", Some("Safety"), &[(C, Some(1.0))]),
            record("b", Some("Safety"), &[(C, Some(0.25))]),
            record("c", Some("Safety"), &[(C, None)]),
            record("d", Some("Math"), &[(C, Some(0.0))]),
            record("e", None, &[(C, Some(0.5))]),
        ];
        let a = aggregate(config, &records);
        let safety = &a.metrics[C].categories["Safety"];
        assert_eq!((safety.prompts, safety.scored, safety.unscored), (3, 2, 1));
        assert_eq!((safety.passing, safety.failing()), (1, 1));
        assert_eq!(safety.failing_prompts.len(), 1);
        assert_eq!(
            safety.failing_prompts[0].prompt_hash,
            crate::layout::prompt_hash("b")
        );
        let math = &a.metrics[C].categories["Math"];
        assert_eq!((math.prompts, math.mean), (1, Some(0.0)));
        assert!(
            math.failing_prompts.is_empty(),
            "only critical categories keep prompts"
        );
        let empty = &a.metrics[C].categories["Empty"];
        assert_eq!(
            empty.prompts, 0,
            "critical categories are reported even when absent"
        );
    }

    #[test]
    fn categories_met_again_are_counted_once_below_and_above_the_few() {
        // Found by name up to FEW_CATEGORIES, by hash beyond: the same ids either way.
        let names: Vec<String> = (0..FEW_CATEGORIES * 3).map(|i| format!("c{i}")).collect();
        let records: Vec<_> = names
            .iter()
            .chain(&names)
            .chain(&names[..3])
            .map(|n| record(n, Some(n), &[(C, Some(1.0))]))
            .collect();
        let a = aggregate(AggregateConfig::default(), &records);
        let cats = &a.metrics[C].categories;
        assert_eq!(cats.len(), names.len());
        for (i, name) in names.iter().enumerate() {
            assert_eq!(cats[name].prompts, if i < 3 { 3 } else { 2 }, "{name}");
        }
    }

    #[test]
    fn metrics_are_told_apart_whatever_their_place_in_a_record() {
        // The same metrics in another order, one missing, one repeated (the first counts).
        let records = [
            record("a", None, &[(C, Some(1.0)), (H, Some(0.0))]),
            record("b", None, &[(H, Some(0.5)), (C, Some(0.0))]),
            record("c", None, &[(H, Some(1.0))]),
            record("d", None, &[(C, Some(1.0)), (C, Some(0.0)), (H, Some(0.0))]),
            record("e", None, &[("custom", Some(0.25)), (C, Some(0.0))]),
        ];
        let a = aggregate(AggregateConfig::default(), &records);
        let (c, h) = (&a.metrics[C], &a.metrics[H]);
        assert_eq!((c.scored, c.passing, c.mean), (4, 2, Some(0.5)));
        assert_eq!((h.scored, h.mean), (4, Some(0.375)));
        assert_eq!(a.metrics["custom"].scored, 1);
    }

    #[test]
    fn categories_beyond_the_cap_are_pooled() {
        let names: Vec<String> = (0..MAX_CATEGORIES + 5).map(|i| format!("c{i}")).collect();
        let records: Vec<_> = names
            .iter()
            .map(|n| record(n, Some(n), &[(C, Some(1.0))]))
            .collect();
        let a = aggregate(AggregateConfig::default(), &records);
        assert!(a.categories_pooled);
        let cats = &a.metrics[C].categories;
        assert_eq!(cats.len(), MAX_CATEGORIES + 1);
        assert_eq!(cats[OTHER_CATEGORY].prompts, 5);
    }

    #[test]
    fn worst_prompts_are_the_worst_whatever_the_order() {
        let config = AggregateConfig {
            worst_prompts: 2,
            keep_prompt_text: true,
            ..Default::default()
        };
        let prompts: Vec<String> = (0..20).map(|i| format!("prompt {i}")).collect();
        let mut records: Vec<_> = prompts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let score = if i == 7 {
                    0.0
                } else if i == 13 {
                    0.25
                } else {
                    1.0
                };
                record(p, None, &[(C, Some(score)), (H, Some(1.0 - score))])
            })
            .collect();
        let forward = aggregate(config.clone(), &records);
        records.reverse();
        let backward = aggregate(config.clone(), &records);
        for a in [&forward, &backward] {
            let worst: Vec<(f64, Option<&str>)> = a.metrics[C]
                .worst
                .iter()
                .map(|w| (w.score, w.prompt.as_deref()))
                .collect();
            assert_eq!(worst, [(0.0, Some("prompt 7")), (0.25, Some("prompt 13"))]);
            // For a lower-is-better metric the worst are the highest.
            let worst_h: Vec<f64> = a.metrics[H].worst.iter().map(|w| w.score).collect();
            assert_eq!(worst_h, [1.0, 0.75]);
            assert_eq!(a.metrics[C].worst[0].explanation, "because prompt 7");
        }
        assert_eq!(forward.metrics[C].worst, backward.metrics[C].worst);
        assert_eq!(forward.metrics[H].worst, backward.metrics[H].worst);

        // Ties at the cut are broken by hash, so the same prompts are kept either way:
        // the third worst is the 1.0 with the smallest hash of 18.
        let config = AggregateConfig {
            worst_prompts: 3,
            ..config
        };
        let smallest = prompts
            .iter()
            .enumerate()
            .filter(|(i, _)| ![7, 13].contains(i))
            .map(|(_, p)| crate::layout::prompt_hash(p))
            .min();
        let backward = aggregate(config.clone(), &records);
        records.reverse();
        let forward = aggregate(config, &records);
        for a in [&forward, &backward] {
            let third = &a.metrics[C].worst[2];
            assert_eq!(
                (third.score, Some(&third.prompt_hash)),
                (1.0, smallest.as_ref())
            );
        }
        assert_eq!(forward.metrics[C].worst, backward.metrics[C].worst);
    }

    #[test]
    fn prompt_text_is_only_kept_when_allowed() {
        let a = aggregate(
            AggregateConfig::default(),
            &[record("secret", None, &[(C, Some(0.0))])],
        );
        assert_eq!(a.metrics[C].worst[0].prompt, None);
    }

    #[test]
    fn prompt_scores_round_trip_and_find_regressions() {
        let config = AggregateConfig {
            collect_prompt_scores: true,
            ..Default::default()
        };
        let old = aggregate(
            config.clone(),
            &[
                record("a", None, &[(C, Some(1.0))]),
                record("b", None, &[(C, Some(1.0))]),
                record("c", None, &[(C, Some(0.75))]),
                record("gone", None, &[(C, Some(1.0))]),
            ],
        );
        let new = aggregate(
            config,
            &[
                record("a", None, &[(C, Some(0.75))]), // one step: not "more than" 0.25
                record("b", None, &[(C, Some(0.25))]), // regressed
                record("c", None, &[(C, None)]),       // not scored now: not matched
                record("d", None, &[(C, Some(0.0))]),  // new prompt
                record("b", None, &[(C, Some(0.75))]), // duplicate: b's mean is 0.5
            ],
        );
        let old_scores = old.prompt_scores.unwrap();
        let sidecar = old_scores.to_jsonl();
        let text = String::from_utf8(sidecar.clone()).unwrap();
        assert_eq!(text.lines().count(), 4, "{text}");
        let back = futures_lite_block(PromptScores::read_jsonl(&sidecar[..], "u")).unwrap();
        assert_eq!(back, old_scores);
        let new_scores = new.prompt_scores.unwrap();
        let (matched, regressed) = regressed_prompts(
            &back.of_metric(C),
            &new_scores.of_metric(C),
            Direction::HigherIsBetter,
            0.25,
        );
        assert_eq!(matched, 2);
        assert_eq!(regressed.len(), 1);
        assert_eq!(regressed[0], (crate::layout::prompt_hash("b"), 1.0, 0.5));
    }

    fn futures_lite_block<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn usage_from_tokens_prices_or_records() {
        let mut u = UsageAggregator::new(Some((1.0, 2.0)));
        for line in [
            r#"{"line":1,"prompt_hash":"x","metadata":{"latencyMs":100,"inputTokens":1000,"outputTokens":500}}"#,
            r#"{"line":2,"prompt_hash":"y","metadata":{"latencyMs":300,"cost":0.5}}"#,
            r#"{"line":3,"prompt_hash":"z","metadata":{"userId":"u1"}}"#,
        ] {
            u.add_line(line.as_bytes()).unwrap();
        }
        let usage = u.finish();
        assert_eq!(usage.records, 3);
        let latency = usage.latency_ms.unwrap();
        assert_eq!(
            (latency.count, latency.mean, latency.max),
            (2, 200.0, 300.0)
        );
        let cost = usage.cost_per_query.unwrap();
        // 1000 × 1/1k + 500 × 2/1k = 2.0, and 0.5 from the record.
        assert_eq!((cost.count, cost.mean), (2, 1.25));
        assert_eq!((usage.cost_from_tokens, usage.cost_from_records), (1, 1));
        assert!(
            u.add_line(b"{")
                .unwrap_err()
                .contains("not a metadata line")
        );
        assert_eq!(UsageAggregator::new(None).finish().latency_ms, None);
    }

    #[test]
    fn shorten_cuts_on_characters() {
        assert_eq!(shorten("  short ", 10), "short");
        assert_eq!(shorten("ééééééé", 4), "ééé…");
        assert_eq!(shorten("abcd", 4), "abcd");
    }
}
