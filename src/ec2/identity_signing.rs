//! The identity document's signatures: `signature`, `pkcs7` and `rsa2048`, as EC2 serves them
//! beside `document`, made with a key fintors generates and keeps, never AWS's.
//!
//! Code that verifies identity documents (Vault's EC2 auth, attestation in an application) can
//! then be tested on a workstation against fintors's certificate instead of AWS's. The forms are
//! EC2's (EC2 User Guide, "Verify the instance identity document"):
//! - `signature`: the document's RSA PKCS#1 v1.5 SHA-256 signature, base64;
//! - `pkcs7` and `rsa2048`: a CMS `SignedData` (RFC 5652) that carries the document, signed
//!   with SHA-256 and RSA (EC2 uses a DSA key for `pkcs7`; one RSA key signs all three here),
//!   the signer named by the certificate's issuer and serial number, no certificate inside (the
//!   verifier brings it), base64 in 64-column lines without PEM armour.
//!
//! `openssl smime -verify -in FILE -inform PEM -content document -certfile CERT -noverify`
//! verifies them as the User Guide shows, and so does `-CAfile CERT` in place of `-noverify`.
//! The key is RSA-2048 from aws-lc (already in the binary for TLS); rcgen writes the
//! self-signed certificate; yasna writes the `SignedData` DER.

use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use chrono::{DateTime, Datelike, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
    PKCS_RSA_SHA256, PublicKeyData, RsaKeySize, SerialNumber,
};
use sha2::Digest;
use yasna::models::ObjectIdentifier;
use yasna::{DERWriter, Tag};

/// The certificate's subject (and issuer): plainly not AWS's. `C=XX` is a code ISO 3166 leaves
/// for private use.
const COMMON_NAME: &str = "fintors instance identity (not AWS)";
/// How long a certificate fintors makes is valid.
const CERTIFICATE_YEARS: i32 = 10;

const OID_DATA: &[u64] = &[1, 2, 840, 113_549, 1, 7, 1];
const OID_SIGNED_DATA: &[u64] = &[1, 2, 840, 113_549, 1, 7, 2];
const OID_CONTENT_TYPE: &[u64] = &[1, 2, 840, 113_549, 1, 9, 3];
const OID_MESSAGE_DIGEST: &[u64] = &[1, 2, 840, 113_549, 1, 9, 4];
const OID_SIGNING_TIME: &[u64] = &[1, 2, 840, 113_549, 1, 9, 5];
const OID_SHA256: &[u64] = &[2, 16, 840, 1, 101, 3, 4, 2, 1];
const OID_RSA_ENCRYPTION: &[u64] = &[1, 2, 840, 113_549, 1, 1, 1];

/// Why the signing key or its certificate cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("not an RSA PKCS#8 key: delete it for a new one")]
    Key(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("cannot make its certificate")]
    Certificate(#[source] rcgen::Error),
    #[error("cannot make a key")]
    Generate(#[source] rcgen::Error),
}

/// Why there is no signer (the state directory's error, or the task that made it failing).
pub type MakeError = Arc<dyn std::error::Error + Send + Sync>;

/// The signatures of one identity document: `signature`, and the `SignedData` that EC2 serves
/// as both `pkcs7` and `rsa2048` (one RSA key signs both here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signatures {
    pub signature: String,
    pub signed_data: String,
}

/// The signing key with its certificate, and the signatures of the last document signed (a
/// reader asks for the document and its signatures together). Signing holds a lock for the two
/// RSA signatures, about a millisecond, which serialises only readers of new documents.
pub struct IdentitySigner {
    key: RsaKeyPair,
    certificate_pem: String,
    /// The certificate's issuer and serial number, DER: how a `SignerInfo` names its signer.
    issuer: Vec<u8>,
    serial: Vec<u8>,
    last: Mutex<Option<(String, Arc<Signatures>)>>,
}

impl std::fmt::Debug for IdentitySigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentitySigner").finish_non_exhaustive()
    }
}

/// The signer, made when first asked for, off the async threads (making a key takes tens of
/// milliseconds); every caller waits for the one making. A failure is not kept: the next
/// request tries again (a disk that was full may not be). `make` must tolerate running twice
/// at once (a request given up on leaves its attempt running): the daemon's holds a lock.
pub struct LazySigner {
    cell: tokio::sync::OnceCell<Arc<IdentitySigner>>,
    make: Arc<dyn Fn() -> Result<IdentitySigner, MakeError> + Send + Sync>,
}

impl LazySigner {
    /// A signer `make` makes (the daemon's reads and keeps its key in the state directory).
    pub fn new(
        make: impl Fn() -> Result<IdentitySigner, MakeError> + Send + Sync + 'static,
    ) -> Self {
        LazySigner {
            cell: tokio::sync::OnceCell::new(),
            make: Arc::new(make),
        }
    }

    /// A signer with a key of its own that nothing keeps (tests, fuzzing).
    pub fn in_memory() -> Self {
        LazySigner::new(|| {
            let key = generate_key()?;
            Ok(IdentitySigner::new(&key, None, Utc::now())?.0)
        })
    }

    /// The signer, or why there is none.
    pub async fn get(&self) -> Result<Arc<IdentitySigner>, MakeError> {
        self.cell
            .get_or_try_init(|| async {
                let make = self.make.clone();
                match tokio::task::spawn_blocking(move || make()).await {
                    Ok(made) => made.map(Arc::new),
                    Err(e) => Err(Arc::new(e) as MakeError),
                }
            })
            .await
            .cloned()
    }
}

impl From<SigningError> for MakeError {
    fn from(e: SigningError) -> Self {
        Arc::new(e)
    }
}

/// A new RSA-2048 key, as PKCS#8 DER (what the state directory keeps).
pub fn generate_key() -> Result<Vec<u8>, SigningError> {
    let key = KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048)
        .map_err(SigningError::Generate)?;
    Ok(key.serialize_der())
}

impl IdentitySigner {
    /// The signer of `key` (PKCS#8 DER) with `certificate` (PEM) if that certificate is this
    /// key's, else with a new self-signed one valid from `now`; the `bool` says it is new (to
    /// be written where users find it).
    pub fn new(
        key: &[u8],
        certificate: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(Self, bool), SigningError> {
        let signing = RsaKeyPair::from_pkcs8(key).map_err(|e| SigningError::Key(Box::new(e)))?;
        let certifying = KeyPair::try_from(key).map_err(|e| SigningError::Key(Box::new(e)))?;
        let spki = certifying.subject_public_key_info();
        let kept = certificate.and_then(|pem| {
            let der = pem_body(pem)?;
            let parts = certificate_parts(&der)?;
            (parts.spki == spki).then(|| (pem.to_owned(), parts))
        });
        let (certificate_pem, parts, new) = match kept {
            Some((pem, parts)) => (pem, parts, false),
            None => {
                let made = self_signed(&certifying, now)?;
                let parts = certificate_parts(made.der()).expect("rcgen writes X.509 certificates");
                (made.pem(), parts, true)
            }
        };
        let signer = IdentitySigner {
            key: signing,
            certificate_pem,
            issuer: parts.issuer,
            serial: parts.serial,
            last: Mutex::new(None),
        };
        Ok((signer, new))
    }

    /// The certificate verifiers need, PEM.
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// The signatures of `document`, signed at `now` (the `pkcs7` forms carry the time).
    pub fn sign(&self, document: &str, now: DateTime<Utc>) -> Arc<Signatures> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((signed, signatures)) = last.as_ref()
            && signed == document
        {
            return signatures.clone();
        }
        let signatures = Arc::new(Signatures {
            signature: wrapped_base64(&self.rsa_sha256(document.as_bytes())),
            signed_data: wrapped_base64(&self.signed_data(document.as_bytes(), now)),
        });
        *last = Some((document.to_owned(), signatures.clone()));
        signatures
    }

    fn rsa_sha256(&self, message: &[u8]) -> Vec<u8> {
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message,
                &mut signature,
            )
            .expect("an RSA key signs any message");
        signature
    }

    /// `ContentInfo { signedData, SignedData { ... } }` for `content`, DER.
    fn signed_data(&self, content: &[u8], now: DateTime<Utc>) -> Vec<u8> {
        let digest = sha2::Sha256::digest(content);
        let utc_time = now.format("%y%m%d%H%M%SZ").to_string();
        let attributes = yasna::construct_der(|w| {
            w.write_set_of(|w| {
                attribute(w.next(), OID_CONTENT_TYPE, |w| w.write_oid(&oid(OID_DATA)));
                attribute(w.next(), OID_SIGNING_TIME, |w| {
                    w.write_tagged_implicit(yasna::tags::TAG_UTCTIME, |w| {
                        w.write_bytes(utc_time.as_bytes())
                    })
                });
                attribute(w.next(), OID_MESSAGE_DIGEST, |w| w.write_bytes(&digest));
            })
        });
        // The signature covers the attributes as a SET; the SignerInfo carries them as [0].
        let signature = self.rsa_sha256(&attributes);
        let mut implicit = attributes;
        implicit[0] = 0xa0;
        yasna::construct_der(|w| {
            w.write_sequence(|w| {
                w.next().write_oid(&oid(OID_SIGNED_DATA));
                w.next().write_tagged(Tag::context(0), |w| {
                    w.write_sequence(|w| {
                        w.next().write_u8(1);
                        w.next()
                            .write_set(|w| algorithm(w.next(), OID_SHA256, false));
                        w.next().write_sequence(|w| {
                            w.next().write_oid(&oid(OID_DATA));
                            w.next()
                                .write_tagged(Tag::context(0), |w| w.write_bytes(content));
                        });
                        w.next().write_set(|w| {
                            w.next().write_sequence(|w| {
                                w.next().write_u8(1);
                                w.next().write_sequence(|w| {
                                    w.next().write_der(&self.issuer);
                                    w.next().write_der(&self.serial);
                                });
                                algorithm(w.next(), OID_SHA256, false);
                                w.next().write_der(&implicit);
                                algorithm(w.next(), OID_RSA_ENCRYPTION, true);
                                w.next().write_bytes(&signature);
                            })
                        });
                    })
                });
            })
        })
    }
}

fn oid(components: &[u64]) -> ObjectIdentifier {
    ObjectIdentifier::from_slice(components)
}

/// `AlgorithmIdentifier`: SHA-2 with absent parameters (RFC 5754), RSA with NULL (RFC 3370).
fn algorithm(w: DERWriter, id: &[u64], null: bool) {
    w.write_sequence(|w| {
        w.next().write_oid(&oid(id));
        if null {
            w.next().write_null();
        }
    });
}

/// `Attribute { type, SET { value } }`.
fn attribute(w: DERWriter, id: &[u64], value: impl FnOnce(DERWriter)) {
    w.write_sequence(|w| {
        w.next().write_oid(&oid(id));
        w.next().write_set(|w| value(w.next()));
    });
}

/// A self-signed certificate for `key`: it may sign (the documents) and be trusted as a root
/// (`-CAfile`), but not certify any other key (path length 0), valid for [`CERTIFICATE_YEARS`]
/// from a day before `now` (clock skew). Its serial is derived from the key, so a certificate
/// made again for the same key names the same signer as one a user saved.
fn self_signed(key: &KeyPair, now: DateTime<Utc>) -> Result<rcgen::Certificate, SigningError> {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CountryName, "XX");
    name.push(DnType::OrganizationName, "fintors");
    name.push(DnType::CommonName, COMMON_NAME);
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
    ];
    let day = |t: DateTime<Utc>, years: i32| {
        rcgen::date_time_ymd(t.year() + years, t.month() as u8, t.day().min(28) as u8)
    };
    params.not_before = day(now - chrono::Duration::days(1), 0);
    params.not_after = day(now, CERTIFICATE_YEARS);
    let mut serial: [u8; 16] = sha2::Sha256::digest(key.subject_public_key_info())[..16]
        .try_into()
        .expect("16 of 32 bytes");
    serial[0] &= 0x7f;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    params.self_signed(key).map_err(SigningError::Certificate)
}

/// What a `SignerInfo` and the key check need from a certificate, each as DER.
struct CertificateParts {
    serial: Vec<u8>,
    issuer: Vec<u8>,
    spki: Vec<u8>,
}

/// Reads `Certificate { TBSCertificate { [0] version, serial, signature, issuer, validity,
/// subject, subjectPublicKeyInfo, [3] extensions }, ... }`; `None` if it is not one.
fn certificate_parts(der: &[u8]) -> Option<CertificateParts> {
    yasna::parse_der(der, |r| {
        r.read_sequence(|r| {
            let parts = r.next().read_sequence(|r| {
                r.read_optional(|r| r.read_tagged(Tag::context(0), |r| r.read_der()))?;
                let serial = r.next().read_der()?;
                r.next().read_der()?;
                let issuer = r.next().read_der()?;
                r.next().read_der()?;
                r.next().read_der()?;
                let spki = r.next().read_der()?;
                while r.read_optional(|r| r.read_der())?.is_some() {}
                Ok(CertificateParts {
                    serial,
                    issuer,
                    spki,
                })
            })?;
            r.next().read_der()?;
            r.next().read_der()?;
            Ok(parts)
        })
    })
    .ok()
}

/// The DER inside a PEM `CERTIFICATE` block.
fn pem_body(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END CERTIFICATE-----"))
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

/// Base64 in 64-column lines with no final newline, as EC2 serves signatures.
fn wrapped_base64(bytes: &[u8]) -> String {
    let text = base64::engine::general_purpose::STANDARD.encode(bytes);
    let lines: Vec<&str> = text
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect();
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-12-05T09:00:00Z".parse().unwrap()
    }

    fn signer() -> IdentitySigner {
        IdentitySigner::new(&generate_key().unwrap(), None, now())
            .unwrap()
            .0
    }

    #[test]
    fn a_kept_certificate_of_the_same_key_is_reused() {
        let key = generate_key().unwrap();
        let (first, new) = IdentitySigner::new(&key, None, now()).unwrap();
        assert!(new);
        let (again, new) = IdentitySigner::new(&key, Some(first.certificate_pem()), now()).unwrap();
        assert!(!new, "same key: same certificate");
        assert_eq!(again.certificate_pem(), first.certificate_pem());
    }

    #[test]
    fn a_certificate_of_another_key_is_replaced() {
        let other = signer();
        let (s, new) = IdentitySigner::new(
            &generate_key().unwrap(),
            Some(other.certificate_pem()),
            now(),
        )
        .unwrap();
        assert!(new);
        assert_ne!(s.certificate_pem(), other.certificate_pem());
    }

    #[test]
    fn a_damaged_key_is_refused() {
        assert!(matches!(
            IdentitySigner::new(b"not a key", None, now()),
            Err(SigningError::Key(_))
        ));
    }

    #[test]
    fn signatures_are_base64_in_64_column_lines() {
        let s = signer().sign("{\"a\" : 1}", now());
        for form in [&s.signature, &s.signed_data] {
            assert!(form.lines().all(|l| l.len() <= 64), "{form}");
            assert!(!form.ends_with('\n'));
            let joined: String = form.lines().collect();
            assert!(
                base64::engine::general_purpose::STANDARD
                    .decode(joined)
                    .is_ok()
            );
        }
    }

    #[test]
    fn a_certificate_made_again_for_the_same_key_names_the_same_signer() {
        let key = generate_key().unwrap();
        let (a, _) = IdentitySigner::new(&key, None, now()).unwrap();
        let later = now() + chrono::Duration::days(400);
        let (b, new) = IdentitySigner::new(&key, None, later).unwrap();
        assert!(new);
        assert_ne!(a.certificate_pem(), b.certificate_pem(), "new dates");
        assert_eq!((&a.issuer, &a.serial), (&b.issuer, &b.serial));
    }

    #[test]
    fn the_same_document_is_signed_once() {
        let s = signer();
        let a = s.sign("doc", now());
        let b = s.sign("doc", now() + chrono::Duration::seconds(5));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &s.sign("other", now())));
    }

    /// Read back as a verifier reads it: `ContentInfo` of `signedData`, versions 1, the document
    /// as the encapsulated content, the signed attributes as `[0]`, and the signature over them
    /// as a SET (RFC 5652, 5.4), verified with the key's public half.
    #[test]
    fn the_signed_data_is_rfc_5652_with_the_signature_over_the_attribute_set() {
        use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
        let s = signer();
        let document = b"{\"accountId\" : \"123\"}";
        let der = base64::engine::general_purpose::STANDARD
            .decode(
                s.sign(std::str::from_utf8(document).unwrap(), now())
                    .signed_data
                    .lines()
                    .collect::<String>(),
            )
            .unwrap();
        let public = UnparsedPublicKey::new(
            &RSA_PKCS1_2048_8192_SHA256,
            s.key.public_key().as_ref().to_vec(),
        );
        yasna::parse_der(&der, |r| {
            r.read_sequence(|r| {
                assert_eq!(r.next().read_oid()?, oid(OID_SIGNED_DATA));
                r.next().read_tagged(Tag::context(0), |r| {
                    r.read_sequence(|r| {
                        assert_eq!(r.next().read_u8()?, 1, "SignedData version");
                        r.next().read_der()?;
                        let content = r.next().read_sequence(|r| {
                            assert_eq!(r.next().read_oid()?, oid(OID_DATA));
                            r.next().read_tagged(Tag::context(0), |r| r.read_bytes())
                        })?;
                        assert_eq!(content, document);
                        r.next().read_set_of(|r| {
                            r.read_sequence(|r| {
                                assert_eq!(r.next().read_u8()?, 1, "SignerInfo version");
                                r.next().read_der()?;
                                r.next().read_der()?;
                                let mut attributes = r.next().read_der()?;
                                assert_eq!(attributes[0], 0xa0, "[0] IMPLICIT");
                                r.next().read_der()?;
                                let signature = r.next().read_bytes()?;
                                attributes[0] = 0x31;
                                public
                                    .verify(&attributes, &signature)
                                    .expect("the signature covers the attribute SET");
                                Ok(())
                            })
                        })
                    })
                })
            })
        })
        .unwrap();
    }
}
