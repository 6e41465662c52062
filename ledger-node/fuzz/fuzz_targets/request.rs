#![no_main]
//! libFuzzer driver of `ledger_node::fuzz::requests::run` (corpus: ../corpus/request/).
libfuzzer_sys::fuzz_target!(|data: &[u8]| ledger_node::fuzz::requests::run(data));
