//! Projects: create, list, get, change visibility, delete.

use super::{ApiCaller, ApiError, AppState, JsonBody};
use crate::metadata::Project;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewProject {
    name: String,
    #[serde(default)]
    public: bool,
}

/// Project names as Harbor spells them, so that they are valid first components of a
/// repository name: lowercase letters and digits, single separators inside, 2 to 63
/// characters.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok_len = (2..=63).contains(&name.len());
    let bytes = name.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let ok_chars = bytes
        .iter()
        .all(|&b| alnum(b) || matches!(b, b'.' | b'_' | b'-'));
    let ok_ends =
        bytes.first().is_some_and(|&b| alnum(b)) && bytes.last().is_some_and(|&b| alnum(b));
    let ok_runs = !bytes.windows(2).any(|w| !alnum(w[0]) && !alnum(w[1]));
    if ok_len && ok_chars && ok_ends && ok_runs {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a project name: use 2 to 63 lowercase letters and digits, \
             with single '.', '_' or '-' between them (like my-team)"
        ))
    }
}

pub async fn create(
    State(state): State<AppState>,
    caller: ApiCaller,
    JsonBody(body): JsonBody<NewProject>,
) -> Result<Response, ApiError> {
    caller.require(caller.0.is_admin(), "create projects")?;
    check_name(&body.name).map_err(|m| ApiError::bad_request("name", m))?;
    if !state.metadata.create_project(&body.name, body.public)? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("the project {} exists already", body.name),
        )
        .field("name"));
    }
    let project = state.metadata.project(&body.name)?.expect("just created");
    Ok((StatusCode::CREATED, Json(project)).into_response())
}

/// The projects the caller can see: all for the admin, public ones for others.
pub async fn list(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<Json<Vec<Project>>, ApiError> {
    let projects = state
        .metadata
        .projects()?
        .into_iter()
        .filter(|p| p.public || caller.0.is_admin() || can_read(&caller, p))
        .collect();
    Ok(Json(projects))
}

fn can_read(caller: &ApiCaller, project: &Project) -> bool {
    caller.0.may(
        &format!("{}/_", project.name),
        project.public,
        crate::auth::scope::Action::Pull,
    )
}

/// A project the caller may see. Anonymous callers get 401 for any project they cannot
/// see, so that they learn nothing of private projects; signed-in callers get 403 for a
/// project they have no rights on, and 404 for one that does not exist.
pub fn visible(state: &AppState, caller: &ApiCaller, name: &str) -> Result<Project, ApiError> {
    match state.metadata.project(name)? {
        Some(p) if p.public || can_read(caller, &p) => Ok(p),
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
        None => Err(ApiError::not_found(format!(
            "there is no project {name}; create it first (POST /api/v1/projects)"
        ))),
    }
}

pub async fn get_one(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(name): Path<String>,
) -> Result<Json<Project>, ApiError> {
    Ok(Json(visible(&state, &caller, &name)?))
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
    visible(&state, &caller, &name)?;
    caller.require(caller.0.may_manage(&name), "change this project")?;
    state.metadata.set_project_public(&name, body.public)?;
    Ok(Json(state.metadata.project(&name)?.expect("exists")))
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
    visible(&state, &caller, &name)?;
    caller.require(caller.0.may_manage(&name), "delete this project")?;
    let repositories = state.metadata.repository_count(&name)?;
    let tasks = state.metadata.project_task_count(&name)?;
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
    state.metadata.delete_project(&name)?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::check_name;

    #[test]
    fn project_names_follow_the_harbor_rule() {
        for ok in ["ab", "my-team", "a.b_c", "x1"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["a", "A-team", "-ab", "ab-", "a--b", "a/b", &"x".repeat(64)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
