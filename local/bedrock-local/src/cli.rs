//! Command-line flags (hand-written: a dozen flags do not need a parser crate).

use std::net::SocketAddr;
use std::time::Duration;

use crate::random::FaultKind;

/// The usage text of `--help`.
pub const USAGE: &str = "\
bedrock-local: a local emulator of the Amazon Bedrock model-evaluation control plane.

USAGE: bedrock-local [FLAGS]

FLAGS:
  --listen ADDR              address to serve on (default 127.0.0.1:4599; port 0 picks a free one)
  --s3-endpoint URL          S3 to read datasets from and write results to, path-style
                             (e.g. http://127.0.0.1:4566); default: the AWS S3 endpoint
  --region REGION            Region in ARNs and for S3 (default us-east-1)
  --account-id ID            12-digit account id in ARNs (default 123456789012)
  --max-concurrent-jobs N    quota of InProgress/Stopping jobs (default 20)
  --job-seconds S            time a job stays InProgress before it completes (default 2; fractions allowed)
  --transition-seconds S     time a job stays Stopping or Deleting (default 0.5)
  --fault-rate F             share of requests answered with an injected error, 0..1 (default 0)
  --fault-kinds LIST         injected errors: throttling,internal (default both)
  --seed N                   seed for fault injection (default 0)
  --help                     print this text
  --version                  print the version

On startup it prints exactly one line to stdout, `bedrock-local listening on http://<addr>`,
then logs to stderr (RUST_LOG filters, default info). S3 credentials come from
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN when set, else dummy ones.
";

/// The emulator's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: SocketAddr,
    pub s3_endpoint: Option<String>,
    pub region: String,
    pub account_id: String,
    pub max_concurrent_jobs: usize,
    pub job_duration: Duration,
    pub transition_duration: Duration,
    pub fault_rate: f64,
    pub fault_kinds: Vec<FaultKind>,
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 4599)),
            s3_endpoint: None,
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            max_concurrent_jobs: 20,
            job_duration: Duration::from_secs(2),
            transition_duration: Duration::from_millis(500),
            fault_rate: 0.0,
            fault_kinds: vec![FaultKind::Throttling, FaultKind::Internal],
            seed: 0,
        }
    }
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Run(Config),
    Help,
    Version,
}

/// A command line that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CliError {
    #[error("unknown flag {0} (see --help)")]
    UnknownFlag(String),
    #[error("{0} needs a value (see --help)")]
    MissingValue(String),
    #[error("invalid value {value:?} for {flag}: {reason}")]
    InvalidValue {
        flag: String,
        value: String,
        reason: String,
    },
}

fn invalid(flag: &str, value: &str, reason: &str) -> CliError {
    CliError::InvalidValue {
        flag: flag.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

fn seconds(flag: &str, value: &str) -> Result<Duration, CliError> {
    let s: f64 = value
        .parse()
        .map_err(|_| invalid(flag, value, "expected a number of seconds, e.g. 0.2"))?;
    Duration::try_from_secs_f64(s).map_err(|_| {
        invalid(
            flag,
            value,
            "expected a finite, non-negative number of seconds",
        )
    })
}

/// Parses the arguments after the program name.
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Command, CliError> {
    let mut config = Config::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        match flag.as_str() {
            "--help" | "-h" => return Ok(Command::Help),
            "--version" | "-V" => return Ok(Command::Version),
            _ => {}
        }
        let value = match inline {
            Some(v) => v,
            None => match flag.as_str() {
                "--listen"
                | "--s3-endpoint"
                | "--region"
                | "--account-id"
                | "--max-concurrent-jobs"
                | "--job-seconds"
                | "--transition-seconds"
                | "--fault-rate"
                | "--fault-kinds"
                | "--seed" => args
                    .next()
                    .ok_or_else(|| CliError::MissingValue(flag.clone()))?,
                _ => return Err(CliError::UnknownFlag(flag)),
            },
        };
        let v = value.as_str();
        match flag.as_str() {
            "--listen" => {
                config.listen = v
                    .parse()
                    .map_err(|_| invalid(&flag, v, "expected IP:PORT, e.g. 127.0.0.1:4599"))?;
            }
            "--s3-endpoint" => {
                if !(v.starts_with("http://") || v.starts_with("https://")) {
                    return Err(invalid(&flag, v, "expected an http:// or https:// URL"));
                }
                config.s3_endpoint = Some(v.trim_end_matches('/').to_owned());
            }
            "--region" => {
                let ok = !v.is_empty()
                    && v.len() <= 20
                    && v.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
                if !ok {
                    return Err(invalid(
                        &flag,
                        v,
                        "expected a Region name such as us-east-1",
                    ));
                }
                config.region = v.to_owned();
            }
            "--account-id" => {
                if v.len() != 12 || !v.chars().all(|c| c.is_ascii_digit()) {
                    return Err(invalid(&flag, v, "expected 12 digits"));
                }
                config.account_id = v.to_owned();
            }
            "--max-concurrent-jobs" => {
                config.max_concurrent_jobs = v
                    .parse()
                    .map_err(|_| invalid(&flag, v, "expected a whole number"))?;
            }
            "--job-seconds" => config.job_duration = seconds(&flag, v)?,
            "--transition-seconds" => config.transition_duration = seconds(&flag, v)?,
            "--fault-rate" => {
                let rate: f64 = v
                    .parse()
                    .map_err(|_| invalid(&flag, v, "expected a number between 0 and 1"))?;
                if !(0.0..=1.0).contains(&rate) {
                    return Err(invalid(&flag, v, "expected a number between 0 and 1"));
                }
                config.fault_rate = rate;
            }
            "--fault-kinds" => {
                let mut kinds = Vec::new();
                for kind in v.split(',').map(str::trim).filter(|k| !k.is_empty()) {
                    kinds.push(match kind {
                        "throttling" => FaultKind::Throttling,
                        "internal" => FaultKind::Internal,
                        _ => {
                            return Err(invalid(
                                &flag,
                                v,
                                "expected a comma-separated list of throttling, internal",
                            ));
                        }
                    });
                }
                if kinds.is_empty() {
                    return Err(invalid(
                        &flag,
                        v,
                        "expected at least one of throttling, internal",
                    ));
                }
                config.fault_kinds = kinds;
            }
            "--seed" => {
                config.seed = v
                    .parse()
                    .map_err(|_| invalid(&flag, v, "expected a whole number"))?;
            }
            _ => return Err(CliError::UnknownFlag(flag)),
        }
    }
    Ok(Command::Run(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Config, CliError> {
        match parse(args.iter().map(|s| s.to_string()))? {
            Command::Run(c) => Ok(c),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults_and_every_flag() {
        assert_eq!(run(&[]).unwrap(), Config::default());
        let c = run(&[
            "--listen",
            "127.0.0.1:0",
            "--s3-endpoint=http://127.0.0.1:4566/",
            "--region",
            "eu-west-1",
            "--account-id",
            "111122223333",
            "--max-concurrent-jobs",
            "3",
            "--job-seconds",
            "0.2",
            "--transition-seconds=0",
            "--fault-rate",
            "0.25",
            "--fault-kinds",
            "throttling",
            "--seed",
            "7",
        ])
        .unwrap();
        assert_eq!(c.listen.port(), 0);
        assert_eq!(c.s3_endpoint.as_deref(), Some("http://127.0.0.1:4566"));
        assert_eq!(c.region, "eu-west-1");
        assert_eq!(c.account_id, "111122223333");
        assert_eq!(c.max_concurrent_jobs, 3);
        assert_eq!(c.job_duration, Duration::from_millis(200));
        assert_eq!(c.transition_duration, Duration::ZERO);
        assert_eq!(c.fault_rate, 0.25);
        assert_eq!(c.fault_kinds, vec![FaultKind::Throttling]);
        assert_eq!(c.seed, 7);
        assert_eq!(parse(["--help".to_string()]), Ok(Command::Help));
    }

    #[test]
    fn bad_flags_are_explained() {
        for (args, expected) in [
            (vec!["--nope"], "unknown flag --nope"),
            (vec!["--listen"], "--listen needs a value"),
            (vec!["--listen", "localhost"], "expected IP:PORT"),
            (vec!["--fault-rate", "2"], "between 0 and 1"),
            (vec!["--job-seconds", "-1"], "non-negative"),
            (vec!["--account-id", "123"], "12 digits"),
            (vec!["--fault-kinds", "boom"], "throttling, internal"),
            (vec!["--s3-endpoint", "127.0.0.1:4566"], "http://"),
        ] {
            let err = run(&args).unwrap_err().to_string();
            assert!(err.contains(expected), "{args:?}: {err}");
        }
    }
}
