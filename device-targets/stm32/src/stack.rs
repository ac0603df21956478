//! RAM layout and stack high-water by painting.
//!
//! cortex-m-rt places statics at the bottom of RAM and the stack at the top, growing down.
//! The space between is split: the heap from `__sheap` up, the stack's `STACK_BYTES` below
//! `_stack_start`. The stack region is painted at boot; the deepest unpainted word later
//! tells how far the stack has ever grown.

use core::ptr::{addr_of, read_volatile, write_volatile};

/// Reserved for the stack; everything else between the statics and the stack is heap.
pub const STACK_BYTES: usize = 16 * 1024;
const PAINT: u32 = 0xC5AC_CE55;
/// Words just below the live stack pointer left unpainted: `paint` itself runs there.
const PAINT_MARGIN_BYTES: usize = 64;

unsafe extern "C" {
    static __sheap: u32;
    static _stack_start: u32;
}

fn heap_start() -> usize {
    // Only the address of the linker-defined symbol is taken, never its value.
    addr_of!(__sheap) as usize
}

fn stack_top() -> usize {
    addr_of!(_stack_start) as usize
}

fn stack_bottom() -> usize {
    stack_top() - STACK_BYTES
}

/// Start and size of the heap region.
pub fn heap_region() -> (usize, usize) {
    let start = heap_start();
    (start, stack_bottom().saturating_sub(start))
}

/// Paints the unused part of the stack region; call once, early, from a shallow frame.
pub fn paint() {
    let sp = cortex_m::register::msp::read() as usize;
    let mut addr = stack_bottom();
    while addr + 4 <= sp - PAINT_MARGIN_BYTES {
        // SAFETY: the region lies between the heap and the live stack frames and is not yet
        // in use by anything.
        unsafe { write_volatile(addr as *mut u32, PAINT) };
        addr += 4;
    }
}

/// Deepest stack use since boot, in bytes.
pub fn high_water_bytes() -> u32 {
    let mut addr = stack_bottom();
    // SAFETY: reads words of the stack region, which is mapped RAM.
    while addr < stack_top() && unsafe { read_volatile(addr as *const u32) } == PAINT {
        addr += 4;
    }
    (stack_top() - addr) as u32
}
