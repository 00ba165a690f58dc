//! RFC 3161 time-stamps of a chain's checkpoints (docs/anchoring.md, "Public timestamps";
//! ADR 0028). A time-stamping authority (TSA) signs, at a time it vouches for, the SHA-256 of a
//! checkpoint's text (its origin, size and root lines) together with a nonce the chain chose; the
//! token — CMS SignedData over a TSTInfo — is kept on the chain in a `Timestamp` transaction, and
//! checked offline by anyone holding the TSA's CA certificate: the signature and its chain (with
//! the time-stamping extended key usage, valid at the signed time), the message imprint, the
//! nonce.
//!
//! The ASN.1 is RustCrypto's (`x509-tsp`, `cms`, `der`); the certificate chain and signature
//! checks are rustls-webpki's (with aws-lc-rs), the verifier rustls runs for TLS.

use cms::cert::x509::Certificate;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier};
use der::asn1::{Int, OctetString, Uint};
use der::oid::ObjectIdentifier;
use der::{Decode, Encode};
use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, UnixTime};
use sha2::{Digest, Sha256, Sha384, Sha512};
use x509_tsp::{MessageImprint, TimeStampReq, TimeStampResp, TspVersion, TstInfo};

use crate::error::{LedgerError, Result};

/// Largest token accepted, in bytes (a token with a chain of a few certificates is 3–6 KiB).
pub const MAX_TOKEN_BYTES: usize = 32 * 1024;

const ID_SHA_256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const ID_SHA_384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const ID_SHA_512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const ID_CT_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const SHA384_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const SHA512_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const ECDSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const ID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
/// id-kp-timeStamping (1.3.6.1.5.5.7.3.8), the value bytes of its DER encoding.
const EKU_TIME_STAMPING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x08];

fn invalid(reason: impl Into<String>) -> LedgerError {
    LedgerError::Invalid(reason.into())
}

fn nonce_int(nonce: u64) -> Int {
    let unsigned = Uint::new(&nonce.to_be_bytes()).expect("eight bytes are an integer");
    Int::from(unsigned)
}

/// The DER `TimeStampReq` for `message`: its SHA-256, the nonce, and the TSA's certificate asked
/// for in the token (a verifier then needs only the TSA's CA).
pub fn request(message: &[u8], nonce: u64) -> Vec<u8> {
    TimeStampReq {
        version: TspVersion::V1,
        message_imprint: MessageImprint {
            hash_algorithm: cms::cert::x509::spki::AlgorithmIdentifier {
                oid: ID_SHA_256,
                parameters: Some(der::Any::null()),
            },
            hashed_message: OctetString::new(Sha256::digest(message).to_vec())
                .expect("32 bytes are an octet string"),
        },
        req_policy: None,
        nonce: Some(nonce_int(nonce)),
        cert_req: true,
        extensions: None,
    }
    .to_der()
    .expect("a request encodes")
}

/// The token of a TSA's DER `TimeStampResp`: granted (with or without modifications), and
/// holding one.
pub fn token_of(response: &[u8]) -> Result<Vec<u8>> {
    if response.len() > MAX_TOKEN_BYTES + 1024 {
        return Err(invalid(format!(
            "the time-stamp response is {} bytes; at most {} are accepted",
            response.len(),
            MAX_TOKEN_BYTES + 1024
        )));
    }
    let response = TimeStampResp::from_der(response)
        .map_err(|error| invalid(format!("not a time-stamp response: {error}")))?;
    let status = response.status.status;
    if !matches!(
        status,
        cmpv2::status::PkiStatus::Accepted | cmpv2::status::PkiStatus::GrantedWithMods
    ) {
        return Err(invalid(format!(
            "the time-stamping authority refused: {status:?} {:?}",
            response.status.status_string
        )));
    }
    let token = response
        .time_stamp_token
        .ok_or_else(|| invalid("the time-stamp response holds no token"))?;
    token
        .to_der()
        .map_err(|error| invalid(format!("the token: {error}")))
}

/// A token, read.
#[derive(Debug)]
pub struct Token {
    signed: SignedData,
    /// The TSTInfo's DER (the signed content).
    content: Vec<u8>,
    pub info: TstInfo,
}

/// Reads a token (a DER `ContentInfo` of SignedData over a TSTInfo) from untrusted bytes.
pub fn parse(token: &[u8]) -> Result<Token> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(invalid(format!(
            "the time-stamp token is {} bytes; at most {MAX_TOKEN_BYTES} are accepted",
            token.len()
        )));
    }
    let info = ContentInfo::from_der(token)
        .map_err(|error| invalid(format!("the time-stamp token is not CMS: {error}")))?;
    if info.content_type != ID_SIGNED_DATA {
        return Err(invalid("the time-stamp token is not CMS SignedData"));
    }
    let signed: SignedData = info
        .content
        .decode_as()
        .map_err(|error| invalid(format!("the token's SignedData: {error}")))?;
    if signed.encap_content_info.econtent_type != ID_CT_TST_INFO {
        return Err(invalid("the token's content is not a TSTInfo"));
    }
    let content = signed
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or_else(|| invalid("the token carries no TSTInfo"))?
        .decode_as::<OctetString>()
        .map_err(|error| invalid(format!("the token's content: {error}")))?
        .into_bytes();
    let info = TstInfo::from_der(&content)
        .map_err(|error| invalid(format!("the token's TSTInfo: {error}")))?;
    Ok(Token {
        signed,
        content,
        info,
    })
}

fn digest(algorithm: &ObjectIdentifier, bytes: &[u8]) -> Result<Vec<u8>> {
    Ok(match *algorithm {
        ID_SHA_256 => Sha256::digest(bytes).to_vec(),
        ID_SHA_384 => Sha384::digest(bytes).to_vec(),
        ID_SHA_512 => Sha512::digest(bytes).to_vec(),
        other => {
            return Err(invalid(format!(
                "the hash algorithm {other} is not one of SHA-256, -384, -512"
            )));
        }
    })
}

impl Token {
    /// The signed time, ms since the Unix epoch.
    pub fn time_ms(&self) -> u64 {
        self.info.gen_time.to_unix_duration().as_millis() as u64
    }

    /// The token's serial number, hex.
    pub fn serial(&self) -> String {
        hex::encode(self.info.serial_number.as_bytes())
    }

    /// Is this a token over `message` (its SHA-256, or another SHA-2 the TSA chose) for the
    /// request of `nonce`?
    pub fn check_imprint(&self, message: &[u8], nonce: u64) -> Result<()> {
        let imprint = &self.info.message_imprint;
        if imprint.hash_algorithm.oid != ID_SHA_256 {
            return Err(invalid(format!(
                "the token's imprint is by {}, not SHA-256 as asked",
                imprint.hash_algorithm.oid
            )));
        }
        if imprint.hashed_message.as_bytes() != digest(&ID_SHA_256, message)?.as_slice() {
            return Err(invalid(
                "the token is over another message: its imprint is not the SHA-256 of this \
                 checkpoint",
            ));
        }
        match &self.info.nonce {
            Some(found) if *found == nonce_int(nonce) => Ok(()),
            Some(_) => Err(invalid(
                "the token's nonce is not the one asked for: it answers another request",
            )),
            None => Err(invalid("the token carries no nonce")),
        }
    }

    /// Checks the token's signature: one signer, whose signed attributes name the TSTInfo and
    /// hold its digest, whose certificate (in the token) chains to one of `roots` with the
    /// time-stamping extended key usage at the signed time, and whose key signed them. Returns
    /// the signer certificate's subject.
    pub fn check_signature(&self, roots: &[CertificateDer<'_>]) -> Result<String> {
        let [signer] = self.signed.signer_infos.0.as_slice() else {
            return Err(invalid(format!(
                "the token has {} signers; RFC 3161 has one",
                self.signed.signer_infos.0.len()
            )));
        };
        let attributes = signer
            .signed_attrs
            .as_ref()
            .ok_or_else(|| invalid("the token's signer signed no attributes"))?;
        let value_of = |oid: ObjectIdentifier| {
            attributes
                .iter()
                .find(|attribute| attribute.oid == oid)
                .and_then(|attribute| attribute.values.iter().next())
                .ok_or_else(|| invalid(format!("the signed attributes lack {oid}")))
        };
        let content_type: ObjectIdentifier = value_of(ID_CONTENT_TYPE)?
            .decode_as()
            .map_err(|error| invalid(format!("the content-type attribute: {error}")))?;
        if content_type != ID_CT_TST_INFO {
            return Err(invalid("the signed content-type is not TSTInfo"));
        }
        let claimed: OctetString = value_of(ID_MESSAGE_DIGEST)?
            .decode_as()
            .map_err(|error| invalid(format!("the message-digest attribute: {error}")))?;
        let digest_algorithm = signer.digest_alg.oid;
        if claimed.as_bytes() != digest(&digest_algorithm, &self.content)?.as_slice() {
            return Err(invalid(
                "the signed message digest is not the TSTInfo's: the token was altered",
            ));
        }
        // The signer's certificate, among those the token carries.
        let certificates: Vec<Certificate> = self
            .signed
            .certificates
            .as_ref()
            .map(|set| {
                set.0
                    .iter()
                    .filter_map(|choice| match choice {
                        cms::cert::CertificateChoices::Certificate(certificate) => {
                            Some(certificate.clone())
                        }
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let position = certificates
            .iter()
            .position(|certificate| match &signer.sid {
                SignerIdentifier::IssuerAndSerialNumber(id) => {
                    certificate.tbs_certificate.issuer == id.issuer
                        && certificate.tbs_certificate.serial_number == id.serial_number
                }
                SignerIdentifier::SubjectKeyIdentifier(id) => certificate
                    .tbs_certificate
                    .extensions
                    .iter()
                    .flatten()
                    .any(|extension| {
                        extension.extn_id == ObjectIdentifier::new_unwrap("2.5.29.14")
                            && OctetString::from_der(extension.extn_value.as_bytes())
                                .is_ok_and(|key_id| key_id.as_bytes() == id.0.as_bytes())
                    }),
            })
            .ok_or_else(|| {
                invalid(
                    "the token does not carry its signer's certificate (the request asks for it)",
                )
            })?;
        let encoded: Vec<Vec<u8>> = certificates
            .iter()
            .map(|certificate| certificate.to_der())
            .collect::<std::result::Result<_, _>>()
            .map_err(|error| invalid(format!("a certificate of the token: {error}")))?;
        let ders: Vec<CertificateDer<'_>> = encoded
            .iter()
            .map(|bytes| CertificateDer::from(bytes.as_slice()))
            .collect();
        let intermediates: Vec<CertificateDer<'_>> = ders
            .iter()
            .enumerate()
            .filter(|(index, _)| *index != position)
            .map(|(_, der)| der.clone())
            .collect();
        let anchors = roots
            .iter()
            .map(|root| {
                webpki::anchor_from_trusted_cert(root)
                    .map(|anchor| anchor.to_owned())
                    .map_err(|error| invalid(format!("a TSA root certificate: {error:?}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let end_entity = webpki::EndEntityCert::try_from(&ders[position])
            .map_err(|error| invalid(format!("the TSA's certificate: {error:?}")))?;
        let at = UnixTime::since_unix_epoch(self.info.gen_time.to_unix_duration());
        end_entity
            .verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &anchors,
                &intermediates,
                at,
                webpki::KeyUsage::required(EKU_TIME_STAMPING),
                None,
                None,
            )
            .map_err(|error| {
                invalid(format!(
                    "the TSA's certificate does not chain to the TSA root given, for time-stamping, \
                     at the signed time: {error:?}"
                ))
            })?;
        let signed_attributes = attributes
            .to_der()
            .map_err(|error| invalid(format!("the signed attributes: {error}")))?;
        let key_algorithm = certificates[position]
            .tbs_certificate
            .subject_public_key_info
            .algorithm
            .oid;
        let candidates = algorithms(
            &signer.signature_algorithm.oid,
            &digest_algorithm,
            &key_algorithm,
        )?;
        let signature = signer.signature.as_bytes();
        if !candidates.iter().any(|algorithm| {
            end_entity
                .verify_signature(*algorithm, &signed_attributes, signature)
                .is_ok()
        }) {
            return Err(invalid(
                "the TSA's signature on the token does not verify with its certificate's key",
            ));
        }
        Ok(certificates[position].tbs_certificate.subject.to_string())
    }
}

/// The verification algorithms a signer's signature algorithm and digest may mean, for its key.
fn algorithms(
    signature: &ObjectIdentifier,
    digest: &ObjectIdentifier,
    key: &ObjectIdentifier,
) -> Result<Vec<&'static dyn SignatureVerificationAlgorithm>> {
    use webpki::aws_lc_rs as algs;
    let by_digest = |sha256, sha384, sha512| match *digest {
        ID_SHA_256 => Ok(sha256),
        ID_SHA_384 => Ok(sha384),
        ID_SHA_512 => Ok(sha512),
        other => Err(invalid(format!(
            "the digest algorithm {other} is not SHA-2"
        ))),
    };
    Ok(match (*signature, *key) {
        (RSA_ENCRYPTION, RSA_ENCRYPTION) => vec![by_digest(
            algs::RSA_PKCS1_2048_8192_SHA256,
            algs::RSA_PKCS1_2048_8192_SHA384,
            algs::RSA_PKCS1_2048_8192_SHA512,
        )?],
        (SHA256_WITH_RSA, RSA_ENCRYPTION) => vec![algs::RSA_PKCS1_2048_8192_SHA256],
        (SHA384_WITH_RSA, RSA_ENCRYPTION) => vec![algs::RSA_PKCS1_2048_8192_SHA384],
        (SHA512_WITH_RSA, RSA_ENCRYPTION) => vec![algs::RSA_PKCS1_2048_8192_SHA512],
        (ECDSA_SHA256, ID_EC_PUBLIC_KEY) => vec![algs::ECDSA_P256_SHA256, algs::ECDSA_P384_SHA256],
        (ECDSA_SHA384, ID_EC_PUBLIC_KEY) => vec![algs::ECDSA_P256_SHA384, algs::ECDSA_P384_SHA384],
        (ECDSA_SHA512, ID_EC_PUBLIC_KEY) => vec![algs::ECDSA_P256_SHA512, algs::ECDSA_P384_SHA512],
        (ID_ED25519, ID_ED25519) => vec![algs::ED25519],
        (signature, key) => {
            return Err(invalid(format!(
                "the token is signed by {signature} with a {key} key: not RSA, ECDSA or Ed25519"
            )));
        }
    })
}

/// What a valid token proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The signed time, ms since the Unix epoch.
    pub time_ms: u64,
    pub serial: String,
    /// The TSA's certificate subject.
    pub tsa: String,
}

/// Checks a token offline: over `message` with `nonce`, signed by a TSA whose certificate chains
/// to one of `roots` (DER) with the time-stamping usage at the signed time.
pub fn verify(token: &[u8], message: &[u8], nonce: u64, roots: &[Vec<u8>]) -> Result<Verified> {
    if roots.is_empty() {
        return Err(invalid(
            "no TSA root certificate is given: a time-stamp is checked against the TSA's CA",
        ));
    }
    let token = parse(token)?;
    token.check_imprint(message, nonce)?;
    let roots: Vec<CertificateDer<'_>> = roots
        .iter()
        .map(|root| CertificateDer::from(root.as_slice()))
        .collect();
    let tsa = token.check_signature(&roots)?;
    Ok(Verified {
        time_ms: token.time_ms(),
        serial: token.serial(),
        tsa,
    })
}
