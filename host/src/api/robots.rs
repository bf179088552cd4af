//! Robot accounts for CI and other machines: created by the admin with rights per
//! project; their secret is shown once, at creation, and only its hash is kept.

use super::{ApiCaller, ApiError, AppState, JsonBody};
use crate::auth::{ROBOT_PREFIX, new_secret, secret_hash};
use crate::store::{ProjectScope, Robot};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRobot {
    name: String,
    /// `[{"project": "web", "actions": ["pull", "push"]}]`
    scopes: Vec<ProjectScope>,
}

pub async fn create(
    State(state): State<AppState>,
    caller: ApiCaller,
    JsonBody(body): JsonBody<NewRobot>,
) -> Result<Response, ApiError> {
    caller.require(caller.0.is_admin(), "create robot accounts")?;
    hoist_registry::check_project(&body.name).map_err(|m| ApiError::bad_request("name", m))?;
    if body.scopes.is_empty() {
        return Err(ApiError::bad_request(
            "scopes",
            "a robot needs at least one scope, like {\"project\": \"web\", \"actions\": [\"pull\"]}",
        ));
    }
    for scope in &body.scopes {
        let project = scope.project.clone();
        if state
            .store
            .run(move |s| s.db.project(&project))
            .await?
            .is_none()
        {
            return Err(ApiError::bad_request(
                "scopes",
                format!("there is no project {}; create it first", scope.project),
            ));
        }
        if scope.actions.is_empty() {
            return Err(ApiError::bad_request(
                "scopes",
                format!(
                    "the scope for {} names no action (pull, push, delete)",
                    scope.project
                ),
            ));
        }
    }
    let robot = Robot {
        name: body.name,
        scopes: body.scopes,
        created_at: hoist_common::clock::now_rfc3339(),
    };
    let secret = new_secret();
    let (record, hash) = (robot.clone(), secret_hash(&secret));
    if !state
        .store
        .run(move |s| s.create_robot(&record, &hash))
        .await?
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("the robot {} exists already", robot.name),
        )
        .field("name"));
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "username": format!("{ROBOT_PREFIX}{}", robot.name),
            "secret": secret,
            "robot": robot,
            "note": "the secret is shown this once; store it now",
        })),
    )
        .into_response())
}

pub async fn list(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<Json<Vec<Robot>>, ApiError> {
    caller.require(caller.0.is_admin(), "list robot accounts")?;
    Ok(Json(state.store.run(|s| s.robots()).await?))
}

pub async fn delete(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(caller.0.is_admin(), "delete robot accounts")?;
    let n = name.clone();
    if state.store.run(move |s| s.delete_robot(&n)).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("there is no robot {name}")))
    }
}
