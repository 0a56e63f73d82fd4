#!/usr/bin/env python3
"""The Python reference for `evalgate gate`: the same aggregation and point-mode gate
decision over Bedrock `*_output.jsonl` files, written the straightforward way (standard
library only: `json`, `hashlib`, `math`).

    gate.py --policy bench/reference/policy.json FILE... > summary.json

It computes what evalgate computes (shared/src/aggregate.rs, gate.rs, stats.rs): per metric
the prompts, scored and unscored counts (`result: null` is counted, never averaged), mean
and standard deviation (Welford), min/max, the pass count at the metric's bar, the Student-t
interval of the mean (Wilson when a [0, 1] metric shows no spread), the Wilson interval of
the pass rate, a per-category breakdown (at most 200 categories, the rest pooled), the worst
prompts (ties broken by prompt hash) with the judge's explanation, the failing prompts of
critical categories, and the gates `min_scored`, `max_unscored_fraction`, `min_mean`,
`max_mean`, `min_pass_rate` and critical categories. Prompts are identified by the first 16
hex characters of the SHA-256 of their text. bench/run compares its output with
`evalgate gate --format json` on the same files before timing either.
"""

import argparse
import hashlib
import json
import math
import sys

MAX_METRICS = 64
MAX_CATEGORIES = 200
OTHER_CATEGORY = "(other categories)"
EXPLANATION_CHARS = 600
CRITICAL_WORST = 3
LOWER_IS_BETTER = {"Builtin.Harmfulness", "Builtin.Stereotyping", "Builtin.Refusal"}


def shorten(text, limit):
    text = text.strip()
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "\u2026"


class Worst:
    """The k worst prompts: worse score first, ties by prompt hash."""

    def __init__(self, k, lower_is_better):
        self.k = k
        self.sign = 1.0 if lower_is_better else -1.0
        self.items = []  # (badness, hash, score, category, explanation)

    def offer(self, score, prompt_hash, category, explanation):
        if self.k == 0:
            return
        key = (-self.sign * score, prompt_hash)
        if len(self.items) == self.k and key >= (self.items[-1][0], self.items[-1][1]):
            return
        at = len(self.items)
        for i, item in enumerate(self.items):
            if key < (item[0], item[1]):
                at = i
                break
        self.items.insert(
            at,
            (key[0], prompt_hash, score, category, shorten(explanation or "", EXPLANATION_CHARS)),
        )
        del self.items[self.k :]

    def to_json(self):
        return [
            {"prompt_hash": h, "score": s, "category": c, "explanation": e}
            for (_, h, s, c, e) in self.items
        ]


class Stats:
    def __init__(self):
        self.n = 0
        self.total = 0.0
        self.mean = 0.0
        self.m2 = 0.0

    def push(self, x):
        self.n += 1
        self.total += x
        delta = x - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (x - self.mean)

    def average(self):
        return self.total / self.n if self.n else None

    def std_dev(self):
        return math.sqrt(max(self.m2 / (self.n - 1), 0.0)) if self.n > 1 else None


class Metric:
    def __init__(self, setup, worst_prompts):
        self.setup = setup
        self.lower = setup["direction"] == "lower_is_better"
        self.bar = setup["pass_bar"]
        self.stats = Stats()
        self.passing = 0
        self.bounded01 = True
        self.min = math.inf
        self.max = -math.inf
        self.categories = {}  # category index -> [Stats, passing, Worst or None]
        self.worst = Worst(worst_prompts, self.lower)

    def passes(self, value):
        return value <= self.bar if self.lower else value >= self.bar


def aggregate(policy, paths):
    setups = {m["name"]: m for m in policy["metrics"]}
    metrics = {}
    for name, setup in setups.items():
        metrics[name] = Metric(setup, policy["worst_prompts"])
    category_ids = {}
    category_names = []
    category_prompts = []
    critical = []
    pooled = False
    for name in policy["critical_categories"]:
        category_ids[name] = len(category_names)
        category_names.append(name)
        category_prompts.append(0)
        critical.append(True)
    prompts = 0

    for path in paths:
        with open(path, "rb") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    result = record["automatedEvaluationResult"]
                    input_record = record["inputRecord"]
                    prompt = input_record["prompt"]
                except (ValueError, KeyError, TypeError) as e:
                    raise SystemExit(f"{path} line {number}: not a Bedrock evaluation result: {e}")
                prompt_hash = hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:16]
                prompts += 1
                category = input_record.get("category")
                if category is not None and not category.strip():
                    category = None
                c = None
                if category is not None:
                    c = category_ids.get(category)
                    if c is None:
                        key = category
                        if len(category_names) >= MAX_CATEGORIES:
                            pooled = True
                            key = OTHER_CATEGORY
                            c = category_ids.get(key)
                        if c is None:
                            c = len(category_names)
                            category_ids[key] = c
                            category_names.append(key)
                            category_prompts.append(0)
                            critical.append(False)
                    category_prompts[c] += 1
                seen = set()
                for score in result.get("scores") or []:
                    name = score["metricName"]
                    metric = metrics.get(name)
                    if metric is None:
                        if len(metrics) >= MAX_METRICS:
                            raise SystemExit(f"{path} line {number}: more than {MAX_METRICS} metrics")
                        direction = "lower_is_better" if name in LOWER_IS_BETTER else "higher_is_better"
                        metric = Metric(
                            {"name": name, "direction": direction, "pass_bar": policy["pass_bar"]},
                            policy["worst_prompts"],
                        )
                        metrics[name] = metric
                    if name in seen:
                        continue
                    seen.add(name)
                    value = score.get("result")
                    if isinstance(value, bool) or not isinstance(value, (int, float)):
                        continue
                    value = float(value)
                    if not math.isfinite(value):
                        continue
                    explanation = None
                    for detail in score.get("evaluatorDetails") or []:
                        text = detail.get("explanation")
                        if text and text.strip():
                            explanation = text
                            break
                    metric.stats.push(value)
                    metric.min = min(metric.min, value)
                    metric.max = max(metric.max, value)
                    metric.bounded01 = metric.bounded01 and 0.0 <= value <= 1.0
                    passes = metric.passes(value)
                    metric.passing += passes
                    metric.worst.offer(value, prompt_hash, category, explanation)
                    if c is not None:
                        acc = metric.categories.get(c)
                        if acc is None:
                            worst = Worst(CRITICAL_WORST, metric.lower) if critical[c] else None
                            acc = metric.categories[c] = [Stats(), 0, worst]
                        acc[0].push(value)
                        acc[1] += passes
                        if not passes and acc[2] is not None:
                            acc[2].offer(value, prompt_hash, category, explanation)
    return prompts, metrics, category_names, category_prompts, pooled


# The statistics: the regularised incomplete beta and gamma functions (Numerical Recipes
# 6.2-6.4), inverted by bisection for the t and normal quantiles, as shared/src/stats.rs.


def _beta_cf(a, b, x):
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = 1.0 / (tiny if abs(d) < tiny else d)
    h = d
    for m in range(1, 501):
        m2 = 2.0 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (tiny if abs(d) < tiny else d)
        c = 1.0 + aa / c
        c = tiny if abs(c) < tiny else c
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (tiny if abs(d) < tiny else d)
        c = 1.0 + aa / c
        c = tiny if abs(c) < tiny else c
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _incomplete_beta(a, b, x):
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1.0 - x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_cf(a, b, x) / a
    return 1.0 - front * _beta_cf(b, a, 1.0 - x) / b


def _t_cdf(t, df):
    tail = 0.5 * _incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def _invert(cdf, p, lo, hi):
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if cdf(mid) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-13 * max(abs(mid), 1.0):
            break
    return 0.5 * (lo + hi)


def t_quantile(p, df):
    hi = 2.0
    while _t_cdf(hi, df) < p and hi < 1e12:
        hi *= 2.0
    return _invert(lambda t: _t_cdf(t, df), p, 0.0, hi)


def z_quantile(p):
    return _invert(lambda x: 0.5 * (1.0 + math.erf(x / math.sqrt(2.0))), p, 0.0, 40.0)


def wilson(p, n, level):
    if n == 0:
        return None
    z = z_quantile(1.0 - (1.0 - level) / 2.0)
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2.0 * n)) / denom
    half = z * math.sqrt(max(p * (1.0 - p) / n + z2 / (4.0 * n * n), 0.0)) / denom
    return {"low": max(centre - half, 0.0), "high": min(centre + half, 1.0)}


def mean_interval(n, mean, sd, level, bounded01):
    if n < 2 or mean is None or sd is None:
        return None
    if sd <= 1e-12 and bounded01:
        return wilson(min(max(mean, 0.0), 1.0), n, level)
    half = t_quantile(1.0 - (1.0 - level) / 2.0, n - 1) * sd / math.sqrt(n)
    return {"low": mean - half, "high": mean + half}


WORST = {"pass": 0, "not_gated": 0, "inconclusive": 1, "fail": 2}


def decide(policy, prompts, metrics, category_names, category_prompts, pooled):
    level = policy["confidence_level"]
    out = {"prompts": prompts, "categories_pooled": pooled, "metrics": {}, "critical": []}
    overall = "not_gated"
    gated = {}
    for name in sorted(metrics):
        m = metrics[name]
        s = m.setup
        scored = m.stats.n
        mean = m.stats.average()
        sd = m.stats.std_dev()
        unscored = prompts - scored
        rate = m.passing / scored if scored else None
        checks = {}
        is_gated = any(k in s for k in ("min_mean", "max_mean", "min_pass_rate"))
        if is_gated:
            gated[name] = m
            fraction = unscored / prompts if prompts else None
            evidence = scored >= s["min_scored"] and fraction is not None and fraction <= s["max_unscored_fraction"] + 1e-12
            if "min_mean" in s:
                checks["min_mean"] = "pass" if mean is not None and mean >= s["min_mean"] else (
                    "fail" if mean is not None else "inconclusive")
            if "max_mean" in s:
                checks["max_mean"] = "pass" if mean is not None and mean <= s["max_mean"] else (
                    "fail" if mean is not None else "inconclusive")
            if "min_pass_rate" in s:
                checks["min_pass_rate"] = "pass" if rate is not None and rate >= s["min_pass_rate"] else (
                    "fail" if rate is not None else "inconclusive")
            status = max(checks.values(), key=WORST.get, default="pass") if evidence else "inconclusive"
            overall = max(overall, status, key=WORST.get)
        else:
            status = "not_gated"
        categories = {}
        for c, cat_name in enumerate(category_names):
            acc = m.categories.get(c)
            categories[cat_name] = {
                "prompts": category_prompts[c],
                "scored": acc[0].n if acc else 0,
                "mean": acc[0].average() if acc else None,
                "passing": acc[1] if acc else 0,
                "failing_prompts": acc[2].to_json() if acc and acc[2] else [],
            }
        out["metrics"][name] = {
            "status": status,
            "prompts": prompts,
            "scored": scored,
            "unscored": unscored,
            "mean": mean,
            "std_dev": sd,
            "min": m.min if scored else None,
            "max": m.max if scored else None,
            "passing": m.passing,
            "pass_rate": rate,
            "interval": mean_interval(scored, mean, sd, level, m.bounded01),
            "pass_rate_interval": wilson(rate, scored, level) if scored else None,
            "gates": checks,
            "categories": categories,
            "worst_prompts": m.worst.to_json(),
        }
    for category in policy["critical_categories"]:
        for name in [m["name"] for m in policy["metrics"] if m["name"] in gated]:
            m = out["metrics"][name]
            cat = m["categories"].get(category, {"prompts": 0, "scored": 0, "passing": 0})
            failing = cat["scored"] - cat["passing"]
            if failing > 0:
                status = "fail"
            elif cat["prompts"] == 0 or cat["prompts"] - cat["scored"] > 0:
                status = "inconclusive"
            else:
                status = "pass"
            overall = max(overall, status, key=WORST.get)
            out["critical"].append({"category": category, "metric": name, "failing": failing, "status": status})
    out["outcome"] = "inconclusive" if overall == "not_gated" else overall
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policy", required=True)
    parser.add_argument("results", nargs="+")
    args = parser.parse_args()
    with open(args.policy) as f:
        policy = json.load(f)
    prompts, metrics, names, counts, pooled = aggregate(policy, args.results)
    if prompts == 0:
        raise SystemExit("the results hold no records: nothing to gate")
    json.dump(decide(policy, prompts, metrics, names, counts, pooled), sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
