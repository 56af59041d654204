//! `gauntlet demo up`: the whole stack as child processes; stops them all on SIGTERM, and
//! they die with it when it is killed.

#[path = "common/demo.rs"]
mod demo;

use std::time::Duration;

use demo::{get_json, http, poll, wait_healthy, Proc};
use nix::sys::signal::Signal;

/// A base port with the next three ports free too.
fn free_base() -> u16 {
    for _ in 0..50 {
        let base = demo::free_port();
        if base > u16::MAX - 4 {
            continue;
        }
        let held: Vec<_> = (base..base + 4)
            .map_while(|p| std::net::TcpListener::bind(("127.0.0.1", p)).ok())
            .collect();
        if held.len() == 4 {
            return base;
        }
    }
    panic!("no 4 consecutive free ports");
}

/// Direct children of `pid` (from /proc).
fn children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // Fields after the ")" that closes the command name: state, ppid, ...
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let ppid: i32 = rest
            .split_whitespace()
            .nth(1)
            .unwrap_or("0")
            .parse()
            .unwrap_or(0);
        if ppid == pid {
            out.push(p);
        }
    }
    out
}

/// Gone, or a zombie waiting for a reaper that is not ours.
fn dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, r)| r.trim_start().starts_with('Z'))
            .unwrap_or(true),
    }
}

async fn start_stack() -> (Proc, u16, Vec<i32>, tempfile::TempDir) {
    let base = free_base();
    let dir = tempfile::tempdir().unwrap();
    let mut up = Proc::demo(
        "up",
        &[
            "up",
            "--base-port",
            &base.to_string(),
            "--dir",
            &dir.path().display().to_string(),
        ],
    );
    up.wait_log("stack ready", Duration::from_secs(90));
    let kids = children(up.pid().as_raw());
    assert_eq!(kids.len(), 4, "redis, api, pipeline, standby: {kids:?}");
    (up, base, kids, dir)
}

#[tokio::test]
async fn up_runs_the_stack_and_stops_it_on_sigterm() {
    let (mut up, base, kids, _dir) = start_stack().await;
    let c = http();
    let api = format!("http://127.0.0.1:{base}");
    let pipe = format!("http://127.0.0.1:{}", base + 1);
    let standby = format!("http://127.0.0.1:{}", base + 2);
    wait_healthy(&c, &api).await;
    let r = c
        .post(format!("{api}/api/items"))
        .json(&serde_json::json!({"name": "through the stack"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    poll(Duration::from_secs(30), "the item in the sink", || async {
        let s = get_json(&c, &format!("{pipe}/sink")).await?;
        (s["distinct"] == 1).then_some(())
    })
    .await;
    let h = get_json(&c, &format!("{standby}/health")).await.unwrap();
    assert_eq!(h["role"], "standby");

    up.signal(Signal::SIGTERM);
    let status = up
        .wait_exit(Duration::from_secs(60))
        .expect("up stops on SIGTERM");
    assert!(status.success(), "exit status {status}; log:\n{}", up.log());
    for k in kids {
        assert!(dead(k), "child {k} outlived `demo up`");
    }
    let log = up.log();
    for name in ["redis stopped", "api stopped", "pipeline stopped"] {
        assert!(log.contains(name), "{name:?} missing from:\n{log}");
    }
}

#[tokio::test]
async fn children_die_when_up_is_killed() {
    let (up, _base, kids, _dir) = start_stack().await;
    up.signal(Signal::SIGKILL);
    poll(Duration::from_secs(30), "every child to exit", || async {
        kids.iter().all(|&k| dead(k)).then_some(())
    })
    .await;
}
