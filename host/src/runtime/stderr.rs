//! A guest's stderr, keeping only its last few kilobytes. Rust guests print
//! their panic message there just before trapping, so the tail is what a
//! trap report needs. Unlike wasmtime's memory pipe it never fills up: a
//! chatty guest must not trap because it logged too much.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

#[derive(Clone)]
pub struct StderrTail {
    capacity: usize,
    buffer: Arc<Mutex<VecDeque<u8>>>,
}

impl StderrTail {
    pub fn new(capacity: usize) -> Self {
        StderrTail {
            capacity,
            buffer: Arc::default(),
        }
    }

    fn append(&self, bytes: &[u8]) {
        let Ok(mut buffer) = self.buffer.lock() else {
            return;
        };
        buffer.extend(bytes);
        let excess = buffer.len().saturating_sub(self.capacity);
        buffer.drain(..excess);
    }

    /// The retained text, without the line Rust adds about RUST_BACKTRACE.
    pub fn text(&self) -> String {
        let Ok(buffer) = self.buffer.lock() else {
            return String::new();
        };
        let (front, back) = buffer.as_slices();
        let text = String::from_utf8_lossy(&[front, back].concat()).into_owned();
        text.lines()
            .filter(|line| !line.starts_with("note: run with `RUST_BACKTRACE=1`"))
            .collect::<Vec<_>>()
            .join("\n")
            .trim()
            .to_owned()
    }
}

impl IsTerminal for StderrTail {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for StderrTail {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for StderrTail {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for StderrTail {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for StderrTail {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_tail_and_never_refuses() {
        let mut tail = StderrTail::new(8);
        for _ in 0..1000 {
            OutputStream::write(&mut tail, Bytes::from_static(b"0123456789")).unwrap();
        }
        assert_eq!(tail.text(), "23456789");
    }

    #[test]
    fn drops_the_backtrace_hint() {
        let tail = StderrTail::new(1024);
        tail.append(b"panicked at x.rs:1:1:\nboom\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n");
        assert_eq!(tail.text(), "panicked at x.rs:1:1:\nboom");
    }
}
