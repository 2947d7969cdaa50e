// SPDX-License-Identifier: GPL-2.0

//! A simulated register file for host tests: the [`RegAccess`] that `cargo test`
//! passes where the module passes the real CPU. Host only (uses `std`).

use crate::arch::{RegAccess, SysReg};
use std::collections::{BTreeMap, BTreeSet};

/// One access made through the simulated register file, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A register was read.
    Read(&'static str),
    /// A register was written.
    Write(&'static str, u64),
    /// An `isb`.
    Isb,
    /// A `dmb sy`.
    DmbSy,
}

/// A register file: registers by encoding, plus the log of every access.
#[derive(Clone, Debug, Default)]
pub struct SimRegs {
    regs: BTreeMap<u32, u64>,
    /// Every access in order.
    pub log: Vec<Event>,
    /// Registers read before anything set them (a test usually wants none).
    pub unset_reads: Vec<&'static str>,
}

impl SimRegs {
    /// An empty register file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets register `R` without logging (test set-up).
    pub fn set<R: SysReg>(&mut self, val: u64) {
        self.regs.insert(R::ENCODING, val);
    }

    /// Register `R`'s value, if anything set it.
    pub fn get<R: SysReg>(&self) -> Option<u64> {
        self.regs.get(&R::ENCODING).copied()
    }

    /// The value of the register encoded `encoding` (`SysReg::ENCODING`), if
    /// anything set it. For tests that name registers by data, not by type.
    pub fn get_encoded(&self, encoding: u32) -> Option<u64> {
        self.regs.get(&encoding).copied()
    }

    /// Sets the register encoded `encoding` without logging (test set-up).
    pub fn set_encoded(&mut self, encoding: u32, val: u64) {
        self.regs.insert(encoding, val);
    }

    /// The names of the registers read or written so far.
    pub fn touched(&self) -> BTreeSet<&'static str> {
        touched(&self.log)
    }

    /// The values written to register `R`, in order.
    pub fn writes<R: SysReg>(&self) -> Vec<u64> {
        self.log
            .iter()
            .filter_map(|e| match e {
                Event::Write(n, v) if *n == R::NAME => Some(*v),
                _ => None,
            })
            .collect()
    }
}

/// The names of the registers read or written in `log`.
pub fn touched(log: &[Event]) -> BTreeSet<&'static str> {
    log.iter()
        .filter_map(|e| match e {
            Event::Read(n) | Event::Write(n, _) => Some(*n),
            Event::Isb | Event::DmbSy => None,
        })
        .collect()
}

impl RegAccess for SimRegs {
    fn read_raw<R: SysReg>(&mut self) -> u64 {
        self.log.push(Event::Read(R::NAME));
        match self.regs.get(&R::ENCODING) {
            Some(v) => *v,
            None => {
                self.unset_reads.push(R::NAME);
                0
            }
        }
    }

    fn write_raw<R: SysReg>(&mut self, val: u64) {
        self.log.push(Event::Write(R::NAME, val));
        self.regs.insert(R::ENCODING, val);
    }

    fn isb(&mut self) {
        self.log.push(Event::Isb);
    }

    fn dmb_sy(&mut self) {
        self.log.push(Event::DmbSy);
    }
}
