//! The demo API as a real process: items in memory and in a real Redis, /health, /metrics,
//! the `no-pool` defect seen from Redis's own connection counter.

#[path = "common/demo.rs"]
mod demo;

use std::time::Duration;

use demo::{get, get_json, http, metric, poll, start_api, wait_healthy, Redis};
use futures::{SinkExt, StreamExt};
use redis::Commands;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn memory_store_serves_items_and_pushes_them_to_websockets() {
    let (_api, base) = start_api(None, &[]);
    let c = http();
    wait_healthy(&c, &base).await;
    assert_eq!(
        get(&c, &format!("{base}/health")).await.unwrap(),
        (200, r#"{"status":"ok"}"#.to_string())
    );

    let ws_url = format!("{}/ws", base.replace("http://", "ws://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
        .await
        .expect("ws connect");
    ws.send(Message::text("hello")).await.unwrap();
    let echo = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("echo in time")
        .expect("a message")
        .expect("no error");
    assert_eq!(echo.into_text().unwrap().as_str(), "hello");

    let mut ids = Vec::new();
    for i in 0..3 {
        let r = c
            .post(format!("{base}/api/items"))
            .json(&serde_json::json!({"name": format!("n{i}"), "email": "a@b.c", "id": "ignored"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        let loc = r.headers()["location"].to_str().unwrap().to_string();
        let v: serde_json::Value = r.json().await.unwrap();
        let id = v["id"].as_str().unwrap().to_string();
        assert_ne!(id, "ignored");
        assert_eq!(loc, format!("/api/items/{id}"));
        assert_eq!(v["name"], format!("n{i}"));
        ids.push(id);
    }
    // The subscriber got the first created item.
    let pushed = loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("push in time")
            .expect("a message")
            .expect("no error");
        if let Message::Text(t) = m {
            break t;
        }
    };
    let pushed: serde_json::Value = serde_json::from_str(pushed.as_str()).unwrap();
    assert_eq!(pushed["id"].as_str().unwrap(), ids[0]);

    let one = get_json(&c, &format!("{base}/api/items/{}", ids[1]))
        .await
        .unwrap();
    assert_eq!(one["name"], "n1");
    let list = get_json(&c, &format!("{base}/api/items")).await.unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["n2", "n1", "n0"], "newest first");

    assert_eq!(
        get(&c, &format!("{base}/api/items/999999"))
            .await
            .unwrap()
            .0,
        404
    );
    let bad = c
        .post(format!("{base}/api/items"))
        .body("[1,2]")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let del = c
        .delete(format!("{base}/api/items/{}", ids[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status().as_u16(), 204);

    let created = metric(
        &c,
        &base,
        r#"demo_http_requests_total{route="POST /api/items",status="201"}"#,
    )
    .await;
    assert_eq!(created, Some(3.0));
    assert_eq!(metric(&c, &base, "demo_items_total").await, Some(2.0));
    assert_eq!(
        metric(&c, &base, "demo_ws_connections_open").await,
        Some(1.0)
    );
    assert!(
        metric(&c, &base, "process_resident_memory_bytes")
            .await
            .unwrap()
            > 0.0
    );
}

#[tokio::test]
async fn items_written_through_the_api_are_in_redis_and_health_follows_redis() {
    let mut redis = Redis::start(&[]);
    let (_api, base) = start_api(Some(&redis.url()), &[]);
    let c = http();
    wait_healthy(&c, &base).await;

    let mut ids = Vec::new();
    for i in 0..5 {
        let v: serde_json::Value = c
            .post(format!("{base}/api/items"))
            .json(&serde_json::json!({"name": format!("r{i}"), "n": i}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    let mut r = redis.conn();
    for (i, id) in ids.iter().enumerate() {
        let json: String = r.hget(format!("demo:item:{id}"), "json").unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["name"], format!("r{i}"));
        assert_eq!(v["id"].as_str().unwrap(), id);
    }
    let indexed: u64 = r.zcard("demo:items").unwrap();
    assert_eq!(indexed, 5);
    let streamed: u64 = redis::cmd("XLEN")
        .arg("demo:items:stream")
        .query(&mut r)
        .unwrap();
    assert_eq!(streamed, 5, "each created item feeds the pipeline's stream");

    // Sessions live in Redis too, with an expiry.
    let session: serde_json::Value = c
        .post(format!("{base}/api/sessions"))
        .json(&serde_json::json!({"user": "ada"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = session["token"].as_str().unwrap();
    let stored: String = r.get(format!("demo:session:{token}")).unwrap();
    assert!(stored.contains(r#""user":"ada""#), "{stored}");
    let ttl: i64 = r.ttl(format!("demo:session:{token}")).unwrap();
    assert!(ttl > 0, "sessions expire, ttl {ttl}");
    assert_eq!(
        get_json(&c, &format!("{base}/api/sessions/{token}"))
            .await
            .unwrap()["user"],
        "ada"
    );
    assert_eq!(
        get(&c, &format!("{base}/api/sessions/{}", "0".repeat(32)))
            .await
            .unwrap()
            .0,
        404
    );

    // Read back through the API from Redis.
    let list = get_json(&c, &format!("{base}/api/items")).await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 5);
    assert_eq!(list[0]["name"], "r4");
    assert_eq!(metric(&c, &base, "demo_items_total").await, Some(5.0));

    // Redis gone: /health says so.
    redis.crash();
    let url = format!("{base}/health");
    poll(
        Duration::from_secs(30),
        "health 503 without Redis",
        || async { matches!(get(&c, &url).await, Some((503, _))).then_some(()) },
    )
    .await;
    let failed = c
        .post(format!("{base}/api/items"))
        .json(&serde_json::json!({"x": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status().as_u16(), 503);
    assert!(metric(&c, &base, "demo_http_errors_total").await.unwrap() >= 1.0);

    // And recovers when Redis is back (the AOF kept the items).
    redis.restart();
    wait_healthy(&c, &base).await;
    assert_eq!(
        get_json(&c, &format!("{base}/api/items/{}", ids[0]))
            .await
            .unwrap()["name"],
        "r0"
    );
}

fn connections_received(r: &mut redis::Connection) -> u64 {
    let info: String = redis::cmd("INFO").arg("stats").query(r).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("total_connections_received:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

async fn redis_connections_for_requests(defects: &[&str], requests: usize) -> u64 {
    let redis = Redis::start(&[]);
    let (_api, base) = start_api(Some(&redis.url()), defects);
    let c = http();
    wait_healthy(&c, &base).await;
    let mut r = redis.conn();
    let before = connections_received(&mut r);
    for i in 0..requests {
        let s = c
            .post(format!("{base}/api/items"))
            .json(&serde_json::json!({ "i": i }))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(s.as_u16(), 201);
    }
    connections_received(&mut r) - before
}

#[tokio::test]
async fn no_pool_defect_opens_a_redis_connection_per_request() {
    let pooled = redis_connections_for_requests(&["--pool-size", "4"], 30).await;
    let unpooled = redis_connections_for_requests(&["--defect", "no-pool"], 30).await;
    assert!(
        pooled <= 4,
        "pooled API opened {pooled} connections for 30 requests"
    );
    assert!(
        unpooled >= 30,
        "no-pool API opened only {unpooled} connections for 30 requests"
    );
}

#[test]
fn unknown_defect_is_refused_with_the_valid_names() {
    let out = std::process::Command::new(demo::bin())
        .args(["demo", "api", "--defect", "bogus"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for name in [
        "redis-no-persistence",
        "no-single-instance",
        "no-failover",
        "ws-leak",
        "no-pool",
    ] {
        assert!(err.contains(name), "{name} missing from: {err}");
    }
}

/// `--redis-retry`: a request that arrives while Redis restarts waits for it and succeeds;
/// without the option the same request fails with 503 at once (the test above).
#[tokio::test]
async fn with_redis_retry_a_request_rides_through_a_redis_restart() {
    let mut redis = Redis::start(&[]);
    let (_api, base) = start_api(Some(&redis.url()), &["--redis-retry", "20s"]);
    let c = http();
    wait_healthy(&c, &base).await;
    redis.crash();
    // Sent while Redis is down: answered once it is back.
    let pending = tokio::spawn({
        let c = c.clone();
        let url = format!("{base}/api/items");
        async move {
            c.post(url)
                .json(&serde_json::json!({"name": "during"}))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }
    });
    // Still unanswered (without the retry a 503 comes back in milliseconds).
    let mut pending = pending;
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut pending)
            .await
            .is_err(),
        "answered while Redis was down"
    );
    redis.restart();
    let status = tokio::time::timeout(Duration::from_secs(30), &mut pending)
        .await
        .expect("answered")
        .unwrap()
        .unwrap();
    assert_eq!(status, 201);
}
