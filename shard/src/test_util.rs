//! Helpers shared by this crate's tests.

use std::future::Future;

/// Runs `body` to completion on a fresh glommio executor thread, sized for
/// an 8 MiB memlock limit; a panic inside fails the test.
pub(crate) fn run_local<F, Fut>(body: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(1 << 20)
        .spawn(body)
        .expect("glommio executor starts")
        .join()
        .expect("test body ran to completion");
}
