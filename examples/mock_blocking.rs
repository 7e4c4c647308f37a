//! hotroute as a mock API in a test without an async runtime (a plain `#[test]`).
//!
//! Run it with `cargo run --example mock_blocking`.

use hotroute::{Expect, MockServer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = MockServer::start_blocking(
        r#"
        [[route]]
        path = "/health"
        json = { status = "ok" }
        "#,
    )?;

    let http = reqwest::blocking::Client::builder().no_proxy().build()?; // loopback: never through a proxy
    let body = http.get(server.url("/health")).header("x-probe", "1").send()?.text()?;
    assert_eq!(body, r#"{"status":"ok"}"#);

    server.verify(Expect::get("/health").header("x-probe", "1").once());
    server.verify(Expect::any().unmatched().never());
    println!("{} request(s) received: {}", server.requests().len(), server.requests()[0]);
    Ok(())
}
