//! RMCP+ cryptography (IPMI 2.0 §13.28–13.32): the RAKP key-exchange codes, the session
//! integrity key (SIK), the derived keys K1 and K2, packet integrity codes and AES-CBC-128 payload
//! confidentiality.
//!
//! Two cipher suites are supported: 3 (HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128) and 17
//! (HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128).
//!
//! ```
//! use mo_drivers::ipmi::crypto::{CipherSuite, SessionKeys};
//! let keys = SessionKeys::derive(CipherSuite::Suite3, b"session integrity key");
//! let sealed = keys.encrypt(b"hello", [7; 16]);
//! assert_eq!(sealed.len(), 32);
//! assert_eq!(keys.decrypt(&sealed).unwrap(), b"hello");
//! ```

use aes::Aes128;
use aes::cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

use super::rmcp::CodecError;

/// The AES block size.
const BLOCK: usize = 16;

/// An RMCP+ cipher suite this codec speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CipherSuite {
    /// Suite 3: RAKP-HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128.
    Suite3,
    /// Suite 17: RAKP-HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128.
    Suite17,
}

impl CipherSuite {
    /// The suite's number (3 or 17).
    pub fn id(self) -> u8 {
        match self {
            CipherSuite::Suite3 => 3,
            CipherSuite::Suite17 => 17,
        }
    }

    /// The suite with number `id`, if supported.
    pub fn from_id(id: u8) -> Option<Self> {
        match id {
            3 => Some(CipherSuite::Suite3),
            17 => Some(CipherSuite::Suite17),
            _ => None,
        }
    }

    /// The authentication algorithm number of the Open Session Request.
    pub fn auth_algorithm(self) -> u8 {
        match self {
            CipherSuite::Suite3 => 0x01,
            CipherSuite::Suite17 => 0x03,
        }
    }

    /// The integrity algorithm number.
    pub fn integrity_algorithm(self) -> u8 {
        match self {
            CipherSuite::Suite3 => 0x01,
            CipherSuite::Suite17 => 0x04,
        }
    }

    /// The confidentiality algorithm number (AES-CBC-128 for both suites).
    pub fn confidentiality_algorithm(self) -> u8 {
        0x01
    }

    /// Length of the RAKP key-exchange authentication codes (the full HMAC).
    pub fn auth_code_len(self) -> usize {
        match self {
            CipherSuite::Suite3 => 20,
            CipherSuite::Suite17 => 32,
        }
    }

    /// Length of the truncated integrity codes (RAKP 4 and every packet).
    pub fn integrity_len(self) -> usize {
        match self {
            CipherSuite::Suite3 => 12,
            CipherSuite::Suite17 => 16,
        }
    }

    /// HMAC of the concatenation of `parts` under `key` with the suite's hash.
    pub fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        fn run<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
            // HMAC takes keys of any length, so this cannot fail; an empty code would fail
            // every comparison rather than panic.
            let Ok(mut mac) = <M as KeyInit>::new_from_slice(key) else {
                return Vec::new();
            };
            for part in parts {
                mac.update(part);
            }
            mac.finalize().into_bytes().to_vec()
        }
        match self {
            CipherSuite::Suite3 => run::<Hmac<Sha1>>(key, parts),
            CipherSuite::Suite17 => run::<Hmac<Sha256>>(key, parts),
        }
    }
}

/// The keys of an established session: integrity with K1, confidentiality with K2.
#[derive(Clone)]
pub struct SessionKeys {
    suite: CipherSuite,
    k1: Vec<u8>,
    aes: Aes128,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

impl SessionKeys {
    /// Derive K1 and K2 from the session integrity key.
    pub fn derive(suite: CipherSuite, sik: &[u8]) -> Self {
        let n = suite.auth_code_len();
        let k1 = suite.hmac(sik, &[&vec![0x01; n]]);
        let k2 = suite.hmac(sik, &[&vec![0x02; n]]);
        let mut key = [0u8; BLOCK];
        for (dst, src) in key.iter_mut().zip(&k2) {
            *dst = *src;
        }
        SessionKeys {
            suite,
            k1,
            aes: Aes128::new(&Array::from(key)),
        }
    }

    /// The suite these keys belong to.
    pub fn suite(&self) -> CipherSuite {
        self.suite
    }

    /// The integrity code of `data` (the session header through the next-header byte).
    pub fn integrity(&self, data: &[u8]) -> Vec<u8> {
        let mut code = self.suite.hmac(&self.k1, &[data]);
        code.truncate(self.suite.integrity_len());
        code
    }

    /// AES-CBC-128 with the IPMI padding (pad bytes 1, 2, …, then the pad length): the IV
    /// followed by the ciphertext.
    pub fn encrypt(&self, plain: &[u8], iv: [u8; BLOCK]) -> Vec<u8> {
        let pad = (BLOCK - (plain.len() + 1) % BLOCK) % BLOCK;
        let mut buf = Vec::with_capacity(BLOCK + plain.len() + pad + 1);
        buf.extend_from_slice(plain);
        buf.extend((1..=pad).map(|b| b as u8));
        buf.push(pad as u8);
        let mut out = Vec::with_capacity(BLOCK + buf.len());
        out.extend_from_slice(&iv);
        let mut prev = iv;
        for chunk in buf.chunks(BLOCK) {
            let mut block = [0u8; BLOCK];
            for ((b, c), p) in block.iter_mut().zip(chunk).zip(&prev) {
                *b = c ^ p;
            }
            let mut block = Array::from(block);
            self.aes.encrypt_block(&mut block);
            out.extend_from_slice(&block);
            prev.copy_from_slice(&block);
        }
        out
    }

    /// Undo [`SessionKeys::encrypt`]: IV, ciphertext, padding. Errors on a length that is not
    /// whole blocks or a pad length that does not fit.
    pub fn decrypt(&self, sealed: &[u8]) -> Result<Vec<u8>, CodecError> {
        if sealed.len() < 2 * BLOCK || !sealed.len().is_multiple_of(BLOCK) {
            return Err(CodecError::new(format!(
                "encrypted payload of {} bytes is not an IV and whole AES blocks",
                sealed.len()
            )));
        }
        let mut prev = [0u8; BLOCK];
        prev.copy_from_slice(&sealed[..BLOCK]);
        let mut plain = Vec::with_capacity(sealed.len() - BLOCK);
        for chunk in sealed[BLOCK..].chunks_exact(BLOCK) {
            let mut block = [0u8; BLOCK];
            block.copy_from_slice(chunk);
            let mut block = Array::from(block);
            self.aes.decrypt_block(&mut block);
            plain.extend(block.iter().zip(&prev).map(|(b, p)| b ^ p));
            prev.copy_from_slice(chunk);
        }
        let pad = usize::from(plain.last().copied().unwrap_or(0));
        if pad >= BLOCK || pad + 1 > plain.len() {
            return Err(CodecError::new(format!(
                "confidentiality pad length {pad} is invalid (wrong key?)"
            )));
        }
        plain.truncate(plain.len() - pad - 1);
        Ok(plain)
    }
}

/// The inputs of the RAKP exchange that both sides hash.
#[derive(Debug, Clone)]
pub struct Rakp<'a> {
    /// The cipher suite.
    pub suite: CipherSuite,
    /// Our (remote console) session ID.
    pub console_sid: u32,
    /// The BMC's (managed system) session ID.
    pub bmc_sid: u32,
    /// Our random number (RAKP 1).
    pub console_random: [u8; 16],
    /// The BMC's random number (RAKP 2).
    pub bmc_random: [u8; 16],
    /// The BMC's GUID (RAKP 2).
    pub bmc_guid: [u8; 16],
    /// The role byte as sent in RAKP 1 (privilege and lookup bit).
    pub role: u8,
    /// The user name.
    pub user: &'a [u8],
}

impl Rakp<'_> {
    fn user_len(&self) -> [u8; 1] {
        [self.user.len().min(255) as u8]
    }

    /// The code RAKP 2 must carry, keyed by the user's password (K_UID).
    pub fn rakp2_code(&self, kuid: &[u8]) -> Vec<u8> {
        self.suite.hmac(
            kuid,
            &[
                &self.console_sid.to_le_bytes(),
                &self.bmc_sid.to_le_bytes(),
                &self.console_random,
                &self.bmc_random,
                &self.bmc_guid,
                &[self.role],
                &self.user_len(),
                self.user,
            ],
        )
    }

    /// The code we send in RAKP 3.
    pub fn rakp3_code(&self, kuid: &[u8]) -> Vec<u8> {
        self.suite.hmac(
            kuid,
            &[
                &self.bmc_random,
                &self.console_sid.to_le_bytes(),
                &[self.role],
                &self.user_len(),
                self.user,
            ],
        )
    }

    /// The session integrity key, keyed by K_G (the BMC key, or K_UID when there is none).
    pub fn sik(&self, kg: &[u8]) -> Vec<u8> {
        self.suite.hmac(
            kg,
            &[
                &self.console_random,
                &self.bmc_random,
                &[self.role],
                &self.user_len(),
                self.user,
            ],
        )
    }

    /// The integrity check value RAKP 4 must carry.
    pub fn rakp4_code(&self, sik: &[u8]) -> Vec<u8> {
        let mut code = self.suite.hmac(
            sik,
            &[
                &self.console_random,
                &self.bmc_sid.to_le_bytes(),
                &self.bmc_guid,
            ],
        );
        code.truncate(self.suite.integrity_len());
        code
    }
}

/// Compare two codes without an early exit.
pub fn codes_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_2202_and_4231() {
        // RFC 2202 test case 2 and RFC 4231 test case 2.
        let sha1 = CipherSuite::Suite3.hmac(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            sha1,
            [
                0xef, 0xfc, 0xdf, 0x6a, 0xe5, 0xeb, 0x2f, 0xa2, 0xd2, 0x74, 0x16, 0xd5, 0xf1, 0x84,
                0xdf, 0x9c, 0x25, 0x9a, 0x7c, 0x79
            ]
        );
        let sha256 = CipherSuite::Suite17.hmac(b"Jefe", &[b"what do ya want for nothing?"]);
        assert_eq!(&sha256[..4], &[0x5b, 0xdc, 0xc1, 0x46]);
        assert_eq!(sha256.len(), 32);
    }

    #[test]
    fn aes_cbc_round_trips_every_length_and_rejects_garbage() {
        let keys = SessionKeys::derive(CipherSuite::Suite17, b"k");
        for len in 0..40 {
            let plain: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let sealed = keys.encrypt(&plain, [len as u8; 16]);
            assert_eq!(sealed.len() % 16, 0);
            assert_eq!(keys.decrypt(&sealed).unwrap(), plain);
        }
        assert!(keys.decrypt(&[0; 17]).is_err());
        let other = SessionKeys::derive(CipherSuite::Suite17, b"other");
        let sealed = keys.encrypt(b"abc", [1; 16]);
        // A wrong key gives garbage padding nearly always; it must be an error or bytes, never
        // a panic.
        let _ = other.decrypt(&sealed);
    }

    #[test]
    fn integrity_codes_have_the_suite_length() {
        let k3 = SessionKeys::derive(CipherSuite::Suite3, b"sik");
        let k17 = SessionKeys::derive(CipherSuite::Suite17, b"sik");
        assert_eq!(k3.integrity(b"x").len(), 12);
        assert_eq!(k17.integrity(b"x").len(), 16);
        assert!(codes_equal(&k3.integrity(b"x"), &k3.integrity(b"x")));
        assert!(!codes_equal(&k3.integrity(b"x"), &k3.integrity(b"y")));
    }
}
