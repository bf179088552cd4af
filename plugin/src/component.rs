//! The glue between the WIT contract and the library: converts types and nothing more.

use crate::copy::{Import, ImportSpec};
use crate::http::Timeouts;
use crate::manifest::PlatformFilter;
use crate::plan::Plan;
use crate::progress::{self, ImportError, InvalidInput};
use crate::reference::Reference;
use crate::referrer::Kind;
use crate::registry::Settings;
use crate::select::{Naming, PathNaming, Pattern, TagSelection};
use crate::sync::{KnownTag, PlanAction, PlanPhase, PlanSpec};
use crate::target;
use std::cell::RefCell;

wit_bindgen::generate!({
    path: "../wit",
    world: "plugin",
});

use exports::hoist::plugin::importer::{self, ImportRequest, Status};
use exports::hoist::plugin::reference::{Guest as ReferenceGuest, ImageReference, ImportNames};
use exports::hoist::plugin::sync;
use hoist::plugin::types::{self, Error, RequestField, TargetName};
use hoist::plugin::types::{BlobProgress, BlobState, Phase};

struct Plugin;

impl ReferenceGuest for Plugin {
    fn parse(input: String) -> Result<ImageReference, Error> {
        let parsed = Reference::parse(&input).map_err(|e| {
            to_wit_invalid(InvalidInput::new(progress::Field::Source, e.to_string()))
        })?;
        Ok(image_reference(&parsed))
    }

    fn name_import(
        project: String,
        source: String,
        target_image: Option<String>,
        target_tag: Option<String>,
        target_registry: String,
    ) -> Result<ImportNames, Error> {
        let names = target::name_import(
            &project,
            &source,
            target_image.as_deref(),
            target_tag.as_deref(),
            &target_registry,
        )
        .map_err(|e| to_wit_invalid(e.into()))?;
        Ok(ImportNames {
            source: image_reference(&names.source),
            target: TargetName {
                repository: names.target.repository,
                tag: names.target.tag,
            },
            target_reference: names.target_reference,
        })
    }
}

fn image_reference(parsed: &Reference) -> ImageReference {
    ImageReference {
        registry: parsed.registry().to_owned(),
        repository: parsed.repository().to_owned(),
        tag: parsed.tag().map(str::to_owned),
        digest: parsed.digest().map(str::to_owned),
        familiar: parsed.familiar(),
        canonical: parsed.canonical(),
    }
}

fn to_wit_invalid(input: InvalidInput) -> Error {
    Error::InvalidInput(hoist::plugin::types::InvalidInput {
        field: input.field.map(|f| match f {
            progress::Field::Project => RequestField::Project,
            progress::Field::Source => RequestField::Source,
            progress::Field::Target => RequestField::Target,
            progress::Field::TargetImage => RequestField::TargetImage,
            progress::Field::TargetTag => RequestField::TargetTag,
            progress::Field::Platforms => RequestField::Platforms,
            progress::Field::Options => RequestField::Options,
            progress::Field::Repositories => RequestField::Repositories,
            progress::Field::Tags => RequestField::Tags,
            progress::Field::Naming => RequestField::Naming,
        }),
        message: input.message,
    })
}

/// The import task: the engine's `Import` behind the WIT resource.
struct Task(RefCell<Import>);

impl importer::Guest for Plugin {
    type Task = Task;
}

impl importer::GuestTask for Task {
    fn start(request: ImportRequest) -> Result<importer::Task, Error> {
        let spec = import_spec(request).map_err(to_wit_error)?;
        let import = Import::start(spec).map_err(to_wit_error)?;
        Ok(importer::Task::new(Task(RefCell::new(import))))
    }

    fn advance(&self, budget_ms: u32) -> Status {
        to_wit_status(self.0.borrow_mut().advance(budget_ms))
    }

    fn status(&self) -> Status {
        to_wit_status(self.0.borrow().status())
    }

    fn cancel(&self) {
        self.0.borrow_mut().cancel();
    }
}

/// A sync plan: the engine's `Plan` behind the WIT resource.
struct PlanTask(RefCell<Plan>);

impl sync::Guest for Plugin {
    type Plan = PlanTask;

    fn select_tags(
        selection: types::TagSelection,
        tags: Vec<String>,
    ) -> Result<Vec<String>, Error> {
        crate::select::select_tags(&tag_selection(selection), &tags)
            .map_err(|e| to_wit_error(crate::plan::select_error(e)))
    }
}

impl sync::GuestPlan for PlanTask {
    fn start(request: types::SyncRequest) -> Result<sync::Plan, Error> {
        let o = request.options;
        let settings = settings(
            o.endpoints,
            o.insecure_registries,
            request.credentials,
            o.max_retries,
            o.timeouts,
            &o.host_credentials,
        )
        .map_err(to_wit_error)?;
        let spec = PlanSpec {
            registry: request.registry,
            repositories: request.repositories,
            tags: tag_selection(request.tags),
            target_registry: request.target_registry,
            naming: Naming {
                project: request.naming.project,
                path: request.naming.path.map(|p| PathNaming {
                    strip_prefix: p.strip_prefix,
                    add_prefix: p.add_prefix,
                }),
            },
            known: request
                .known
                .into_iter()
                .map(|k| KnownTag {
                    repository: k.repository,
                    tag: k.tag,
                    source_digest: k.source_digest,
                    target_digest: k.target_digest,
                })
                .collect(),
            prune_keep_minimum: request.prune_keep_minimum,
            estimate_bytes: request.estimate_bytes,
        };
        let plan = Plan::start(spec, settings).map_err(to_wit_error)?;
        Ok(sync::Plan::new(PlanTask(RefCell::new(plan))))
    }

    fn advance(&self, budget_ms: u32) -> types::PlanStatus {
        to_wit_plan_status(self.0.borrow_mut().advance(budget_ms))
    }

    fn status(&self) -> types::PlanStatus {
        to_wit_plan_status(self.0.borrow().status())
    }

    fn cancel(&self) {
        self.0.borrow_mut().cancel();
    }
}

fn tag_selection(s: types::TagSelection) -> TagSelection {
    let pattern = |p: types::Pattern| match p.kind {
        types::PatternKind::Glob => Pattern::glob(p.value),
        types::PatternKind::Regex => Pattern::regex(p.value),
    };
    TagSelection {
        include: s.include.into_iter().map(pattern).collect(),
        exclude: s.exclude.into_iter().map(pattern).collect(),
        semver: s.semver,
        prereleases: s.prereleases,
        newest: s.newest,
        digests: s.digests,
    }
}

/// The registry client's settings from a request's options.
fn settings(
    endpoints: Vec<types::RegistryEndpoints>,
    insecure: Vec<String>,
    credentials: Vec<types::Credential>,
    max_retries: u32,
    timeouts: Option<types::Timeouts>,
    host_credentials: &[String],
) -> Result<Settings, ImportError> {
    let endpoints: Vec<(String, Vec<String>)> = endpoints
        .into_iter()
        .map(|e| (e.registry, e.endpoints))
        .collect();
    let credentials: Vec<(String, String, String)> = credentials
        .into_iter()
        .map(|c| (c.registry, c.username, c.password))
        .collect();
    let timeouts = timeouts
        .map(|t| Timeouts::from_millis(t.connect_ms, t.first_byte_ms, t.idle_ms))
        .unwrap_or_default();
    Ok(
        Settings::new(&endpoints, &insecure, &credentials, max_retries, timeouts)?
            .with_host_credentials(host_credentials),
    )
}

fn to_wit_counts(c: progress::RequestCounts) -> types::RequestCounts {
    types::RequestCounts {
        manifest_head: c.manifest_head,
        manifest_get: c.manifest_get,
        blob: c.blob,
        tag_list: c.tag_list,
        catalog: c.catalog,
        referrers: c.referrers,
        token: c.token,
    }
}

fn to_wit_plan_status(s: crate::sync::PlanStatus) -> types::PlanStatus {
    types::PlanStatus {
        phase: match s.phase {
            PlanPhase::Listing => types::PlanPhase::Listing,
            PlanPhase::Comparing => types::PlanPhase::Comparing,
            PlanPhase::Done => types::PlanPhase::Done,
            PlanPhase::Failed => types::PlanPhase::Failed,
            PlanPhase::Cancelled => types::PlanPhase::Cancelled,
        },
        items: s
            .items
            .into_iter()
            .map(|i| types::PlanItem {
                source_repository: i.source_repository,
                tag: i.tag,
                source_digest: i.source_digest,
                target_repository: i.target_repository,
                target_tag: i.target_tag,
                target_digest: i.target_digest,
                action: match i.action {
                    PlanAction::Copy => types::PlanAction::Copy,
                    PlanAction::Unchanged => types::PlanAction::Unchanged,
                    PlanAction::Filtered => types::PlanAction::Filtered,
                    PlanAction::Prune => types::PlanAction::Prune,
                    PlanAction::Failed(e) => types::PlanAction::Failed(to_wit_error(e)),
                },
                reason: i.reason,
                bytes: i.bytes,
                source_reference: i.source_reference,
                target_reference: i.target_reference,
            })
            .collect(),
        repositories_done: s.repositories_done,
        repositories_total: s.repositories_total,
        requests: to_wit_counts(s.requests),
        target_requests: s.target_requests,
        error: s.error.map(to_wit_error),
        warnings: s.warnings,
    }
}

fn import_spec(r: ImportRequest) -> Result<ImportSpec, ImportError> {
    let platforms = r
        .platforms
        .into_iter()
        .map(|p| PlatformFilter {
            os: p.os,
            architecture: p.architecture,
            variant: p.variant,
        })
        .collect();
    let o = r.options;
    Ok(ImportSpec {
        source: r.source,
        target: r.target,
        platforms,
        endpoints: o
            .endpoints
            .into_iter()
            .map(|e| (e.registry, e.endpoints))
            .collect(),
        insecure: o.insecure_registries,
        concurrency: o.concurrency,
        max_retries: o.max_retries,
        chunk_size: o.chunk_size,
        mount_from: o.mount_from,
        copy_foreign_layers: o.copy_foreign_layers,
        timeouts: o
            .timeouts
            .map(|t| Timeouts::from_millis(t.connect_ms, t.first_byte_ms, t.idle_ms))
            .unwrap_or_default(),
        credentials: r
            .credentials
            .into_iter()
            .map(|c| (c.registry, c.username, c.password))
            .collect(),
        host_credentials: o.host_credentials,
        referrers: crate::referrer::ReferrerOptions {
            skip: o.referrers.skip,
            artifact_types: o.referrers.artifact_types,
            require_signature: o.referrers.require_signature,
        },
        max_bytes_per_second: (o.max_bytes_per_second > 0).then_some(o.max_bytes_per_second),
        max_retry_wait_ms: o.max_retry_wait_ms,
        dry_run: false,
    })
}

fn to_wit_error(e: ImportError) -> Error {
    match e {
        ImportError::InvalidInput(input) => to_wit_invalid(input),
        ImportError::Unauthorized(m) => Error::Unauthorized(m),
        ImportError::NotFound(m) => Error::NotFound(m),
        ImportError::RateLimited(m) => Error::RateLimited(m),
        ImportError::DigestMismatch(m) => Error::DigestMismatch(m),
        ImportError::UnsupportedMediaType(m) => Error::UnsupportedMediaType(m),
        ImportError::Network(m) => Error::Network(m),
        ImportError::Registry(m) => Error::RegistryError(m),
        ImportError::DeniedByPolicy(m) => Error::DeniedByPolicy(m),
        ImportError::Cancelled(m) => Error::Cancelled(m),
        ImportError::Unsigned(m) => Error::Unsigned(m),
    }
}

fn to_wit_status(s: progress::Status) -> Status {
    Status {
        phase: match s.phase {
            progress::Phase::Resolving => Phase::Resolving,
            progress::Phase::Copying => Phase::Copying,
            progress::Phase::PushingManifests => Phase::PushingManifests,
            progress::Phase::Done => Phase::Done,
            progress::Phase::Failed => Phase::Failed,
            progress::Phase::Cancelled => Phase::Cancelled,
        },
        bytes_done: s.bytes_done(),
        bytes_total: s.bytes_total(),
        blobs_done: s.blobs_done(),
        blobs_total: s.blobs.len() as u32,
        blobs: s
            .blobs
            .into_iter()
            .map(|b| BlobProgress {
                digest: b.digest,
                media_type: b.media_type,
                size: b.size,
                bytes_done: b.bytes_done,
                state: match b.state {
                    progress::BlobState::Pending => BlobState::Pending,
                    progress::BlobState::Skipped => BlobState::Skipped,
                    progress::BlobState::Mounted => BlobState::Mounted,
                    progress::BlobState::Copying => BlobState::Copying,
                    progress::BlobState::Done => BlobState::Done,
                    progress::BlobState::Foreign => BlobState::Foreign,
                    progress::BlobState::Failed(m) => BlobState::Failed(m),
                    progress::BlobState::Cancelled => BlobState::Cancelled,
                },
            })
            .collect(),
        referrers: s
            .referrers
            .into_iter()
            .map(|r| types::Referrer {
                digest: r.digest,
                subject: r.subject,
                artifact_type: r.artifact_type,
                kind: match r.kind {
                    Kind::Signature => types::ReferrerKind::Signature,
                    Kind::Sbom => types::ReferrerKind::Sbom,
                    Kind::Attestation => types::ReferrerKind::Attestation,
                    Kind::Other => types::ReferrerKind::Other,
                },
                tag: r.tag,
                copied: r.copied,
            })
            .collect(),
        digest: s.digest,
        target_reference: s.target_reference,
        error: s.error.map(to_wit_error),
        warnings: s.warnings,
    }
}

export!(Plugin);
