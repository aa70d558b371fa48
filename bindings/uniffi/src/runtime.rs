//! The tokio runtime every call runs on: blocking methods wait for it (`block_on`), `_async`
//! methods spawn onto it and await the task from the caller's executor (Kotlin coroutines, Swift
//! tasks, Ruby's wait on a pipe), so no foreign executor ever needs a tokio context.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::Runtime;

use crate::error::MoError;

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// The shared runtime, started on first use (two worker threads: consoles are I/O bound).
fn runtime() -> Result<&'static Runtime, MoError> {
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("mo-ffi")
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start mo's tokio runtime: {e}"))
        })
        .as_ref()
        .map_err(|e| MoError::Other(e.clone()))
}

/// Run `fut` on the runtime and wait for it here (the blocking methods). Not for use on a
/// thread of the runtime itself (no foreign caller is one).
pub(crate) fn block<T>(fut: impl Future<Output = Result<T, MoError>>) -> Result<T, MoError> {
    runtime()?.block_on(fut)
}

/// Run `fut` as a task of the runtime and await its result (the `_async` methods).
pub(crate) async fn spawn<T: Send + 'static>(
    fut: impl Future<Output = Result<T, MoError>> + Send + 'static,
) -> Result<T, MoError> {
    runtime()?
        .spawn(fut)
        .await
        .map_err(|e| MoError::Other(format!("mo's task for this call failed: {e}")))?
}
