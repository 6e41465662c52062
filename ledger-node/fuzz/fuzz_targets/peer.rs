#![no_main]
//! libFuzzer driver of `ledger_node::fuzz::peer::run` (corpus: ../corpus/peer/).
libfuzzer_sys::fuzz_target!(|data: &[u8]| ledger_node::fuzz::peer::run(data));
