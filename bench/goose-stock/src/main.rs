//! The stock goose load test of the benchmark: one scenario, one GET transaction, no
//! wait time. Users, hatch rate, duration and host come from goose's own command line
//! (`-H URL -u USERS -r RATE -t TIME`), as any goose load test takes them.

use goose::prelude::*;

#[tokio::main]
async fn main() -> Result<(), GooseError> {
    GooseAttack::initialize()?
        .register_scenario(scenario!("Bench").register_transaction(transaction!(get_root)))
        .execute()
        .await?;
    Ok(())
}

async fn get_root(user: &mut GooseUser) -> TransactionResult {
    let _goose = user.get("/").await?;
    Ok(())
}
