//! `eks-cluster token`: the ExecCredential the kubeconfig's exec user runs. It reads and writes
//! no state; the region comes from `--region`, else the environment or the profile.

use std::process::ExitCode;

use common::{CommonArgs, StepInfo};

use crate::{Error, TokenArgs, kubeconfig};

/// `eks-cluster token`: the ExecCredential JSON.
pub async fn token(config: &aws_config::SdkConfig, args: &TokenArgs) -> Result<String, Error> {
    common::cluster::pick(Some(&args.cluster), None)?;
    let token = common::token::eks_token(config, &args.cluster)
        .await
        .map_err(|source| Error::Token {
            cluster: args.cluster.clone(),
            source,
        })?;
    let expires: chrono::DateTime<chrono::Utc> = token.expires_at.into();
    let mut text = kubeconfig::exec_credential(&token.token, expires).to_string();
    text.push('\n');
    Ok(text)
}

/// Runs `eks-cluster token`: the credential JSON on stdout; exit 2 on bad input (a missing
/// region included), 1 when no token could be made.
pub async fn run_token(common: &CommonArgs, args: &TokenArgs, info: StepInfo) -> ExitCode {
    common::step::stateless(info, common, async |ctx| token(&ctx.aws, args).await).await
}
