//! The one mapping between the shared vocabulary (`ledger-core`) and the generated proto types,
//! used by the node (to answer) and the client (to read the answer) alike.

use ledger_core::result::ResultCode;

use crate::api;

/// The wire number of a result code. The ledger numbers its codes as the proto does except OK
/// and UNSPECIFIED: since API revision 2 the wire's 0 is RESULT_CODE_UNSPECIFIED (an unset code
/// must not read as success) and OK travels as 62. The ledger's own numbers (`as_u32`, persisted
/// and journaled) do not change. `Unrecognized(n)` goes back out as `n`.
pub fn result_code_to_wire(code: ResultCode) -> i32 {
    match code {
        ResultCode::Ok => api::ResultCode::Ok as i32,
        ResultCode::Unspecified => api::ResultCode::Unspecified as i32,
        ResultCode::Unrecognized(other) => other,
        rule => rule.as_u32() as i32,
    }
}

/// The result code of a wire number; a number this build does not know is `Unrecognized`, never
/// OK (prost's `code()` getter would fold it into the default).
pub fn result_code_from_wire(value: i32) -> ResultCode {
    if value == api::ResultCode::Ok as i32 {
        return ResultCode::Ok;
    }
    if value == api::ResultCode::Unspecified as i32 {
        return ResultCode::Unspecified;
    }
    match u32::try_from(value).map(ResultCode::from_u32) {
        Ok(ResultCode::Ok | ResultCode::Unspecified) | Err(_) => ResultCode::Unrecognized(value),
        Ok(code) => code,
    }
}

/// The proto enum of a result code; `None` for `Unrecognized` (no such proto value).
pub fn result_code_to_proto(code: ResultCode) -> Option<api::ResultCode> {
    api::ResultCode::try_from(result_code_to_wire(code)).ok()
}

/// The result code of a proto enum value: total, every proto value has one.
pub fn result_code_from_proto(code: api::ResultCode) -> ResultCode {
    result_code_from_wire(code as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every proto value maps to the code of the same name and back to itself; numbers that are
    /// not proto values are `Unrecognized` and go back out unchanged.
    #[test]
    fn every_proto_value_round_trips() {
        let mut known = 0;
        for value in -5..1000 {
            let code = result_code_from_wire(value);
            assert_eq!(result_code_to_wire(code), value, "{value} -> {code:?}");
            let Ok(proto) = api::ResultCode::try_from(value) else {
                assert_eq!(code, ResultCode::Unrecognized(value));
                continue;
            };
            known += 1;
            assert_eq!(result_code_from_proto(proto), code);
            assert_eq!(result_code_to_proto(code), Some(proto));
            assert_eq!(code.name(), proto.as_str_name().to_ascii_lowercase(), "{value}");
            assert_eq!(ResultCode::from_name(code.name()), Some(code));
        }
        assert_eq!(known, 78);
    }

    /// Every Rust value maps to a proto value of the same name and back to itself; no rule's code
    /// is RESULT_CODE_UNSPECIFIED, and no two share a wire number.
    #[test]
    fn every_rust_value_round_trips() {
        // `ALL` is every serialized variant before `Unspecified`: the rules' codes.
        let decoded: Vec<ResultCode> = (0u8..128).map_while(|i| postcard::from_bytes::<ResultCode>(&[i]).ok()).collect();
        assert_eq!(&decoded[..decoded.len() - 1], ResultCode::ALL);
        assert_eq!(decoded.last(), Some(&ResultCode::Unspecified));
        let mut seen = std::collections::BTreeSet::new();
        for &code in ResultCode::ALL {
            let wire = result_code_to_proto(code).unwrap_or_else(|| panic!("{code:?} has no wire value"));
            assert_ne!(wire, api::ResultCode::Unspecified, "{code:?}");
            let snake: String = format!("{code:?}")
                .chars()
                .enumerate()
                .flat_map(|(i, c)| if c.is_ascii_uppercase() && i > 0 { vec!['_', c] } else { vec![c.to_ascii_uppercase()] })
                .collect();
            assert_eq!(wire.as_str_name(), snake, "{code:?}");
            assert!(seen.insert(result_code_to_wire(code)), "{code:?}: wire number used twice");
            assert_eq!(result_code_from_proto(wire), code);
            assert_eq!(result_code_from_wire(result_code_to_wire(code)), code);
        }
        for extra in [ResultCode::Unspecified, ResultCode::Unrecognized(4242), ResultCode::Unrecognized(-1)] {
            assert_eq!(result_code_from_wire(result_code_to_wire(extra)), extra);
        }
        assert_eq!(result_code_to_proto(ResultCode::Unspecified), Some(api::ResultCode::Unspecified));
        assert_eq!(result_code_to_proto(ResultCode::Unrecognized(4242)), None);
        assert_eq!(api::ResultCode::Ok as i32, 62);
        assert_eq!(api::ResultCode::Unspecified as i32, 0);
        assert_eq!(result_code_to_wire(ResultCode::Ok), 62);
        assert_eq!(result_code_from_wire(0), ResultCode::Unspecified);
        assert!(!result_code_from_wire(0).is_success());
    }
}
