//! What the heap has handed out and taken from storage, and the limit.
//!
//! - `size`/`peak`: true sizes (headers included) of blocks handed out,
//!   cached blocks included (`zend_memory_usage(0)` reports `size - cached`).
//! - `real_size`/`real_peak`: bytes of segments held from storage.
//! - `limit`: `memory_limit`, checked against `real_size` whenever a segment
//!   is created or grown (I: `real_size <= limit`, unless the limit was
//!   lowered below it, which `set_limit` refuses).

/// No limit to speak of (PHP's initial `1 << (ZEND_MM_NUM_BUCKETS - 2)`).
pub const NO_LIMIT: usize = 1 << (usize::BITS - 2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accounting {
    pub size: usize,
    pub peak: usize,
    pub real_size: usize,
    pub real_peak: usize,
    pub limit: usize,
}

impl Accounting {
    pub const fn new() -> Accounting {
        Accounting {
            size: 0,
            peak: 0,
            real_size: 0,
            real_peak: 0,
            limit: NO_LIMIT,
        }
    }

    #[inline(always)]
    pub fn add_used(&mut self, bytes: usize) {
        self.size += bytes;
        if self.size > self.peak {
            self.peak = self.size;
        }
    }

    #[inline(always)]
    pub fn sub_used(&mut self, bytes: usize) {
        self.size -= bytes;
    }

    /// Would `extra` more segment bytes stay within the limit?
    #[inline]
    pub fn segment_fits(&self, extra: usize) -> bool {
        match self.real_size.checked_add(extra) {
            Some(total) => total <= self.limit,
            None => false,
        }
    }

    pub fn add_real(&mut self, bytes: usize) {
        self.real_size += bytes;
        if self.real_size > self.real_peak {
            self.real_peak = self.real_size;
        }
    }

    pub fn sub_real(&mut self, bytes: usize) {
        self.real_size -= bytes;
    }

    /// `zend_memory_reset_peak_usage`.
    pub fn reset_peaks(&mut self) {
        self.peak = self.size;
        self.real_peak = self.real_size;
    }

    /// Zeroes the usage counters at request shutdown; the limit stays.
    pub fn reset(&mut self) {
        *self = Accounting {
            limit: self.limit,
            ..Accounting::new()
        };
    }
}

impl Default for Accounting {
    fn default() -> Accounting {
        Accounting::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_follow_usage_and_reset_to_it() {
        let mut a = Accounting::new();
        a.add_used(100);
        a.add_used(50);
        a.sub_used(120);
        assert_eq!((a.size, a.peak), (30, 150));
        a.add_real(1000);
        a.sub_real(400);
        a.reset_peaks();
        assert_eq!((a.peak, a.real_peak), (30, 600));
    }

    #[test]
    fn segment_fits_refuses_overflow_and_excess() {
        let mut a = Accounting::new();
        a.limit = 1000;
        a.add_real(600);
        assert!(a.segment_fits(400));
        assert!(!a.segment_fits(401));
        assert!(!a.segment_fits(usize::MAX));
    }
}
