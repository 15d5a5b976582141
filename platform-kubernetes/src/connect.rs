//! Where the cluster is and who we are to it, found as kubectl finds them:
//! the `KUBECONFIG` files, else `~/.kube/config`, else the pod's service
//! account (token, CA and API server address that Kubernetes mounts into
//! every pod).

use kube::config::{KubeConfigOptions, Kubeconfig};
use platform_core::{ConfigProblem, Error};

use crate::PLATFORM_NAME;
use crate::config::{KUBECONFIG, KubernetesConfig};

/// The client configuration for `config`'s cluster.
pub(crate) async fn kube_client_config(config: &KubernetesConfig) -> Result<kube::Config, Error> {
    let problem = |message: String| Error::Config {
        platform: PLATFORM_NAME,
        problems: vec![ConfigProblem::new(KUBECONFIG.name, message)],
    };
    match &config.kubeconfig {
        Some(paths) => {
            let mut merged: Option<Kubeconfig> = None;
            for path in paths {
                let file = Kubeconfig::read_from(path)
                    .map_err(|e| problem(format!("{}: {e}", path.display())))?;
                merged = Some(match merged {
                    Some(earlier) => earlier
                        .merge(file)
                        .map_err(|e| problem(format!("{}: {e}", path.display())))?,
                    None => file,
                });
            }
            let Some(kubeconfig) = merged else {
                return Err(problem("names no file".into()));
            };
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|e| problem(format!("cannot use it: {e}")))
        }
        None => kube::Config::infer().await.map_err(|e| {
            problem(format!(
                "is not set, there is no usable ~/.kube/config, and this is not a pod with a service account ({e}); set KUBECONFIG or run the service in the cluster"
            ))
        }),
    }
}
