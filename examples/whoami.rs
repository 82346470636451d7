//! Asks STS "who am I?" with credentials from fintors, exactly as an unmodified aws-sdk-rust
//! program would get them: through aws-config's `ImdsCredentialsProvider` (IMDSv2 only, as on
//! EC2), or with `--container` through its ECS/container provider.
//!
//! ```text
//! AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:16925 cargo run --example whoami
//! eval "$(fintors env --ecs)" && cargo run --example whoami -- --container
//! cargo run --example whoami -- --region     # the region it resolves (IMDS last), no STS call
//! cargo run --example whoami -- --container --access-key  # the key id it gets, no STS call
//! ```
//!
//! It prints the caller's ARN, e.g.
//! `arn:aws:sts::123456789012:assumed-role/example/finto-example`.

use aws_config::BehaviorVersion;
use aws_config::ecs::EcsCredentialsProvider;
use aws_config::imds::credentials::ImdsCredentialsProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_credential_types::provider::SharedCredentialsProvider;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let flag = |name: &str| std::env::args().any(|a| a == name);
    if flag("--region") {
        let region = RegionProviderChain::default_provider().region().await;
        println!("{}", region.map(|r| r.to_string()).unwrap_or_default());
        return Ok(());
    }
    let credentials = if flag("--container") {
        SharedCredentialsProvider::new(EcsCredentialsProvider::builder().build())
    } else {
        SharedCredentialsProvider::new(ImdsCredentialsProvider::builder().build())
    };
    if flag("--access-key") {
        use aws_credential_types::provider::ProvideCredentials;
        println!(
            "{}",
            credentials.provide_credentials().await?.access_key_id()
        );
        return Ok(());
    }
    let config = aws_config::defaults(BehaviorVersion::latest())
        .credentials_provider(credentials)
        .region(RegionProviderChain::default_provider().or_else("us-east-1"))
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
