//! Prometheus metrics, served at `GET /__admin/metrics` in the OpenMetrics text format.
//!
//! Recording is on the path of every request, so it is kept to a few atomic operations: each route's labels
//! (`file:line` and its pattern) are made once, on the route's first request (not when the routes load: a file of
//! 10,000 routes would pay for them all at every reload), and each route caches the counters of the first few
//! statuses it answers, so a request bumps a counter it already holds instead of hashing labels into a map. The
//! latency histogram is lock-free for the same reason.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

use crate::route::{Route, Router};
use crate::util::histogram::Histogram;

/// The content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the latency buckets, in seconds: from 50 µs (a static route on loopback) to 10 s (a slow delay),
/// then everything slower.
const LATENCY_BUCKETS: [f64; 16] = [
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    10.0,
    f64::INFINITY,
];

/// How many statuses a route keeps counters for at hand; any further status takes the slower labelled lookup.
const CACHED_STATUSES: usize = 3;

/// The labels of `hotroute_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// `file:line` of the route, `-` when no route answered (404, 405), `admin` for the admin API.
    route: Arc<str>,
    /// The route's URL pattern, `-` when none.
    path: Arc<str>,
    /// The response status.
    status: u16,
}

/// One route's metric labels, made on its first request, and the counters of the statuses it has answered.
#[derive(Debug)]
pub struct RouteSlot {
    location: Arc<str>,
    path: Arc<str>,
    counters: [OnceLock<(u16, Counter)>; CACHED_STATUSES],
}

impl RouteSlot {
    fn new(location: Arc<str>, path: Arc<str>) -> Self {
        RouteSlot { location, path, counters: Default::default() }
    }

    fn for_route(route: &Route) -> Self {
        RouteSlot::new(route.location().into(), route.path.as_str().into())
    }

    /// `file:line` of the route (`-` for requests no route answered, `admin` for the admin API).
    pub fn location(&self) -> &str {
        &self.location
    }
}

/// Which kind of request a [`Metrics::record`] is about when no route answered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unrouted {
    /// A request no route answered (404, 405, or refused before routing).
    NoRoute,
    /// A request to the admin API.
    Admin,
    /// A request no route answered that `[server] proxy` forwarded.
    Proxy,
}

/// All of hotroute's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Latency,
    open_connections: Gauge,
    connections: Counter,
    reloads: Counter,
    reload_failures: Counter,
    generation: Gauge,
    routes: Gauge,
    no_route: RouteSlot,
    admin: RouteSlot,
    proxy: RouteSlot,
    proxied: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric, all at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("hotroute");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by route (file:line; - when none answered, admin for the admin API), route pattern \
             and status",
            requests.clone(),
        );
        let latency = Latency::default();
        registry.register(
            "request_duration_seconds",
            "Time from the request head being read to the response being ready",
            latency.clone(),
        );
        let open_connections = Gauge::default();
        registry.register("open_connections", "Client connections open now", open_connections.clone());
        let connections = Counter::default();
        registry.register("connections", "Client connections accepted", connections.clone());
        let reloads = Counter::default();
        registry.register("reloads", "Reloads of the route file that put new routes in service", reloads.clone());
        let reload_failures = Counter::default();
        registry.register(
            "reload_failures",
            "Reloads of the route file that failed (the previous routes kept serving)",
            reload_failures.clone(),
        );
        let generation = Gauge::default();
        registry.register("generation", "How many times the routes have been loaded (1 at start)", generation.clone());
        let routes = Gauge::default();
        registry.register("routes", "Routes in service", routes.clone());
        let proxied = Counter::default();
        registry.register(
            "proxied_requests",
            "Requests forwarded to an upstream (proxy routes and [server] proxy, labelled route=\"proxy\" in requests)",
            proxied.clone(),
        );
        registry.register(
            "stream_lateness_seconds",
            "How late timed stream chunks (stream and sse items with a delay) left against when each was due, across \
             this process",
            StreamLateness,
        );
        let dash: Arc<str> = "-".into();
        Metrics {
            registry,
            requests,
            latency,
            open_connections,
            connections,
            reloads,
            reload_failures,
            generation,
            routes,
            no_route: RouteSlot::new(dash.clone(), dash.clone()),
            admin: RouteSlot::new("admin".into(), dash.clone()),
            proxy: RouteSlot::new("proxy".into(), dash),
            proxied,
        }
    }

    /// `router` is in service now (at start, and after each good reload).
    pub fn routes_loaded(&self, router: &Router) {
        self.routes.set(router.routes().len() as i64);
    }

    /// The slot of `route`, made on the route's first request and kept in the route.
    pub fn route(&self, route: &Route) -> Arc<RouteSlot> {
        // The route holds only slots of this type; the fallback (labels made on the spot) is unreachable.
        route.observed(|| RouteSlot::for_route(route)).unwrap_or_else(|| Arc::new(RouteSlot::for_route(route)))
    }

    /// Counts a request forwarded to an upstream.
    pub fn count_proxied(&self) {
        self.proxied.inc();
    }

    /// Counts one answered request and its latency.
    pub fn record(&self, route: Result<&RouteSlot, Unrouted>, status: u16, latency: Duration) {
        let slot = match route {
            Ok(slot) => slot,
            Err(Unrouted::NoRoute) => &self.no_route,
            Err(Unrouted::Admin) => &self.admin,
            Err(Unrouted::Proxy) => &self.proxy,
        };
        self.count(slot, status);
        self.latency.observe(latency);
    }

    fn count(&self, slot: &RouteSlot, status: u16) {
        for cell in &slot.counters {
            let (cached, counter) = match cell.get() {
                Some(pair) => pair,
                None => cell.get_or_init(|| (status, self.requests.get_or_create_owned(&labels(slot, status)))),
            };
            if *cached == status {
                counter.inc();
                return;
            }
        }
        self.requests.get_or_create(&labels(slot, status)).inc();
    }

    /// A connection was accepted; it counts as open until the returned guard is dropped.
    pub fn connection_opened(&self) -> OpenConnection {
        self.connections.inc();
        self.open_connections.inc();
        OpenConnection(self.open_connections.clone())
    }

    /// A reload of the route file succeeded (`true`) or failed.
    pub fn reloaded(&self, ok: bool) {
        if ok { &self.reloads } else { &self.reload_failures }.inc();
    }

    /// Open connections now.
    pub fn open_connections(&self) -> i64 {
        self.open_connections.get()
    }

    /// The metrics in the OpenMetrics text format (which Prometheus reads), with `generation` as the routes'
    /// generation.
    pub fn encode(&self, generation: u64) -> String {
        self.generation.set(generation as i64);
        let mut out = String::with_capacity(4096);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Counts a connection as open while it lives (dropped when the connection's task ends, however it ends).
#[derive(Debug)]
pub struct OpenConnection(Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn labels(slot: &RouteSlot, status: u16) -> RequestLabels {
    RequestLabels { route: slot.location.clone(), path: slot.path.clone(), status }
}

/// The latency histogram (atomic buckets: see [`Histogram`]), shared by the registry and the recording side.
#[derive(Debug, Clone)]
struct Latency(Arc<Histogram<{ LATENCY_BUCKETS.len() }>>);

impl Default for Latency {
    fn default() -> Self {
        Latency(Arc::new(Histogram::new(LATENCY_BUCKETS)))
    }
}

impl Latency {
    fn observe(&self, d: Duration) {
        self.0.observe(d);
    }
}

impl TypedMetric for Latency {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Latency {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encode_histogram(&self.0, encoder)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// [`crate::route::stream::LATENESS`] as a histogram, read when the metrics are encoded.
#[derive(Debug)]
struct StreamLateness;

impl TypedMetric for StreamLateness {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for StreamLateness {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encode_histogram(&crate::route::stream::LATENESS, encoder)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

fn encode_histogram<const N: usize>(h: &Histogram<N>, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
    let buckets = h.buckets();
    let count = buckets.iter().map(|(_, c)| c).sum();
    encoder.encode_histogram::<NoLabelSet>(h.sum_secs(), count, &buckets, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(toml: &str) -> Arc<Router> {
        Arc::new(Router::load_str(toml, "routes.toml".as_ref(), ".".as_ref()).unwrap())
    }

    #[test]
    fn counts_by_route_and_status_across_cached_and_uncached_statuses() {
        let m = Metrics::new();
        let r = router("[[route]]\npath = \"/a\"\nbody = \"a\"\n\n[[route]]\npath = \"/b\"\nbody = \"b\"\n");
        m.routes_loaded(&r);
        let b = m.route(&r.routes()[1]);
        assert_eq!(b.location(), "routes.toml:5");
        // More statuses than the cache holds: the rest still count.
        for status in [200, 200, 500, 404, 503, 503, 200] {
            m.record(Ok(&b), status, Duration::from_micros(30));
        }
        m.record(Err(Unrouted::NoRoute), 404, Duration::from_millis(2));
        let text = m.encode(1);
        for (labels, n) in [
            ("route=\"routes.toml:5\",path=\"/b\",status=\"200\"", 3),
            ("route=\"routes.toml:5\",path=\"/b\",status=\"503\"", 2),
            ("route=\"routes.toml:5\",path=\"/b\",status=\"404\"", 1),
            ("route=\"routes.toml:5\",path=\"/b\",status=\"500\"", 1),
            ("route=\"-\",path=\"-\",status=\"404\"", 1),
        ] {
            assert!(text.contains(&format!("hotroute_requests_total{{{labels}}} {n}\n")), "{labels} {n} in\n{text}");
        }
        assert!(!text.contains("routes.toml:1"), "{text}");
        assert!(text.contains("hotroute_request_duration_seconds_count 8\n"), "{text}");
        assert!(text.contains("hotroute_request_duration_seconds_bucket{le=\"0.00005\"} 7\n"), "{text}");
        assert!(text.contains("hotroute_request_duration_seconds_bucket{le=\"+Inf\"} 8\n"), "{text}");
        assert!(text.contains("hotroute_routes 2\n"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn each_router_names_its_own_routes() {
        let m = Metrics::new();
        let old = router("[[route]]\npath = \"/a\"\nbody = \"a\"\n");
        m.routes_loaded(&old);
        let new = router("\n[[route]]\npath = \"/a\"\nbody = \"a\"\n");
        m.routes_loaded(&new);
        assert_eq!(m.route(&old.routes()[0]).location(), "routes.toml:1");
        assert_eq!(m.route(&new.routes()[0]).location(), "routes.toml:2");
        // Made once per route.
        assert!(Arc::ptr_eq(&m.route(&new.routes()[0]), &m.route(&new.routes()[0])));
    }
}
