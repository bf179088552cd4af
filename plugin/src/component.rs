//! The glue between the WIT contract and the library: converts types and nothing more.

use crate::reference::Reference;
use crate::target::{self, TargetError};

wit_bindgen::generate!({
    path: "../wit",
    world: "plugin",
});

use exports::hoist::plugin::importer::{self, ImportRequest, Status};
use exports::hoist::plugin::reference::{Guest as ReferenceGuest, ImageReference, TargetName};
use hoist::plugin::types::Error;

struct Plugin;

impl ReferenceGuest for Plugin {
    fn parse(input: String) -> Result<ImageReference, Error> {
        let parsed =
            Reference::parse(&input).map_err(|e| Error::InvalidReference(e.to_string()))?;
        Ok(ImageReference {
            registry: parsed.registry().to_owned(),
            repository: parsed.repository().to_owned(),
            tag: parsed.tag().map(str::to_owned),
            digest: parsed.digest().map(str::to_owned),
            familiar: parsed.familiar(),
            canonical: parsed.canonical(),
        })
    }

    fn default_target(
        project: String,
        source: String,
        target_image: Option<String>,
        target_tag: Option<String>,
    ) -> Result<TargetName, Error> {
        target::default_target(
            &project,
            &source,
            target_image.as_deref(),
            target_tag.as_deref(),
        )
        .map(|t| TargetName {
            repository: t.repository,
            tag: t.tag,
        })
        .map_err(|e: TargetError| Error::InvalidReference(e.to_string()))
    }
}

/// The import task. Copying arrives with the registry client; until then `start` checks
/// the request and says plainly that it cannot copy yet.
struct Task;

impl importer::Guest for Plugin {
    type Task = Task;
}

impl importer::GuestTask for Task {
    fn start(request: ImportRequest) -> Result<importer::Task, Error> {
        for (what, value) in [("source", &request.source), ("target", &request.target)] {
            Reference::parse(value).map_err(|e| Error::InvalidReference(format!("{what}: {e}")))?;
        }
        Err(Error::RegistryError(
            "this plugin build parses references but cannot copy images yet".into(),
        ))
    }

    fn advance(&self, _budget_ms: u32) -> Status {
        unreachable!("start never returns a task in this build")
    }

    fn status(&self) -> Status {
        unreachable!("start never returns a task in this build")
    }

    fn cancel(&self) {}
}

export!(Plugin);
