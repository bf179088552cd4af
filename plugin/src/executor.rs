//! A single-threaded async executor over `wasi:io/poll` that lives as long as an import.
//!
//! WASI 0.2 lets no host call back into a busy instance, so the caller drives the import
//! with repeated `advance` calls. The transfers must survive from one call to the next,
//! which rules out `wstd::runtime::block_on` (it builds a new reactor on every call). This
//! keeps one set of futures per import: each `advance` runs them until the slice's
//! deadline and then returns, leaving every future, stream and pollable where it was.
//!
//! The deadline holds however fast the data flows (issue 19). A host whose streams are
//! always ready (Node's shim, whose outgoing body takes 16 KiB at a time) never makes a
//! transfer wait, so waiting cannot be the only way back to the executor. Three things
//! together bound a slice:
//! - a busy loop hands control back with [`yield_now`] once the slice is over
//!   ([`slice_over`]), or after a fair share of work so that transfers take turns (the
//!   copy loop in `http.rs` does both, checking the clock before every splice);
//! - the executor looks at the clock after every round of polling, not only when nothing
//!   can run. (`futures`' `LocalPool::run_until_stalled`, used before, polls a future that
//!   wakes itself again and again until it waits for something, so it could not stop a
//!   transfer whose streams are always ready.)
//! - the slice ends early by the host's recent slowest call ([`host_latency`]). A host
//!   call cannot be interrupted, so the one running at the deadline decides how late
//!   `advance` returns. Under wasmtime calls take microseconds; under Node every call is
//!   a synchronous round trip to the shim's worker thread, which now and then answers
//!   tens of milliseconds late (a garbage collection there, or a busy CPU), and its
//!   timers fire that late too. Measured under Node (256 MiB, advance(200), 2 cores
//!   shared with a build): the call running at the deadline (a splice, a check-write, a
//!   `ready`, or the executor's own poll, its timer up to 20 ms late) took 5–57 ms, and
//!   with several transfers each started one more splice or request after it. Once the
//!   slice is over no transfer starts a splice and no [`WaitFor`] asks the host.
//!
//! Reading `monotonic_clock::now` once per splice costs a host call that does no I/O,
//! next to a splice of up to a few MiB: nothing measurable (bench/copy.sh, 512 MiB in 4
//! layers under wasmtime: 1.60 s before, 1.53 and 1.54 s after, on a shared machine).

use futures::future::LocalBoxFuture;
use futures::stream::{self, FuturesUnordered, StreamExt};
use futures::task::ArcWake;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// When the running slice ends (monotonic nanoseconds); `u64::MAX` outside one.
    static SLICE_DEADLINE: Cell<u64> = const { Cell::new(u64::MAX) };
    /// How long the running slice is (nanoseconds).
    static SLICE_LENGTH: Cell<u64> = const { Cell::new(0) };
    /// How long the host's slowest recent call took (nanoseconds), and when that was
    /// measured: see [`note_host_call`].
    static HOST_LATENCY: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// Whether the slice the executor is running has used up its time: a future that could
/// go on working should [`yield_now`] instead.
///
/// The slice counts as over once what is left of it is shorter than the host's slowest
/// recent call ([`host_latency`]): a call cannot be interrupted, so one started just
/// before the deadline ends as late past it as the call is long. Under wasmtime calls
/// take microseconds and this is the deadline itself; under Node's shim, where each call
/// is a synchronous round trip to a worker thread, it ends the slice that much early.
pub fn slice_over() -> bool {
    let deadline = SLICE_DEADLINE.with(Cell::get);
    deadline != u64::MAX && now().saturating_add(host_latency()) >= deadline
}

/// Records how long one host call took (nanoseconds): a splice, or how late a blocking
/// poll came back after its timer. The estimate keeps the slowest, decaying with time.
pub fn note_host_call(nanos: u64) {
    let at = now();
    let slowest = decayed(HOST_LATENCY.with(Cell::get), at).max(nanos);
    HOST_LATENCY.with(|l| l.set((slowest, at)));
}

/// How long a slow host call weighs on the estimate: it counts half as much this much
/// later. A few slices of 200 ms, because a poll's lateness is seen about once a slice
/// (when its timer is what wakes it): under Node a stall or a late timer in one slice
/// then makes the next few end early enough, and one from many seconds ago does not.
/// (Under Node at 256 MiB, 8 runs each on the same loaded machine: with 100 ms, 90% of
/// the advance(200) calls took up to 204 ms; with 1 s, up to 199 ms.) Ending a slice
/// early costs a return to the host, nothing more: the transfers carry on in the next.
const LATENCY_HALF_LIFE: u64 = 1_000_000_000;

/// `(nanos, measured at)` as it stands at `at`: halved for every half-life since.
fn decayed((nanos, measured): (u64, u64), at: u64) -> u64 {
    let halvings = at.saturating_sub(measured) as f64 / LATENCY_HALF_LIFE as f64;
    (nanos as f64 * 0.5f64.powf(halvings)) as u64
}

/// The host's slowest recent call (nanoseconds), decayed (see [`note_host_call`]), and at
/// most a quarter of the running slice: however slow the host, three quarters of every
/// slice are left for work, so an import always moves on.
pub fn host_latency() -> u64 {
    decayed(HOST_LATENCY.with(Cell::get), now()).min(SLICE_LENGTH.with(Cell::get) / 4)
}

/// Hands control back to the executor once: wakes itself and is pending. The executor
/// polls it again right away unless the slice is over, in which case the next `advance`
/// carries on from here.
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
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
        // Once the slice is over the host is not asked: `ready` is a round trip too (to
        // Node's worker thread), and a yes would only start more work past the deadline,
        // the rest of a request (a future such as `join_all` polls every waiting transfer
        // whenever one of them moves). The reactor asks in the next slice instead.
        if !slice_over() && self.pollable.ready() {
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
    tasks: FuturesUnordered<LocalBoxFuture<'static, ()>>,
    /// Spawned, not yet polled.
    incoming: RefCell<Vec<LocalBoxFuture<'static, ()>>>,
    /// Set when a task asks to be polled again.
    woken: Arc<Woken>,
}

#[derive(Default)]
struct Woken(AtomicBool);

impl ArcWake for Woken {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.0.store(true, Ordering::Relaxed);
    }
}

impl Executor {
    pub fn new() -> Self {
        Self {
            tasks: FuturesUnordered::new(),
            incoming: RefCell::new(Vec::new()),
            woken: Arc::default(),
        }
    }

    pub fn spawn(&self, fut: impl Future<Output = ()> + 'static) {
        self.incoming.borrow_mut().push(Box::pin(fut));
    }

    /// Runs the futures until `finished()` says so or the monotonic clock passes
    /// `deadline` (nanoseconds), blocking in `wasi:io/poll` while nothing can run.
    pub fn run_until(&mut self, deadline: u64, finished: impl Fn() -> bool) {
        SLICE_DEADLINE.with(|d| d.set(deadline));
        SLICE_LENGTH.with(|l| l.set(deadline.saturating_sub(now())));
        self.run(deadline, finished);
        SLICE_DEADLINE.with(|d| d.set(u64::MAX));
        SLICE_LENGTH.with(|l| l.set(0));
    }

    fn run(&mut self, deadline: u64, finished: impl Fn() -> bool) {
        let waker = futures::task::waker(self.woken.clone());
        let mut cx = Context::from_waker(&waker);
        loop {
            // Poll while something can run, with a look at the clock after every round:
            // a task that yields is polled again at once, but never past the deadline.
            loop {
                self.tasks.extend(self.incoming.get_mut().drain(..));
                self.woken.0.store(false, Ordering::Relaxed);
                let stalled = match self.tasks.poll_next_unpin(&mut cx) {
                    // A task ended; the others may be ready.
                    Poll::Ready(Some(())) => false,
                    Poll::Ready(None) => self.incoming.get_mut().is_empty(),
                    Poll::Pending => !self.woken.0.load(Ordering::Relaxed),
                };
                if finished() || now().saturating_add(host_latency()) >= deadline {
                    return;
                }
                if stalled {
                    break;
                }
            }
            // Wake early by the host's latency, as `slice_over` stops early: a host whose
            // timers fire late (a busy worker thread) would otherwise return that late.
            let wake_at = deadline.saturating_sub(host_latency());
            let timer = monotonic_clock::subscribe_instant(wake_at);
            let timed_out = REACTOR.with(|r| {
                let mut r = r.borrow_mut();
                let keys: Vec<u64> = r.waiting.keys().copied().collect();
                let ready = {
                    let mut list: Vec<&Pollable> =
                        r.waiting.values().map(|(p, _)| p.as_ref()).collect();
                    list.push(&timer);
                    poll(&list)
                };
                // How late the host came back after the timer: its latency too.
                let timed_out = ready.contains(&(keys.len() as u32));
                if timed_out {
                    note_host_call(now().saturating_sub(wake_at));
                }
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
                timed_out
            });
            // The slice is over: the estimate may have shrunk a little since `wake_at`,
            // which must not send the loop back to poll for the last microseconds. The
            // futures woken with the timer run first in the next slice.
            if timed_out {
                return;
            }
        }
    }
}

impl Default for Executor {
    fn default() -> Self {
        Self::new()
    }
}

/// Runs `futures` with at most `limit` at once and returns their outputs in order: the
/// way independent requests (an index's manifests, referrers) share their round trips
/// without bursting at a registry.
pub async fn bounded<T>(
    limit: usize,
    futures: impl IntoIterator<Item = impl Future<Output = T>>,
) -> Vec<T> {
    stream::iter(futures).buffered(limit.max(1)).collect().await
}
