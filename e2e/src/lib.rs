//! Dev-only crate for the end-to-end tests in `tests/`: the whole pipeline of step binaries,
//! chained in a shell pipe, on the local test bed. It has no code of its own.
