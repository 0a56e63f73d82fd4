//! Construction of AWS SDK clients, shared by every binary.
//!
//! Clients are built once in `main` and borrowed by handlers. Endpoints, region and
//! credentials come from the standard AWS environment (`AWS_REGION`, `AWS_ENDPOINT_URL`,
//! `AWS_ENDPOINT_URL_<SERVICE>`, ...), which is also how the tests point the very same
//! binaries at local stand-ins.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::{
    Builder,
    tls::{Provider, rustls_provider::CryptoMode},
};

/// The HTTPS client every SDK client uses: rustls with the `ring` provider.
///
/// The SDK's default client uses aws-lc, a large C library; `ring` builds in a fraction
/// of the time and gives a smaller binary, with the same TLS 1.2/1.3 support.
pub fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// Loads the shared SDK configuration from the environment.
pub async fn load_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .load()
        .await
}

/// An S3 client. Path-style addressing is forced when `EVALGATE_S3_FORCE_PATH_STYLE=true`
/// (S3 stand-ins on 127.0.0.1 have no per-bucket host names); AWS uses virtual-hosted style.
pub fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    let force_path_style = std::env::var("EVALGATE_S3_FORCE_PATH_STYLE")
        .map(|v| v.eq_ignore_ascii_case("true") || v == "1")
        .unwrap_or(false);
    let s3_config = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(force_path_style)
        .build();
    aws_sdk_s3::Client::from_conf(s3_config)
}
