//! The loaded simulation library. All `unsafe` of the crate lives in this file.

use crate::build::ABI_VERSION;
use crate::{Error, Model, Result, Trace};
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

type CreateFn = unsafe extern "C" fn(*const c_char, c_int, u32, *mut c_char, usize) -> *mut c_void;
type DestroyFn = unsafe extern "C" fn(*mut c_void);
type ErrorFn = unsafe extern "C" fn(*mut c_void) -> *const c_char;
type SetFn = unsafe extern "C" fn(*mut c_void, u8, *const u64, u8, u8);
type EvalFn = unsafe extern "C" fn(*mut c_void) -> c_int;
type GetFn = unsafe extern "C" fn(*mut c_void, *mut u64) -> u32;
type StepFn = unsafe extern "C" fn(*mut c_void, u8, *const u64, u8, u8, *mut u64) -> c_int;
type U32Fn = unsafe extern "C" fn() -> u32;

/// The entry points of one loaded library.
#[derive(Clone, Copy)]
struct Api {
    create: CreateFn,
    destroy: DestroyFn,
    error: ErrorFn,
    set_inputs: SetFn,
    eval: EvalFn,
    get_outputs: GetFn,
    tick: EvalFn,
    step: StepFn,
    in_width: u32,
    out_width: u32,
    trace_kind: u32,
}

/// Opens a library once per process and never unloads it: Verilator's runtime registers
/// thread-local destructors, which must not outlive their code. Checks the shim's ABI.
fn library(path: &Path) -> Result<&'static libloading::Library> {
    static OPENED: OnceLock<Mutex<HashMap<PathBuf, &'static libloading::Library>>> =
        OnceLock::new();
    let map = OPENED.get_or_init(Default::default);
    let mut map = map
        .lock()
        .map_err(|_| Error::Load("internal lock poisoned".into()))?;
    if let Some(lib) = map.get(path) {
        return Ok(lib);
    }
    let load_err = |e: libloading::Error| Error::Load(format!("{}: {e}", path.display()));
    // SAFETY: the library is one the harness built from its own shim; loading it runs only
    // the static constructors of Verilator's runtime and the model.
    let lib = unsafe { libloading::Library::new(path) }.map_err(load_err)?;
    let lib: &'static libloading::Library = Box::leak(Box::new(lib));
    // SAFETY: every shim declares `bf_abi_version` with this signature.
    let found = unsafe {
        let abi: U32Fn = *lib.get(b"bf_abi_version\0").map_err(load_err)?;
        abi()
    };
    if found != ABI_VERSION {
        return Err(Error::Load(format!(
            "{}: shim ABI {found}, expected {ABI_VERSION}",
            path.display()
        )));
    }
    map.insert(path.to_path_buf(), lib);
    Ok(lib)
}

/// The entry points of an accelerator library; the function pointers stay valid for the
/// life of the process.
fn load(path: &Path) -> Result<Api> {
    let lib = library(path)?;
    let load_err = |e: libloading::Error| Error::Load(format!("{}: {e}", path.display()));
    // SAFETY: each symbol is declared in the shim with exactly the signature given here;
    // the ABI version (checked by `library`) guards against a library from another shim.
    let api = unsafe {
        let in_width: U32Fn = *lib.get(b"bf_in_width\0").map_err(load_err)?;
        let out_width: U32Fn = *lib.get(b"bf_out_width\0").map_err(load_err)?;
        let trace_kind: U32Fn = *lib.get(b"bf_trace_kind\0").map_err(load_err)?;
        Api {
            create: *lib.get(b"bf_create\0").map_err(load_err)?,
            destroy: *lib.get(b"bf_destroy\0").map_err(load_err)?,
            error: *lib.get(b"bf_error\0").map_err(load_err)?,
            set_inputs: *lib.get(b"bf_set_inputs\0").map_err(load_err)?,
            eval: *lib.get(b"bf_eval\0").map_err(load_err)?,
            get_outputs: *lib.get(b"bf_get_outputs\0").map_err(load_err)?,
            tick: *lib.get(b"bf_tick\0").map_err(load_err)?,
            step: *lib.get(b"bf_step\0").map_err(load_err)?,
            in_width: in_width(),
            out_width: out_width(),
            trace_kind: trace_kind(),
        }
    };
    Ok(api)
}

/// Options for [`Sim::with_options`].
#[derive(Clone, Debug, Default)]
pub struct SimOptions {
    /// Write a waveform here (VCD or FST, as the model was built; see [`Trace`]).
    pub trace: Option<PathBuf>,
    /// Initial value of registers before reset: `None` = all zeros, `Some(seed)` = random
    /// (Verilator's `randReset(2)`), which exposes state the reset forgets.
    pub random_init: Option<u32>,
}

/// Port values driven into the design for one cycle.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    pub rst: bool,
    /// `s_axis_tdata` as little-endian u64 words (missing words are zero; bits above the
    /// port width are masked off).
    pub s_tdata: &'a [u64],
    pub s_tvalid: bool,
    pub m_tready: bool,
}

/// Control outputs sampled after settling; `m_axis_tdata` is in [`Sim::m_tdata`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outputs {
    pub s_tready: bool,
    pub m_tvalid: bool,
    pub m_tlast: bool,
}

impl Outputs {
    fn from_flags(f: u32) -> Self {
        Outputs {
            s_tready: f & 1 != 0,
            m_tvalid: f & 2 != 0,
            m_tlast: f & 4 != 0,
        }
    }
}

/// A live instance of a Verilated design (one per [`Sim`]; several may coexist).
///
/// Time: each clock cycle is two trace time units, clk low at 2c (inputs applied and
/// settled) and clk high at 2c+1 (after the rising edge).
pub struct Sim {
    api: Api,
    handle: *mut c_void,
    in_width: u32,
    out_width: u32,
    in_buf: Vec<u64>,
    in_mask_last: u64,
    out_buf: Vec<u64>,
    cycle: u64,
    finished: bool,
}

fn words(bits: u32) -> usize {
    (bits as usize).div_ceil(64).max(1)
}

impl Sim {
    /// Instantiate the model; `trace` names a waveform file to write.
    pub fn new(model: &Model, trace: Option<&Path>) -> Result<Sim> {
        Sim::with_options(
            model,
            &SimOptions {
                trace: trace.map(Path::to_path_buf),
                random_init: None,
            },
        )
    }

    pub fn with_options(model: &Model, opts: &SimOptions) -> Result<Sim> {
        let api = load(&model.so_path)?;
        if api.in_width != model.in_width || api.out_width != model.out_width {
            return Err(Error::Load(format!(
                "{} has ports of {}/{} bits, the model says {}/{}",
                model.so_path.display(),
                api.in_width,
                api.out_width,
                model.in_width,
                model.out_width
            )));
        }
        if opts.trace.is_some() && api.trace_kind == 0 {
            return Err(Error::Input(format!(
                "a trace was asked for but {} was built without one (use Trace::Vcd or Trace::Fst)",
                model.so_path.display()
            )));
        }
        debug_assert_eq!(
            api.trace_kind,
            match model.trace {
                Trace::None => 0,
                Trace::Vcd => 1,
                Trace::Fst => 2,
            }
        );
        let path = match &opts.trace {
            Some(p) => Some(CString::new(p.as_os_str().as_encoded_bytes()).map_err(|_| {
                Error::Input(format!("trace path {} contains a NUL byte", p.display()))
            })?),
            None => None,
        };
        let mut err = vec![0u8; 1024];
        let (rand_reset, seed) = match opts.random_init {
            Some(seed) => (2, seed),
            None => (0, 0),
        };
        // SAFETY: `create` takes a NUL-terminated path or null and a writable buffer of the
        // given length; it returns an owned handle or null.
        let handle = unsafe {
            (api.create)(
                path.as_ref().map_or(std::ptr::null(), |p| p.as_ptr()),
                rand_reset,
                seed,
                err.as_mut_ptr().cast(),
                err.len(),
            )
        };
        if handle.is_null() {
            let msg = CStr::from_bytes_until_nul(&err)
                .map(|c| c.to_string_lossy().into_owned())
                .unwrap_or_default();
            return Err(Error::Sim(format!("cannot create the model: {msg}")));
        }
        let rem = model.in_width % 64;
        Ok(Sim {
            api,
            handle,
            in_width: model.in_width,
            out_width: model.out_width,
            in_buf: vec![0; words(model.in_width)],
            in_mask_last: if rem == 0 {
                u64::MAX
            } else {
                (1u64 << rem) - 1
            },
            out_buf: vec![0; words(model.out_width)],
            cycle: 0,
            finished: false,
        })
    }

    pub fn in_width(&self) -> u32 {
        self.in_width
    }

    pub fn out_width(&self) -> u32 {
        self.out_width
    }

    /// Rising clock edges so far.
    pub fn cycle(&self) -> u64 {
        self.cycle
    }

    /// True once the design executed `$finish`.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// `m_axis_tdata` as of the last [`Sim::eval`] or [`Sim::step`] (little-endian words).
    pub fn m_tdata(&self) -> &[u64] {
        &self.out_buf
    }

    fn stage(&mut self, s_tdata: &[u64]) {
        let n = self.in_buf.len();
        for (i, w) in self.in_buf.iter_mut().enumerate() {
            *w = s_tdata.get(i).copied().unwrap_or(0);
        }
        self.in_buf[n - 1] &= self.in_mask_last;
    }

    fn last_error(&self) -> String {
        // SAFETY: `error` returns a NUL-terminated string owned by the live handle.
        unsafe { CStr::from_ptr((self.api.error)(self.handle)) }
            .to_string_lossy()
            .into_owned()
    }

    fn check(&mut self, rc: c_int) -> Result<c_int> {
        if rc < 0 {
            Err(Error::Sim(format!(
                "at cycle {}: {}",
                self.cycle,
                self.last_error()
            )))
        } else {
            Ok(rc)
        }
    }

    /// Drive the inputs (takes effect at the next [`Sim::eval`] / [`Sim::tick`]).
    pub fn set_inputs(&mut self, inp: &Inputs<'_>) {
        self.stage(inp.s_tdata);
        // SAFETY: live handle; `in_buf` holds as many words as the port needs.
        unsafe {
            (self.api.set_inputs)(
                self.handle,
                u8::from(inp.rst),
                self.in_buf.as_ptr(),
                u8::from(inp.s_tvalid),
                u8::from(inp.m_tready),
            )
        }
    }

    /// Settle the combinational logic (clock low) and read the outputs.
    pub fn eval(&mut self) -> Result<Outputs> {
        // SAFETY: live handle; `out_buf` holds as many words as the port needs.
        let rc = unsafe { (self.api.eval)(self.handle) };
        let rc = self.check(rc)?;
        self.finished |= rc == 1;
        // SAFETY: as above.
        let f = unsafe { (self.api.get_outputs)(self.handle, self.out_buf.as_mut_ptr()) };
        Ok(Outputs::from_flags(f))
    }

    /// One rising clock edge.
    pub fn tick(&mut self) -> Result<()> {
        // SAFETY: live handle.
        let rc = unsafe { (self.api.tick)(self.handle) };
        let rc = self.check(rc)?;
        self.finished |= rc == 1;
        self.cycle += 1;
        Ok(())
    }

    /// One cycle in one call: apply `inp`, settle, sample the outputs (the values the rising
    /// edge sees, so `valid && ready` here means a transfer), then the edge.
    pub fn step(&mut self, inp: &Inputs<'_>) -> Result<Outputs> {
        self.stage(inp.s_tdata);
        // SAFETY: live handle; both buffers hold as many words as their ports need.
        let rc = unsafe {
            (self.api.step)(
                self.handle,
                u8::from(inp.rst),
                self.in_buf.as_ptr(),
                u8::from(inp.s_tvalid),
                u8::from(inp.m_tready),
                self.out_buf.as_mut_ptr(),
            )
        };
        let rc = self.check(rc)?;
        self.cycle += 1;
        self.finished |= rc & 0x100 != 0;
        Ok(Outputs::from_flags(rc as u32 & 0xff))
    }

    /// Hold `rst` high for `cycles` clocks with both valids/readies low, then release it
    /// (the release is applied at the next cycle's inputs).
    pub fn reset(&mut self, cycles: u32) -> Result<()> {
        let zero = [0u64; 1];
        let inp = Inputs {
            rst: true,
            s_tdata: &zero,
            s_tvalid: false,
            m_tready: false,
        };
        for _ in 0..cycles.max(1) {
            self.step(&inp)?;
        }
        Ok(())
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        // SAFETY: the handle came from `create` and is destroyed exactly once; the library
        // is never unloaded.
        unsafe { (self.api.destroy)(self.handle) }
    }
}

type BoardRunFn = unsafe extern "C" fn(*mut c_void, u8, u8, u64, u8, *mut u64, *mut u32) -> c_int;

/// The entry points of a board core library.
#[derive(Clone, Copy)]
struct BoardApi {
    create: CreateFn,
    destroy: DestroyFn,
    error: ErrorFn,
    run: BoardRunFn,
    trace_kind: u32,
}

/// A live instance of a Verilated board core (`clk, rst, uart_rx, uart_tx, led_activity,
/// led_error`); [`crate::BoardSim`] drives it.
pub(crate) struct BoardHandle {
    api: BoardApi,
    handle: *mut c_void,
}

/// What [`BoardHandle::run`] left on the outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BoardOutputs {
    pub tx: bool,
    pub led_activity: bool,
    pub led_error: bool,
}

impl BoardHandle {
    pub(crate) fn new(model: &Model, opts: &SimOptions) -> Result<BoardHandle> {
        let path = &model.so_path;
        let lib = library(path)?;
        let load_err = |e: libloading::Error| {
            Error::Load(format!(
                "{} (not a board core library?): {e}",
                path.display()
            ))
        };
        // SAFETY: each symbol is declared in the board shim with exactly this signature.
        let api = unsafe {
            let trace_kind: U32Fn = *lib.get(b"bf_board_trace_kind\0").map_err(load_err)?;
            BoardApi {
                create: *lib.get(b"bf_board_create\0").map_err(load_err)?,
                destroy: *lib.get(b"bf_board_destroy\0").map_err(load_err)?,
                error: *lib.get(b"bf_board_error\0").map_err(load_err)?,
                run: *lib.get(b"bf_board_run\0").map_err(load_err)?,
                trace_kind: trace_kind(),
            }
        };
        if opts.trace.is_some() && api.trace_kind == 0 {
            return Err(Error::Input(format!(
                "a trace was asked for but {} was built without one (use Trace::Vcd or Trace::Fst)",
                path.display()
            )));
        }
        let tpath = match &opts.trace {
            Some(p) => Some(CString::new(p.as_os_str().as_encoded_bytes()).map_err(|_| {
                Error::Input(format!("trace path {} contains a NUL byte", p.display()))
            })?),
            None => None,
        };
        let mut err = vec![0u8; 1024];
        let (rand_reset, seed) = match opts.random_init {
            Some(seed) => (2, seed),
            None => (0, 0),
        };
        // SAFETY: as for `Sim::with_options`.
        let handle = unsafe {
            (api.create)(
                tpath.as_ref().map_or(std::ptr::null(), |p| p.as_ptr()),
                rand_reset,
                seed,
                err.as_mut_ptr().cast(),
                err.len(),
            )
        };
        if handle.is_null() {
            let msg = CStr::from_bytes_until_nul(&err)
                .map(|c| c.to_string_lossy().into_owned())
                .unwrap_or_default();
            return Err(Error::Sim(format!("cannot create the model: {msg}")));
        }
        Ok(BoardHandle { api, handle })
    }

    /// Runs up to `max_cycles` cycles with `rst` and `rx` held (stopping after an edge that
    /// changes `uart_tx` when `stop_on_tx`); the cycles run and the outputs then.
    pub(crate) fn run(
        &mut self,
        rst: bool,
        rx: bool,
        max_cycles: u64,
        stop_on_tx: bool,
    ) -> Result<(u64, BoardOutputs)> {
        let mut done = 0u64;
        let mut outs = 0u32;
        // SAFETY: live handle; both out-pointers are valid for writes.
        let rc = unsafe {
            (self.api.run)(
                self.handle,
                u8::from(rst),
                u8::from(rx),
                max_cycles,
                u8::from(stop_on_tx),
                &mut done,
                &mut outs,
            )
        };
        if rc < 0 {
            // SAFETY: `error` returns a NUL-terminated string owned by the live handle.
            let msg = unsafe { CStr::from_ptr((self.api.error)(self.handle)) }
                .to_string_lossy()
                .into_owned();
            return Err(Error::Sim(msg));
        }
        Ok((
            done,
            BoardOutputs {
                tx: outs & 1 != 0,
                led_activity: outs & 2 != 0,
                led_error: outs & 4 != 0,
            },
        ))
    }
}

// SAFETY: the model is used by one thread at a time (`&mut self`), and every call into it
// first makes its own context the calling thread's (`Verilated::threadContextp`).
unsafe impl Send for BoardHandle {}

impl Drop for BoardHandle {
    fn drop(&mut self) {
        // SAFETY: the handle came from `create` and is destroyed exactly once.
        unsafe { (self.api.destroy)(self.handle) }
    }
}
