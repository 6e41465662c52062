#![no_main]
//! libFuzzer driver of `ledger_node::fuzz::apply::run` (corpus: ../corpus/apply/).
libfuzzer_sys::fuzz_target!(|data: &[u8]| ledger_node::fuzz::apply::run(data));
