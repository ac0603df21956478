//! Gauntlet firmware: one model baked into flash, served over the wire protocol on a UART.
//!
//! Boot prints a plain `READY` line (the host must not send before the USART is enabled:
//! those bytes are lost), then answers framed requests one at a time.
#![no_std]
#![no_main]

extern crate alloc;

mod board;
mod stack;
mod timing;
mod usart;

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write as _;

use cortex_m_rt::{ExceptionFrame, entry, exception};
use embedded_alloc::LlffHeap as Heap;
use gauntlet_tinyml::Model;
use gauntlet_wire::{
    AgentHello, BoardFacts, ErrorKind, FrameDecoder, InferRequest, InferResponse, MemoryFacts,
    ModelLoaded, PROTOCOL_VERSION, Request, Response, WireError, encode_frame,
};

use crate::timing::Stopwatch;
use crate::usart::Usart;

/// Largest encoded request accepted; the host learns it from the hello's capabilities.
const MAX_FRAME_BYTES: usize = gauntlet_wire::FIRMWARE_MAX_REQUEST_BYTES;

#[global_allocator]
static HEAP: Heap = Heap::empty();

/// The format aligns constants to 4 bytes from the blob start; aligning the start keeps them
/// aligned in flash.
#[repr(C, align(16))]
struct Aligned<B: ?Sized>(B);

static MODEL_BLOB: &Aligned<[u8]> =
    &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/model.bin")));

struct Loaded {
    model: Model<'static>,
    arena: Vec<u8>,
}

#[entry]
fn main() -> ! {
    let mut core = cortex_m::Peripherals::take().expect("core peripherals are taken once");
    let uart = board::init();
    stack::paint();
    let (heap_start, heap_size) = stack::heap_region();
    // SAFETY: called once, before any allocation, on RAM nothing else uses.
    unsafe { HEAP.init(heap_start, heap_size) };
    timing::start(core.SYST, &mut core.DCB, &mut core.DWT);

    uart.write_all(b"\r\nREADY gauntlet-stm32\r\n");
    serve(uart)
}

fn serve(uart: Usart) -> ! {
    let mut decoder = FrameDecoder::new(MAX_FRAME_BYTES);
    let mut loaded: Option<Loaded> = None;
    let mut out = Vec::new();
    loop {
        // Asked after every byte: the decoder only looks at what is new, and it answers an
        // over-long frame the moment it drops it, before it exhausts the heap.
        decoder.extend(&[uart.read_byte()]);
        while let Some(message) = decoder.next_message::<Request>() {
            let (response, end) = match message {
                // One emulator run or one power-up is one session: both end it.
                Ok(Request::Shutdown | Request::EndSession) => (Response::Goodbye, true),
                Ok(request) => (handle(request, &mut loaded), false),
                Err(e) => (
                    error(
                        ErrorKind::Protocol,
                        format_args!("dropped a corrupt frame: {e}"),
                    ),
                    false,
                ),
            };
            out.clear();
            encode_frame(&response, &mut out);
            drop(response);
            uart.write_all(&out);
            if end {
                uart.flush();
                loaded = None;
                board::end_session();
            }
        }
    }
}

fn handle(request: Request, loaded: &mut Option<Loaded>) -> Response {
    match request {
        Request::Hello {
            protocol_version, ..
        } if protocol_version != PROTOCOL_VERSION => error(
            ErrorKind::VersionMismatch {
                device: PROTOCOL_VERSION,
            },
            format_args!("host speaks protocol {protocol_version}, firmware {PROTOCOL_VERSION}"),
        ),
        Request::Hello { .. } => Response::Hello(hello()),
        Request::UseBuiltin { slot, name } => use_builtin(slot, &name, loaded),
        Request::Infer(request) => match loaded {
            Some(loaded) => infer(loaded, request),
            None => error(ErrorKind::NoModel, format_args!("infer before UseBuiltin")),
        },
        Request::Memory => Response::Memory(memory()),
        Request::Mark(marker) => Response::Marked {
            marker,
            device_time_ns: timing::now_ns(),
        },
        Request::LoadBegin(_) | Request::LoadChunk { .. } | Request::LoadCommit => error(
            ErrorKind::Protocol,
            format_args!("firmware holds its model in flash: use UseBuiltin, not a load"),
        ),
        // Its capabilities say so: no operating system keeps load, clocks or zones to read.
        Request::MachineState => error(
            ErrorKind::Protocol,
            format_args!("firmware has no operating system to report machine state"),
        ),
        Request::Shutdown | Request::EndSession => unreachable!("serve ends the session itself"),
    }
}

fn hello() -> AgentHello {
    AgentHello {
        protocol_version: PROTOCOL_VERSION,
        agent: "gauntlet-stm32".to_string(),
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        facts: BoardFacts {
            arch: "thumbv7em".to_string(),
            cpu_model: Some(board::CPU_MODEL.to_string()),
            cores: Some(1),
            ram_kib: Some(128),
            clock_hz: Some(board::CLOCK_HZ),
            ..BoardFacts::default()
        },
        timing: board::TIMING,
        // The MCU engine is built in; no runtime is chosen per build.
        runtimes: Vec::new(),
        capabilities: gauntlet_wire::FIRMWARE_CAPABILITIES,
    }
}

fn use_builtin(slot: u8, name: &str, loaded: &mut Option<Loaded>) -> Response {
    if slot != 0 {
        return error(
            ErrorKind::NoModel,
            format_args!("firmware has one built-in model, in slot 0, not slot {slot} ({name})"),
        );
    }
    // A reload starts from nothing so `memory_before` is comparable across loads.
    *loaded = None;
    let memory_before = memory();
    let clock = Stopwatch::start();
    // Opaque to the optimiser: the blob is a constant, and LLVM would otherwise fold the parse
    // (and drop a blob it proves invalid) instead of building the generic firmware a model is
    // flashed into.
    let model = match Model::parse(core::hint::black_box(&MODEL_BLOB.0)) {
        Ok(model) => model,
        Err(e) => {
            return error(
                ErrorKind::ModelLoad,
                format_args!("built-in model {name}: {e}"),
            );
        }
    };
    let mut arena = Vec::new();
    if arena.try_reserve_exact(model.arena_len()).is_err() {
        return error(
            ErrorKind::OutOfMemory,
            format_args!(
                "model {name} needs a {} B arena; the heap has less free",
                model.arena_len()
            ),
        );
    }
    arena.resize(model.arena_len(), 0);
    let load_time_us = clock.elapsed_ns() / 1000;
    let (input_len, output_len) = (model.input_len() as u32, model.output_len() as u32);
    *loaded = Some(Loaded { model, arena });
    Response::Loaded(ModelLoaded {
        load_time_us,
        input_len,
        output_len,
        memory_before,
        memory_after: memory(),
    })
}

fn infer(loaded: &mut Loaded, request: InferRequest) -> Response {
    let InferRequest {
        slot,
        seq,
        window_len,
        data,
    } = request;
    if slot != 0 {
        return error(ErrorKind::NoModel, format_args!("no model in slot {slot}"));
    }
    let input_len = loaded.model.input_len();
    if window_len as usize != input_len {
        return error(
            ErrorKind::ShapeMismatch {
                expected: input_len as u32,
                got: window_len,
            },
            format_args!("window length"),
        );
    }
    if data.len() % input_len != 0 {
        return error(
            ErrorKind::ShapeMismatch {
                expected: input_len as u32,
                got: (data.len() % input_len) as u32,
            },
            format_args!(
                "data holds {} floats, not a whole number of windows",
                data.len()
            ),
        );
    }
    let output_len = loaded.model.output_len();
    let windows = data.len() / input_len;
    let mut outputs = vec![0.0; windows * output_len];
    let mut device_time_ns = Vec::with_capacity(windows);
    for (window, scores) in data
        .chunks_exact(input_len)
        .zip(outputs.chunks_exact_mut(output_len))
    {
        let clock = Stopwatch::start();
        let result = loaded.model.run(window, scores, &mut loaded.arena);
        device_time_ns.push(clock.elapsed_ns());
        if let Err(e) = result {
            return error(
                ErrorKind::Inference,
                format_args!("window {}: {e}", device_time_ns.len() - 1),
            );
        }
    }
    Response::Outputs(InferResponse {
        seq,
        output_len: output_len as u32,
        outputs,
        device_time_ns,
    })
}

fn memory() -> MemoryFacts {
    MemoryFacts {
        stack_high_water_bytes: Some(stack::high_water_bytes()),
        heap_bytes: Some(HEAP.used() as u32),
        ..MemoryFacts::default()
    }
}

fn error(kind: ErrorKind, message: core::fmt::Arguments<'_>) -> Response {
    let mut text = String::new();
    let _ = text.write_fmt(message);
    Response::Error(WireError {
        kind,
        message: text,
    })
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let _ = writeln!(board::console(), "\r\nPANIC {info}\r");
    board::halt_failed()
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    let _ = writeln!(board::console(), "\r\nHARDFAULT pc={:#010x}\r", frame.pc());
    board::halt_failed()
}
