//! Sync rules and their runs: `/api/v1/projects/{project}/sync-rules…` and
//! `/api/v1/sync-runs/{id}…`. Reading needs sight of the project; changing, running or
//! planning a rule needs the right to push into it, as an import does.

use super::projects::visible;
use super::{ApiCaller, ApiError, AppState, JsonBody};
use crate::sync::rule::{Rule, RuleBody};
use crate::sync::run::{Run, Trigger};
use crate::sync::runner::Started;
use crate::sync::store::Secret;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use hoist_common::clock::{now_rfc3339, rfc3339_of_ms};
use hoist_imports::contract::{PlanAction, PlanItem, PlanPhase, PlanStatus, error_parts};
use hoist_registry::Action;
use serde::Deserialize;
use serde_json::{Value, json};
use std::convert::Infallible;

async fn may_change(state: &AppState, caller: &ApiCaller, project: &str) -> Result<(), ApiError> {
    let found = visible(state, caller, project).await?;
    caller.require(
        caller
            .0
            .may(&format!("{project}/_"), found.public, Action::Push),
        &format!("manage the sync rules of the project {project}"),
    )
}

fn invalid(e: crate::sync::rule::RuleError) -> ApiError {
    ApiError::bad_request(e.field, e.message)
}

async fn rule_of(state: &AppState, project: &str, id: &str) -> Result<Rule, ApiError> {
    let key = id.to_owned();
    match state.store.run(move |s| s.rule(&key)).await? {
        Some(rule) if rule.project == project => Ok(rule),
        _ => Err(ApiError::not_found(format!(
            "the project {project} has no sync rule {id}; list them at \
             /api/v1/projects/{project}/sync-rules"
        ))),
    }
}

/// A rule as shown: the rule, when it runs next, and its last and active runs.
async fn view(state: &AppState, rule: Rule) -> Result<Value, ApiError> {
    let id = rule.id.clone();
    let (next_due, last) = state
        .store
        .run(move |s| Ok((s.next_due(&id)?, s.sync_runs(&id, 1, 0)?)))
        .await?;
    let mut value = serde_json::to_value(&rule).map_err(ApiError::internal)?;
    value["next_run_at"] = json!(next_due.filter(|_| rule.enabled).map(rfc3339_of_ms));
    value["active_run"] = json!(state.sync.active_run(&rule.id));
    value["last_run"] = match last.first() {
        Some(run) => json!({
            "id": run.id, "state": run.state, "trigger": run.trigger,
            "started_at": run.started_at, "finished_at": run.finished_at,
            "counts": run.counts,
        }),
        None => Value::Null,
    };
    value["url"] = json!(format!(
        "/api/v1/projects/{}/sync-rules/{}",
        rule.project, rule.id
    ));
    Ok(value)
}

pub async fn list(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(project): Path<String>,
) -> Result<Json<Value>, ApiError> {
    visible(&state, &caller, &project).await?;
    let p = project.clone();
    let rules = state.store.run(move |s| s.rules(&p)).await?;
    let mut shown = Vec::with_capacity(rules.len());
    for rule in rules {
        shown.push(view(&state, rule).await?);
    }
    Ok(Json(json!({ "rules": shown })))
}

pub async fn create(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(project): Path<String>,
    JsonBody(body): JsonBody<RuleBody>,
) -> Result<Response, ApiError> {
    may_change(&state, &caller, &project).await?;
    body.check(&project).map_err(invalid)?;
    let now = now_rfc3339();
    let (rule, auth) = body.into_rule(
        hoist_common::random::id(),
        &project,
        caller.0.name(),
        now.clone(),
        now,
    );
    let sealed = auth.as_ref().map(|a| state.sync.seal(a));
    let stored = rule.clone();
    if !state
        .store
        .run(move |s| s.insert_rule(&stored, sealed.as_deref()))
        .await?
    {
        return Err(name_taken(&project, &rule.name));
    }
    tracing::info!(project = %project, rule = %rule.name, by = %caller.0.name(), "sync rule created");
    Ok((StatusCode::CREATED, Json(view(&state, rule).await?)).into_response())
}

fn name_taken(project: &str, name: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "name_taken",
        format!("the project {project} already has a sync rule named {name:?}; pick another name"),
    )
    .field("name")
}

pub async fn get_one(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path((project, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    visible(&state, &caller, &project).await?;
    let rule = rule_of(&state, &project, &id).await?;
    Ok(Json(view(&state, rule).await?))
}

/// Replaces a rule. Without `source.auth`, stored credentials are kept while the source
/// registry stays the same, and dropped when it changes.
pub async fn replace(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path((project, id)): Path<(String, String)>,
    JsonBody(body): JsonBody<RuleBody>,
) -> Result<Json<Value>, ApiError> {
    may_change(&state, &caller, &project).await?;
    let old = rule_of(&state, &project, &id).await?;
    body.check(&project).map_err(invalid)?;
    let (mut rule, auth) = body.into_rule(
        old.id.clone(),
        &project,
        old.created_by.clone(),
        old.created_at.clone(),
        now_rfc3339(),
    );
    let sealed = auth.as_ref().map(|a| state.sync.seal(a));
    let same_registry = rule.source.registry == old.source.registry;
    if sealed.is_none() && same_registry {
        rule.source.authenticated = old.source.authenticated;
    }
    let stored = rule.clone();
    let replaced = state
        .store
        .run(move |s| {
            let secret = match &sealed {
                Some(sealed) => Secret::Set(sealed),
                None if same_registry => Secret::Keep,
                None => Secret::Remove,
            };
            s.replace_rule(&stored, secret)
        })
        .await?;
    if !replaced {
        return Err(name_taken(&project, &rule.name));
    }
    Ok(Json(view(&state, rule).await?))
}

pub async fn delete(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path((project, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    may_change(&state, &caller, &project).await?;
    let rule = rule_of(&state, &project, &id).await?;
    if let Some(run) = state.sync.active_run(&rule.id) {
        state.sync.cancel(&run);
    }
    state.store.run(move |s| s.delete_rule(&rule.id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_enabled(
    state: AppState,
    caller: ApiCaller,
    project: String,
    id: String,
    enabled: bool,
) -> Result<Json<Value>, ApiError> {
    may_change(&state, &caller, &project).await?;
    let mut rule = rule_of(&state, &project, &id).await?;
    rule.enabled = enabled;
    rule.updated_at = now_rfc3339();
    let stored = rule.clone();
    state
        .store
        .run(move |s| s.replace_rule(&stored, Secret::Keep))
        .await?;
    Ok(Json(view(&state, rule).await?))
}

pub async fn enable(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path((project, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    set_enabled(state, caller, project, id, true).await
}

pub async fn disable(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path((project, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    set_enabled(state, caller, project, id, false).await
}

fn run_urls(run: &Run) -> Value {
    json!({
        "url": format!("/api/v1/sync-runs/{}", run.id),
        "events_url": format!("/api/v1/sync-runs/{}/events", run.id),
    })
}

/// Starts a run now: 202 with the run, or 409 naming the run still going (the refused
/// start is recorded as a skipped run).
pub async fn run_now(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path((project, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    may_change(&state, &caller, &project).await?;
    let rule = rule_of(&state, &project, &id).await?;
    match state.sync.start(rule, Trigger::Manual).await? {
        Started::Running(run) => {
            let mut body = run_urls(&run);
            body["run"] = json!(run);
            Ok((StatusCode::ACCEPTED, Json(body)).into_response())
        }
        Started::Skipped { skipped, active } => Ok((
            StatusCode::CONFLICT,
            Json(json!({
                "error": {
                    "code": "run_active",
                    "message": format!(
                        "the previous run {active} of this rule is still going; wait for it \
                         or cancel it at /api/v1/sync-runs/{active}/cancel"),
                },
                "active_run": active,
                "skipped_run": skipped.id,
            })),
        )
            .into_response()),
    }
}

/// A dry run of a stored rule.
pub async fn plan(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path((project, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    may_change(&state, &caller, &project).await?;
    let rule = rule_of(&state, &project, &id).await?;
    Ok(Json(plan_json(&state.sync.plan(&rule).await?)))
}

/// A dry run of a rule not stored yet: the form's live preview.
pub async fn preview(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(project): Path<String>,
    JsonBody(body): JsonBody<RuleBody>,
) -> Result<Json<Value>, ApiError> {
    may_change(&state, &caller, &project).await?;
    body.check(&project).map_err(invalid)?;
    let now = now_rfc3339();
    let (rule, auth) = body.into_rule(
        "preview".into(),
        &project,
        caller.0.name(),
        now.clone(),
        now,
    );
    let status = state
        .sync
        .plan_with(&rule, auth)
        .await
        .map_err(ApiError::from)?;
    Ok(Json(plan_json(&status)))
}

fn action_name(action: &PlanAction) -> &'static str {
    match action {
        PlanAction::Copy => "copy",
        PlanAction::Unchanged => "unchanged",
        PlanAction::Filtered => "filtered",
        PlanAction::Prune => "prune",
        PlanAction::Failed(_) => "failed",
    }
}

fn item_json(item: &PlanItem) -> Value {
    let error = match &item.action {
        PlanAction::Failed(e) => {
            let (code, message) = error_parts(e);
            json!({"code": code, "message": message})
        }
        _ => Value::Null,
    };
    json!({
        "source_repository": item.source_repository,
        "tag": item.tag,
        "source_digest": item.source_digest,
        "target_repository": item.target_repository,
        "target_tag": item.target_tag,
        "target_digest": item.target_digest,
        "action": action_name(&item.action),
        "reason": item.reason,
        "bytes": item.bytes,
        "error": error,
    })
}

/// A plan as the API shows it: every item, and the totals a person decides on.
fn plan_json(status: &PlanStatus) -> Value {
    let count = |name: &str| {
        status
            .items
            .iter()
            .filter(|i| action_name(&i.action) == name)
            .count()
    };
    let bytes: u64 = status
        .items
        .iter()
        .filter(|i| matches!(i.action, PlanAction::Copy))
        .filter_map(|i| i.bytes)
        .sum();
    let r = &status.requests;
    let error = status.error.as_ref().map(|e| {
        let (code, message) = error_parts(e);
        json!({"code": code, "message": message})
    });
    json!({
        "state": match status.phase {
            PlanPhase::Done => "done",
            PlanPhase::Cancelled => "cancelled",
            _ => "failed",
        },
        "items": status.items.iter().map(item_json).collect::<Vec<_>>(),
        "totals": {
            "copy": count("copy"), "unchanged": count("unchanged"),
            "filtered": count("filtered"), "prune": count("prune"), "failed": count("failed"),
            "bytes_to_copy": bytes,
        },
        "requests": {
            "manifest_head": r.manifest_head, "manifest_get": r.manifest_get, "blob": r.blob,
            "tag_list": r.tag_list, "catalog": r.catalog, "token": r.token,
            "target": status.target_requests,
        },
        "error": error,
        "warnings": status.warnings,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    #[serde(default = "twenty")]
    limit: u32,
    #[serde(default)]
    offset: u32,
}

fn twenty() -> u32 {
    20
}

pub async fn runs(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path((project, id)): Path<(String, String)>,
    Query(q): Query<RunsQuery>,
) -> Result<Json<Value>, ApiError> {
    visible(&state, &caller, &project).await?;
    let rule = rule_of(&state, &project, &id).await?;
    if !(1..=200).contains(&q.limit) {
        return Err(ApiError::bad_request(
            "limit",
            "limit must be between 1 and 200",
        ));
    }
    let mut runs = state
        .store
        .run(move |s| s.sync_runs(&rule.id, q.limit, q.offset))
        .await?;
    for run in runs.iter_mut() {
        if !run.state.is_finished()
            && let Some(live) = state.sync.current(&run.id).await?
        {
            *run = live;
        }
    }
    Ok(Json(json!({ "runs": runs })))
}

async fn run_for(state: &AppState, caller: &ApiCaller, id: &str) -> Result<Run, ApiError> {
    let missing = || ApiError::not_found(format!("there is no sync run {id}"));
    let run = state.sync.current(id).await?.ok_or_else(missing)?;
    // A project the caller cannot see hides its runs as if they did not exist.
    visible(state, caller, &run.project).await.map_err(|e| {
        if e.status == StatusCode::FORBIDDEN {
            missing()
        } else {
            e
        }
    })?;
    Ok(run)
}

pub async fn get_run(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<Run>, ApiError> {
    Ok(Json(run_for(&state, &caller, &id).await?))
}

pub async fn cancel_run(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let run = run_for(&state, &caller, &id).await?;
    may_change(&state, &caller, &run.project).await?;
    if !state.sync.cancel(&id) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "run_finished",
            format!("the run {id} has already ended ({})", run.state.as_str()),
        ));
    }
    Ok(Json(json!({"cancelling": id})))
}

/// The run as Server-Sent Events: `run` on every change, `end` once it has ended.
pub async fn run_events(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let run = run_for(&state, &caller, &id).await?;
    let receiver = state.sync.subscribe(&id);
    let stream = futures::stream::unfold(
        (Some(run), receiver, false),
        |(first, mut receiver, ended)| async move {
            if ended {
                return None;
            }
            let run = match first {
                Some(run) => run,
                None => {
                    let rx = receiver.as_mut()?;
                    if rx.changed().await.is_err() {
                        return None;
                    }
                    rx.borrow_and_update().clone()
                }
            };
            let finished = run.state.is_finished();
            let event = Event::default()
                .event(if finished { "end" } else { "run" })
                .json_data(&run)
                .expect("runs serialise");
            Some((Ok::<_, Infallible>(event), (None, receiver, finished)))
        },
    );
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}
