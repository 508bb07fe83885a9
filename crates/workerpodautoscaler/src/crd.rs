//! `workerpodautoscaler crd`: prints the WorkerPodAutoScaler
//! CustomResourceDefinition (`kubectl apply -f -` ready).

use std::io::Write as _;
use std::process::ExitCode;

/// Arguments of `crd` (none).
#[derive(Debug, clap::Args)]
pub(crate) struct CrdArgs {}

pub(crate) fn run(_args: &CrdArgs) -> ExitCode {
    match wpa_kube::crd_yaml() {
        Ok(yaml) => {
            let mut stdout = std::io::stdout().lock();
            if stdout
                .write_all(yaml.as_bytes())
                .and_then(|()| stdout.flush())
                .is_err()
            {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("workerpodautoscaler crd: {error}");
            ExitCode::FAILURE
        }
    }
}
