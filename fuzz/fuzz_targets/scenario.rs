//! Any bytes as a scenario file: parse, validate, criteria and templates must return a
//! plan or positioned errors, never panic; a plan's schedule is bounded.
#![no_main]

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use gauntlet::scenario::bounds::MAX_DURATION;
use gauntlet::scenario::template::{RenderCtx, Template};
use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;

fuzz_target!(|data: &[u8]| {
    match gauntlet::scenario::load_bytes(Path::new("fuzz.toml"), data) {
        Ok(plan) => {
            // Deadline: the hard cap, or the stages plus 30s.
            assert!(
                plan.load_duration <= MAX_DURATION,
                "{:?}",
                plan.load_duration
            );
            assert!(plan.deadline <= MAX_DURATION + Duration::from_secs(30));
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(plan.seed);
            let vars = HashMap::new();
            let mut ctx = RenderCtx {
                rng: &mut rng,
                vars: &vars,
                user: 1,
                iteration: 1,
            };
            let mut out = String::new();
            for r in &plan.requests {
                r.path.render(&mut ctx, &mut out);
                for (_, h) in &r.headers {
                    h.render(&mut ctx, &mut out);
                }
                if let Some(b) = &r.body {
                    b.render_into(&mut ctx, &mut out);
                }
                out.clear();
            }
        }
        Err(e) => {
            assert!(!e.0.is_empty());
            for d in &e.0 {
                // Every problem has a place in the file.
                assert!(d.line > 0 && d.column > 0, "{d:?}");
            }
            let _ = e.to_string();
        }
    }
    // The criteria grammar and the templates on their own, one line each.
    if let Ok(text) = std::str::from_utf8(data) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let vars = HashMap::new();
        for line in text.lines().take(32) {
            let _ = gauntlet::metric::parse(line);
            if let Ok(t) = Template::parse(line) {
                let mut ctx = RenderCtx {
                    rng: &mut rng,
                    vars: &vars,
                    user: 1,
                    iteration: 1,
                };
                let mut out = String::new();
                t.render(&mut ctx, &mut out);
            }
        }
    }
});
