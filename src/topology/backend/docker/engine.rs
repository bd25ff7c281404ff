//! The engine: connecting, checking that it answers, making sure the image is there.

use std::time::Duration;

use testcontainers::bollard::image::CreateImageOptions;
use testcontainers::bollard::Docker;

use crate::topology::TopologyError;

pub(super) fn err(what: &str, e: impl std::fmt::Display) -> TopologyError {
    TopologyError::Docker(format!("{what}: {e}"))
}

/// A client of the local engine (`DOCKER_HOST` or the default socket).
pub fn client() -> Result<Docker, TopologyError> {
    Docker::connect_with_local_defaults().map_err(|e| engine_missing(&e.to_string()))
}

pub(super) fn engine_missing(detail: &str) -> TopologyError {
    TopologyError::Docker(format!(
        "no Docker engine answers ({detail}); start dockerd (or set DOCKER_HOST), or use --backend process"
    ))
}

/// Checks that an engine answers.
pub async fn check_engine(d: &Docker) -> Result<(), TopologyError> {
    match tokio::time::timeout(Duration::from_secs(5), d.ping()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(engine_missing(&e.to_string())),
        Err(_) => Err(engine_missing("no answer within 5 s")),
    }
}

/// Makes sure `image` is in the engine, pulling it when a registry is reachable.
pub async fn ensure_image(d: &Docker, image: &str) -> Result<(), TopologyError> {
    if d.inspect_image(image).await.is_ok() {
        return Ok(());
    }
    use futures_util::StreamExt as _;
    let (name, tag) = image.split_once(':').unwrap_or((image, "latest"));
    let mut pull = d.create_image(
        Some(CreateImageOptions {
            from_image: name,
            tag,
            ..Default::default()
        }),
        None,
        None,
    );
    let mut failure = None;
    let pulled = tokio::time::timeout(Duration::from_secs(300), async {
        while let Some(step) = pull.next().await {
            if let Err(e) = step {
                failure = Some(e.to_string());
                break;
            }
        }
    })
    .await;
    if pulled.is_ok() && failure.is_none() && d.inspect_image(image).await.is_ok() {
        return Ok(());
    }
    Err(TopologyError::Docker(format!(
        "image {image} is not in the local Docker engine and pulling it failed ({}); without a registry, build the offline image with scripts/build-offline-image.sh and set `docker: {{image: redis-harness/redis:offline}}`",
        failure.unwrap_or_else(|| "timed out".into())
    )))
}
