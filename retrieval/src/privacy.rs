//! Privacy primitives of the data layer: a [`PhoneNumber`] that is normalized to E.164 and never
//! printed in full, a keyed hash to join records on a number without storing it, and
//! field-level AES-256-GCM encryption for the raw number kept for dialing.

use crate::RetrievalError;
use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A phone number in E.164 form (`+8613812341234`). `Display` and `Debug` mask the middle
/// digits (`+86 138****1234`); the full number is only reachable through [`PhoneNumber::e164`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Parses a number as people write it (spaces, dashes, dots, brackets, a `00` or `+`
    /// international prefix, a national trunk `0`). Numbers without a country code get
    /// `default_country` (e.g. "86" or "1"). Rejects anything that is not 8–15 digits in E.164.
    pub fn parse(input: &str, default_country: &str) -> Result<Self, RetrievalError> {
        let bad = |why: &str| {
            RetrievalError::InvalidInput(format!("phone number {:?}: {why}", mask_raw(input)))
        };
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(bad("empty"));
        }
        if trimmed
            .chars()
            .any(|c| !(c.is_ascii_digit() || " -.()+/".contains(c)))
        {
            return Err(bad("contains characters other than digits and separators"));
        }
        let plus = trimmed.starts_with('+');
        if trimmed[usize::from(plus)..].contains('+') {
            return Err(bad("a '+' may only lead the number"));
        }
        let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
        let full = if plus {
            digits
        } else if let Some(rest) = digits.strip_prefix("00") {
            rest.to_string()
        } else {
            let national = digits.strip_prefix('0').unwrap_or(&digits);
            if default_country.is_empty() || !default_country.chars().all(|c| c.is_ascii_digit()) {
                return Err(bad("no country code and no valid default country"));
            }
            if default_country == "1" && national.len() == 11 && national.starts_with('1') {
                national.to_string() // already +1 with the trunk prefix written
            } else {
                format!("{default_country}{national}")
            }
        };
        if !(8..=15).contains(&full.len()) || full.starts_with('0') {
            return Err(bad(
                "not a valid international number (8 to 15 digits, no leading 0)",
            ));
        }
        Ok(Self(format!("+{full}")))
    }

    /// The full number, for dialing and for encryption. Never log it.
    pub fn e164(&self) -> &str {
        &self.0
    }
}

/// `+8613812341234` → `+86 138****1234`; other lengths keep the first 3 and last 4 digits of the
/// subscriber part.
fn mask(e164: &str) -> String {
    let digits = &e164[1..];
    let (cc, rest) = if digits.starts_with('1') || digits.starts_with('7') {
        digits.split_at(1)
    } else {
        digits.split_at(2.min(digits.len()))
    };
    if rest.len() <= 7 {
        return format!("+{cc} ****{}", &rest[rest.len().saturating_sub(2)..]);
    }
    format!("+{cc} {}****{}", &rest[..3], &rest[rest.len() - 4..])
}

/// Masks raw, unparsed input for error messages: only its last two characters show.
fn mask_raw(input: &str) -> String {
    let chars: Vec<char> = input.trim().chars().collect();
    let keep = chars.len().saturating_sub(2);
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i < keep && c.is_ascii_digit() {
                '*'
            } else {
                *c
            }
        })
        .collect()
}

/// Masks every phone-number-like run in free text (a transcript, a note): 8 to 15 digits, maybe
/// led by `+` and broken by spaces, dashes, dots or brackets. All its digits but the last two
/// become `*`; shorter numbers (ages, prices, times) stay as they are.
pub fn mask_phone_numbers(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let starts = chars[i].is_ascii_digit()
            || (chars[i] == '+' && chars.get(i + 1).is_some_and(char::is_ascii_digit));
        if !starts {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let mut end = i + 1;
        while end < chars.len() && (chars[end].is_ascii_digit() || " -.()".contains(chars[end])) {
            end += 1;
        }
        // A run ends on its last digit: trailing separators belong to the text.
        while end > i && !chars[end - 1].is_ascii_digit() {
            end -= 1;
        }
        let digits = chars[i..end].iter().filter(|c| c.is_ascii_digit()).count();
        if (8..=15).contains(&digits) {
            let mut seen = 0;
            for c in &chars[i..end] {
                if c.is_ascii_digit() {
                    seen += 1;
                    out.push(if seen <= digits - 2 { '*' } else { *c });
                } else {
                    out.push(*c);
                }
            }
        } else {
            out.extend(&chars[i..end]);
        }
        i = end.max(i + 1);
    }
    out
}

impl std::fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&mask(&self.0))
    }
}

impl std::fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PhoneNumber({})", mask(&self.0))
    }
}

/// A phone number as the store keeps it: the keyed hash joins records, the sealed copy is
/// decrypted only to dial. `Debug` shows neither in full.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedPhone {
    pub hash: String,
    pub sealed: String,
}

impl std::fmt::Debug for SealedPhone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SealedPhone(hash {}…)",
            &self.hash[..self.hash.len().min(8)]
        )
    }
}

/// Keys for the phone-number hash and field encryption, 32 bytes each.
#[derive(Clone)]
pub struct PrivacyKeys {
    hash_key: [u8; 32],
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for PrivacyKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivacyKeys(<redacted>)")
    }
}

impl PrivacyKeys {
    /// Builds the keys from two base64-encoded 32-byte secrets (configuration or environment).
    pub fn from_base64(hash_key: &str, encryption_key: &str) -> Result<Self, RetrievalError> {
        let decode = |name: &str, v: &str| -> Result<[u8; 32], RetrievalError> {
            let bytes = B64
                .decode(v.trim())
                .map_err(|e| RetrievalError::InvalidInput(format!("{name} is not base64: {e}")))?;
            bytes.try_into().map_err(|b: Vec<u8>| {
                RetrievalError::InvalidInput(format!("{name} must be 32 bytes, got {}", b.len()))
            })
        };
        let hash_key = decode("hash key", hash_key)?;
        let enc = decode("encryption key", encryption_key)?;
        Ok(Self {
            hash_key,
            cipher: Aes256Gcm::new(&enc.into()),
        })
    }

    /// A stable keyed hash (HMAC-SHA256, hex) of the number: joins call logs to customers
    /// without the number in clear, and cannot be reversed without the key.
    pub fn phone_hash(&self, phone: &PhoneNumber) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.hash_key)
            .expect("HMAC takes any key length");
        mac.update(phone.e164().as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// The number in its two stored forms: the keyed hash and the sealed copy.
    pub fn seal_phone(&self, phone: &PhoneNumber) -> Result<SealedPhone, RetrievalError> {
        Ok(SealedPhone {
            hash: self.phone_hash(phone),
            sealed: self.encrypt(phone.e164())?,
        })
    }

    /// Encrypts a field (AES-256-GCM, random 96-bit nonce): base64 of nonce ‖ ciphertext ‖ tag.
    pub fn encrypt(&self, plaintext: &str) -> Result<String, RetrievalError> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ct = self
            .cipher
            .encrypt(&nonce, plaintext.as_bytes())
            .map_err(|_| RetrievalError::Crypto("encryption failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend(ct);
        Ok(B64.encode(out))
    }

    /// Decrypts what [`encrypt`](Self::encrypt) produced; a wrong key or altered data is an error.
    pub fn decrypt(&self, sealed: &str) -> Result<String, RetrievalError> {
        let raw = B64
            .decode(sealed.trim())
            .map_err(|e| RetrievalError::Crypto(format!("sealed field is not base64: {e}")))?;
        if raw.len() < 12 + 16 {
            return Err(RetrievalError::Crypto("sealed field is too short".into()));
        }
        let (nonce, ct) = raw.split_at(12);
        let pt = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), ct)
            .map_err(|_| RetrievalError::Crypto("wrong key or tampered field".into()))?;
        String::from_utf8(pt)
            .map_err(|_| RetrievalError::Crypto("decrypted field is not UTF-8".into()))
    }
}

impl PrivacyKeys {
    /// Seals a file's bytes (a call recording) with AES-256-GCM under the field key: nonce ‖
    /// ciphertext ‖ tag. Only a holder of the key (the API, for an authorised role) can play it.
    pub fn seal_bytes(&self, plaintext: &[u8]) -> Result<Vec<u8>, RetrievalError> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ct = self
            .cipher
            .encrypt(&nonce, plaintext)
            .map_err(|_| RetrievalError::Crypto("encryption failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend(ct);
        Ok(out)
    }

    /// Opens what [`seal_bytes`](Self::seal_bytes) produced; a wrong key or altered data is an
    /// error.
    pub fn open_bytes(&self, sealed: &[u8]) -> Result<Vec<u8>, RetrievalError> {
        if sealed.len() < 12 + 16 {
            return Err(RetrievalError::Crypto("sealed data is too short".into()));
        }
        let (nonce, ct) = sealed.split_at(12);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), ct)
            .map_err(|_| RetrievalError::Crypto("wrong key or tampered data".into()))
    }
}

/// Lower-case hex of `bytes` (one allocation; `format!` per byte cost 5% of a large import).
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> PrivacyKeys {
        PrivacyKeys::from_base64(&B64.encode([1u8; 32]), &B64.encode([2u8; 32])).expect("keys")
    }

    #[test]
    fn normalizes_common_spellings_to_e164() {
        for (input, country, want) in [
            ("138 1234 1234", "86", "+8613812341234"),
            ("+86 138-1234-1234", "1", "+8613812341234"),
            ("0086 13812341234", "1", "+8613812341234"),
            ("(415) 555-0199", "1", "+14155550199"),
            ("1-415-555-0199", "1", "+14155550199"),
            ("020 7946 0018", "44", "+442079460018"),
        ] {
            assert_eq!(
                PhoneNumber::parse(input, country).expect(input).e164(),
                want,
                "{input}"
            );
        }
    }

    #[test]
    fn hex_is_lower_case_two_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn rejects_what_is_not_a_number() {
        for bad in [
            "",
            "abc",
            "12",
            "+86 138 1234 1234 1234 99",
            "138+1234",
            "phone: 1381234",
        ] {
            assert!(PhoneNumber::parse(bad, "86").is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn display_debug_and_errors_never_show_the_number() {
        let p = PhoneNumber::parse("13812341234", "86").expect("valid");
        assert_eq!(p.to_string(), "+86 138****1234");
        assert_eq!(format!("{p:?}"), "PhoneNumber(+86 138****1234)");
        let err = PhoneNumber::parse("138123412341234999", "86")
            .expect_err("too long")
            .to_string();
        assert!(!err.contains("1381234"), "{err}");
    }

    #[test]
    fn hash_is_stable_and_keyed() {
        let k = keys();
        let p = PhoneNumber::parse("13812341234", "86").expect("valid");
        let q = PhoneNumber::parse("+86 138 1234 1234", "1").expect("valid");
        assert_eq!(k.phone_hash(&p), k.phone_hash(&q));
        let other =
            PrivacyKeys::from_base64(&B64.encode([9u8; 32]), &B64.encode([2u8; 32])).expect("keys");
        assert_ne!(k.phone_hash(&p), other.phone_hash(&p));
        assert!(!k.phone_hash(&p).contains("13812341234"));
    }

    #[test]
    fn encryption_round_trips_and_detects_tampering() {
        let k = keys();
        let a = k.encrypt("+8613812341234").expect("encrypt");
        let b = k.encrypt("+8613812341234").expect("encrypt");
        assert_ne!(a, b, "nonces must differ");
        assert_eq!(k.decrypt(&a).expect("decrypt"), "+8613812341234");
        let mut raw = B64.decode(&a).expect("b64");
        let last = raw.len() - 1;
        raw[last] ^= 1;
        assert!(k.decrypt(&B64.encode(raw)).is_err());
        let wrong =
            PrivacyKeys::from_base64(&B64.encode([1u8; 32]), &B64.encode([3u8; 32])).expect("keys");
        assert!(wrong.decrypt(&a).is_err());
        assert!(k.decrypt("not base64!").is_err());
        assert!(PrivacyKeys::from_base64("AAAA", &B64.encode([2u8; 32])).is_err());
    }

    #[test]
    fn phone_numbers_in_text_are_masked_and_short_numbers_kept() {
        assert_eq!(
            mask_phone_numbers("call me on +86 138-1234-5678, ok?"),
            "call me on +** ***-****-**78, ok?"
        );
        assert_eq!(
            mask_phone_numbers("我的电话是13812345678。"),
            "我的电话是*********78。"
        );
        assert_eq!(
            mask_phone_numbers("I'm 45, it costs 1,200 at 3 pm"),
            "I'm 45, it costs 1,200 at 3 pm"
        );
    }
}
