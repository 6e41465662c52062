//! Every bound the ledger enforces, in one place. The README's "Limits" table mirrors this file.

/// Items (assets, accounts, transfers, status changes) in one request, and so in one command.
pub const BATCH_ITEMS_MAX: usize = 8_190;
/// Legs in one transfer.
pub const TRANSFER_LEGS_MAX: usize = 64;
/// Legs across all transfers of one request: keeps one Raft entry bounded (about 4 MiB).
pub const BATCH_LEGS_MAX: usize = 32_768;
/// Bytes in an idempotency key.
pub const IDEMPOTENCY_KEY_BYTES_MAX: usize = 128;
/// Characters in an asset code.
pub const ASSET_CODE_LEN_MAX: usize = 16;
/// Decimal places of an asset.
pub const ASSET_SCALE_MAX: u8 = 18;
/// Metadata entries on an account, and their sizes.
pub const METADATA_ENTRIES_MAX: usize = 16;
pub const METADATA_KEY_BYTES_MAX: usize = 64;
pub const METADATA_VALUE_BYTES_MAX: usize = 256;
/// Bytes in an account's external reference.
pub const EXTERNAL_REF_BYTES_MAX: usize = 128;
/// Bytes in a status-change reason.
pub const REASON_BYTES_MAX: usize = 256;
/// Largest two-phase timeout (2^31 ms, about 24.8 days).
pub const TIMEOUT_MS_MAX: u64 = 1 << 31;
/// Pending transfers expired by one command; the rest wait for the next one.
pub const EXPIRIES_PER_COMMAND_MAX: usize = 8_190;
/// Significant digits accepted in an amount string (u128 holds 38 full digits).
pub const AMOUNT_DIGITS_MAX: usize = 38;
/// Entries returned by one page of an account's history.
pub const ENTRIES_PAGE_MAX: u32 = 1_000;
pub const ENTRIES_PAGE_DEFAULT: u32 = 100;
/// Ids in one lookup request.
pub const LOOKUP_IDS_MAX: usize = 8_190;
/// Offline wallets: default token validity (the seed documents recommend 1 day) and its maximum.
pub const WALLET_VALIDITY_MS_DEFAULT: u64 = 86_400_000;
pub const WALLET_VALIDITY_MS_MAX: u64 = 30 * 86_400_000;
/// After a token expires, its hold stays this long for late terminal uploads, then is released.
pub const WALLET_RELEASE_GRACE_MS: u64 = 3 * 86_400_000;
/// Largest offline count per window.
pub const WALLET_OFFLINE_COUNT_MAX: u32 = 1_000;
/// Bytes in a device id.
pub const WALLET_DEVICE_ID_BYTES_MAX: usize = 128;
/// Token holds released by one command; the rest wait for the next one.
pub const WALLET_RELEASES_PER_COMMAND_MAX: usize = 1_024;
/// Exceptions returned by one listing.
pub const WALLET_EXCEPTIONS_PAGE_MAX: usize = 1_000;
/// Longest principal, role, method or reason in a journaled refusal (longer is cut, on a char
/// boundary: a refusal is always recorded).
pub const ACCESS_DENIED_FIELD_BYTES_MAX: usize = 256;
/// Account changes (settings updates, external-ref rebinds) returned by one page of an
/// account's change history.
pub const ACCOUNT_CHANGES_PAGE_MAX: u32 = 1_000;
pub const ACCOUNT_CHANGES_PAGE_DEFAULT: u32 = 100;
/// Bytes in a transfer's reference (the merchant's order number); not unique.
pub const TRANSFER_REFERENCE_BYTES_MAX: usize = 64;
