//! `GET /api/v1/host`: this box's host readings (CPU, load, memory, the
//! data directory's disk, uptime, interfaces, firmware) from the one
//! [`mxgate_system::HostSampler`] kept in the state, read on a blocking
//! thread. The Dashboard shows the same report.

use crate::error::ApiError;
use crate::state::{lock, AppState};
use axum::extract::State;
use axum::Json;
use mxgate_system::{Firmware, HostReport};

/// One host reading now (CPU use since the previous reading).
///
/// # Errors
/// 500 when the blocking task fails.
pub(crate) async fn read(state: &AppState) -> Result<HostReport, ApiError> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let data_dir = state.data_dir();
        let mut report = lock(&state.inner.host).read(&data_dir);
        report.firmware = Some(firmware(&state));
        report
    })
    .await
    .map_err(ApiError::internal)
}

/// The running firmware: the binary's version and git revision.
pub(crate) fn firmware(state: &AppState) -> Firmware {
    Firmware::new(
        state.inner.version.clone(),
        state.inner.git_revision.get().map(String::as_str),
    )
}

#[utoipa::path(get, path = "/api/v1/host", tag = "status",
    responses((status = 200, description = "Host readings: hostname, kernel, uptime_s, cpu, load, \
        memory, disk (of the data directory), interfaces, firmware, problems (parts that could \
        not be read)", body = Object)),
    security(("session" = [])))]
pub(crate) async fn handler(State(state): State<AppState>) -> Result<Json<HostReport>, ApiError> {
    read(&state).await.map(Json)
}
