//! Where console links read into: one buffer per worker thread, shared by every console that
//! thread runs, instead of one per console.
//!
//! A read takes up to the console's read size into the thread's arena, and the bytes it got are
//! split off as the chunk ([`Bytes`], no copy): the log writes it, the scanner's feed and the
//! viewers hold it as long as they need, the replay buffer copies it. The arena keeps only the
//! room after it. When that room is smaller than the next read asks for, the arena takes its
//! allocation back if no chunk holds any of it any more, and otherwise starts a new one (the old
//! one is freed by the last chunk that holds it).
//!
//! So 200 flooding consoles on two worker threads hold two arenas and the chunks still in flight,
//! not 200 buffers of the largest read (12.8 MiB at 64 KiB reads), and an idle console holds no
//! read buffer at all.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{BufMut as _, Bytes, BytesMut};
use tokio::io::AsyncRead;

/// The size of a new arena (reads larger than this get an arena of their size).
pub(super) const ARENA_BYTES: usize = 64 * 1024;

thread_local! {
    static ARENA: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// Poll `reader` for up to `want` bytes (at least 1) read into this thread's arena. `Ready(Ok)`
/// with an empty chunk means the link reached its end.
pub(super) fn poll_read_chunk<R: AsyncRead + ?Sized>(
    reader: Pin<&mut R>,
    cx: &mut Context<'_>,
    want: usize,
) -> Poll<io::Result<Bytes>> {
    let want = want.max(1);
    ARENA.with(|cell| match cell.try_borrow_mut() {
        Ok(mut arena) => read_into(&mut arena, reader, cx, want),
        // Only a reader that itself reads a console link on this thread would get here; it
        // reads into a buffer of its own rather than share the borrowed arena.
        Err(_) => read_into(&mut BytesMut::new(), reader, cx, want),
    })
}

fn read_into<R: AsyncRead + ?Sized>(
    arena: &mut BytesMut,
    reader: Pin<&mut R>,
    cx: &mut Context<'_>,
    want: usize,
) -> Poll<io::Result<Bytes>> {
    // Every read's bytes are split off at once, so the arena holds no bytes between reads.
    debug_assert!(arena.is_empty());
    if arena.capacity() < want {
        let size = want.max(ARENA_BYTES);
        // Reclaiming never allocates: it succeeds only when no chunk holds a byte of the
        // allocation any more, which then starts again from its beginning.
        if !arena.try_reclaim(size) {
            *arena = BytesMut::with_capacity(size);
        }
    }
    let mut room = (&mut *arena).limit(want);
    ready!(tokio_util::io::poll_read_buf(reader, cx, &mut room))?;
    Poll::Ready(Ok(arena.split().freeze()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt as _;

    async fn read(r: &mut (impl AsyncRead + Unpin), want: usize) -> Bytes {
        std::future::poll_fn(|cx| poll_read_chunk(Pin::new(&mut *r), cx, want))
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn chunks_share_the_arena_until_it_is_full_and_it_is_reused_once_free() {
        let (mut a, mut a_dev) = tokio::io::duplex(1 << 20);
        let (mut b, mut b_dev) = tokio::io::duplex(1 << 20);
        a_dev.write_all(b"hello from a").await.unwrap();
        b_dev.write_all(b"and from b").await.unwrap();
        let ca = read(&mut a, 256).await;
        let cb = read(&mut b, 256).await;
        assert_eq!(
            (&ca[..], &cb[..]),
            (&b"hello from a"[..], &b"and from b"[..])
        );
        // Both consoles' chunks lie in one allocation, one after the other.
        assert_eq!(ca.as_ptr().wrapping_add(ca.len()), cb.as_ptr());
        let first = ca.as_ptr();
        // A read larger than the room left starts a new arena while the chunks are held...
        a_dev.write_all(&[7u8; ARENA_BYTES]).await.unwrap();
        let big = read(&mut a, ARENA_BYTES).await;
        assert_eq!(big.len(), ARENA_BYTES);
        assert!(big.iter().all(|&x| x == 7));
        assert_ne!(big.as_ptr(), first.wrapping_add(ca.len() + cb.len()));
        let big_at = big.as_ptr();
        // ...and takes its allocation back once no chunk holds any of it.
        drop(big);
        b_dev.write_all(&[9u8; 100]).await.unwrap();
        let again = read(&mut b, ARENA_BYTES).await;
        assert_eq!(again.len(), 100);
        assert_eq!(again.as_ptr(), big_at);
        // The chunks read before are untouched by the reads after them.
        assert_eq!(
            (&ca[..], &cb[..]),
            (&b"hello from a"[..], &b"and from b"[..])
        );
        // A read never takes more than asked, and the end of a link is an empty chunk.
        a_dev.write_all(b"0123456789").await.unwrap();
        drop(a_dev);
        assert_eq!(&read(&mut a, 4).await[..], b"0123");
        assert_eq!(&read(&mut a, 100).await[..], b"456789");
        assert!(read(&mut a, 100).await.is_empty());
    }
}
