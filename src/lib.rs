//! gauntlet: a load and chaos testing harness.
//!
//! The library runs a scenario end to end and never prints or exits; the `gauntlet`
//! binary is a thin shell over [`run::execute`] and [`scenario::load`].

pub mod capacity;
pub mod chaos;
pub mod compare;
pub mod error;
pub mod event;
pub mod grade;
pub mod limits;
pub mod load;
pub mod metric;
pub mod observe;
pub mod record;
pub mod report;
pub mod run;
pub mod scenario;
pub mod secrets;
mod suggest;
pub mod units;

pub use error::Error;
