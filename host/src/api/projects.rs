//! Projects: create, list, get, change visibility, delete.

use super::{ApiCaller, ApiError, AppState, JsonBody};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hoist_registry::{Action, Project, check_project};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewProject {
    name: String,
    #[serde(default)]
    public: bool,
}

fn gone(name: &str) -> ApiError {
    ApiError::not_found(format!(
        "there is no project {name}; create it first (POST /api/v1/projects)"
    ))
}

pub async fn create(
    State(state): State<AppState>,
    caller: ApiCaller,
    JsonBody(body): JsonBody<NewProject>,
) -> Result<Response, ApiError> {
    caller.require(caller.0.is_admin(), "create projects")?;
    check_project(&body.name).map_err(|m| ApiError::bad_request("name", m))?;
    let name = body.name.clone();
    let created = state
        .store
        .run(move |s| {
            Ok(match s.db.create_project(&name, body.public)? {
                true => s.db.project(&name)?,
                false => None,
            })
        })
        .await?;
    match created {
        Some(project) => Ok((StatusCode::CREATED, Json(project)).into_response()),
        None => Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("the project {} exists already", body.name),
        )
        .field("name")),
    }
}

/// The projects the caller can see: all for the admin, public ones for others.
pub async fn list(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<Json<Vec<Project>>, ApiError> {
    let projects = state.store.run(|s| s.db.projects()).await?;
    Ok(Json(
        projects
            .into_iter()
            .filter(|p| p.public || can_read(&caller, p))
            .collect(),
    ))
}

fn can_read(caller: &ApiCaller, project: &Project) -> bool {
    caller
        .0
        .may(&format!("{}/_", project.name), project.public, Action::Pull)
}

/// A project the caller may see. Anonymous callers get 401 for any project they cannot
/// see, so that they learn nothing of private projects; signed-in callers get 403 for a
/// project they have no rights on, and 404 for one that does not exist.
pub async fn visible(
    state: &AppState,
    caller: &ApiCaller,
    name: &str,
) -> Result<Project, ApiError> {
    let n = name.to_owned();
    match state.store.run(move |s| s.db.project(&n)).await? {
        Some(p) if can_read(caller, &p) => Ok(p),
        _ if caller.0.is_anonymous() => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            format!("the project {name} needs a signed-in user; pass credentials"),
        )),
        Some(_) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("{} has no rights on the project {name}", caller.0.name()),
        )),
        None => Err(gone(name)),
    }
}

pub async fn get_one(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(name): Path<String>,
) -> Result<Json<Project>, ApiError> {
    Ok(Json(visible(&state, &caller, &name).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectUpdate {
    public: bool,
}

pub async fn update(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<ProjectUpdate>,
) -> Result<Json<Project>, ApiError> {
    visible(&state, &caller, &name).await?;
    caller.require(caller.0.may_manage(&name), "change this project")?;
    let n = name.clone();
    let updated = state
        .store
        .run(move |s| {
            s.db.set_project_public(&n, body.public)?;
            s.db.project(&n)
        })
        .await?;
    // A DELETE between the check and the update leaves nothing to show.
    updated.map(Json).ok_or_else(|| gone(&name))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    #[serde(default)]
    force: bool,
}

pub async fn delete(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(name): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> Result<StatusCode, ApiError> {
    visible(&state, &caller, &name).await?;
    caller.require(caller.0.may_manage(&name), "delete this project")?;
    let n = name.clone();
    let (repositories, tasks) = state
        .store
        .run(move |s| Ok((s.db.repository_count(&n)?, s.project_task_count(&n)?)))
        .await?;
    if (repositories > 0 || tasks > 0) && !q.force {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_empty",
            format!(
                "the project {name} is not empty ({repositories} repositories, {tasks} \
                 imports in its history); delete with ?force=true to remove it and \
                 everything in it"
            ),
        ));
    }
    let n = name.clone();
    if state.store.run(move |s| s.db.delete_project(&n)).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(gone(&name))
    }
}
