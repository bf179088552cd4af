//! A single-threaded async executor over `wasi:io/poll` that lives as long as an import.
//!
//! WASI 0.2 lets no host call back into a busy instance, so the caller drives the import
//! with repeated `advance` calls. The transfers must survive from one call to the next,
//! which rules out `wstd::runtime::block_on` (it builds a new reactor on every call). This
//! keeps one `LocalPool` per import: each `advance` runs it until the slice's deadline and
//! then returns, leaving every future, stream and pollable where it was.

use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use wasi::clocks::monotonic_clock;
use wasi::io::poll::{Pollable, poll};

/// The pollables that futures are waiting on, with the wakers to call when they are ready.
/// Shared by every executor of the instance: a wake only schedules a future in its own pool.
#[derive(Default)]
struct Reactor {
    next_key: u64,
    waiting: BTreeMap<u64, (Rc<Pollable>, Waker)>,
}

thread_local! {
    static REACTOR: RefCell<Reactor> = RefCell::new(Reactor::default());
}

/// Resolves when `pollable` is ready.
pub fn wait_for(pollable: Pollable) -> WaitFor {
    WaitFor {
        pollable: Rc::new(pollable),
        key: None,
    }
}

pub struct WaitFor {
    pollable: Rc<Pollable>,
    key: Option<u64>,
}

impl Future for WaitFor {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.pollable.ready() {
            self.unregister();
            return Poll::Ready(());
        }
        let pollable = self.pollable.clone();
        let key = REACTOR.with(|r| {
            let mut r = r.borrow_mut();
            let key = match self.key {
                Some(key) => key,
                None => {
                    r.next_key += 1;
                    r.next_key
                }
            };
            r.waiting.insert(key, (pollable, cx.waker().clone()));
            key
        });
        self.key = Some(key);
        Poll::Pending
    }
}

impl WaitFor {
    fn unregister(&mut self) {
        if let Some(key) = self.key.take() {
            REACTOR.with(|r| r.borrow_mut().waiting.remove(&key));
        }
    }
}

impl Drop for WaitFor {
    fn drop(&mut self) {
        self.unregister();
    }
}

/// Resolves after `d`.
/// Waits until one of `pollables` is ready and returns its index.
pub async fn wait_any(pollables: Vec<Pollable>) -> usize {
    futures::future::select_all(pollables.into_iter().map(wait_for))
        .await
        .1
}

pub async fn sleep(d: Duration) {
    wait_for(monotonic_clock::subscribe_duration(d.as_nanos() as u64)).await
}

/// Nanoseconds on the monotonic clock.
pub fn now() -> u64 {
    monotonic_clock::now()
}

/// One import's futures.
pub struct Executor {
    pool: LocalPool,
}

impl Executor {
    pub fn new() -> Self {
        Self {
            pool: LocalPool::new(),
        }
    }

    pub fn spawn(&self, fut: impl Future<Output = ()> + 'static) {
        self.pool
            .spawner()
            .spawn_local(fut)
            .expect("a LocalPool accepts work while it exists");
    }

    /// Runs the futures until `finished()` says so or the monotonic clock passes
    /// `deadline` (nanoseconds), blocking in `wasi:io/poll` while nothing can run.
    pub fn run_until(&mut self, deadline: u64, finished: impl Fn() -> bool) {
        loop {
            self.pool.run_until_stalled();
            if finished() || now() >= deadline {
                return;
            }
            let timer = monotonic_clock::subscribe_instant(deadline);
            REACTOR.with(|r| {
                let mut r = r.borrow_mut();
                let keys: Vec<u64> = r.waiting.keys().copied().collect();
                let ready = {
                    let mut list: Vec<&Pollable> =
                        r.waiting.values().map(|(p, _)| p.as_ref()).collect();
                    list.push(&timer);
                    poll(&list)
                };
                // Woken entries leave the table; a future that is still not ready puts
                // itself back when it is polled. A ready pollable that nobody polls again
                // (a paused import in the same instance) then cannot make this loop spin.
                for index in ready {
                    if let Some(key) = keys.get(index as usize)
                        && let Some((_, waker)) = r.waiting.remove(key)
                    {
                        waker.wake();
                    }
                }
            });
        }
    }
}

impl Default for Executor {
    fn default() -> Self {
        Self::new()
    }
}
