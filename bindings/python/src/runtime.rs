//! The bridge between tokio and asyncio, made safe for interpreter exit.
//!
//! `pyo3-async-runtimes` completes an asyncio future from a thread of tokio's blocking pool: that
//! thread attaches to Python (`PyGILState_Ensure`) and calls `loop.call_soon_threadsafe`. If the
//! main thread finishes `asyncio.run` meanwhile (it can take the GIL in the middle of that call) and
//! the interpreter starts finalizing, the tokio thread later asks for the GIL back and CPython either
//! ends it with `pthread_exit` (an abort, as the unwind crosses Rust frames) or stops the process
//! with `Fatal Python error: PyGILState_Release`. About 1 in 20 short scripts died that way.
//!
//! The rule here: **no runtime thread touches Python once the interpreter exits**. Every piece of
//! work that attaches to Python (the completions of [`future_into_py`]) passes through [`GATE`]:
//! an `atexit` hook ([`close`]), run before CPython begins finalizing, closes the gate and waits,
//! with the GIL released, until the work already inside has left; work arriving later is dropped
//! without attaching (its Python references go to pyo3's pending pool and are never touched).
//! The gate is process-wide because the interpreter's exit is.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3_async_runtimes::TaskLocals;
use pyo3_async_runtimes::generic::{self, ContextExt, Runtime};
use tokio::sync::OnceCell;

/// How long [`close`] waits for work already attached to Python to finish.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Admits work that touches Python until the interpreter exits.
struct Gate {
    closed: AtomicBool,
    inside: AtomicUsize,
}

/// The one gate of this process (see the module documentation).
static GATE: Gate = Gate {
    closed: AtomicBool::new(false),
    inside: AtomicUsize::new(0),
};

/// Proof of being inside a gate; leaving is dropping it.
struct Pass(&'static Gate);

impl Gate {
    /// A pass, or `None` once the gate is closed. Sequentially consistent with [`Gate::close`]:
    /// either `close` sees this pass counted, or this sees the gate closed.
    fn enter(&'static self) -> Option<Pass> {
        self.inside.fetch_add(1, Ordering::SeqCst);
        if self.closed.load(Ordering::SeqCst) {
            self.inside.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Pass(self))
    }

    /// Closes the gate and waits up to `wait` for the passes out; true if all left.
    fn close(&self, wait: Duration) -> bool {
        self.closed.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + wait;
        while self.inside.load(Ordering::SeqCst) > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        self.0.inside.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The `atexit` hook: closes the gate, waiting with the GIL released so that work already
/// inside can finish its call into Python.
#[pyfunction]
pub(crate) fn close(py: Python<'_>) -> bool {
    py.detach(|| GATE.close(CLOSE_WAIT))
}

/// Registers [`close`] with `atexit` (called when the module is imported).
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let hook = wrap_pyfunction!(close, m)?;
    m.py().import("atexit")?.call_method1("register", (hook,))?;
    Ok(())
}

tokio::task_local! {
    static TASK_LOCALS: OnceCell<TaskLocals>;
}

/// `pyo3-async-runtimes`' tokio runtime with every call into Python behind [`GATE`].
struct GatedTokio;

impl Runtime for GatedTokio {
    type JoinError = tokio::task::JoinError;
    type JoinHandle = tokio::task::JoinHandle<()>;

    fn spawn<F>(fut: F) -> Self::JoinHandle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        pyo3_async_runtimes::tokio::get_runtime().spawn(fut)
    }

    /// `pyo3-async-runtimes` attaches to Python only here (completing a future): behind the gate.
    fn spawn_blocking<F>(f: F) -> Self::JoinHandle
    where
        F: FnOnce() + Send + 'static,
    {
        pyo3_async_runtimes::tokio::get_runtime().spawn_blocking(move || {
            if let Some(_pass) = GATE.enter() {
                f();
            }
        })
    }
}

impl ContextExt for GatedTokio {
    fn scope<F, R>(locals: TaskLocals, fut: F) -> Pin<Box<dyn Future<Output = R> + Send>>
    where
        F: Future<Output = R> + Send + 'static,
    {
        Box::pin(TASK_LOCALS.scope(OnceCell::new_with(Some(locals)), fut))
    }

    fn get_task_locals() -> Option<TaskLocals> {
        TASK_LOCALS
            .try_with(|c| c.get().cloned())
            .unwrap_or_default()
    }
}

/// An asyncio awaitable for `fut`, completed through the gate.
pub(crate) fn future_into_py<F, T>(py: Python<'_>, fut: F) -> PyResult<Bound<'_, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'py> IntoPyObject<'py> + Send + 'static,
{
    generic::future_into_py::<GatedTokio, F, T>(py, fut)
}

/// Run `f` attached to Python, unless the interpreter is exiting (then `None`): for calls into
/// Python from runtime threads outside [`future_into_py`] (a `logfile=` file object).
pub(crate) fn with_python<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> Option<R> {
    let _pass = GATE.enter()?;
    Some(Python::attach(f))
}
