//! Route matching and route-file loading: 2 routes vs 10,000, and the cost of a whole load.

use std::hint::black_box;
use std::path::Path;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use hotroute::__internals::RequestView;
use hotroute::Router;
use http::{HeaderMap, Method, Uri};

/// The allocator of the `hotroute` binary (see src/main.rs), so that the figures are the command's: under glibc's
/// malloc the resource writes (items kept, then freed in batches) measured the allocator's slow paths.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn ten_thousand_routes() -> String {
    (0..10_000)
        .map(|i| format!("[[route]]\npath = \"/api/v1/resource{i}/{{id}}/items\"\nbody = \"resource {i}\"\n\n"))
        .collect()
}

fn router_of(text: &str) -> Router {
    Router::load_str(text, Path::new("bench.toml"), Path::new(".")).expect("bench routes load")
}

fn respond(c: &mut Criterion) {
    let small = router_of(include_str!("../routes.toml"));
    let big = router_of(&ten_thousand_routes());
    // A scenario route against a plain one of the same router: what a route pays for its scenario check.
    let scenarios = router_of(
        "[[route]]\npath = \"/plain\"\nbody = \"x\"\n\n\
         [[route]]\npath = \"/todo\"\nscenario = \"todo\"\nstate = \"started\"\nbody = \"x\"\n",
    );
    let headers = HeaderMap::new();
    let body = Bytes::new();
    let peer = "127.0.0.1:1".parse().unwrap();
    let mut group = c.benchmark_group("respond");
    for (name, router, uri) in [
        ("2 routes, /hello", &small, "/hello"),
        ("10k routes, deep route", &big, "/api/v1/resource9999/42/items"),
        ("10k routes, miss (404)", &big, "/api/v1/nope"),
        ("plain route beside a scenario", &scenarios, "/plain"),
        ("scenario route, state holds", &scenarios, "/todo"),
    ] {
        let uri: Uri = uri.parse().unwrap();
        group.bench_function(name, |b| {
            b.iter(|| {
                let view = RequestView { method: &Method::GET, uri: &uri, headers: &headers, body: &body, peer };
                black_box(router.respond(black_box(&view)).response)
            })
        });
    }
    group.finish();
}

fn load(c: &mut Criterion) {
    let text = ten_thousand_routes();
    let mut group = c.benchmark_group("load");
    group.sample_size(20);
    group.bench_function("check and build 10k routes", |b| b.iter(|| router_of(black_box(&text))));
    group.finish();
}

/// A `[[resource]]` of 10,000 items against a static route of the same router: `GET /users/{id}` and `POST /users`.
fn resources(c: &mut Criterion) {
    let items: Vec<String> =
        (1..=10_000).map(|i| format!("{{ id = {i}, name = \"user {i}\", role = \"user\" }}")).collect();
    let text = format!(
        "[[route]]\npath = \"/plain\"\nbody = \"x\"\n\n[[resource]]\npath = \"/users\"\nmax_items = 10000000\ndata = [{}]\n",
        items.join(", ")
    );
    let router = router_of(&text);
    let empty = HeaderMap::new();
    let mut json = HeaderMap::new();
    json.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    let (none, item) = (Bytes::new(), Bytes::from_static(br#"{"name":"Ada","role":"admin"}"#));
    let peer = "127.0.0.1:1".parse().unwrap();
    let (plain, one, all): (Uri, Uri, Uri) =
        ("/plain".parse().unwrap(), "/users/5000".parse().unwrap(), "/users".parse().unwrap());
    let mut group = c.benchmark_group("resource");
    group.bench_function("static route", |b| {
        b.iter(|| {
            let view = RequestView { method: &Method::GET, uri: &plain, headers: &empty, body: &none, peer };
            black_box(router.respond(black_box(&view)).response)
        })
    });
    group.bench_function("GET /users/{id}, 10k items", |b| {
        b.iter(|| {
            let view = RequestView { method: &Method::GET, uri: &one, headers: &empty, body: &none, peer };
            black_box(router.respond(black_box(&view)).response)
        })
    });
    // Ids in turn with a stride, as clients ask for many items: a fixed id keeps its item in the cache and hides
    // what a lookup among 10,000 items costs.
    let ids: Vec<Uri> =
        (0..10_000u64).map(|i| format!("/users/{}", (i * 7_919) % 10_000 + 1).parse().unwrap()).collect();
    let mut turn = 0usize;
    group.bench_function("GET /users/{id}, 10k items, ids in turn", |b| {
        b.iter(|| {
            turn = (turn + 1) % ids.len();
            let view = RequestView { method: &Method::GET, uri: &ids[turn], headers: &empty, body: &none, peer };
            black_box(router.respond(black_box(&view)).response)
        })
    });
    // Each DELETE takes the oldest item (the worst case of a list kept in insertion order); outside the timing the
    // item is posted again with its id, so it goes last and the resource stays at 10,000 items.
    let mut oldest: std::collections::VecDeque<u64> = (1..=10_000).collect();
    group.bench_function("DELETE the oldest item, 10k items", |b| {
        b.iter_custom(|iters| {
            let mut spent = std::time::Duration::ZERO;
            for _ in 0..iters {
                let id = oldest.pop_front().unwrap();
                let uri: Uri = format!("/users/{id}").parse().unwrap();
                let start = std::time::Instant::now();
                let view = RequestView { method: &Method::DELETE, uri: &uri, headers: &empty, body: &none, peer };
                black_box(router.respond(black_box(&view)).response);
                spent += start.elapsed();
                let again = Bytes::from(format!(r#"{{"id":{id},"name":"user {id}","role":"user"}}"#));
                let view = RequestView { method: &Method::POST, uri: &all, headers: &json, body: &again, peer };
                assert_eq!(router.respond(&view).response.status(), 201);
                oldest.push_back(id);
            }
            spent
        })
    });
    // Each POST adds an item: after each timed batch its items are deleted again, newest first (each delete is then
    // O(1)), outside the timing, so the resource stays at about 10,000 items and the heap is not churned by resets.
    let mut next_id = 10_001u64;
    group.bench_function("POST /users, 10k items", |b| {
        b.iter_custom(|iters| {
            let mut spent = std::time::Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(1_000);
                let start = std::time::Instant::now();
                for _ in 0..n {
                    let view = RequestView { method: &Method::POST, uri: &all, headers: &json, body: &item, peer };
                    black_box(router.respond(black_box(&view)).response);
                }
                spent += start.elapsed();
                for id in (next_id..next_id + n).rev() {
                    let uri: Uri = format!("/users/{id}").parse().unwrap();
                    let view = RequestView { method: &Method::DELETE, uri: &uri, headers: &empty, body: &none, peer };
                    assert_eq!(router.respond(&view).response.status(), 204);
                }
                next_id += n;
                left -= n;
            }
            spent
        })
    });
    group.finish();
}

criterion_group!(benches, respond, load, resources);
criterion_main!(benches);
