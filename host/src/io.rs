//! The host's one async runtime. Network and object-store clients
//! (`object_store`, `reqwest`) are async; the host's API is synchronous, so
//! that a CLI command, a blocking HTTP handler and a worker thread all call
//! it the same way. Every such call runs its future here and waits for it,
//! instead of each call site building a runtime of its own.

use std::future::Future;
use std::sync::OnceLock;

/// Worker threads for I/O: uploads and registry calls wait on the network,
/// they do not compute, so two are plenty even on a large machine.
const IO_THREADS: usize = 2;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(IO_THREADS)
            .thread_name("sluice-io")
            .enable_all()
            .build()
            // Only fails when the OS refuses threads or an epoll instance:
            // nothing can do I/O then, and no input of the user's causes it.
            .expect("the OS refused the threads of the I/O runtime")
    })
}

/// A handle to the I/O runtime, for spawning background tasks.
pub fn handle() -> tokio::runtime::Handle {
    runtime().handle().clone()
}

/// Runs `future` on the I/O runtime and waits for its output. Unlike
/// `Runtime::block_on` this may be called from anywhere, a thread of another
/// runtime included: the future is spawned, and the caller waits on a
/// channel.
pub fn wait<T: Send + 'static>(future: impl Future<Output = T> + Send + 'static) -> T {
    let (sender, receiver) = std::sync::mpsc::sync_channel(1);
    runtime().spawn(async move {
        let _ = sender.send(future.await);
    });
    match receiver.recv() {
        Ok(output) => output,
        // The task panicked: carry the panic to the caller, as block_on would.
        Err(_) => panic!("an I/O task panicked"),
    }
}

/// Runs `future` on the calling thread, inside the I/O runtime's context,
/// and waits for its output. Unlike [`wait`] the future may borrow (a
/// caller's `&str`, a `&Registry`): nothing is cloned into a task. Its I/O
/// and timers are still the runtime's, driven by its threads. For plain
/// threads (a command, the export's and import's loops); never from a task
/// of the I/O runtime itself, nor from inside another `block_on`.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let _context = runtime().enter();
    futures_executor::block_on(future)
}

#[cfg(test)]
mod tests {
    #[test]
    fn block_on_runs_borrowing_futures_with_the_runtimes_timers_and_blocking_pool() {
        let text = String::from("borrowed");
        let borrowed = super::block_on(async {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            let length = tokio::task::spawn_blocking(|| 8).await.unwrap();
            &text[..length]
        });
        assert_eq!(borrowed, "borrowed");
        let other = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let inside = other.block_on(async { super::block_on(async { "ok" }) });
        assert_eq!(inside, "ok");
    }

    #[test]
    fn waits_from_plain_threads_and_from_inside_another_runtime() {
        assert_eq!(super::wait(async { 1 + 1 }), 2);
        let other = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let inside = other.block_on(async { super::wait(async { "ok" }) });
        assert_eq!(inside, "ok");
    }
}
