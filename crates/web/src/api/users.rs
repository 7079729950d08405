//! `GET/POST /api/v1/users` and `DELETE /api/v1/users/{name}`: the web
//! UI's accounts (synced to the peer). The last admin cannot be removed.

use super::ApiJson;
use crate::auth::password::{check_password_rules, hash_password};
use crate::auth::{check_user_name, AuthUser};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use mxgate_store::{Role, User};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

/// A new account.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct NewUser {
    /// 1 to 64 of `A-Z a-z 0-9 . _ @ -`.
    pub name: String,
    /// `admin` or `readonly`.
    pub role: String,
    /// At least 10 characters.
    pub password: String,
}

/// An account as listed.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserView {
    /// User name.
    pub name: String,
    /// `admin` or `readonly`.
    pub role: String,
    /// Created (Unix seconds).
    pub created_unix: i64,
    /// Last changed (Unix seconds).
    pub updated_unix: i64,
}

impl From<User> for UserView {
    fn from(u: User) -> UserView {
        UserView {
            name: u.name,
            role: u.role.as_str().to_string(),
            created_unix: u.created_unix,
            updated_unix: u.updated_unix,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    responses((status = 200, description = "Every account", body = [UserView])),
    security(("session" = [])))]
pub(crate) async fn list(State(state): State<AppState>) -> Result<Json<Vec<UserView>>, ApiError> {
    let users = state.blocking(|store| Ok(store.users()?)).await?;
    Ok(Json(users.into_iter().map(UserView::from).collect()))
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = NewUser,
    responses(
        (status = 201, description = "Created", body = UserView),
        (status = 409, description = "The name is taken"),
        (status = 422, description = "A refused field"),
    ), security(("session" = [])))]
pub(crate) async fn create(
    State(state): State<AppState>,
    by: AuthUser,
    ApiJson(new): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    if let Some(reason) = check_user_name(&new.name) {
        return Err(ApiError::invalid("name", reason));
    }
    let role = Role::parse(&new.role)
        .ok_or_else(|| ApiError::invalid("role", "must be admin or readonly"))?;
    if let Some(reason) = check_password_rules(&new.password) {
        return Err(ApiError::invalid("password", reason));
    }
    let name = new.name.clone();
    let user = state
        .blocking(move |store| {
            if !store.create_user(&new.name, role, &hash_password(&new.password))? {
                return Err(ApiError::conflict(format!(
                    "a user called {:?} exists already",
                    new.name
                )));
            }
            store.audit(
                &by.name,
                "user.add",
                &new.name,
                &json!({ "role": role.as_str() }),
            )?;
            store
                .users()?
                .into_iter()
                .find(|u| u.name == name)
                .ok_or_else(|| ApiError::internal("the new user is gone"))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

#[utoipa::path(delete, path = "/api/v1/users/{name}", tag = "users",
    params(("name" = String, Path, description = "User name")),
    responses(
        (status = 204, description = "Removed, with its sessions"),
        (status = 404, description = "No such user"),
        (status = 409, description = "The last admin cannot be removed"),
    ), security(("session" = [])))]
pub(crate) async fn remove(
    State(state): State<AppState>,
    by: AuthUser,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .blocking(move |store| {
            let users = store.users()?;
            let Some(target) = users.iter().find(|u| u.name == name) else {
                return Err(ApiError::not_found(format!("no user is called {name:?}")));
            };
            let admins = users.iter().filter(|u| u.role == Role::Admin).count();
            if target.role == Role::Admin && admins == 1 {
                return Err(ApiError::conflict("the last admin cannot be removed"));
            }
            store.delete_user(&name)?;
            store.audit(&by.name, "user.remove", &name, &json!({}))?;
            Ok(StatusCode::NO_CONTENT)
        })
        .await
}
