//! The few fields of an X.509 certificate the node reads itself: the subject's common names and
//! the DNS, URI and e-mail subject alternative names. A bounded DER walk (RFC 5280 §4.1); the
//! signature, chain and validity are rustls' business during the handshake, never ours.

/// One DER element: its tag byte and its contents.
#[derive(Debug, Clone, Copy)]
struct Element<'a> {
    tag: u8,
    value: &'a [u8],
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const OCTET_STRING: u8 = 0x04;
/// `[3] EXPLICIT` in TBSCertificate: the extensions.
const EXTENSIONS: u8 = 0xa3;
/// GeneralName choices (context-specific, primitive).
const RFC822_NAME: u8 = 0x81;
const DNS_NAME: u8 = 0x82;
const URI: u8 = 0x86;
/// 2.5.4.3 (id-at-commonName) and 2.5.29.17 (id-ce-subjectAltName), DER contents.
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
const OID_SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];

/// Splits the first element off `input`. Only single-byte tags (all X.509 uses) and definite
/// lengths up to 4 bytes.
fn element(input: &[u8]) -> Result<(Element<'_>, &[u8]), String> {
    let (&tag, rest) = input.split_first().ok_or("truncated: no tag")?;
    if tag & 0x1f == 0x1f {
        return Err("multi-byte tags are not used in certificates".into());
    }
    let (&first, rest) = rest.split_first().ok_or("truncated: no length")?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let count = (first & 0x7f) as usize;
        if count == 0 || count > 4 || rest.len() < count {
            return Err("bad length".into());
        }
        let len = rest[..count].iter().fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, &rest[count..])
    };
    if rest.len() < len {
        return Err("truncated element".into());
    }
    Ok((Element { tag, value: &rest[..len] }, &rest[len..]))
}

/// Every element of a constructed value's contents.
fn children(value: &[u8]) -> Result<Vec<Element<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = value;
    while !rest.is_empty() {
        let (e, tail) = element(rest)?;
        out.push(e);
        rest = tail;
    }
    Ok(out)
}

fn expect<'a>(e: Element<'a>, tag: u8, what: &str) -> Result<&'a [u8], String> {
    if e.tag != tag {
        return Err(format!("{what}: tag {:#04x}, expected {tag:#04x}", e.tag));
    }
    Ok(e.value)
}

/// The TBSCertificate's fields.
fn tbs_fields(der: &[u8]) -> Result<Vec<Element<'_>>, String> {
    let (cert, _) = element(der)?;
    let cert = children(expect(cert, SEQUENCE, "certificate")?)?;
    let tbs = cert.first().copied().ok_or("empty certificate")?;
    children(expect(tbs, SEQUENCE, "tbsCertificate")?)
}

fn text(value: &[u8]) -> Option<String> {
    std::str::from_utf8(value).ok().map(str::to_string)
}

/// The subject's common names (usually one).
pub fn subject_common_names(der: &[u8]) -> Result<Vec<String>, String> {
    let fields = tbs_fields(der)?;
    // version [0] is optional; then serial, signature, issuer, validity, subject.
    let skip = usize::from(fields.first().is_some_and(|f| f.tag == 0xa0));
    let subject = fields.get(skip + 4).copied().ok_or("no subject")?;
    let mut names = Vec::new();
    for rdn in children(expect(subject, SEQUENCE, "subject")?)? {
        for attribute in children(expect(rdn, SET, "relative distinguished name")?)? {
            let parts = children(expect(attribute, SEQUENCE, "attribute")?)?;
            if let [oid, value] = parts[..]
                && oid.tag == OID
                && oid.value == OID_COMMON_NAME
                && let Some(name) = text(value.value)
            {
                names.push(name);
            }
        }
    }
    Ok(names)
}

/// A subject alternative name of the kinds the node reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AltName {
    Dns(String),
    Uri(String),
    Email(String),
}

/// The DNS, URI and e-mail subject alternative names (IP addresses and others are skipped).
pub fn alt_names(der: &[u8]) -> Result<Vec<AltName>, String> {
    let fields = tbs_fields(der)?;
    let Some(extensions) = fields.iter().find(|f| f.tag == EXTENSIONS) else { return Ok(Vec::new()) };
    let (list, _) = element(extensions.value)?;
    let mut names = Vec::new();
    for extension in children(expect(list, SEQUENCE, "extensions")?)? {
        let parts = children(expect(extension, SEQUENCE, "extension")?)?;
        let (Some(oid), Some(value)) = (parts.first(), parts.last()) else { continue };
        if oid.tag != OID || oid.value != OID_SUBJECT_ALT_NAME {
            continue;
        }
        let (general_names, _) = element(expect(*value, OCTET_STRING, "extension value")?)?;
        for name in children(expect(general_names, SEQUENCE, "general names")?)? {
            let Some(value) = text(name.value) else { continue };
            match name.tag {
                DNS_NAME => names.push(AltName::Dns(value)),
                URI => names.push(AltName::Uri(value)),
                RFC822_NAME => names.push(AltName::Email(value)),
                _ => {}
            }
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_names_rcgen_wrote() {
        let mut params = rcgen::CertificateParams::new(vec!["db.example".to_string(), "10.0.0.1".to_string()]).unwrap();
        params.subject_alt_names.push(rcgen::SanType::URI("ledger://c/node/7".try_into().unwrap()));
        params.subject_alt_names.push(rcgen::SanType::Rfc822Name("ops@example.com".try_into().unwrap()));
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "Payments");
        params.distinguished_name.push(rcgen::DnType::CommonName, "checkout");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let der: &[u8] = cert.der();
        assert_eq!(subject_common_names(der).unwrap(), vec!["checkout".to_string()]);
        assert_eq!(
            alt_names(der).unwrap(),
            vec![
                AltName::Dns("db.example".into()),
                AltName::Uri("ledger://c/node/7".into()),
                AltName::Email("ops@example.com".into())
            ]
        );
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["a".to_string()]).unwrap().self_signed(&key).unwrap();
        let der: &[u8] = cert.der();
        for cut in 0..der.len() {
            let _ = subject_common_names(&der[..cut]);
            let _ = alt_names(&der[..cut]);
        }
        for i in 0..der.len() {
            let mut bad = der.to_vec();
            bad[i] ^= 0xff;
            let _ = subject_common_names(&bad);
            let _ = alt_names(&bad);
        }
        assert!(alt_names(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
    }
}
