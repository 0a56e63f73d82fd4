//! The local AWS stand-ins the end-to-end tests talk to, over real HTTP on 127.0.0.1.
//!
//! [`moto()`] returns moto's server (S3, SNS, SQS, SSM, EventBridge, Lambda):
//!
//! 1. `EVALGATE_MOTO_URL`, if set (it must answer, or the test fails saying so);
//! 2. otherwise the one `scripts/local-stack start` runs (port `EVALGATE_MOTO_PORT`, 4566);
//! 3. otherwise a private moto started for this test process on a free port. It is tied to
//!    the process (`PR_SET_PDEATHSIG`), so it cannot outlive the tests that started it.
//!
//! So `cargo test` works with or without `scripts/local-stack start`, and the README's test
//! command (which starts one shared stack) avoids a moto per test process.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;

use crate::repo_root;

/// Region every stand-in and client uses.
pub const REGION: &str = "us-east-1";
/// The account id moto reports.
pub const ACCOUNT_ID: &str = "123456789012";
/// Port `scripts/local-stack` starts moto on unless `EVALGATE_MOTO_PORT` says otherwise.
pub const DEFAULT_MOTO_PORT: u16 = 4566;

/// A running moto server.
#[derive(Debug, Clone)]
pub struct Moto {
    /// `http://127.0.0.1:<port>`
    pub url: String,
}

static MOTO: OnceLock<Moto> = OnceLock::new();

/// The moto server for this process (see the module docs for how it is found).
///
/// Blocking: call it before or outside hot async paths (it is cheap once initialised).
pub fn moto() -> &'static Moto {
    MOTO.get_or_init(|| {
        if let Ok(url) = std::env::var("EVALGATE_MOTO_URL") {
            let addr = socket_addr_of(&url)
                .unwrap_or_else(|| panic!("EVALGATE_MOTO_URL={url} is not an http://127.0.0.1:<port> URL"));
            assert!(
                is_moto(addr),
                "EVALGATE_MOTO_URL={url} does not answer like moto; start it with `scripts/local-stack start` or unset the variable"
            );
            return Moto { url };
        }
        let port = std::env::var("EVALGATE_MOTO_PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(DEFAULT_MOTO_PORT);
        let shared: SocketAddr = ([127, 0, 0, 1], port).into();
        if is_moto(shared) {
            return Moto {
                url: format!("http://{shared}"),
            };
        }
        start_private_moto()
    })
}

/// Static credentials for the stand-ins; never real ones.
pub fn credentials() -> Credentials {
    Credentials::new(
        "evalgate-test",
        "evalgate-test",
        None,
        None,
        "evalgate-tests",
    )
}

impl Moto {
    /// SDK configuration pointed at this moto.
    pub fn sdk_config(&self) -> SdkConfig {
        aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&self.url)
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(credentials()),
            )
            .http_client(evalgate::aws::https_client())
            .build()
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&self.sdk_config())
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    pub fn sns(&self) -> aws_sdk_sns::Client {
        aws_sdk_sns::Client::new(&self.sdk_config())
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk_config())
    }

    /// Environment for a function binary so that its SDK clients reach this moto.
    ///
    /// Only stand-in endpoints and dummy credentials: the harness clears the rest of the
    /// environment, so real AWS credentials on a developer's machine are never used.
    pub fn function_env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ENDPOINT_URL".into(), self.url.clone()),
            ("AWS_REGION".into(), REGION.into()),
            ("AWS_DEFAULT_REGION".into(), REGION.into()),
            ("AWS_ACCESS_KEY_ID".into(), "evalgate-test".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "evalgate-test".into()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
            ("EVALGATE_S3_FORCE_PATH_STYLE".into(), "true".into()),
        ]
    }
}

fn socket_addr_of(url: &str) -> Option<SocketAddr> {
    url.strip_prefix("http://")?
        .trim_end_matches('/')
        .parse()
        .ok()
}

/// True when something on `addr` answers moto's own API (not just any HTTP server).
fn is_moto(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(300)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!("GET /moto-api/ HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

/// Where `scripts/local-stack install` puts its virtualenv.
pub fn venv_dir() -> PathBuf {
    repo_root().join(".local/venv")
}

fn start_private_moto() -> Moto {
    // The script pins moto and serialises concurrent installs with a lock file.
    let status = Command::new(repo_root().join("scripts/local-stack"))
        .arg("install")
        .stdout(Stdio::null())
        .status()
        .expect("cannot run scripts/local-stack install");
    assert!(
        status.success(),
        "scripts/local-stack install failed (see its output above)"
    );

    let port = free_port();
    let log_dir = repo_root().join(".local/logs");
    std::fs::create_dir_all(&log_dir).expect("cannot create .local/logs");
    let log_path = log_dir.join(format!("moto-test-{}-{port}.log", std::process::id()));
    let log = std::fs::File::create(&log_path).expect("cannot create moto log file");
    let err_log = log.try_clone().expect("cannot clone log handle");
    let program = venv_dir().join("bin/moto_server");

    // PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, so the child is
    // spawned from a thread that lives as long as the process (it waits on the child).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut command = Command::new(&program);
        command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log);
        tie_to_this_process(&mut command);
        match command.spawn() {
            Ok(mut child) => {
                let _ = tx.send(Ok(()));
                let _ = child.wait();
            }
            Err(e) => {
                let _ = tx.send(Err(format!("cannot start {}: {e}", program.display())));
            }
        }
    });
    if let Ok(Err(e)) = rx.recv() {
        panic!("{e}");
    }
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !is_moto(addr) {
        assert!(
            Instant::now() < deadline,
            "moto did not answer on {addr} within 60 s; see {}",
            log_path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Moto {
        url: format!("http://{addr}"),
    }
}

/// Makes the kernel send SIGTERM to the child when the spawning thread (and so the test
/// process) goes away, so stand-ins never outlive their tests.
pub fn tie_to_this_process(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches no memory shared with the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
