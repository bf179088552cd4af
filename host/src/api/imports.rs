//! The seed's import API: start an import into a project, follow its task, cancel or
//! retry it, list a project's tasks, and import many images in one call.

use super::projects::visible;
use super::{ApiCaller, ApiError, AppState, JsonBody};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use hoist_imports::contract::{PluginError, RequestField, error_parts};
use hoist_imports::tasks::model::{ReferrerOptions, Task, TaskState, platforms_of};
use hoist_imports::tasks::{SourceAuth, Submitted};
use hoist_registry::Action;
use serde::{Deserialize, Serialize};
use std::convert::Infallible;

/// The body of `POST /api/v1/projects/{project}/images/import`, as the seed has it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportBody {
    source_url: String,
    target_image: Option<String>,
    target_tag: Option<String>,
    auth: Option<SourceAuth>,
    /// `os/arch[/variant]` filters; all platforms when absent.
    #[serde(default)]
    platforms: Vec<String>,
    /// Which referrers travel with the image; all of them when absent.
    #[serde(default)]
    referrer_options: ReferrerOptions,
    /// A bandwidth cap on the import's source reads, in bytes per second; the source
    /// registry's configured default when absent.
    max_bytes_per_second: Option<u64>,
}

#[derive(Serialize)]
pub struct Accepted {
    task_id: String,
    /// Where the task's state is.
    url: String,
    /// Its progress as Server-Sent Events.
    events_url: String,
    /// True when the same import was already queued or running: this is that task.
    merged: bool,
    task: Task,
}

fn accepted(submitted: Submitted) -> Result<Accepted, ApiError> {
    let (task, merged) = match submitted {
        Submitted::New(t) => (t, false),
        Submitted::Merged(t) => (t, true),
        Submitted::Conflict { running, differs } => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!(
                    "task {} imports {} into {} already, with other {differs}; wait for it to \
                     end (GET /api/v1/tasks/{}) or cancel it, then import again",
                    running.id, running.source, running.target, running.id
                ),
            )
            .field(match differs {
                "credentials" => "auth",
                field => field,
            }));
        }
    };
    Ok(Accepted {
        task_id: task.id.clone(),
        url: format!("/api/v1/tasks/{}", task.id),
        events_url: format!("/api/v1/tasks/{}/events", task.id),
        merged,
        task,
    })
}

/// Checks an import body and makes its task, without queueing it.
async fn prepare(
    state: &AppState,
    caller: &ApiCaller,
    project: &str,
    body: &ImportBody,
) -> Result<Task, ApiError> {
    let found = visible(state, caller, project).await?;
    caller.require(
        caller
            .0
            .may(&format!("{project}/_"), found.public, Action::Push),
        &format!("import into the project {project}"),
    )?;
    if let Some(auth) = &body.auth
        && (auth.username.is_empty() || auth.password.is_empty())
    {
        return Err(ApiError::bad_request(
            "auth",
            "auth needs both a username and a password (or token); leave auth out for a \
             public image",
        ));
    }
    let source = body.source_url.trim();
    let names = state
        .plugin
        .name_import(
            project,
            source,
            body.target_image.as_deref().filter(|s| !s.is_empty()),
            body.target_tag.as_deref().filter(|s| !s.is_empty()),
            &state.external_host,
        )
        .await?
        .map_err(|e| plugin_field_error(&e))?;
    platforms_of(&body.platforms).map_err(|m| ApiError::bad_request("platforms", m))?;
    body.referrer_options
        .check()
        .map_err(|m| ApiError::bad_request("referrer_options", m))?;
    if body.max_bytes_per_second == Some(0) {
        return Err(ApiError::bad_request(
            "max_bytes_per_second",
            "a bandwidth cap must be at least 1 byte per second; leave it out for the \
             registry's default",
        ));
    }
    let mut task = Task::queued(
        project,
        source,
        names.source.canonical,
        names.target_reference,
        caller.0.name(),
    );
    task.platforms.clone_from(&body.platforms);
    task.authenticated = body.auth.is_some();
    task.referrer_options = body.referrer_options.clone();
    task.max_bytes_per_second = body.max_bytes_per_second;
    Ok(task)
}

/// A plugin's refusal of an input, as a 400 naming the field the plugin named.
fn plugin_field_error(e: &PluginError) -> ApiError {
    let (code, message) = error_parts(e);
    let PluginError::InvalidInput(input) = e else {
        // Naming a target needs no network; any other error is the plugin's fault.
        return ApiError::internal(format!("the plugin failed to name a target: {message}"));
    };
    let field = match input.field {
        Some(RequestField::Project) => "project",
        Some(RequestField::TargetImage) => "target_image",
        Some(RequestField::TargetTag) => "target_tag",
        Some(RequestField::Platforms) => "platforms",
        Some(RequestField::Options) => "options",
        Some(RequestField::Repositories) => "repositories",
        Some(RequestField::Tags) => "tags",
        Some(RequestField::Naming) => "naming",
        Some(RequestField::Source | RequestField::Target) | None => "source_url",
    };
    ApiError::new(StatusCode::BAD_REQUEST, code, message).field(field)
}

pub async fn import(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(project): Path<String>,
    JsonBody(body): JsonBody<ImportBody>,
) -> Result<Response, ApiError> {
    let task = prepare(&state, &caller, &project, &body).await?;
    let submitted = state.runner.submit(task, body.auth).await?;
    let accepted = accepted(submitted)?;
    tracing::info!(
        task = %accepted.task_id,
        project = %project,
        source = %accepted.task.source_canonical,
        merged = accepted.merged,
        by = %caller.0.name(),
        "import accepted"
    );
    let location = accepted.url.clone();
    Ok((
        StatusCode::ACCEPTED,
        [(axum::http::header::LOCATION, location)],
        Json(accepted),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    /// One entry per image, each as the single import's body.
    images: Vec<ImportBody>,
}

#[derive(Serialize)]
pub struct BatchItem {
    index: usize,
    source_url: String,
    #[serde(flatten)]
    outcome: BatchOutcome,
}

#[derive(Serialize)]
#[serde(untagged)]
pub enum BatchOutcome {
    Accepted(Box<Accepted>),
    Refused { error: serde_json::Value },
}

/// Many imports at once: each entry becomes a task of its own, and a bad entry is
/// reported without stopping the others. Blobs the images share are copied once:
/// each later task finds them on the target and skips them.
pub async fn batch(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(project): Path<String>,
    JsonBody(body): JsonBody<BatchBody>,
) -> Result<Response, ApiError> {
    if body.images.is_empty() {
        return Err(ApiError::bad_request(
            "images",
            "images is empty; list at least one {\"source_url\": …}",
        ));
    }
    visible(&state, &caller, &project).await?;
    let mut items = Vec::new();
    for (index, image) in body.images.into_iter().enumerate() {
        let source_url = image.source_url.clone();
        let outcome = match prepare(&state, &caller, &project, &image).await {
            Ok(task) => match accepted(state.runner.submit(task, image.auth).await?) {
                Ok(a) => BatchOutcome::Accepted(Box::new(a)),
                Err(e) => BatchOutcome::Refused {
                    error: serde_json::json!({"code": e.code, "message": e.message,
                        "field": e.field}),
                },
            },
            // The caller's rights are the same for every entry: stop at the first 401/403.
            Err(e) if matches!(e.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
                return Err(e);
            }
            Err(e) => BatchOutcome::Refused {
                error: serde_json::json!({"code": e.code, "message": e.message, "field": e.field}),
            },
        };
        items.push(BatchItem {
            index,
            source_url,
            outcome,
        });
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "items": items })),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    state: Option<String>,
    #[serde(default = "default_limit")]
    limit: u32,
    #[serde(default)]
    offset: u32,
}

fn default_limit() -> u32 {
    50
}

pub async fn list(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(project): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    visible(&state, &caller, &project).await?;
    let filter = match q.state.as_deref() {
        None | Some("") => None,
        Some(s) => Some(TaskState::parse(s).ok_or_else(|| {
            ApiError::bad_request(
                "state",
                format!(
                    "{s:?} is not a task state: queued, running, succeeded, failed or cancelled"
                ),
            )
        })?),
    };
    if !(1..=500).contains(&q.limit) {
        return Err(ApiError::bad_request(
            "limit",
            "limit must be between 1 and 500",
        ));
    }
    let tasks: Vec<Task> = state
        .runner
        .list(&project, filter, q.limit, q.offset)
        .await?;
    let next = (tasks.len() as u32 == q.limit).then(|| {
        format!(
            "/api/v1/projects/{project}/tasks?limit={}&offset={}{}",
            q.limit,
            q.offset + q.limit,
            q.state
                .as_deref()
                .map(|s| format!("&state={s}"))
                .unwrap_or_default()
        )
    });
    Ok(Json(serde_json::json!({ "tasks": tasks, "next": next })))
}

/// A task the caller may see.
async fn task_for(state: &AppState, caller: &ApiCaller, id: &str) -> Result<Task, ApiError> {
    let missing = || ApiError::not_found(format!("there is no task {id}"));
    let task = state.runner.current(id).await?.ok_or_else(missing)?;
    visible(state, caller, &task.project)
        .await
        .map_err(|_| missing())?;
    Ok(task)
}

pub async fn get_task(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<Task>, ApiError> {
    Ok(Json(task_for(&state, &caller, &id).await?))
}

async fn require_push(
    state: &AppState,
    caller: &ApiCaller,
    task: &Task,
    what: &str,
) -> Result<(), ApiError> {
    let project = task.project.clone();
    let public = state
        .store
        .run(move |s| s.db.project(&project))
        .await?
        .is_some_and(|p| p.public);
    caller.require(
        caller
            .0
            .may(&format!("{}/_", task.project), public, Action::Push),
        what,
    )
}

pub async fn cancel(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let task = task_for(&state, &caller, &id).await?;
    require_push(&state, &caller, &task, "cancel this import").await?;
    if !state.runner.cancel_anywhere(&id).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "finished",
            format!(
                "the task {id} has finished ({}); nothing to cancel",
                task.state.as_str()
            ),
        ));
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(task_for(&state, &caller, &id).await?),
    )
        .into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RetryBody {
    auth: Option<SourceAuth>,
}

pub async fn retry(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    // The body is optional: empty, or `{"auth": {…}}` with new credentials.
    let body: RetryBody = if body.iter().all(u8::is_ascii_whitespace) {
        RetryBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                format!("{e}; send nothing, or {{\"auth\": {{\"username\", \"password\"}}}}"),
            )
        })?
    };
    let task = task_for(&state, &caller, &id).await?;
    require_push(&state, &caller, &task, "retry this import").await?;
    if !matches!(task.state, TaskState::Failed | TaskState::Cancelled) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_retryable",
            format!(
                "the task {id} is {}; only failed or cancelled tasks can be retried",
                task.state.as_str()
            ),
        ));
    }
    let task = state.runner.retry(task, body.auth).await?;
    Ok((StatusCode::ACCEPTED, Json(task)).into_response())
}

/// The task's progress as Server-Sent Events: a `task` event with the whole task at
/// once and after every change, and an `end` event when it has finished.
pub async fn events(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let task = task_for(&state, &caller, &id).await?;
    let receiver = state.runner.follow(&id).await?;
    let stream = futures::stream::unfold(
        (Some(task), receiver, false),
        |(first, mut receiver, ended)| async move {
            if ended {
                return None;
            }
            let task = match first {
                Some(task) => task,
                None => {
                    let rx = receiver.as_mut()?;
                    if rx.changed().await.is_err() {
                        return None;
                    }
                    rx.borrow_and_update().clone()
                }
            };
            let finished = task.state.is_finished();
            let event = Event::default()
                .event(if finished { "end" } else { "task" })
                .json_data(&task)
                .expect("tasks serialise");
            Some((Ok::<_, Infallible>(event), (None, receiver, finished)))
        },
    );
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}
