//! Asks STS "who am I?" with credentials from the instance metadata service, exactly as an
//! unmodified aws-sdk-rust program on an EC2 instance would get them: through aws-config's
//! `ImdsCredentialsProvider`, which speaks IMDSv2 only.
//!
//! Point it at fintors with `AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:16925` (or let
//! it use 169.254.169.254); it prints the caller's ARN, e.g.
//! `arn:aws:sts::123456789012:assumed-role/example/finto-example`.
//!
//! With `--region` it prints the region it resolved instead (from the environment, the profile,
//! or else IMDS's `placement/region`), without calling STS.
//!
//! ```text
//! cargo run --example imds_whoami [-- --region]
//! ```

use aws_config::BehaviorVersion;
use aws_config::imds::credentials::ImdsCredentialsProvider;
use aws_config::meta::region::RegionProviderChain;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == "--region") {
        let region = RegionProviderChain::default_provider().region().await;
        println!("{}", region.map(|r| r.to_string()).unwrap_or_default());
        return Ok(());
    }
    let region = RegionProviderChain::default_provider().or_else("us-east-1");
    let config = aws_config::defaults(BehaviorVersion::latest())
        .credentials_provider(ImdsCredentialsProvider::builder().build())
        .region(region)
        .load()
        .await;
    let identity = aws_sdk_sts::Client::new(&config)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| aws_sdk_sts::error::DisplayErrorContext(e).to_string())?;
    println!("{}", identity.arn().unwrap_or_default());
    Ok(())
}
