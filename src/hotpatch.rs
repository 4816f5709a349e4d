//! Redirecting a PHP executable's own allocator to zendmm.
//!
//! Debian's `php8.2` and `php-fpm8.2` link the engine statically into a PIE
//! and call `_emalloc` & co. directly, so `LD_PRELOAD` alone changes nothing
//! there: the executable's definitions win, and its calls never go through
//! the PLT. When zendmm is loaded into such an executable, the constructor
//! below writes a 14-byte absolute jump (`jmp *0(%rip)` followed by the
//! target address) over each of the executable's [`SYMBOLS`] so that every
//! call lands in zendmm's export of the same name.
//!
//! It runs before `main`, single-threaded, and it is all or nothing: every
//! entry point is resolved and checked (the executable's own definition, a
//! plain function, room for the jump in its body or its alignment padding,
//! in a private `r-x` mapping, not already redirected, zendmm exports the
//! name, PHP's allocator not started yet) and every page is made writable
//! before the first byte is written. When anything fails, one line on
//! stderr says why and PHP keeps its own allocator.
//!
//! Nothing happens, and nothing is printed, when the executable does not
//! define `_emalloc` itself (a plain program, or a program linked to
//! `libphp8.2.so`, where `LD_PRELOAD` works on its own), or when zendmm *is*
//! the executable's `_emalloc` (linked statically).
//!
//! `ZENDMM_PATCH`: unset, empty or `1` patch; `0` turns patching off
//! silently; any other value is reported (only in an executable that would
//! be patched) and nothing is patched.
//!
//! On anything but Linux/x86-64/glibc the constructor does not exist; the
//! symbol list and the pure helpers below still compile (and are tested).

// The helpers are only called by the Linux/x86-64 implementation (and tests).
#![cfg_attr(
    not(all(target_os = "linux", target_arch = "x86_64", target_env = "gnu")),
    allow(dead_code)
)]

use core::ffi::CStr;

/// PHP 8.2's memory-manager entry points, byte-sorted: exactly the
/// allocator names that Debian's `php8.2` (and `libphp8.2.so`) export.
pub const SYMBOLS: [&CStr; 118] = [
    c"__zend_calloc",
    c"__zend_malloc",
    c"__zend_realloc",
    c"__zend_strdup",
    c"_ecalloc",
    c"_efree",
    c"_efree_1024",
    c"_efree_112",
    c"_efree_128",
    c"_efree_1280",
    c"_efree_1536",
    c"_efree_16",
    c"_efree_160",
    c"_efree_1792",
    c"_efree_192",
    c"_efree_2048",
    c"_efree_224",
    c"_efree_24",
    c"_efree_256",
    c"_efree_2560",
    c"_efree_3072",
    c"_efree_32",
    c"_efree_320",
    c"_efree_384",
    c"_efree_40",
    c"_efree_448",
    c"_efree_48",
    c"_efree_512",
    c"_efree_56",
    c"_efree_64",
    c"_efree_640",
    c"_efree_768",
    c"_efree_8",
    c"_efree_80",
    c"_efree_896",
    c"_efree_96",
    c"_efree_huge",
    c"_efree_large",
    c"_emalloc",
    c"_emalloc_1024",
    c"_emalloc_112",
    c"_emalloc_128",
    c"_emalloc_1280",
    c"_emalloc_1536",
    c"_emalloc_16",
    c"_emalloc_160",
    c"_emalloc_1792",
    c"_emalloc_192",
    c"_emalloc_2048",
    c"_emalloc_224",
    c"_emalloc_24",
    c"_emalloc_256",
    c"_emalloc_2560",
    c"_emalloc_3072",
    c"_emalloc_32",
    c"_emalloc_320",
    c"_emalloc_384",
    c"_emalloc_40",
    c"_emalloc_448",
    c"_emalloc_48",
    c"_emalloc_512",
    c"_emalloc_56",
    c"_emalloc_64",
    c"_emalloc_640",
    c"_emalloc_768",
    c"_emalloc_8",
    c"_emalloc_80",
    c"_emalloc_896",
    c"_emalloc_96",
    c"_emalloc_huge",
    c"_emalloc_large",
    c"_erealloc",
    c"_erealloc2",
    c"_estrdup",
    c"_estrndup",
    c"_fecalloc",
    c"_femalloc",
    c"_ferealloc",
    c"_ferealloc2",
    c"_safe_emalloc",
    c"_safe_erealloc",
    c"_safe_femalloc",
    c"_safe_ferealloc",
    c"_safe_malloc",
    c"_safe_realloc",
    c"_zend_mem_block_size",
    c"_zend_mm_alloc",
    c"_zend_mm_block_size",
    c"_zend_mm_free",
    c"_zend_mm_realloc",
    c"_zend_mm_realloc2",
    c"is_zend_mm",
    c"is_zend_ptr",
    c"shutdown_memory_manager",
    c"start_memory_manager",
    c"zend_alloc_in_memory_limit_error_reporting",
    c"zend_handle_delayed_oom",
    c"zend_memory_peak_usage",
    c"zend_memory_reset_peak_usage",
    c"zend_memory_usage",
    c"zend_mm_delayed_error_or_panic",
    c"zend_mm_gc",
    c"zend_mm_get_custom_handlers",
    c"zend_mm_get_heap",
    c"zend_mm_get_storage",
    c"zend_mm_is_custom_heap",
    c"zend_mm_is_fallible",
    c"zend_mm_max_allocs_hit",
    c"zend_mm_set_custom_handlers",
    c"zend_mm_set_fallible",
    c"zend_mm_set_heap",
    c"zend_mm_set_max_allocs",
    c"zend_mm_shutdown",
    c"zend_mm_startup",
    c"zend_mm_startup_ex",
    c"zend_set_memory_hard_limit_percent",
    c"zend_set_memory_limit",
    c"zend_strndup",
];

/// The environment variable that turns patching off (`0`) or on (`1`).
pub const ENV_VAR: &str = "ZENDMM_PATCH";

/// Length of the jump written over an entry point.
pub const PATCH_LEN: usize = 14;

/// `jmp *0(%rip)`: jump to the 8-byte address that follows the instruction.
const JMP_RIP_INDIRECT: [u8; 6] = [0xff, 0x25, 0x00, 0x00, 0x00, 0x00];

/// Functions start on 16-byte boundaries (GCC's and Clang's x86-64 default);
/// the bytes between a short function's end and the next boundary are
/// alignment padding the jump may use.
const FUNCTION_ALIGN: usize = 16;

/// What `ZENDMM_PATCH` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Setting {
    /// Unset, empty or `1`.
    Patch,
    /// `0`.
    Off,
}

/// Reads `ZENDMM_PATCH`'s value; `Err` for anything but unset, empty, `0`, `1`.
pub(crate) fn parse_setting(value: Option<&[u8]>) -> Result<Setting, ()> {
    match value {
        None | Some(b"") | Some(b"1") => Ok(Setting::Patch),
        Some(b"0") => Ok(Setting::Off),
        Some(_) => Err(()),
    }
}

/// The 14 bytes written over an entry point: `jmp *0(%rip)` + `target`.
pub(crate) fn jump_to(target: u64) -> [u8; PATCH_LEN] {
    let mut patch = [0u8; PATCH_LEN];
    patch[..JMP_RIP_INDIRECT.len()].copy_from_slice(&JMP_RIP_INDIRECT);
    patch[JMP_RIP_INDIRECT.len()..].copy_from_slice(&target.to_le_bytes());
    patch
}

/// Length of the no-op instruction at the start of `code`, if it is one of
/// the padding forms assemblers emit: `nop` (90), `int3` (CC), and the
/// multi-byte `nop r/m` (`[66|2E]* 0F 1F /0`, e.g. `66 2E 0F 1F 84 00 ..`).
fn nop_len(code: &[u8]) -> Option<usize> {
    let prefixes = code.iter().take_while(|&&b| b == 0x66 || b == 0x2e).count();
    let len = match code.get(prefixes)? {
        0x90 => prefixes + 1,
        0xcc if prefixes == 0 => 1,
        0x0f if *code.get(prefixes + 1)? == 0x1f => {
            let modrm = *code.get(prefixes + 2)?;
            if (modrm >> 3) & 7 != 0 {
                return None;
            }
            let (md, rm) = (modrm >> 6, modrm & 7);
            let mut len = prefixes + 3;
            if md != 3 && rm == 4 {
                let sib = *code.get(len)?;
                len += 1;
                if md == 0 && sib & 7 == 5 {
                    len += 4;
                }
            }
            len += match (md, rm) {
                (0, 5) => 4,
                (1, _) => 1,
                (2, _) => 4,
                _ => 0,
            };
            len
        }
        _ => return None,
    };
    (len <= 15 && len <= code.len()).then_some(len)
}

/// Whether `code` is nothing but whole padding no-ops.
pub(crate) fn is_padding(mut code: &[u8]) -> bool {
    while !code.is_empty() {
        match nop_len(code) {
            Some(n) => code = &code[n..],
            None => return false,
        }
    }
    true
}

/// How many bytes from an entry point at `addr` of a function of `size`
/// bytes the jump may overwrite: the body, plus the alignment padding up to
/// the next 16-byte boundary when the function is 16-byte aligned.
pub(crate) fn room(addr: usize, size: usize) -> usize {
    if size >= PATCH_LEN || addr % FUNCTION_ALIGN != 0 {
        size
    } else {
        // addr is aligned: the slot ends at the boundary after the body.
        size.div_ceil(FUNCTION_ALIGN) * FUNCTION_ALIGN
    }
}

/// Why an entry point cannot take the jump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unfit {
    /// The body (plus usable padding) is shorter than the jump.
    TooShort { size: usize, room: usize },
    /// The bytes after a short body up to the boundary are not padding.
    NotPadding { size: usize },
    /// The entry already starts with `jmp *0(%rip)`.
    AlreadyPatched,
}

/// Checks the first `room(addr, size)` bytes of an entry point (`code`; at
/// least [`PATCH_LEN`] of them, or fewer when `room` says so).
pub(crate) fn check_entry(addr: usize, size: usize, code: &[u8]) -> Result<(), Unfit> {
    let room = room(addr, size);
    if room < PATCH_LEN {
        return Err(Unfit::TooShort { size, room });
    }
    if code.starts_with(&JMP_RIP_INDIRECT) {
        return Err(Unfit::AlreadyPatched);
    }
    if size < PATCH_LEN && !code.get(size..room).is_some_and(is_padding) {
        return Err(Unfit::NotPadding { size });
    }
    Ok(())
}

impl Unfit {
    fn describe(self, name: &str) -> String {
        match self {
            Unfit::TooShort { size, room } if room == size => {
                format!("{name} is {size} bytes long, too short for the {PATCH_LEN}-byte jump")
            }
            Unfit::TooShort { size, room } => format!(
                "{name} is {size} bytes long ({room} with its padding), \
                 too short for the {PATCH_LEN}-byte jump"
            ),
            Unfit::NotPadding { size } => format!(
                "{name} is {size} bytes long and the bytes after it are not alignment padding"
            ),
            Unfit::AlreadyPatched => {
                format!("{name} is already redirected (is another zendmm loaded?)")
            }
        }
    }
}

/// Whether `[start, end)` lies inside one private, read+execute (not
/// writable) mapping of `/proc/self/maps`.
pub(crate) fn in_text_mapping(maps: &str, start: usize, end: usize) -> bool {
    maps.lines().any(|line| {
        let perms = line.split_ascii_whitespace().nth(1);
        matches!(map_range(line), Some((lo, hi)) if lo <= start && end <= hi)
            && perms == Some("r-xp")
    })
}

/// The address range `[lo, hi)` a line of `/proc/self/maps` (or a
/// mapping's first line in `/proc/self/smaps`) describes; None for any
/// other line.
pub(crate) fn map_range(line: &str) -> Option<(usize, usize)> {
    let (lo, hi) = line.split_ascii_whitespace().next()?.split_once('-')?;
    Some((
        usize::from_str_radix(lo, 16).ok()?,
        usize::from_str_radix(hi, 16).ok()?,
    ))
}

/// The numbers (address / `page`) of the pages `[addr, addr + len)` touches.
pub(crate) fn pages(addr: usize, len: usize, page: usize) -> core::ops::RangeInclusive<usize> {
    let first = addr / page;
    let last = (addr + len - 1) / page;
    first..=last
}

#[cfg(all(target_os = "linux", target_arch = "x86_64", target_env = "gnu"))]
mod imp {
    use super::{
        check_entry, in_text_mapping, jump_to, pages, parse_setting, room, Setting, Unfit, ENV_VAR,
        PATCH_LEN, SYMBOLS,
    };
    use crate::elf_symbols::{Sym, Symbols};
    use core::ffi::{c_int, c_void, CStr};
    use core::ptr;

    /// `dladdr1` requests (glibc's `<dlfcn.h>`).
    const RTLD_DL_SYMENT: c_int = 1;
    const RTLD_DL_LINKMAP: c_int = 2;
    const STT_FUNC: u8 = 2;

    /// Runs [`constructor`] when the library is loaded, before `main`.
    #[used]
    #[link_section = ".init_array"]
    static CONSTRUCTOR: extern "C" fn() = constructor;

    extern "C" fn constructor() {
        run();
    }

    /// One entry point to redirect.
    #[derive(Clone, Copy)]
    struct Entry {
        name: &'static CStr,
        /// The executable's definition.
        addr: usize,
        /// Its `st_size`.
        size: usize,
        /// zendmm's definition.
        target: usize,
    }

    fn say(line: &str) {
        let bytes = line.as_bytes();
        let mut done = 0;
        while done < bytes.len() {
            let rest = &bytes[done..];
            // SAFETY: `rest` is a live slice; write(2) only reads it.
            let n = unsafe { libc::write(libc::STDERR_FILENO, rest.as_ptr().cast(), rest.len()) };
            if n > 0 {
                done += n as usize;
            } else if n < 0 && errno() == libc::EINTR {
                continue;
            } else {
                return;
            }
        }
    }

    fn errno() -> c_int {
        // SAFETY: __errno_location returns this thread's errno slot.
        unsafe { *libc::__errno_location() }
    }

    fn strerror(err: c_int) -> String {
        std::io::Error::from_raw_os_error(err).to_string()
    }

    fn exe_name() -> String {
        std::fs::read_link("/proc/self/exe")
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "the executable".to_owned())
    }

    fn refuse(exe: &str, reason: &str) {
        say(&format!(
            "zendmm: not patching {exe}: {reason}; PHP keeps its own allocator\n"
        ));
    }

    fn name_of(name: &CStr) -> std::borrow::Cow<'_, str> {
        name.to_string_lossy()
    }

    fn empty_info() -> libc::Dl_info {
        libc::Dl_info {
            dli_fname: ptr::null(),
            dli_fbase: ptr::null_mut(),
            dli_sname: ptr::null(),
            dli_saddr: ptr::null_mut(),
        }
    }

    /// The link map of the object that contains `addr`, and `dladdr`'s info.
    fn object_of(addr: *const c_void) -> Option<(*mut c_void, libc::Dl_info)> {
        let mut info = empty_info();
        let mut map: *mut c_void = ptr::null_mut();
        // SAFETY: dladdr1 only inspects the loaded objects; `info` and `map`
        // are valid for writes.
        let found = unsafe { libc::dladdr1(addr, &mut info, &mut map, RTLD_DL_LINKMAP) };
        (found != 0 && !map.is_null()).then_some((map, info))
    }

    /// The symbol-table entry of `name`, which `dlsym` found at `addr`,
    /// when the executable (link map `exe_map`) defines it. Looked up by
    /// name in its hash table (`elf_symbols.rs`); by address with
    /// `dladdr1` when it has none, or to name the object that defines it
    /// instead.
    fn exe_symbol(
        table: Option<&Symbols>,
        exe_map: *mut c_void,
        name: &CStr,
        addr: *mut c_void,
    ) -> Result<Sym, String> {
        if let Some(sym) = defines(table, name, addr) {
            return Ok(sym);
        }
        let shown = name_of(name);
        let (map, info) = object_of(addr).ok_or_else(|| format!("cannot locate {shown}"))?;
        if map != exe_map {
            return Err(format!(
                "the executable does not define {shown} (it comes from {})",
                path_of(&info)
            ));
        }
        symbol_at(addr).ok_or_else(|| format!("cannot find {shown} in the symbol table"))
    }

    /// `name`'s entry in `table`, when the table's object defines it at `addr`.
    fn defines(table: Option<&Symbols>, name: &CStr, addr: *mut c_void) -> Option<Sym> {
        let t = table?;
        let sym = t.lookup(name)?;
        (t.base.wrapping_add(sym.st_value as usize) == addr as usize).then_some(sym)
    }

    /// The symbol-table entry of the symbol that starts exactly at `addr`.
    fn symbol_at(addr: *const c_void) -> Option<Sym> {
        let mut info = empty_info();
        let mut sym: *mut c_void = ptr::null_mut();
        // SAFETY: as in `object_of`; with RTLD_DL_SYMENT `sym` receives a
        // pointer to an `ElfW(Sym)` in the object's mapped symbol table.
        let found = unsafe { libc::dladdr1(addr, &mut info, &mut sym, RTLD_DL_SYMENT) };
        if found == 0 || sym.is_null() || info.dli_saddr.cast_const() != addr {
            return None;
        }
        // SAFETY: non-null, points into the dynamic symbol table, which stays
        // mapped as long as the object is loaded.
        Some(unsafe { ptr::read_unaligned(sym.cast::<Sym>()) })
    }

    fn link_map_of_handle(handle: *mut c_void) -> Option<*mut c_void> {
        let mut map: *mut c_void = ptr::null_mut();
        // SAFETY: `handle` came from dlopen; `map` is valid for a pointer.
        let rc = unsafe {
            libc::dlinfo(
                handle,
                libc::RTLD_DI_LINKMAP,
                (&mut map as *mut *mut c_void).cast(),
            )
        };
        (rc == 0 && !map.is_null()).then_some(map)
    }

    fn dlsym(handle: *mut c_void, name: &CStr) -> *mut c_void {
        // SAFETY: `handle` came from dlopen and `name` is NUL-terminated.
        unsafe { libc::dlsym(handle, name.as_ptr()) }
    }

    fn path_of(info: &libc::Dl_info) -> String {
        if info.dli_fname.is_null() {
            return "another object".to_owned();
        }
        // SAFETY: dladdr's dli_fname is a NUL-terminated string owned by the
        // loader, alive while the object is loaded.
        let name = unsafe { CStr::from_ptr(info.dli_fname) };
        match name.to_string_lossy() {
            n if n.is_empty() => "the executable".to_owned(),
            n => n.into_owned(),
        }
    }

    fn run() {
        // SAFETY: getenv before main, single-threaded; the result is copied at once.
        let raw = unsafe { libc::getenv(c"ZENDMM_PATCH".as_ptr()) };
        let setting = if raw.is_null() {
            None
        } else {
            // SAFETY: getenv returned a NUL-terminated string from environ.
            Some(unsafe { CStr::from_ptr(raw) }.to_bytes().to_vec())
        };
        let setting_parsed = parse_setting(setting.as_deref());
        if setting_parsed == Ok(Setting::Off) {
            return;
        }

        // Is this a PHP executable with its own allocator?
        // SAFETY: dlopen(NULL) returns the main program's handle.
        let exe = unsafe { libc::dlopen(ptr::null(), libc::RTLD_LAZY) };
        if exe.is_null() {
            return;
        }
        let Some(exe_map) = link_map_of_handle(exe) else {
            return;
        };
        let emalloc = dlsym(exe, c"_emalloc");
        if emalloc.is_null() {
            return; // not PHP
        }
        let Some((emalloc_map, _)) = object_of(emalloc) else {
            return;
        };
        let me = constructor as extern "C" fn() as *const c_void;
        let Some((my_map, my_info)) = object_of(me) else {
            return;
        };
        if emalloc_map != exe_map || my_map == exe_map {
            // _emalloc comes from a shared library (libphp, or zendmm itself:
            // LD_PRELOAD works alone), or zendmm is linked into the executable.
            return;
        }

        let exe_path = exe_name();
        let value = setting.as_deref().map(String::from_utf8_lossy);
        if setting_parsed.is_err() {
            say(&format!(
                "zendmm: {ENV_VAR}={:?} is not valid (use 0 to turn patching off, 1 or unset \
                 to patch); not patching {exe_path}\n",
                value.unwrap_or_default()
            ));
            return;
        }
        if let Err(reason) = patch(exe, exe_map, my_map, &my_info) {
            refuse(&exe_path, &reason);
        }
    }

    /// Checks everything, then patches all entries; on `Err` nothing was written.
    fn patch(
        exe: *mut c_void,
        exe_map: *mut c_void,
        my_map: *mut c_void,
        my_info: &libc::Dl_info,
    ) -> Result<(), String> {
        // Our own handle, to look up zendmm's definitions.
        if my_info.dli_fname.is_null() {
            return Err("cannot find zendmm's own file name".to_owned());
        }
        // SAFETY: dli_fname is the loader's NUL-terminated name of our object;
        // RTLD_NOLOAD only looks it up.
        let mine = unsafe { libc::dlopen(my_info.dli_fname, libc::RTLD_LAZY | libc::RTLD_NOLOAD) };
        if mine.is_null() {
            return Err(format!("cannot reopen {}", path_of(my_info)));
        }

        let maps = std::fs::read_to_string("/proc/self/maps")
            .map_err(|e| format!("cannot read /proc/self/maps: {e}"))?;

        // 1. The executable's side: its own definition, a function, room.
        // SAFETY: the executable's link map, loaded for the process's life.
        let exe_table = unsafe { Symbols::of(exe_map) };
        let mut entries = Vec::with_capacity(SYMBOLS.len());
        for &name in &SYMBOLS {
            let shown = name_of(name);
            let addr = dlsym(exe, name);
            if addr.is_null() {
                return Err(format!("the executable does not define {shown}"));
            }
            let sym = exe_symbol(exe_table.as_ref(), exe_map, name, addr)?;
            if sym.st_info & 0xf != STT_FUNC {
                return Err(format!("{shown} is not a plain function"));
            }
            let addr = addr as usize;
            let size = usize::try_from(sym.st_size).unwrap_or(0);
            let avail = room(addr, size);
            if avail < PATCH_LEN {
                return Err(Unfit::TooShort { size, room: avail }.describe(&shown));
            }
            // Long functions: only the bytes the jump replaces are looked at.
            let len = if size >= PATCH_LEN { PATCH_LEN } else { avail };
            if !in_text_mapping(&maps, addr, addr + len) {
                return Err(format!(
                    "{shown} at {addr:#x} is not in a private read+execute mapping"
                ));
            }
            // SAFETY: `[addr, addr + len)` lies inside a mapped r-x mapping
            // (checked just above), which nothing writes while we read.
            let code = unsafe { core::slice::from_raw_parts(addr as *const u8, len) };
            check_entry(addr, size, code).map_err(|why| why.describe(&shown))?;
            entries.push(Entry {
                name,
                addr,
                size,
                target: 0,
            });
        }

        // 2. No two patches may overlap (aliases, or entries closer than 14 bytes).
        let mut by_addr = entries.clone();
        by_addr.sort_by_key(|e| e.addr);
        for pair in by_addr.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if a.addr + PATCH_LEN > b.addr {
                return Err(format!(
                    "{} ({} bytes) and {} are too close together",
                    name_of(a.name),
                    a.size,
                    name_of(b.name)
                ));
            }
        }

        // 3. zendmm's side: every name must be ours.
        // SAFETY: zendmm's own link map; it is pinned before any jump is written.
        let my_table = unsafe { Symbols::of(my_map) };
        let mut missing = Vec::new();
        for entry in &mut entries {
            let target = dlsym(mine, entry.name);
            let ours = !target.is_null()
                && (defines(my_table.as_ref(), entry.name, target).is_some()
                    || matches!(object_of(target), Some((map, _)) if map == my_map));
            if ours {
                entry.target = target as usize;
            } else {
                missing.push(entry.name);
            }
        }
        if let Some(first) = missing.first() {
            let more = match missing.len() {
                1 => String::new(),
                n => format!(" (and {} more of the {})", n - 1, SYMBOLS.len()),
            };
            return Err(format!(
                "{} does not export {}{more}",
                path_of(my_info),
                name_of(first)
            ));
        }

        // 4. PHP's allocator must not be running yet (zendmm was dlopen'ed late).
        let get_heap = entries
            .iter()
            .find(|e| e.name == c"zend_mm_get_heap")
            .map(|e| e.addr)
            .ok_or_else(|| "zend_mm_get_heap is missing".to_owned())?;
        // `zend_mm_get_heap` only returns AG(mm_heap): NULL until PHP's
        // start_memory_manager() runs.
        // SAFETY: the executable's own, checked `zend_mm_heap *zend_mm_get_heap(void)`.
        let get_heap: extern "C" fn() -> *mut c_void = unsafe { core::mem::transmute(get_heap) };
        if !get_heap().is_null() {
            return Err("PHP's memory manager is already running \
                        (load zendmm at startup, with LD_PRELOAD)"
                .to_owned());
        }

        // 5. Pin zendmm: the executable will jump into it from now on.
        // SAFETY: as for the RTLD_NOLOAD lookup above.
        let pinned = unsafe {
            libc::dlopen(
                my_info.dli_fname,
                libc::RTLD_LAZY | libc::RTLD_NOLOAD | libc::RTLD_NODELETE,
            )
        };
        if pinned.is_null() {
            return Err(format!("cannot pin {} in memory", path_of(my_info)));
        }

        // 6. Make every page writable before writing anything.
        // SAFETY: sysconf has no preconditions.
        let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
            n if n > 0 => n as usize,
            _ => 4096,
        };
        let mut page_list: Vec<usize> = entries
            .iter()
            .flat_map(|e| pages(e.addr, PATCH_LEN, page))
            .collect();
        page_list.sort_unstable();
        page_list.dedup();
        for (done, &p) in page_list.iter().enumerate() {
            let rwx = libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC;
            // SAFETY: `p * page` is a page of the executable's r-x text (checked
            // in step 1); adding write permission changes no contents.
            if unsafe { libc::mprotect((p * page) as *mut c_void, page, rwx) } != 0 {
                let err = errno();
                // Nothing was written: a page left writable changes no code.
                let _ = restore(&page_list[..done], page);
                return Err(format!(
                    "cannot make its code writable (mprotect of {:#x}: {}; \
                     SELinux or PaX may forbid it)",
                    p * page,
                    strerror(err)
                ));
            }
        }

        // 7. Write all the jumps. Nothing can fail from here on.
        for e in &entries {
            let patch = jump_to(e.target as u64);
            // `[addr, addr + 14)` is the entry's own body or its alignment
            // padding (step 1) and no two patches overlap (step 2).
            // SAFETY: as just said; the pages are writable (step 6); no thread runs PHP code yet.
            unsafe { ptr::copy_nonoverlapping(patch.as_ptr(), e.addr as *mut u8, PATCH_LEN) };
        }
        if let Err(reason) = restore(&page_list, page) {
            say(&format!("zendmm: patched {} but {reason}\n", exe_name()));
        }
        Ok(())
    }

    /// Puts pages back to read+execute.
    fn restore(page_list: &[usize], page: usize) -> Result<(), String> {
        let mut result = Ok(());
        for &p in page_list {
            // SAFETY: these pages were r-x before step 6 made them writable.
            if unsafe {
                libc::mprotect(
                    (p * page) as *mut c_void,
                    page,
                    libc::PROT_READ | libc::PROT_EXEC,
                )
            } != 0
            {
                result = Err(format!(
                    "could not make {:#x} read-only again: {}",
                    p * page,
                    strerror(errno())
                ));
            }
        }
        result
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// libc's link map and the address `dlsym` gives for `name` there.
        fn libc_symbol(name: &CStr) -> (*mut c_void, *mut c_void) {
            // SAFETY: RTLD_NOLOAD only finds the already loaded libc.
            let handle =
                unsafe { libc::dlopen(c"libc.so.6".as_ptr(), libc::RTLD_LAZY | libc::RTLD_NOLOAD) };
            assert!(!handle.is_null());
            let map = link_map_of_handle(handle).expect("libc's link map");
            (map, dlsym(handle, name))
        }

        #[test]
        fn the_hash_lookup_and_dladdr_find_the_same_entry() {
            for name in [c"malloc", c"free", c"getenv", c"dladdr1", c"mremap"] {
                let (map, addr) = libc_symbol(name);
                // SAFETY: libc stays loaded.
                let table = unsafe { Symbols::of(map) };
                let t = table.as_ref().expect("Debian's libc has a GNU hash table");
                let sym = t.lookup(name).unwrap_or_else(|| panic!("{name:?}"));
                assert_eq!(t.base + sym.st_value as usize, addr as usize, "{name:?}");
                assert!(sym.st_size > 0, "{name:?}");
                assert_eq!(t.lookup(c"zendmm_no_such_symbol"), None);
                let by_name = exe_symbol(table.as_ref(), map, name, addr).unwrap();
                let by_address = exe_symbol(None, map, name, addr).unwrap();
                // `free` has aliases at its address; dladdr1 may name any.
                let what = |s: Sym| (s.st_value, s.st_size, s.st_info, s.st_shndx);
                assert_eq!(what(by_name), what(by_address), "{name:?}");
                if name == c"malloc" {
                    assert_eq!(by_name, by_address);
                }
                assert_eq!(by_name.st_info & 0xf, STT_FUNC, "{name:?}");
            }
        }

        #[test]
        fn a_name_defined_by_another_object_is_refused_and_named() {
            let (map, _) = libc_symbol(c"malloc");
            // SAFETY: libc stays loaded.
            let table = unsafe { Symbols::of(map) };
            let ours = crate::ffi::emalloc::_emalloc as *mut c_void;
            for t in [table.as_ref(), None] {
                let err = exe_symbol(t, map, c"_emalloc", ours).unwrap_err();
                assert!(
                    err.starts_with("the executable does not define _emalloc (it comes from "),
                    "{err}"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_are_118_sorted_distinct_symbols() {
        assert_eq!(SYMBOLS.len(), 118);
        for pair in SYMBOLS.windows(2) {
            assert!(
                pair[0].to_bytes() < pair[1].to_bytes(),
                "{:?} must sort before {:?}",
                pair[0],
                pair[1]
            );
        }
        assert_eq!(
            SYMBOLS
                .iter()
                .filter(|s| s.to_bytes().starts_with(b"_emalloc_"))
                .count(),
            32
        );
    }

    #[test]
    fn symbols_match_the_installed_php_when_there_is_one() {
        let Ok(out) = std::process::Command::new("nm")
            .args(["-D", "--defined-only", "/usr/bin/php8.2"])
            .output()
        else {
            return;
        };
        if !out.status.success() {
            return;
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let prefixes = [
            "_e",
            "_safe_",
            "_fe",
            "zend_mm",
            "zend_memory",
            "zend_set_memory",
            "zend_alloc",
            "is_zend",
            "start_memory",
            "shutdown_memory",
            "zend_strndup",
            "__zend",
            "_zend_m",
            "zend_handle_delayed",
        ];
        let mut found: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split_whitespace().nth(2))
            .filter(|n| prefixes.iter().any(|p| n.starts_with(p)))
            .filter(|n| !["zend_alloc_ce_cache", "_edata", "_end"].contains(n))
            .collect();
        found.sort_unstable();
        let ours: Vec<&str> = SYMBOLS.iter().map(|s| s.to_str().unwrap()).collect();
        assert_eq!(found, ours);
    }

    #[test]
    fn settings() {
        assert_eq!(parse_setting(None), Ok(Setting::Patch));
        assert_eq!(parse_setting(Some(b"")), Ok(Setting::Patch));
        assert_eq!(parse_setting(Some(b"1")), Ok(Setting::Patch));
        assert_eq!(parse_setting(Some(b"0")), Ok(Setting::Off));
        for bad in [&b"yes"[..], b"no", b"00", b" 0", b"true", b"2"] {
            assert_eq!(parse_setting(Some(bad)), Err(()));
        }
    }

    #[test]
    fn the_jump_is_rip_indirect() {
        assert_eq!(
            jump_to(0x1122_3344_5566_7788),
            [0xff, 0x25, 0, 0, 0, 0, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]
        );
    }

    #[test]
    fn padding_forms() {
        // What GCC/gas emit after short functions in Debian's php8.2.
        assert!(is_padding(&[
            0x66, 0x66, 0x2e, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0
        ]));
        assert!(is_padding(&[0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0]));
        assert!(is_padding(&[
            0x66, 0x2e, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0, 0x66, 0x90
        ]));
        assert!(is_padding(&[0x0f, 0x1f, 0x40, 0x00, 0x90, 0xcc]));
        assert!(is_padding(&[0x0f, 0x1f, 0x44, 0, 0, 0x0f, 0x1f, 0x00]));
        assert!(is_padding(&[0x0f, 0x1f, 0x80, 0, 0, 0, 0]));
        assert!(is_padding(&[]));
        // Truncated or real code.
        assert!(!is_padding(&[0x0f, 0x1f, 0x84, 0, 0]));
        assert!(!is_padding(&[0x48, 0x8b, 0x47, 0x08]));
        assert!(!is_padding(&[0xc3]));
        assert!(!is_padding(&[0x0f, 0x1f, 0x48, 0x00])); // reg field not /0
        assert!(!is_padding(&[0x66; 20]));
    }

    #[test]
    fn room_for_the_jump() {
        // zend_mm_get_storage in php8.2: `mov 8(%rdi),%rax; ret` + 11 bytes of nops.
        let code = [
            0x48, 0x8b, 0x47, 0x08, 0xc3, 0x66, 0x66, 0x2e, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0,
        ];
        assert_eq!(room(0x2d9250, 5), 16);
        assert_eq!(check_entry(0x2d9250, 5, &code), Ok(()));
        // The same bytes, not 16-byte aligned: only the body counts.
        assert_eq!(
            check_entry(0x2d9251, 5, &code[..5]),
            Err(Unfit::TooShort { size: 5, room: 5 })
        );
        // A short function followed by code, not padding.
        let mut packed = code;
        packed[5] = 0x55;
        assert_eq!(
            check_entry(0x2d9250, 5, &packed),
            Err(Unfit::NotPadding { size: 5 })
        );
        // Long functions need no padding, aligned or not (zend_mm_delayed_error_or_panic).
        assert_eq!(check_entry(0x108df1, 262, &[0x55; 14]), Ok(()));
        assert_eq!(check_entry(0x108df1, 14, &[0x55; 14]), Ok(()));
        assert_eq!(
            check_entry(0x108df1, 13, &[0x55; 13]),
            Err(Unfit::TooShort { size: 13, room: 13 })
        );
        // A 16-byte slot with 14 or more bytes of body is fine as is.
        assert_eq!(check_entry(0x1000, 15, &[0x55; 14]), Ok(()));
        // An entry that already carries our jump.
        assert_eq!(
            check_entry(0x1000, 64, &jump_to(0xdead_beef)),
            Err(Unfit::AlreadyPatched)
        );
        assert_eq!(
            check_entry(0x1000, 8, &jump_to(0xdead_beef)),
            Err(Unfit::AlreadyPatched)
        );
    }

    #[test]
    fn maps_lookup() {
        let maps = "\
55d0e0a00000-55d0e0b00000 r--p 00000000 08:01 1234 /usr/bin/php8.2
55d0e0b00000-55d0e0f00000 r-xp 00100000 08:01 1234 /usr/bin/php8.2
55d0e0f00000-55d0e1000000 rw-p 00500000 08:01 1234 /usr/bin/php8.2
7f0000000000-7f0000001000 rwxp 00000000 00:00 0
";
        assert!(in_text_mapping(maps, 0x55d0e0b00000, 0x55d0e0b0000e));
        assert!(in_text_mapping(maps, 0x55d0e0eefff0, 0x55d0e0f00000));
        assert!(!in_text_mapping(maps, 0x55d0e0effff8, 0x55d0e0f00006));
        assert!(!in_text_mapping(maps, 0x55d0e0a00000, 0x55d0e0a0000e));
        assert!(!in_text_mapping(maps, 0x7f0000000000, 0x7f000000000e));
        assert!(!in_text_mapping("garbage\n\n-\nx-y r-xp", 0, 14));
    }

    #[test]
    fn page_ranges() {
        assert_eq!(pages(0x1000, 14, 4096), 1..=1);
        assert_eq!(pages(0x1ff0, 14, 4096), 1..=1);
        assert_eq!(pages(0x1ff8, 14, 4096), 1..=2);
    }
}
