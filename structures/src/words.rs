//! Copying `Pod` elements in and out of shared memory as 64-bit words (the unit every
//! shared slot is made of), without a heap allocation for elements up to 512 bytes.

use bytemuck::Pod;

/// Words kept on the stack.
const INLINE_WORDS: usize = 64;

/// Number of 64-bit words that hold a `T` (at least one).
#[inline]
pub(crate) const fn word_count<T>() -> usize {
    word_count_of(size_of::<T>() as u64) as usize
}

/// Words a hot path keeps in a plain stack array (for types of up to 64 bytes).
const STACK_WORDS: usize = 8;

/// Runs `f` on the words of `value` (padding bytes zero): in a stack array for types of up
/// to 64 bytes (the choice is made at compile time), else in [`with_buffer`]'s (built in
/// place, never moved: an enum of every size's buffer, 528 bytes, moved per call once cost
/// a 10-word value's `get` half of its instructions).
#[inline]
pub(crate) fn with_words_of<T: Pod, R>(value: &T, f: impl FnOnce(&[u64]) -> R) -> R {
    // A one-word type in a one-word array: a larger array handed to a function out of
    // line would be zeroed in full first (the compiler cannot see that only the slice is
    // read).
    if let Some(words) = fixed_words::<T, 1>(value) {
        f(&words)
    } else if let Some(words) = fixed_words::<T, STACK_WORDS>(value) {
        f(&words[..word_count::<T>()])
    } else {
        with_buffer(word_count::<T>(), |words| {
            bytemuck::cast_slice_mut::<u64, u8>(words)[..size_of::<T>()]
                .copy_from_slice(bytemuck::bytes_of(value));
            f(words)
        })
    }
}

/// The `T` that `fill` writes into zeroed words, if it says it did: in a stack array for
/// types of up to 64 bytes, else in [`with_buffer`]'s.
#[inline]
pub(crate) fn read_words_into<T: Pod>(fill: impl FnOnce(&mut [u64]) -> bool) -> Option<T> {
    let Ok(value) = try_read_words_into::<T, std::convert::Infallible>(|words| Ok(fill(words)));
    value
}

/// [`read_words_into`] for a `fill` that may fail.
#[inline]
pub(crate) fn try_read_words_into<T: Pod, E>(
    fill: impl FnOnce(&mut [u64]) -> Result<bool, E>,
) -> Result<Option<T>, E> {
    // In an array of `N` words, `word_count::<T>() <= N`.
    #[inline]
    fn in_array<T: Pod, E, const N: usize>(
        fill: impl FnOnce(&mut [u64]) -> Result<bool, E>,
    ) -> Result<Option<T>, E> {
        let mut words = [0u64; N];
        let words = &mut words[..word_count::<T>()];
        Ok(fill(words)?.then(|| from_words(words)))
    }
    // A one-word type in a one-word array (see `with_words_of`).
    if word_count::<T>() == 1 {
        in_array::<T, E, 1>(fill)
    } else if word_count::<T>() <= STACK_WORDS {
        in_array::<T, E, STACK_WORDS>(fill)
    } else {
        with_buffer(word_count::<T>(), |words| {
            Ok(fill(words)?.then(|| from_words(words)))
        })
    }
}

/// The words of `value` (padding bytes zero) in an array of `N`, if it fits them: what a
/// typed hash map's straight-line paths take (the sizes are constants: the test compiles
/// away).
#[inline]
pub(crate) fn fixed_words<T: Pod, const N: usize>(value: &T) -> Option<[u64; N]> {
    if word_count::<T>() > N {
        return None;
    }
    let mut words = [0u64; N];
    bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..size_of::<T>()]
        .copy_from_slice(bytemuck::bytes_of(value));
    Some(words)
}

/// The `T` in the first bytes of `words` (which hold at least `size_of::<T>()`).
#[inline]
pub(crate) fn from_words<T: Pod>(words: &[u64]) -> T {
    bytemuck::pod_read_unaligned(&bytemuck::cast_slice::<u64, u8>(words)[..size_of::<T>()])
}

/// Runs `f` on `count` zeroed words: on the stack for up to 512 bytes (the buffer is built
/// in place, never moved), on the heap beyond.
#[inline]
pub(crate) fn with_buffer<R>(count: usize, f: impl FnOnce(&mut [u64]) -> R) -> R {
    if count <= INLINE_WORDS {
        // Only the words asked for are zeroed (a 33-word value does not pay for 64), in
        // whole 8-word blocks: straight-line stores, not a call to memset.
        let mut storage = [std::mem::MaybeUninit::<u64>::uninit(); INLINE_WORDS];
        for block in storage[..count.next_multiple_of(8)].chunks_exact_mut(8) {
            block.copy_from_slice(&[std::mem::MaybeUninit::new(0); 8]);
        }
        // SAFETY: the first `count` (<= INLINE_WORDS) elements were just initialized, and
        // `MaybeUninit<u64>` has the layout of `u64`.
        let words = unsafe { std::slice::from_raw_parts_mut(storage.as_mut_ptr().cast(), count) };
        f(words)
    } else {
        f(&mut vec![0u64; count])
    }
}

/// An error unless `bytes` fit `size` bytes: "`what` of N bytes does not fit this
/// `container`'s `size`" (`what` with its article: "an element", "a key").
#[inline]
pub(crate) fn check_fits(
    bytes: &[u8],
    size: usize,
    what: &str,
    container: &str,
) -> shmarena_engine::Result<()> {
    if bytes.len() > size {
        return Err(too_large(bytes.len(), size, what, container));
    }
    Ok(())
}

/// [`check_fits`]'s error, out of line (the check sits on every byte operation's path).
#[cold]
#[inline(never)]
fn too_large(len: usize, size: usize, what: &str, container: &str) -> shmarena_engine::Error {
    shmarena_engine::Error::InvalidArgument(format!(
        "{what} of {len} bytes does not fit this {container}'s {size}"
    ))
}

/// Runs `f` on `count` words holding `bytes` (at most `8 * count` of them), zero after
/// them: built in place by [`with_buffer`].
#[inline]
pub(crate) fn with_bytes_as_words<R>(bytes: &[u8], count: usize, f: impl FnOnce(&[u64]) -> R) -> R {
    with_buffer(count, |words| {
        copy_bytes_to_words(bytes, words);
        f(words)
    })
}

/// Writes `bytes` into the first words of `words` (`words` holds at least
/// `bytes.len().div_ceil(8)`) as a byte copy would, each word with one store of the whole
/// word. A byte copy (`copy_from_slice` over the zeroed words) wrote them with stores of
/// other sizes and offsets, and the word loads that follow (a key's hash, its compare)
/// could not take their data from those stores: each waited for them to reach the cache
/// (measured: the hash of a Python dict's key was a fifth of a `d[k] = v`).
#[inline]
fn copy_bytes_to_words(bytes: &[u8], words: &mut [u64]) {
    let mut chunks = bytes.chunks_exact(8);
    for (word, chunk) in words.iter_mut().zip(&mut chunks) {
        *word = u64::from_ne_bytes(chunk.try_into().expect("chunks of 8 bytes"));
    }
    let tail = chunks.remainder();
    if tail.is_empty() {
        return;
    }
    // The tail's bytes in the low-addressed bytes of the word, zero after them.
    let unused = 8 * (8 - tail.len() as u32);
    let last = if bytes.len() >= 8 {
        // The last 8 bytes, read at once, less those of the word before.
        let end = u64::from_ne_bytes(bytes[bytes.len() - 8..].try_into().expect("8 bytes"));
        if cfg!(target_endian = "little") {
            end >> unused
        } else {
            end << unused
        }
    } else if cfg!(target_endian = "little") {
        tail.iter()
            .rev()
            .fold(0, |word, &byte| word << 8 | u64::from(byte))
    } else {
        tail.iter()
            .fold(0, |word, &byte| word << 8 | u64::from(byte))
            << unused
    };
    words[bytes.len() / 8] = last;
}

/// The first `len` bytes of `count` zeroed words that `fill` writes into, if it says it
/// did (`len <= 8 * count`).
#[inline]
pub(crate) fn read_bytes_into<E>(
    count: usize,
    len: usize,
    fill: impl FnOnce(&mut [u64]) -> Result<bool, E>,
) -> Result<Option<Vec<u8>>, E> {
    with_buffer(count, |words| {
        Ok(fill(words)?.then(|| bytemuck::cast_slice::<u64, u8>(words)[..len].to_vec()))
    })
}

/// Number of 64-bit words that hold an element of `size` bytes (at least one).
#[inline]
pub(crate) const fn word_count_of(size: u64) -> u64 {
    if size == 0 {
        1
    } else {
        size.div_ceil(8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_become_the_words_a_byte_copy_makes() {
        let source: Vec<u8> = (1..=40).collect();
        for len in 0..=source.len() {
            let bytes = &source[..len];
            let count = len.div_ceil(8) + 1;
            let mut expected = vec![0u64; count];
            bytemuck::cast_slice_mut::<u64, u8>(&mut expected)[..len].copy_from_slice(bytes);
            with_bytes_as_words(bytes, count, |words| {
                assert_eq!(words, &expected[..], "{len} bytes");
            });
        }
    }
}
