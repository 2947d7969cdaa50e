// SPDX-License-Identifier: GPL-2.0

//! A deterministic generator.

/// xorshift64*: reproducible values without a dependency (the seed must be
/// non-zero).
pub struct Rng(pub u64);

impl Rng {
    /// The next value.
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A coin toss.
    pub fn bool(&mut self) -> bool {
        self.next() & 1 != 0
    }
}
