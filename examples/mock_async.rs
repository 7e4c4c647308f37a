//! hotroute as a mock API in an async test: start, call, verify, swap routes, check coverage.
//!
//! Run it with `cargo run --example mock_async`. In a test suite, the body of `main` is the body of a
//! `#[tokio::test]`; the server needs no setup and stops when dropped.

use hotroute::{Expect, MockServer};
use serde_json::json;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = MockServer::start(
        r#"
        [[route]]
        path = "/users/{id}"
        template = true
        json = { id = "{{ path.id }}", name = "Ada" }

        [[route]]
        path = "/users"
        method = "POST"
        status = 201
        headers = { location = "/users/8" }
        "#,
    )
    .await?;

    // The code under test would get `server.uri()` as its base URL.
    let http = reqwest::Client::builder().no_proxy().build()?; // loopback: never through an HTTP_PROXY
    let user: serde_json::Value = http.get(server.url("/users/7")).send().await?.json().await?;
    assert_eq!(user, json!({ "id": "7", "name": "Ada" }));
    let created = http.post(server.url("/users")).json(&json!({ "name": "Grace" })).send().await?;
    assert_eq!(created.status(), 201);

    // What did the client send?
    server.verify(Expect::get("/users/7").once());
    server.verify(Expect::post("/users").json(json!({ "name": "Grace" })).once());
    let last = server.requests().pop().expect("two requests were received");
    println!("last request: {last}, content-type {}", last.header("content-type").unwrap_or("none"));

    // A wrong expectation fails with the list of what was received (`verify` panics with this message).
    let failure = server.check(&Expect::delete("/users/7")).unwrap_err();
    println!("\na failed expectation reads:\n{failure}");

    // Swap the routes mid-test: the next request sees the new ones.
    let generation = server.reload_str("[[route]]\npath = \"/users/{id}\"\nstatus = 503\n")?;
    server.wait_for_generation(generation).await?;
    assert_eq!(http.get(server.url("/users/7")).send().await?.status(), 503);

    // Start from a clean slate, then see which routes a test never used.
    server.reset();
    http.get(server.url("/nowhere")).send().await?;
    let coverage = server.coverage();
    let never: Vec<&str> = coverage.never_hit().map(|r| r.path.as_str()).collect();
    println!("routes never hit: {}", never.join(", "));
    for u in &coverage.unmatched {
        println!("no route answered: {} {} ({} times, last answered {})", u.method, u.path, u.count, u.status);
    }
    assert!(!coverage.is_complete());
    Ok(())
}
