//! The I/O under each connection (see [`wrap`]): one layer, [`Guarded`], over the TCP stream as
//! [`crate::observe`] hands it over (connection metrics, `--trace`). It carries out a route's `fault` and runs the
//! idle and write watchdogs. And the accept side: the connection cap.
//!
//! One layer, not one per concern: every read and write of every connection crosses it (a stream of small events
//! pays it per event), so when nothing is traced and no fault is armed a read or write is a check of the fault switch
//! and one call to tokio's `TcpStream` (BENCHMARKS.md, issue 16).
//!
//! Faults: a route with `fault = "reset" | "close" | "garbage"` still goes through the router like any other (it is
//! counted, journaled and delayed); its response carries the [`Fault`] as an extension. The connection's service sees
//! it, arms the connection's [`Trigger`] and fails the request, so hyper drops the connection without writing an
//! answer. [`Guarded`] then refuses all further reads and writes and, when hyper drops it, does what the fault asks
//! before the socket closes: a zero linger (the kernel then sends a TCP RST instead of a FIN), bytes that are not
//! HTTP, or nothing (a plain close).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use http::Response;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

use hyper_util::server::graceful::GracefulConnection;

use crate::config::Fault;
use crate::observe::ObservedStream;
use crate::route::proxy::Local;

/// A connection's I/O: the observed socket with its fault switch and its watchdogs.
pub(crate) fn wrap(
    stream: ObservedStream,
    activity: Arc<Activity>,
    idle_timeout: Duration,
    write_timeout: Duration,
) -> Guarded<ObservedStream> {
    Guarded::new(stream, activity, idle_timeout, write_timeout)
}

/// The bytes a `garbage` fault sends: not an HTTP status line, with a NUL and bytes that are not UTF-8.
pub const GARBAGE: &[u8] = b"\x00\xff\xfe garbage from hotroute: this is not HTTP \x13\x37\r\n\r\n";

/// The error a connection's service returns for a faulty route; hyper then drops the connection unanswered.
#[derive(Debug, thiserror::Error)]
#[error("fault injected by the route: {0}")]
pub struct FaultError(pub Fault);

/// One connection's fault switch, shared by its service (which arms it) and its I/O (which acts on it): the
/// connection's [`Activity`], whose `fault` it is.
#[derive(Debug, Clone)]
pub struct Trigger(Arc<Activity>);

impl Trigger {
    /// The fault switch of `activity`'s connection.
    pub(crate) fn new(activity: &Arc<Activity>) -> Self {
        Trigger(activity.clone())
    }

    fn arm(&self, fault: Fault) {
        self.0.fault.store(fault.code(), Ordering::Release);
    }

    /// Passes `response` on, or, when it carries a [`Fault`], arms the connection and fails the request.
    pub fn check<B>(&self, mut response: Response<B>) -> Result<Response<B>, FaultError> {
        match response.extensions_mut().remove::<Fault>() {
            None => Ok(response),
            Some(fault) => {
                self.arm(fault);
                Err(FaultError(fault))
            }
        }
    }
}

/// What [`Guarded`] reads and writes: a connection's socket, which it goes around when nothing observes it.
pub trait Socket: AsyncRead + AsyncWrite + Unpin {
    /// The TCP stream to read and write directly, skipping this type's own `AsyncRead`/`AsyncWrite` (see
    /// [`ObservedStream::bare`]); `None` to go through them.
    fn bare(&mut self) -> Option<&mut TcpStream>;
    /// The TCP stream, for what a fault does to it when the connection drops; `None` when there is none.
    fn tcp(&self) -> Option<&TcpStream>;
}

impl Socket for ObservedStream {
    #[inline]
    fn bare(&mut self) -> Option<&mut TcpStream> {
        ObservedStream::bare(self)
    }

    fn tcp(&self) -> Option<&TcpStream> {
        Some(ObservedStream::tcp(self))
    }
}

/// What one connection is doing, shared by its service (which counts the requests in flight and the responses being
/// sent), its [`Guarded`] I/O (whose watchdogs read it) and the accept loop (which closes the longest-idle connection
/// when the cap is reached).
///
/// A connection is idle when no request is in flight on it, whatever bytes cross it: the PINGs of an HTTP/2 client
/// keep its socket busy but ask nothing of the server. And it is busy while a request is in flight, even when nothing
/// crosses it: a `delay` of an hour is an answer on its way, not silence.
///
/// Laid out in declaration order (`repr(C)`) and on a cache line of its own (`align(64)`: the `Arc`'s counts, which a
/// wake does not touch, sit in the 64 bytes before it), with the fields every wake of a connection that sends a
/// stream reads or writes in that first line: with 1,000 streams the connections' state does not stay in the CPU's
/// caches between two events, and each line a wake touches is a miss (BENCHMARKS.md, issue 16). The proxy's
/// per-connection [`Local`] follows, its "has an upstream connection" flag first.
#[derive(Debug)]
#[repr(C, align(64))]
pub(crate) struct Activity {
    /// Requests whose service has started and whose response body hyper has not yet dropped. 32 bits, like
    /// `sending` (bounded by `max_concurrent_streams` and the pipelining hyper allows): the 8 bytes saved put
    /// `local`'s flag in the first line.
    in_flight: AtomicU32,
    /// Response bodies handed to hyper and not yet finished (how many are in `bodies`, read without the lock).
    sending: AtomicU32,
    /// The clock of the one body in flight on most connections, kept out of `bodies` (see [`Activity::sending`]),
    /// and here rather than in an allocation of its own: one cache line less per wake.
    slot: AtomicU64,
    /// When hyper's wait for the next HTTP/1 request head times out (`header_read_timeout`), in [`now_ms`]
    /// milliseconds; `u64::MAX` when it is not waiting. Set through [`HeadTimer`], watched by [`Guarded`].
    head_deadline: AtomicU64,
    /// The connection task's waker, for the changes here that must wake it (eviction, going idle, a streamed body
    /// that has its next chunk, see [`Sending::body_waker`]). Lock-free: [`Graceful`] registers it before each poll
    /// of the connection, and a read that waits outside that poll (a TLS handshake, an upgraded connection's task)
    /// registers it too.
    waker: futures_util::task::AtomicWaker,
    /// Whether a body uses `slot`.
    slot_taken: AtomicBool,
    /// The server is shutting down: finish what is in flight, then close (see [`Graceful`]).
    shutdown: AtomicBool,
    /// The socket woke the task for reading since its last read waited (see [`FlagWake`]).
    read_woken: AtomicBool,
    /// The connection's fault (see [`Trigger`]): a [`Fault`]'s code, 0 for none. Here rather than in an allocation
    /// of its own: every read and write checks it.
    fault: AtomicU8,
    /// Set by the accept loop: close this connection as soon as it is idle, to admit a new one.
    evicted: AtomicBool,
    /// An answer went out before its request body was read: close by draining (see [`Activity::linger`]).
    linger: AtomicBool,
    /// [`Guarded`]'s watchdog timer fired since it was last armed (see [`FlagWake`]).
    deadline_fired: AtomicBool,
    /// The connection's own upstream connection for the proxy, polled by [`Graceful`] with the connection.
    pub(crate) local: Local,
    /// When `in_flight` last went to 0 (or the connection was accepted), in [`now_ms`] milliseconds.
    idle_since: AtomicU64,
    /// For each body but the one in `slot`, when hyper last took a chunk of it (or it started), in [`now_ms`]
    /// milliseconds. Each body has its own clock: a client cannot keep a stalled stream alive by opening new ones.
    bodies: Mutex<Vec<Arc<AtomicU64>>>,
}

/// A monotonic clock in milliseconds: the clock of [`Activity`]'s atomics. Read a few times per request, and
/// only to millisecond precision, so on Linux it is the kernel's coarse clock (the time of the last tick, a few
/// ms old at most, read without the timer hardware: a fraction of the cost of `Instant::now` in a VM).
#[cfg(target_os = "linux")]
#[inline]
fn now_ms() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec to write to. CLOCK_MONOTONIC_COARSE exists on every Linux since 2.6.32; were
    // it refused, CLOCK_MONOTONIC counts from the same origin.
    unsafe {
        if libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) != 0 {
            libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
        }
    }
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1000 + u64::try_from(ts.tv_nsec).unwrap_or(0) / 1_000_000
}

/// Milliseconds since the first call in this process.
#[cfg(not(target_os = "linux"))]
fn now_ms() -> u64 {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    u64::try_from(EPOCH.get_or_init(std::time::Instant::now).elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl Activity {
    /// A connection just accepted: idle from now.
    pub(crate) fn new() -> Arc<Self> {
        let now = now_ms();
        Arc::new(Activity {
            in_flight: AtomicU32::new(0),
            sending: AtomicU32::new(0),
            idle_since: AtomicU64::new(now),
            bodies: Mutex::default(),
            slot: AtomicU64::new(now),
            slot_taken: AtomicBool::new(false),
            evicted: AtomicBool::new(false),
            waker: futures_util::task::AtomicWaker::new(),
            linger: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            read_woken: AtomicBool::new(false),
            head_deadline: AtomicU64::new(u64::MAX),
            fault: AtomicU8::new(0),
            deadline_fired: AtomicBool::new(false),
            local: Local::default(),
        })
    }

    /// Whether a fault is armed (see [`Trigger`]): one load, for the checks on every read and write.
    #[inline]
    fn fault_armed(&self) -> bool {
        self.fault.load(Ordering::Acquire) != 0
    }

    /// The fault armed, if any.
    fn fault(&self) -> Option<Fault> {
        Fault::from_code(self.fault.load(Ordering::Acquire))
    }

    /// A request has started on this connection; it is in flight until the returned guard drops (keep it in the
    /// response body, which hyper drops once the body is sent or the stream ends).
    pub(crate) fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        Busy(self.clone())
    }

    /// A response body is handed to hyper; the guard records each chunk hyper takes until it drops.
    pub(crate) fn sending(self: &Arc<Self>) -> Sending {
        // The first body uses the connection's own clock (HTTP/1 never sends two at once): no allocation, no lock.
        if !self.slot_taken.swap(true, Ordering::SeqCst) {
            self.slot.store(now_ms(), Ordering::Relaxed);
            self.sending.fetch_add(1, Ordering::SeqCst);
            return Sending { activity: self.clone(), own: None, waker: None };
        }
        let progress = Arc::new(AtomicU64::new(now_ms()));
        self.bodies.lock().unwrap_or_else(|e| e.into_inner()).push(progress.clone());
        self.sending.fetch_add(1, Ordering::SeqCst);
        Sending { activity: self.clone(), own: Some(progress), waker: None }
    }

    /// When the body that has waited longest for hyper last moved; `None` when no body is being sent.
    #[inline]
    fn oldest_progress(&self) -> Option<u64> {
        let sending = self.sending.load(Ordering::SeqCst);
        if sending == 0 {
            return None;
        }
        let slot = self.slot_taken.load(Ordering::SeqCst).then(|| self.slot.load(Ordering::Relaxed));
        if sending == 1 && slot.is_some() {
            return slot;
        }
        let bodies = self.bodies.lock().unwrap_or_else(|e| e.into_inner());
        bodies.iter().map(|p| p.load(Ordering::Relaxed)).chain(slot).min()
    }

    /// Since when the connection has been idle (no request in flight), in [`now_ms`] milliseconds; `None` while a
    /// request is.
    #[inline]
    fn idle_since(&self) -> Option<u64> {
        (self.in_flight.load(Ordering::SeqCst) == 0).then(|| self.idle_since.load(Ordering::SeqCst))
    }

    /// An answer (a 413) went out before the request body was read. When hyper then closes the connection, closing
    /// the socket with the client's bytes unread would make the kernel send a reset, and a client still sending its
    /// body often loses the answer with it. So the close sends a FIN and then reads and drops what the client still
    /// sends, until it closes too, for at most [`LINGER_TIME`] and [`LINGER_BYTES`] (nginx's lingering close).
    pub(crate) fn linger(&self) {
        self.linger.store(true, Ordering::Relaxed);
    }

    fn wake(&self) {
        // Taken by the wake: the woken task registers again on its next read that waits (and in `Graceful`).
        self.waker.wake();
    }

    fn register(&self, cx: &Context<'_>) {
        self.waker.register(cx.waker());
    }
}

/// A request in flight (see [`Activity::begin`]).
#[derive(Debug)]
pub(crate) struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        // The idle time is written before the count can reach 0, so that whoever sees 0 sees when it started.
        self.0.idle_since.store(now_ms(), Ordering::SeqCst);
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            // Arms the idle watchdog (or closes an evicted connection) even if no byte arrives to wake the task.
            self.0.wake();
        }
    }
}

/// A response body being sent (see [`Activity::sending`]).
#[derive(Debug)]
pub(crate) struct Sending {
    activity: Arc<Activity>,
    /// This body's clock when it is not the connection's `slot` (another body has that).
    own: Option<Arc<AtomicU64>>,
    /// The last waker made by [`Sending::body_waker`] and the task's waker it wraps. A connection's task keeps its
    /// waker, so one is made per body rather than one (an allocation, and a new waker for the body's timer to
    /// register) per poll, which a stream of small events pays for every event.
    waker: Option<(Waker, Waker)>,
}

impl Sending {
    /// hyper took a chunk (or asked for one): the client is reading this response.
    #[inline]
    pub(crate) fn progress(&self) {
        self.clock().store(now_ms(), Ordering::Relaxed);
    }

    /// This body's clock: the connection's `slot`, or its own.
    #[inline]
    fn clock(&self) -> &AtomicU64 {
        self.own.as_deref().unwrap_or(&self.activity.slot)
    }

    /// The body answered `Pending` to a poll with this task's waker and has not woken it since: polling it again
    /// would answer `Pending` again (a future becomes ready only through a wake, which marks the clock first, see
    /// [`BodyWake`]). hyper's HTTP/1 polls a body that has nothing once more in each wake (after a chunk, its write
    /// loop asks again, and the next pass asks once more); answering those here skips the body and its timer.
    #[inline]
    pub(crate) fn still_waiting(&self, task: &Waker) -> bool {
        self.clock().load(Ordering::Relaxed) == u64::MAX
            && self.waker.as_ref().is_some_and(|(known, _)| known.will_wake(task))
    }

    /// The body is asked for its next chunk and may have none yet (a timed stream between two items): until it
    /// wakes the task through the returned waker, the wait is the body's, not the client's, and the watchdog leaves
    /// it alone. The wake restarts the clock: from then on hyper should take the chunk unless the client stalls.
    #[inline]
    pub(crate) fn body_waker(&mut self, task: &Waker) -> &Waker {
        self.clock().store(u64::MAX, Ordering::Relaxed);
        if !self.waker.as_ref().is_some_and(|(known, _)| known.will_wake(task)) {
            self.waker = None;
        }
        let (activity, own) = (&self.activity, &self.own);
        &self
            .waker
            .get_or_insert_with(|| {
                let wake = BodyWake { task: task.clone(), activity: activity.clone(), own: own.clone() };
                (task.clone(), Waker::from(Arc::new(wake)))
            })
            .1
    }
}

/// Which flag of the connection's [`Activity`] a [`FlagWake`] sets.
#[derive(Debug, Clone, Copy)]
enum Woken {
    /// `read_woken`: the socket woke the task for reading (see [`Guarded`]'s `poll_read`).
    Read,
    /// `deadline_fired`: [`Guarded`]'s watchdog timer fired (see [`Guarded::check`]).
    Deadline,
}

/// Wakes the connection's task and marks what woke it, for the socket's reads and for the watchdog's timer. The flag
/// is in the line of [`Activity`] its reader reads anyway, not in this allocation: a check before the wake then asks
/// neither the socket nor the timer (a tokio timer entry in an allocation of its own), which would cost a cache miss
/// per event of a stream (BENCHMARKS.md, issue 16).
#[derive(Debug)]
struct FlagWake {
    task: Waker,
    activity: Arc<Activity>,
    woken: Woken,
}

impl std::task::Wake for FlagWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let flag = match self.woken {
            Woken::Read => &self.activity.read_woken,
            Woken::Deadline => &self.activity.deadline_fired,
        };
        flag.store(true, Ordering::Release);
        self.task.wake_by_ref();
    }
}

/// Wakes the connection's task for a body that had nothing to send, and marks when (see [`Sending::body_waker`]).
struct BodyWake {
    task: Waker,
    /// The body's clock: `own`, or else the connection's `slot`.
    activity: Arc<Activity>,
    own: Option<Arc<AtomicU64>>,
}

impl std::task::Wake for BodyWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Only if still waiting: a poll since then has set the time already.
        let clock = self.own.as_deref().unwrap_or(&self.activity.slot);
        let _ = clock.compare_exchange(u64::MAX, now_ms(), Ordering::Relaxed, Ordering::Relaxed);
        self.task.wake_by_ref();
    }
}

impl Drop for Sending {
    fn drop(&mut self) {
        match &self.own {
            None => self.activity.slot_taken.store(false, Ordering::SeqCst),
            Some(own) => {
                let mut bodies = self.activity.bodies.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(i) = bodies.iter().position(|p| Arc::ptr_eq(p, own)) {
                    bodies.swap_remove(i);
                }
            }
        }
        self.activity.sending.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The connection cap: at most `max_connections` connections are served at once. When all slots are taken, a new
/// connection is accepted and held while the longest-idle connection (no request in flight) is closed to make room;
/// if none is idle, it waits for a slot (and later ones wait in the kernel's accept queue). So idle connections can
/// never lock new clients out, and connections with requests in flight are never cut for a newcomer.
#[derive(Debug, Clone)]
pub struct ConnectionCap {
    slots: Arc<Semaphore>,
    max: usize,
    /// The connections served, for eviction. Dead entries are pruned when the list doubles.
    open: Arc<Mutex<Vec<Weak<Activity>>>>,
}

impl ConnectionCap {
    /// A cap of `max` connections at once.
    pub fn new(max: usize) -> Self {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        ConnectionCap { slots: Arc::new(Semaphore::new(max)), max, open: Arc::default() }
    }

    fn register(&self, activity: &Arc<Activity>) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.len() >= 2 * self.max {
            open.retain(|a| a.strong_count() > 0);
        }
        open.push(Arc::downgrade(activity));
    }

    /// Marks the longest-idle connection to be closed; false if no connection is idle.
    fn evict_longest_idle(&self) -> bool {
        let now = now_ms();
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.retain(|a| a.strong_count() > 0);
        let longest = open
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|a| !a.evicted.load(Ordering::SeqCst))
            .filter_map(|a| a.idle_since().map(|since| (now.saturating_sub(since), a)))
            .max_by_key(|(idle, _)| *idle);
        drop(open);
        match longest {
            Some((idle, activity)) => {
                tracing::debug!("connection cap reached: closing a connection idle for {idle} ms to admit a new one");
                activity.evicted.store(true, Ordering::SeqCst);
                activity.wake();
                true
            }
            None => false,
        }
    }
}

impl ConnectionCap {
    /// Asks every open connection to shut down gracefully (see [`Graceful`]): each finishes the requests in flight
    /// and closes, and an idle one closes at once.
    pub(crate) fn shut_down_all(&self) {
        let open: Vec<Arc<Activity>> =
            self.open.lock().unwrap_or_else(|e| e.into_inner()).iter().filter_map(Weak::upgrade).collect();
        for activity in open {
            activity.shutdown.store(true, Ordering::SeqCst);
            activity.wake();
        }
    }
}

pin_project_lite::pin_project! {
    /// A connection served until the server shuts down, then told to finish gracefully (hyper's
    /// `graceful_shutdown`: HTTP/1 closes after the response in flight, HTTP/2 sends GOAWAY).
    ///
    /// hyper-util's `GracefulShutdown` does the same by polling a `watch` channel's receiver beside the connection on
    /// every wake-up: 2% of `/hello`'s instructions (BENCHMARKS.md, issue 20). Here the signal is a flag on the
    /// connection's [`Activity`], read with one atomic load per poll, and the connection task is woken through the
    /// waker the watchdogs already keep.
    ///
    /// The connection is held inline (pinned in place), not boxed, and the proxy's upstream connection for it
    /// ([`Local`], in the same [`Activity`]) is polled here too: the connection task's future is this value, so a wake
    /// goes from the task to hyper's connection without a pointer to another allocation (each one a cache miss per wake
    /// with 1,000 streams, BENCHMARKS.md, issue 16).
    pub(crate) struct Graceful<C> {
        #[pin]
        conn: C,
        activity: Arc<Activity>,
        told: bool,
    }
}

impl<C: GracefulConnection> Graceful<C> {
    /// Serves `conn`, watching `activity` for the shutdown signal.
    pub(crate) fn new(conn: C, activity: Arc<Activity>) -> Self {
        Graceful { conn, activity, told: false }
    }
}

impl<C: GracefulConnection> Future for Graceful<C> {
    type Output = C::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let activity: &Arc<Activity> = this.activity;
        // Upstream first (an answer that came in is handed over), then the client side (which writes it, and may
        // send the next request), then upstream again (which writes that request now rather than at the next wake).
        // A connection that never proxied reads one flag, in the line the wake reads anyway.
        activity.local.poll_conn(cx);
        if !*this.told && activity.shutdown.load(Ordering::Relaxed) {
            *this.told = true;
            this.conn.as_mut().graceful_shutdown();
        }
        // Registered here too (cheap: the same waker is not cloned again), so that the shutdown wakes a connection
        // that has not read yet, or whose waker a wake took.
        activity.register(cx);
        // hyper asks its timer for the header-read timeout while the connection is polled, and the connection's
        // reads skip registering the waker registered just above: this tells both whose connection it is (see
        // [`HeadTimer`] and [`Guarded`]'s `poll_read`). A pointer, not a clone of the `Arc`: two atomic operations
        // less per poll; `this.activity` keeps it alive for the whole poll, and the guard clears it even if the poll
        // panics.
        let current = Current::set(activity);
        let polled = this.conn.poll(cx);
        drop(current);
        if polled.is_pending() {
            activity.local.poll_conn(cx);
        }
        polled
    }
}

thread_local! {
    /// The connection being polled on this thread (see [`Graceful`] and [`HeadTimer`]): its `Activity`, held by the
    /// `Graceful` that set it for as long as it is set; null outside a connection's poll.
    static CURRENT: std::cell::Cell<*const Activity> = const { std::cell::Cell::new(std::ptr::null()) };
}

/// Sets [`CURRENT`] for one poll and restores what was there when dropped (a panic included).
struct Current(*const Activity);

impl Current {
    fn set(activity: &Arc<Activity>) -> Current {
        Current(CURRENT.replace(Arc::as_ptr(activity)))
    }
}

impl Drop for Current {
    fn drop(&mut self) {
        CURRENT.set(self.0);
    }
}

/// Whether this thread is inside the poll of `activity`'s connection by its [`Graceful`].
#[inline]
fn polled_by_graceful(activity: &Arc<Activity>) -> bool {
    CURRENT.get() == Arc::as_ptr(activity)
}

/// The connection being polled on this thread, if any (see [`CURRENT`]).
fn current() -> Option<Arc<Activity>> {
    let ptr = CURRENT.get();
    if ptr.is_null() {
        return None;
    }
    // SAFETY: a non-null `CURRENT` was set by `Current::set` from an `Arc<Activity>` that the `Graceful` being polled
    // on this thread holds until the `Current` guard restores the previous value, so the allocation is alive and its
    // strong count at least 1; the increment gives the new `Arc` its own count.
    unsafe {
        Arc::increment_strong_count(ptr);
        Some(Arc::from_raw(ptr))
    }
}

/// The timer hyper's HTTP/1 side is given for `header_read_timeout`, without a timer per request.
///
/// hyper arms its header-read timeout each time it starts waiting for a request head, and drops it once the head
/// is read: with tokio's timer, a timer entry made, registered and removed for every request (1,513 of the 9,691
/// instructions of hyper's floor per request, BENCHMARKS.md, issue 20). Here the deadline is written on the
/// connection's [`Activity`] instead, and the connection's own watchdog timer ([`Guarded`]), which is lazy and
/// rarely moves, wakes the task when it passes; the sleep hyper polls then reads the clock and answers ready, and
/// hyper closes the connection as before. Outside a connection's poll (never for the server's connections), it
/// falls back to a tokio timer.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct HeadTimer;

impl hyper::rt::Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(std::time::Instant::now() + duration)
    }

    fn sleep_until(&self, deadline: std::time::Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        let Some(activity) = current() else {
            return hyper_util::rt::TokioTimer::new().sleep_until(deadline);
        };
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let at = now_ms().saturating_add(u64::try_from(left.as_millis()).unwrap_or(u64::MAX));
        activity.head_deadline.store(at, Ordering::SeqCst);
        Box::pin(HeadSleep { activity, at })
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: std::time::Instant) {
        *sleep = self.sleep_until(new_deadline);
    }
}

/// hyper's header-read timeout on a connection's [`Activity`] (see [`HeadTimer`]).
struct HeadSleep {
    activity: Arc<Activity>,
    at: u64,
}

impl Future for HeadSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        // No waker to register: the connection's watchdog wakes the task at the deadline (see `Guarded::check`).
        // The coarse clock may read a few ms short when that timer fires: the watchdog then arms it again for the
        // rest, so the sleep ends at most a clock tick late.
        if now_ms() >= self.at { Poll::Ready(()) } else { Poll::Pending }
    }
}

impl hyper::rt::Sleep for HeadSleep {}

impl Drop for HeadSleep {
    fn drop(&mut self) {
        // Only its own deadline: a newer sleep may have set another.
        let _ = self.activity.head_deadline.compare_exchange(self.at, u64::MAX, Ordering::SeqCst, Ordering::SeqCst);
    }
}

/// Waits for a connection and a slot for it under `cap` (closing the longest-idle connection when the cap is
/// reached). The slot is held by the returned permit: keep it for as long as the connection is served, with the
/// connection's [`Activity`]. Cancelling drops a connection accepted but not yet given a slot.
pub async fn accept(
    listener: &TcpListener,
    cap: &ConnectionCap,
) -> io::Result<(TcpStream, std::net::SocketAddr, OwnedSemaphorePermit, Arc<Activity>)> {
    // While slots are free, connections are accepted as they come; at the cap, the one accepted waits here while
    // later ones wait in the kernel's queue.
    let (stream, peer) = listener.accept().await?;
    let permit = match cap.slots.clone().try_acquire_owned() {
        Ok(permit) => permit,
        Err(_) => loop {
            // An evicted connection closes at its next poll; one that got a request meanwhile closes once it is done,
            // so after a while another is tried.
            let wait = if cap.evict_longest_idle() { Duration::from_secs(1) } else { Duration::from_millis(100) };
            if let Ok(permit) = tokio::time::timeout(wait, cap.slots.clone().acquire_owned()).await {
                break permit.expect("the connection semaphore is never closed");
            }
        },
    };
    let activity = Activity::new();
    cap.register(&activity);
    Ok((stream, peer, permit, activity))
}

/// The largest vectored write sent as one plain write (see [`Guarded`]'s `poll_write_vectored`): a copy this small
/// costs less than the kernel's handling of several slices.
const SMALL_WRITE: usize = 512;
/// The buffer most of those small writes fit (an SSE event and its chunk framing): zeroed on the stack in a few
/// stores, where [`SMALL_WRITE`]'s needs a `memset` call per write.
const TINY_WRITE: usize = 64;

/// The longest a lingering close drains a client's unread body (see [`Activity::linger`]).
const LINGER_TIME: Duration = Duration::from_secs(2);
/// The most bytes a lingering close reads and drops.
const LINGER_BYTES: u64 = 64 << 20;

/// A connection's socket with its fault switch and its watchdogs, which fail its I/O (and hyper then closes the
/// connection):
/// - idle: no request in flight for the idle timeout, whatever bytes arrive (a client that connects and says nothing,
///   an HTTP/2 connection kept open with PINGs, a keep-alive connection nobody uses); a request in flight, however
///   long its answer takes (a `delay`), keeps the connection;
/// - stalled write: a write that waits longer than the write timeout (a client that does not read its response);
/// - stalled response: a response body that hyper has not taken a chunk of for the write timeout while the socket
///   itself is writable: an HTTP/2 client that keeps its flow-control window shut (and its connection alive with
///   PINGs) would otherwise hold the response, and its stream, forever;
/// - evicted: the connection cap was reached and this idle connection was the longest idle.
///
/// hyper has none of these on its own: its header-read timeout starts only once it knows the connection is HTTP/1,
/// it has no write timeout, and its HTTP/2 keep-alive only checks that the client answers PINGs.
///
/// Once the connection's [`Trigger`] is armed, every read and write fails, and the drop does what the fault asks (see
/// the module's documentation).
///
/// Laid out in declaration order (`repr(C)`), what a read or write of a stream's event reads first: it sits inside
/// hyper's connection, and with 1,000 streams each cache line a wake touches is a miss (BENCHMARKS.md, issue 16).
#[derive(Debug)]
#[repr(C)]
pub struct Guarded<S: Socket> {
    /// The connection's state, its fault switch ([`Trigger`]) included.
    activity: Arc<Activity>,
    write_ms: u64,
    deadline_at: Option<u64>,
    /// The waker the socket's reads are polled with (see [`FlagWake`]) and the task's waker it wraps: made once per
    /// task, not per read.
    read_wake: Option<(Waker, Waker)>,
    /// The waker `deadline` is polled with by [`Guarded::check`] (see [`FlagWake`]) and the task's waker it
    /// wraps: made once per task.
    deadline_wake: Option<(Waker, Waker)>,
    /// The last read of the socket waited, and the socket has not woken its [`FlagWake`] since.
    read_waiting: bool,
    io: S,
    write: Watchdog,
    idle_ms: u64,
    /// The next idle or stalled-response deadline, and when it is set for (in [`now_ms`] milliseconds).
    deadline: Pin<Box<Sleep>>,
    /// Bytes dropped so far by a lingering close, once it started (its deadline is then `deadline`).
    drained: Option<u64>,
}

/// The earlier of two deadlines in [`now_ms`] milliseconds, `u64::MAX` standing for none.
#[inline]
fn earlier(a: u64, b: u64) -> u64 {
    a.min(b)
}

impl<S: Socket> Guarded<S> {
    /// Wraps `io`. Must be called inside a tokio runtime (the watchdogs are tokio timers).
    pub(crate) fn new(io: S, activity: Arc<Activity>, idle_timeout: Duration, write_timeout: Duration) -> Self {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Guarded {
            io,
            activity,
            idle_ms: ms(idle_timeout),
            write_ms: ms(write_timeout),
            deadline: Box::pin(tokio::time::sleep(idle_timeout)),
            deadline_at: None,
            deadline_wake: None,
            write: Watchdog::new(write_timeout, "the client read nothing"),
            drained: None,
            read_wake: None,
            read_waiting: false,
        }
    }

    /// The error every read and write gets once the connection's fault is armed.
    #[inline]
    fn refused(&self) -> Option<io::Error> {
        if !self.activity.fault_armed() {
            return None;
        }
        self.activity.fault().map(|f| io::Error::other(FaultError(f)))
    }

    /// A read from the socket itself (no watchdog), refused once a fault is armed.
    #[inline]
    fn read_socket(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.refused() {
            return Poll::Ready(Err(e));
        }
        match self.io.bare() {
            Some(tcp) => Pin::new(tcp).poll_read(cx, buf),
            None => Pin::new(&mut self.io).poll_read(cx, buf),
        }
    }

    /// A read of the socket for hyper (no watchdog), which answers `Pending` at once when the last read waited and the
    /// socket has not woken the task since.
    ///
    /// hyper polls the socket for reading on every wake of a connection, also while it sends a response (to see a
    /// client that closes): a stream of events pays for a read poll per event (tokio's readiness check and its waker
    /// registration under a lock), which answers `Pending` each time. The socket's reads get their own waker
    /// ([`FlagWake`]), which marks that the socket woke the task: until it does, a read has nothing new to find
    /// (a future is ready again only after a wake). Only when nothing observes the socket: a traced read
    /// goes through the trace, which writes every wait.
    fn read_waited(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.activity.fault_armed() || self.io.bare().is_none() {
            self.read_waiting = false;
            return self.read_socket(cx, buf);
        }
        let task = cx.waker();
        let known = self.read_wake.as_ref().is_some_and(|(t, _)| t.will_wake(task));
        if !known {
            let wake = Arc::new(FlagWake { task: task.clone(), activity: self.activity.clone(), woken: Woken::Read });
            self.read_wake = Some((task.clone(), Waker::from(wake)));
            self.read_waiting = false;
        }
        let Some((_, waker)) = &self.read_wake else { return self.read_socket(cx, buf) };
        if self.read_waiting && !self.activity.read_woken.load(Ordering::Acquire) {
            return Poll::Pending;
        }
        // Cleared before the read: a wake from here on is seen by the next read.
        self.activity.read_woken.store(false, Ordering::Relaxed);
        let mut cx = Context::from_waker(waker);
        let polled = match self.io.bare() {
            Some(tcp) => Pin::new(tcp).poll_read(&mut cx, buf),
            None => Pin::new(&mut self.io).poll_read(&mut cx, buf),
        };
        self.read_waiting = polled.is_pending();
        polled
    }

    /// A plain write to the socket itself (no watchdog), refused once a fault is armed.
    #[inline]
    fn write_socket(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if let Some(e) = self.refused() {
            return Poll::Ready(Err(e));
        }
        match self.io.bare() {
            Some(tcp) => Pin::new(tcp).poll_write(cx, buf),
            None => Pin::new(&mut self.io).poll_write(cx, buf),
        }
    }

    /// [`Guarded::write_socket`] for several slices at once.
    #[inline]
    fn write_socket_vectored(&mut self, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        if let Some(e) = self.refused() {
            return Poll::Ready(Err(e));
        }
        match self.io.bare() {
            Some(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            None => Pin::new(&mut self.io).poll_write_vectored(cx, bufs),
        }
    }

    /// `bufs` (at most `flat.len()` bytes in all) copied into `flat` and written with one plain write.
    #[inline]
    fn write_flat(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
        flat: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut n = 0;
        for b in bufs {
            flat[n..n + b.len()].copy_from_slice(b);
            n += b.len();
        }
        self.write_socket(cx, &flat[..n])
    }

    /// The connection-wide watchdogs: an error when the connection must close, otherwise a timer set for the next
    /// deadline (registered with `cx`).
    ///
    /// Called on every read, so it is cheap when nothing is due: the deadlines are sums of atomics (no clock read),
    /// and a timer already armed for the same deadline or an earlier one is left alone (it fires, and the next
    /// check moves it on). The clock is read, and the timer polled, only when it fired or must move earlier. Before,
    /// every read read the clock and polled the timer: 4 of each per `/hello` (BENCHMARKS.md, issue 20). The
    /// deadlines are plain `u64`s with `u64::MAX` for none, so that the earliest is two `min`s, not an iterator over
    /// options (a read poll of a connection sending a stream runs this once per event, BENCHMARKS.md, issue 16).
    fn check(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        const NONE: u64 = u64::MAX;
        // Twice at most: a deadline that fires is checked again against the state it was set for.
        for _ in 0..2 {
            let a = &*self.activity;
            let idle_since = a.idle_since();
            if idle_since.is_some() && a.evicted.load(Ordering::SeqCst) {
                let message = "closed to admit a new connection: max_connections was reached and this connection \
                               was the longest idle";
                return Some(io::Error::new(io::ErrorKind::ConnectionAborted, message));
            }
            let idle_at = idle_since.map_or(NONE, |since| since.saturating_add(self.idle_ms));
            let progress = a.oldest_progress();
            let write_at = progress.map_or(NONE, |p| p.saturating_add(self.write_ms));
            // hyper's header-read timeout (see [`HeadTimer`]): this timer only wakes the task for it; hyper's
            // sleep then answers ready and hyper closes the connection. `u64::MAX` when hyper is not waiting.
            let head_at = a.head_deadline.load(Ordering::SeqCst);
            let mut at = earlier(earlier(idle_at, write_at), head_at);
            if at == NONE {
                return None;
            }
            // Armed for this deadline or an earlier one, not fired, and it wakes this task: nothing to do.
            if self.deadline_at.is_some_and(|armed| armed <= at)
                && !a.deadline_fired.load(Ordering::Acquire)
                && self.deadline_wake.as_ref().is_some_and(|(task, _)| task.will_wake(cx.waker()))
            {
                return None;
            }
            let now = now_ms();
            if head_at != NONE && now >= head_at {
                // Due: hyper polls its sleep right after this read waits. Watch the other deadlines only.
                at = earlier(idle_at, write_at);
                if at == NONE {
                    return None;
                }
            }
            if let Some(since) = idle_since.filter(|_| now >= idle_at) {
                let idle = now.saturating_sub(since);
                let message = format!("no request for {idle} ms (idle_timeout): closing the connection");
                return Some(io::Error::new(io::ErrorKind::TimedOut, message));
            }
            if let Some(p) = progress.filter(|_| now >= write_at) {
                let stalled = now.saturating_sub(p);
                let message = format!(
                    "a response made no progress for {stalled} ms (write_timeout; an HTTP/2 client that keeps its \
                     flow-control window shut): closing the connection"
                );
                return Some(io::Error::new(io::ErrorKind::TimedOut, message));
            }
            // `at` is still ahead: arm the timer for it (the clocks differ, so convert through "how long from now").
            let task = cx.waker();
            if !self.deadline_wake.as_ref().is_some_and(|(known, _)| known.will_wake(task)) {
                let wake =
                    Arc::new(FlagWake { task: task.clone(), activity: self.activity.clone(), woken: Woken::Deadline });
                self.deadline_wake = Some((task.clone(), Waker::from(wake)));
            }
            let Some((_, waker)) = &self.deadline_wake else { return None };
            // Cleared before the timer is armed: its firing from here on is seen by the next check (a stale one
            // only sends that check the long way, here).
            self.activity.deadline_fired.store(false, Ordering::Release);
            self.deadline.as_mut().reset(Instant::now() + Duration::from_millis(at.saturating_sub(now)));
            self.deadline_at = Some(at);
            if self.deadline.as_mut().poll(&mut Context::from_waker(waker)).is_pending() {
                return None;
            }
            self.deadline_at = None;
        }
        None
    }
}

impl<S: Socket> Drop for Guarded<S> {
    fn drop(&mut self) {
        let Some(tcp) = self.io.tcp() else { return };
        match self.activity.fault() {
            None | Some(Fault::Close) => {}
            Some(Fault::Reset) => {
                if let Err(e) = tcp.set_zero_linger() {
                    tracing::debug!("cannot set a zero linger for a reset fault: {e}");
                }
            }
            Some(Fault::Garbage) => {
                // A few dozen bytes fit in the socket's send buffer, so a non-blocking write is enough here, where
                // nothing can be awaited.
                if let Err(e) = tcp.try_write(GARBAGE) {
                    tracing::debug!("cannot send garbage for a garbage fault: {e}");
                }
            }
        }
    }
}

/// A deadline that starts when an operation first waits, and is cleared when one completes.
#[derive(Debug)]
#[repr(C)]
struct Watchdog {
    /// First: the one field a write that does not wait reads.
    armed: bool,
    after: Duration,
    what: &'static str,
    sleep: Pin<Box<Sleep>>,
}

impl Watchdog {
    fn new(after: Duration, what: &'static str) -> Self {
        Watchdog { after, what, sleep: Box::pin(tokio::time::sleep(after)), armed: false }
    }

    /// Passes a completed operation through (and clears the deadline); a waiting one fails once it has waited too long.
    #[inline]
    fn check<T>(&mut self, cx: &mut Context<'_>, polled: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.armed = false;
            return polled;
        }
        if !self.armed {
            self.sleep.as_mut().reset(Instant::now() + self.after);
            self.armed = true;
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.armed = false;
                let message = format!("{} for {:?}: closing the connection", self.what, self.after);
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, message)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: Socket> AsyncRead for Guarded<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // Checked on every read, ready or not: a client that sends PINGs back to back is still idle.
        if let Some(e) = this.check(cx) {
            return Poll::Ready(Err(e));
        }
        let polled = this.read_waited(cx, buf);
        // The wakes of `Activity` (eviction, going idle) need the task's waker. [`Graceful`] registers it before
        // each poll of the connection, and this read is inside that poll: registering again would only repeat it
        // (an atomic read-modify-write per read, and a stream's connection reads once per event). Outside it (a
        // TLS handshake, an upgraded connection's own task) the read registers.
        if polled.is_pending() && !polled_by_graceful(&this.activity) {
            this.activity.register(cx);
        }
        polled
    }
}

impl<S: Socket> AsyncWrite for Guarded<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = this.write_socket(cx, buf);
        this.write.check(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // hyper hands each HTTP/1.1 chunk over as three slices (size line, data, CRLF). A small one (an SSE event)
        // goes out as one plain write: the kernel's `send` skips the `writev` path's iovec import, which a stream of
        // 100,000 small events a second pays for each. The bytes and the count written are the same either way.
        let total = bufs.iter().fold(0usize, |n, b| n.saturating_add(b.len()));
        let polled = if bufs.len() > 1 && total <= TINY_WRITE {
            this.write_flat(cx, bufs, &mut [0u8; TINY_WRITE])
        } else if bufs.len() > 1 && total <= SMALL_WRITE {
            this.write_flat(cx, bufs, &mut [0u8; SMALL_WRITE])
        } else {
            this.write_socket_vectored(cx, bufs)
        };
        this.write.check(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(e) = this.refused() {
            return Poll::Ready(Err(e));
        }
        // A TCP stream has nothing to flush: no call through the layers for it.
        let polled = match this.io.bare() {
            Some(_) => Poll::Ready(Ok(())),
            None => Pin::new(&mut this.io).poll_flush(cx),
        };
        this.write.check(cx, polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.drained.is_none() {
            let polled = match this.refused() {
                Some(e) => Poll::Ready(Err(e)),
                None => match this.io.bare() {
                    Some(tcp) => Pin::new(tcp).poll_shutdown(cx),
                    None => Pin::new(&mut this.io).poll_shutdown(cx),
                },
            };
            if !this.activity.linger.load(Ordering::Relaxed) {
                return this.write.check(cx, polled);
            }
            std::task::ready!(this.write.check(cx, polled))?;
            this.drained = Some(0);
            this.deadline.as_mut().reset(Instant::now() + LINGER_TIME);
            this.deadline_at = None;
        }
        // Lingering: the FIN is sent; drop what the client still sends until it closes (see [`Activity::linger`]).
        let mut scratch = [0u8; 16 * 1024];
        loop {
            let drained = this.drained.unwrap_or(0);
            if drained >= LINGER_BYTES || this.deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Ok(()));
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match this.read_socket(cx, &mut buf) {
                Poll::Pending => return Poll::Pending,
                // The client closed (or reset): nothing is left to lose.
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => this.drained = Some(drained + buf.filled().len() as u64),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A task's waker that counts its wakes.
    struct Count(AtomicUsize);

    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// What a wake of a connection reads of its `Activity` is in its first cache line: the fields before `local`
    /// and `local`'s flag (its first field), with the `Arc`'s counts in the line before.
    #[test]
    fn a_wake_reads_one_line_of_the_connection_state() {
        assert_eq!(std::mem::align_of::<Activity>(), 64);
        assert!(std::mem::offset_of!(Activity, local) < 64, "local's flag is past the first line");
        assert!(std::mem::offset_of!(Activity, idle_since) >= 64, "a field no wake reads is in the first line");
        let activity = Activity::new();
        assert_eq!(Arc::as_ptr(&activity) as usize % 64, 0, "the state does not start a cache line");
    }

    /// A timed stream polls its body once per event: the waker handed to it must be made once per body, not once
    /// per poll (an allocation, and a new waker for its timer to swap in, for each of 100,000 events a second), and
    /// still mark the wait and wake the task.
    #[test]
    fn a_body_gets_the_same_waker_on_every_poll_of_its_task() {
        let activity = Activity::new();
        let mut sending = activity.sending();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let task = Waker::from(count.clone());
        let first = sending.body_waker(&task).clone();
        let again = sending.body_waker(&task).clone();
        assert!(first.will_wake(&again), "a new waker was made for a poll of the same task");
        assert_eq!(sending.clock().load(Ordering::Relaxed), u64::MAX, "the wait is the body's until it wakes");
        again.wake_by_ref();
        assert_eq!(count.0.load(Ordering::Relaxed), 1, "the task was not woken");
        assert_ne!(sending.clock().load(Ordering::Relaxed), u64::MAX, "the wake did not restart the clock");
        // Another task (hyper moved the connection): a waker for it, not the old one.
        let other = Waker::from(Arc::new(Count(AtomicUsize::new(0))));
        assert!(!sending.body_waker(&other).will_wake(&first), "the old task's waker was kept for a new task");
    }

    /// A body that answered `Pending` is not asked again until it wakes the task (hyper's HTTP/1 asks up to twice
    /// more in the same wake; each ask polled the stream and its timer): `still_waiting` says so until the wake, and
    /// not for another task (whose waker the body does not hold yet).
    #[test]
    fn a_waiting_body_is_not_asked_again_before_it_wakes() {
        let activity = Activity::new();
        let mut sending = activity.sending();
        let task = Waker::from(Arc::new(Count(AtomicUsize::new(0))));
        assert!(!sending.still_waiting(&task), "a body never polled was taken for waiting");
        let body = sending.body_waker(&task).clone();
        assert!(sending.still_waiting(&task), "a body that waits with this task's waker must not be asked again");
        let other = Waker::from(Arc::new(Count(AtomicUsize::new(0))));
        assert!(!sending.still_waiting(&other), "another task must poll the body, to give it its waker");
        body.wake_by_ref();
        assert!(!sending.still_waiting(&task), "a body that woke the task must be asked again");
        sending.body_waker(&task);
        sending.progress();
        assert!(!sending.still_waiting(&task), "a body that answered must be asked again");
    }

    /// A socket for [`Guarded`] that is a bare TCP stream, as an untraced connection's is.
    struct Bare(TcpStream);

    impl AsyncRead for Bare {
        fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, _: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            unreachable!("a bare socket is read directly")
        }
    }

    impl AsyncWrite for Bare {
        fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, _: &[u8]) -> Poll<io::Result<usize>> {
            unreachable!("a bare socket is written directly")
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            unreachable!("a bare socket is flushed directly")
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            unreachable!("a bare socket is shut down directly")
        }
    }

    impl Socket for Bare {
        fn bare(&mut self) -> Option<&mut TcpStream> {
            Some(&mut self.0)
        }
        fn tcp(&self) -> Option<&TcpStream> {
            Some(&self.0)
        }
    }

    /// A connected pair of loopback sockets: the server's side under [`Guarded`] and the client's.
    async fn pair(activity: Arc<Activity>) -> (Guarded<Bare>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let secs = Duration::from_secs(30);
        (Guarded::new(Bare(server), activity, secs, secs), client)
    }

    /// The one I/O layer reads and writes the bare TCP stream (the `Bare` socket's own `AsyncRead`/`AsyncWrite`
    /// panic), and an armed fault still refuses both.
    #[tokio::test]
    async fn an_untraced_socket_is_read_and_written_directly_until_a_fault_is_armed() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let activity = Activity::new();
        let trigger = Trigger::new(&activity);
        let (mut io, mut client) = pair(activity).await;
        client.write_all(b"ping").await.unwrap();
        let mut got = [0u8; 4];
        io.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
        io.write_all(b"pong").await.unwrap();
        io.flush().await.unwrap();
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"pong");
        trigger.arm(Fault::Close);
        let read = io.read(&mut got).await.unwrap_err();
        assert!(read.to_string().contains("fault injected"), "a read after the fault: {read}");
        let write = io.write(b"x").await.unwrap_err();
        assert!(write.to_string().contains("fault injected"), "a write after the fault: {write}");
    }

    /// A read that waited is answered `Pending` without asking the socket again until the socket wakes the task,
    /// and that wake is not lost: the bytes the client sends then are read.
    #[tokio::test]
    async fn a_read_that_waited_waits_for_the_socket_to_wake_the_task() {
        use tokio::io::AsyncWriteExt as _;
        let (mut io, mut client) = pair(Activity::new()).await;
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let task = Waker::from(count.clone());
        let mut cx = Context::from_waker(&task);
        let mut space = [0u8; 16];
        let mut buf = ReadBuf::new(&mut space);
        assert!(Pin::new(&mut io).poll_read(&mut cx, &mut buf).is_pending(), "nothing was sent yet");
        assert!(io.read_waiting, "the wait was not noted");
        assert!(Pin::new(&mut io).poll_read(&mut cx, &mut buf).is_pending(), "nothing was sent yet");
        client.write_all(b"hello").await.unwrap();
        // The socket wakes the task through the read's own waker, which marks it.
        let woken = async {
            while count.0.load(Ordering::SeqCst) == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), woken).await.expect("the socket did not wake the task");
        assert!(io.activity.read_woken.load(Ordering::SeqCst), "the wake was not marked");
        match Pin::new(&mut io).poll_read(&mut cx, &mut buf) {
            Poll::Ready(Ok(())) => assert_eq!(buf.filled(), b"hello"),
            other => panic!("the bytes sent after the wait were not read: {other:?}"),
        }
        assert!(!io.read_waiting);
    }

    /// What a writer was asked to write: each call, plain or vectored, with its bytes.
    #[derive(Default)]
    struct Record(Vec<(bool, Vec<u8>)>);

    impl AsyncRead for Record {
        fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, _: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for Record {
        fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            self.get_mut().0.push((false, buf.to_vec()));
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_write_vectored(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[io::IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let bytes: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            let n = bytes.len();
            self.get_mut().0.push((true, bytes));
            Poll::Ready(Ok(n))
        }
        fn is_write_vectored(&self) -> bool {
            true
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    impl Socket for Record {
        fn bare(&mut self) -> Option<&mut TcpStream> {
            None
        }
        fn tcp(&self) -> Option<&TcpStream> {
            None
        }
    }

    /// An SSE event as hyper frames it (three slices) goes to the socket as one plain write of the same bytes; a
    /// big chunk (a file's 16 KiB) stays a vectored write, with no copy.
    #[tokio::test]
    async fn small_vectored_writes_go_out_as_one_plain_write() {
        use tokio::io::AsyncWriteExt as _;
        let secs = Duration::from_secs(5);
        let mut io = Guarded::new(Record::default(), Activity::new(), secs, secs);
        let event = [io::IoSlice::new(b"c\r\n"), io::IoSlice::new(b"data: tick\n\n"), io::IoSlice::new(b"\r\n")];
        assert_eq!(io.write_vectored(&event).await.unwrap(), 17);
        let big = vec![b'x'; 16 * 1024];
        let chunk = [io::IoSlice::new(b"4000\r\n"), io::IoSlice::new(&big), io::IoSlice::new(b"\r\n")];
        assert_eq!(io.write_vectored(&chunk).await.unwrap(), 16 * 1024 + 8);
        let calls = &io.io.0;
        assert_eq!(calls[0], (false, b"c\r\ndata: tick\n\n\r\n".to_vec()), "the event was not one plain write");
        assert!(calls[1].0, "a 16 KiB chunk was copied into a plain write");
        assert_eq!(calls.len(), 2);
    }
}
