//! Where statistics are written: `ZENDMM_STATS` (one record per request
//! end) and `ZENDMM_CACHE_STAT` (PHP 5.3's cache table at full shutdown).
//!
//! Both are opened when a heap starts, so a bad value is reported at once
//! like the other variables, and written with `write(2)` from stack buffers:
//! writing a record allocates nothing, and `O_APPEND` keeps the lines of
//! several processes (PHP-FPM workers, `exec`'d children) whole.

use crate::report::StackBuf;
use core::fmt::Write;
use std::os::fd::IntoRawFd;

/// An open log: a file opened for appending, or stderr.
#[derive(Debug, PartialEq, Eq)]
pub struct LogFd(libc::c_int);

impl LogFd {
    /// Opens what the variable `name` says, if it is set: `stderr` or a
    /// file path (created if missing, appended to). `Err` carries the
    /// message to print before exiting 255.
    pub fn from_var(name: &str, value: Option<String>) -> Result<Option<LogFd>, String> {
        let Some(value) = value else {
            return Ok(None);
        };
        if value.is_empty() {
            return Err(format!("{name} must be a file path or 'stderr', got ''\n"));
        }
        if value == "stderr" {
            return Ok(Some(LogFd(libc::STDERR_FILENO)));
        }
        match std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&value)
        {
            Ok(f) => Ok(Some(LogFd(f.into_raw_fd()))),
            Err(e) => Err(format!(
                "{name}: cannot open '{value}' for appending: {e}\n"
            )),
        }
    }

    /// Appends `bytes` with write(2), retrying short writes; a failing
    /// write drops the rest (statistics never stop the program).
    pub fn write(&self, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() {
            // SAFETY: the pointer and length describe `rest`.
            let n = unsafe { libc::write(self.0, rest.as_ptr().cast(), rest.len()) };
            if n > 0 {
                rest = &rest[n as usize..];
            } else if n < 0
                && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
            {
                continue;
            } else {
                return;
            }
        }
    }
}

impl Drop for LogFd {
    fn drop(&mut self) {
        if self.0 != libc::STDERR_FILENO {
            // SAFETY: the descriptor is ours (opened in `from_var`).
            unsafe { libc::close(self.0) };
        }
    }
}

/// One `ZENDMM_STATS` line: the figures of a request just before it ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestRecord {
    /// 1 for the heap's first request end, then counting up.
    pub request: u64,
    pub pid: u32,
    /// 0 for the process heap, then 1, 2, ... in `zend_mm_startup` order.
    pub heap: u64,
    pub usage: usize,
    pub peak: usize,
    pub real_usage: usize,
    pub real_peak: usize,
    pub segments: usize,
    pub cached: usize,
    /// Fastcache hits and misses during this request.
    pub hits: u64,
    pub misses: u64,
}

impl RequestRecord {
    /// The line, `key=value` pairs separated by spaces, newline-terminated.
    pub fn format(&self, out: &mut StackBuf) {
        let _ = writeln!(
            out,
            "request={} pid={} heap={} usage={} peak={} real_usage={} real_peak={} \
             segments={} cached={} hits={} misses={}",
            self.request,
            self.pid,
            self.heap,
            self.usage,
            self.peak,
            self.real_usage,
            self.real_peak,
            self.segments,
            self.cached,
            self.hits,
            self.misses
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_is_off_and_stderr_is_fd_2() {
        assert_eq!(LogFd::from_var("ZENDMM_STATS", None), Ok(None));
        let fd = LogFd::from_var("ZENDMM_STATS", Some("stderr".into())).unwrap();
        assert_eq!(fd, Some(LogFd(2)));
    }

    #[test]
    fn bad_values_name_the_variable_and_value() {
        assert_eq!(
            LogFd::from_var("ZENDMM_STATS", Some(String::new())),
            Err("ZENDMM_STATS must be a file path or 'stderr', got ''\n".into())
        );
        let e =
            LogFd::from_var("ZENDMM_CACHE_STAT", Some("/nonexistent/dir/x".into())).unwrap_err();
        assert!(
            e.starts_with(
                "ZENDMM_CACHE_STAT: cannot open '/nonexistent/dir/x' for appending: No such file"
            ),
            "{e}"
        );
    }

    #[test]
    fn records_append_as_key_value_lines() {
        let path = std::env::temp_dir().join(format!("zendmm-stat-log-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let fd = LogFd::from_var("ZENDMM_STATS", Some(path.to_str().unwrap().into()))
            .unwrap()
            .unwrap();
        for request in 1..=2 {
            let mut line = StackBuf::new();
            RequestRecord {
                request,
                pid: 7,
                usage: 8208,
                real_usage: 262144,
                ..RequestRecord::default()
            }
            .format(&mut line);
            fd.write(line.as_bytes());
        }
        drop(fd);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            [
                "request=1 pid=7 heap=0 usage=8208 peak=0 real_usage=262144 real_peak=0 \
                 segments=0 cached=0 hits=0 misses=0",
                "request=2 pid=7 heap=0 usage=8208 peak=0 real_usage=262144 real_peak=0 \
                 segments=0 cached=0 hits=0 misses=0",
            ]
        );
    }
}
