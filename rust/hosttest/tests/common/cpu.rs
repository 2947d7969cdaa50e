// SPDX-License-Identifier: GPL-2.0

//! The simulated CPU: one register file ([`SimRegs`]) behind handles, so that
//! the code under test (through [`RegAccess`]) and the models around it (the
//! vCPU's record of kernel state changes, the FP model's kernel side) see the
//! same registers and the same log.

use std::cell::{Ref, RefCell, RefMut};
use std::rc::Rc;
use vhe_rs_hosttest::arch::{RegAccess, SysReg};
use vhe_rs_hosttest::sim::{Event, SimRegs};
use vhe_rs_hosttest::world::sysreg_sr::CpuReg;

use super::rng::Rng;

/// A handle on a simulated CPU. `clone` gives another handle on the same
/// registers; [`Cpu::fork`] a CPU of its own.
#[derive(Clone, Debug)]
pub struct Cpu(Rc<RefCell<SimRegs>>);

impl RegAccess for Cpu {
    fn read_raw<R: SysReg>(&mut self) -> u64 {
        self.0.borrow_mut().read_raw::<R>()
    }
    fn write_raw<R: SysReg>(&mut self, val: u64) {
        self.0.borrow_mut().write_raw::<R>(val)
    }
    fn isb(&mut self) {
        self.0.borrow_mut().isb()
    }
    fn dmb_sy(&mut self) {
        self.0.borrow_mut().dmb_sy()
    }
}

impl Cpu {
    /// A CPU with the registers of `regs`.
    pub fn new(regs: SimRegs) -> Self {
        Cpu(Rc::new(RefCell::new(regs)))
    }

    /// A copy of this CPU, registers and log, that goes its own way.
    pub fn fork(&self) -> Cpu {
        Cpu::new(self.regs().clone())
    }

    /// The register file.
    pub fn regs(&self) -> Ref<'_, SimRegs> {
        self.0.borrow()
    }

    /// The register file, to change it without logging (test set-up, or what
    /// a guest does while it runs).
    pub fn regs_mut(&self) -> RefMut<'_, SimRegs> {
        self.0.borrow_mut()
    }

    /// Register `R`'s value; it must have been set.
    pub fn get<R: SysReg>(&self) -> u64 {
        self.regs()
            .get::<R>()
            .unwrap_or_else(|| panic!("{} never set", R::NAME))
    }

    /// The value of the register encoded `enc`; it must have been set.
    pub fn get_encoded(&self, enc: u32) -> u64 {
        self.regs()
            .get_encoded(enc)
            .unwrap_or_else(|| panic!("register {enc:#x} never set"))
    }

    /// Sets the register encoded `enc` without logging.
    pub fn set_encoded(&self, enc: u32, val: u64) {
        self.regs_mut().set_encoded(enc, val)
    }

    /// Every access so far.
    pub fn log(&self) -> Vec<Event> {
        self.regs().log.clone()
    }

    /// Forgets the accesses so far.
    pub fn clear_log(&self) {
        self.regs_mut().log.clear();
    }

    /// The registers read before anything set them.
    pub fn unset_reads(&self) -> Vec<&'static str> {
        self.regs().unset_reads.clone()
    }
}

/// A register file where every register of the sysreg table holds a random
/// value.
pub fn random_regs(rng: &mut Rng) -> SimRegs {
    let mut regs = SimRegs::new();
    for r in CpuReg::ALL {
        regs.set_encoded(r.encoding(), rng.next());
    }
    regs
}

/// The write of `v` to register `R`, as the log shows it.
pub fn w<R: SysReg>(v: u64) -> Event {
    Event::Write(R::NAME, v)
}

/// A read of register `R`, as the log shows it.
pub fn r<R: SysReg>() -> Event {
    Event::Read(R::NAME)
}
