//! Shared by the fuzz targets that damage logs (included with `#[path]`; not a fuzz target
//! itself): one damaging operation on a file image, and the check on what was read.

use libfuzzer_sys::arbitrary::{Result as ArbResult, Unstructured};
use mo_core::log::format::Record;

/// Records read before an error (if any) follow each other without a gap in their seqs.
pub fn assert_contiguous(read: &[mo_core::Result<Record>]) {
    let seqs: Vec<u64> = read
        .iter()
        .filter_map(|r| r.as_ref().ok().map(|r| r.seq))
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0].saturating_add(1) == w[1]),
        "{seqs:?}"
    );
}

/// Damage `image` by operation `op`: 0 flip bits of a byte, 1 truncate, 2 overwrite four bytes,
/// 3 append up to 100 random bytes, anything else zero up to 100 bytes.
pub fn damage(image: &mut Vec<u8>, op: u8, u: &mut Unstructured<'_>) -> ArbResult<()> {
    let at = if image.is_empty() {
        0
    } else {
        u.choose_index(image.len())?
    };
    match op {
        0 => {
            let mask: u8 = u.int_in_range(1..=255)?;
            if let Some(b) = image.get_mut(at) {
                *b ^= mask;
            }
        }
        1 => image.truncate(at),
        2 => {
            let v: u32 = u.arbitrary()?;
            for (i, b) in v.to_le_bytes().into_iter().enumerate() {
                if let Some(dst) = image.get_mut(at + i) {
                    *dst = b;
                }
            }
        }
        3 => {
            let n = u.int_in_range(0..=100)?;
            image.extend_from_slice(u.bytes(n)?);
        }
        _ => {
            let n = u.int_in_range(0..=100)?;
            let end = (at + n).min(image.len());
            image[at..end].fill(0);
        }
    }
    Ok(())
}
