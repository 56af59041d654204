//! "Did you mean ...?" for the scenario checks: the crate's shared [`closest`].

pub(crate) use crate::suggest::closest;
